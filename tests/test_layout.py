"""House rules that are cheap to check: dependency direction, lint, CLI behaviour."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("faust", "kafka", "aiokafka", "streams")


def _imported_modules(package: str) -> set[str]:
    code = (f"import sys, importlib, pkgutil, {package}\n"
            f"for m in pkgutil.walk_packages({package}.__path__, '{package}.'):\n"
            "    importlib.import_module(m.name)\n"
            "print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return {line.split(".")[0] for line in out.split()}


def test_model_imports_neither_kafka_nor_store():
    mods = _imported_modules("model")
    assert not mods & {*FORBIDDEN, "store", "rocksdict"}


def test_store_imports_neither_kafka_nor_model():
    mods = _imported_modules("store")
    assert not mods & {*FORBIDDEN, "model", "torch", "transformers"}


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_cli_help_lists_subcommands():
    proc = _cli("--help")
    assert proc.returncode == 0
    for cmd in ("broker",):
        assert cmd in proc.stdout


def test_cli_unknown_command_is_one_clear_line():
    proc = _cli("frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "invalid choice: 'frobnicate'" in proc.stderr


def test_cli_bad_argument_is_one_clear_line():
    proc = _cli("broker", "--port", "notaport")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "--port" in proc.stderr
