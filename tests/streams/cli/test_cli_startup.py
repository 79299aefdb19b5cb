"""Building the whole `threadrec` parser loads no model stack: `--help` and a bad port answer at
once, and a command pays for torch only when it runs (the parser once took 7-11 s to build)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "transformers", "sklearn", "faust", "faiss")


def test_the_parser_of_every_command_loads_no_model_stack():
    code = ("import sys\nfrom streams.cli.main import build_parser\nbuild_parser()\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.split()
    assert loaded == []
