"""House rules that are cheap to check: dependency direction, lint, CLI behaviour."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("faust", "kafka", "aiokafka", "streams")


def test_model_imports_neither_kafka_nor_store(imported_by):
    assert not imported_by("model") & {*FORBIDDEN, "store", "rocksdict"}


def test_store_imports_neither_kafka_nor_model(imported_by):
    assert not imported_by("store") & {*FORBIDDEN, "model", "torch", "transformers"}


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT,
                          capture_output=True, text=True)


COMMANDS = ("broker", "data", "replay", "train", "evaluate", "merge-seeds", "worker", "trainer", "demo")


def test_cli_help_lists_every_subcommand_and_each_has_help():
    proc = _cli("--help")
    assert proc.returncode == 0
    listed = proc.stdout.split("positional arguments:")[1].split("options:")[0]
    firsts = [line.split()[0] for line in listed.splitlines() if line.startswith("    ") and line.split()]
    assert [w for w in firsts if w in COMMANDS] == list(COMMANDS)



@pytest.mark.parametrize("cmd", COMMANDS)
def test_each_subcommand_builds_its_help(cmd, capsys):
    from streams.cli import main

    with pytest.raises(SystemExit) as done:  # argparse exits 0 after printing help
        main([cmd, "--help"])
    assert done.value.code == 0 and f"usage: threadrec {cmd}" in capsys.readouterr().out


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
