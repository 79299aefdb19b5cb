"""store/ stays independent: no Kafka, Faust, torch, model or streams; rocksdict and FAISS only in
their backend modules."""

from __future__ import annotations

import pathlib
import subprocess
import sys

FORBIDDEN = ["faust", "kafka", "aiokafka", "torch", "model", "streams"]


def test_importing_store_pulls_in_nothing_forbidden() -> None:
    code = (
        "import sys, store, store.faiss_index, store.token_cache, store.frequency, store.synthetic;"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rocksdict_and_faiss_stay_in_their_backend_modules() -> None:
    root = pathlib.Path(__file__).resolve().parents[2] / "store"
    sources = {p.name: p.read_text() for p in root.glob("*.py")}
    assert [n for n, s in sources.items() if "from rocksdict" in s or "import rocksdict" in s] == [
        "rocksdict_backend.py"
    ]
    assert sorted(n for n, s in sources.items() if "import faiss" in s) == ["faiss_bands.py", "faiss_index.py",
                                                                           "faiss_scan.py"]
