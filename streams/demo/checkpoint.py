"""The demo's quick checkpoint: a few minutes of CPU training, cached under its recipe's key.

The cache entry checkpoints/demo-quick/<key>/ holds the training data (the dataset cut before
the held-out period), the checkpoint (model/) and done.json once training finished; an entry
without done.json (interrupted) is trained again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from streams.demo.data import cut_before

logger = logging.getLogger(__name__)

#: Small enough for a few minutes on 2 CPU cores; same backbone as the offline default.
QUICK_MODEL = dict(backbone="minilm", m=16, n=4, r=4, max_sessions=4, max_session_tokens=64,
                   max_item_tokens=32, summary_max_tokens=32, freeze_layers=3)
QUICK_TRAIN = dict(steps=2000, batch_size=16, lr=2e-4, eval_every=0, eval_users=100, seed=0)
#: The hybrid's ID half on top: a SASRec tower (2 minutes) and a gate fitted on 200 positions.
QUICK_HYBRID = dict(fusion_positions=1, fusion_sample=200)
QUICK_TOWER = dict(max_minutes=2.0, patience=5)


def recipe(data_dir: Path, cut_ts: float, minutes: float) -> dict[str, Any]:
    """Everything the quick checkpoint depends on (its cache key is a hash of this)."""
    meta = data_dir / "meta.json"
    counts = json.loads(meta.read_text()).get("counts") if meta.exists() else None
    return {"model": QUICK_MODEL, "train": {**QUICK_TRAIN, "max_minutes": minutes},
            "hybrid": QUICK_HYBRID, "tower": QUICK_TOWER,
            "data": {"dir": str(data_dir.resolve()), "counts": counts, "before_ts": cut_ts},
            "version": 4}  # 3: the gate is kept by Recall@10 (tune_gate); 4: summary targets of facts


def recipe_key(rec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:12]


def quick_checkpoint(data_dir: Path, cut_ts: float, minutes: float,
                     cache_root: Path = Path("checkpoints/demo-quick")) -> tuple[Path, bool]:
    """(checkpoint dir, trained now?): the cached quick checkpoint, trained first when missing."""
    rec = recipe(data_dir, cut_ts, minutes)
    entry = cache_root / recipe_key(rec)
    if (entry / "done.json").is_file():
        logger.info("reusing quick checkpoint %s", entry / "model")
        return entry / "model", False
    if entry.exists():
        shutil.rmtree(entry)  # an interrupted run: start again
    train_dir = cut_before(data_dir, entry / "data", cut_ts)
    t0 = time.time()
    stats = _train(train_dir, entry / "model", rec)
    hybrid = _add_id_half(train_dir, entry / "model", rec)
    done = {"recipe": rec, "steps": stats["step"], "train_s": round(time.time() - t0, 1),
            "valid": stats["valid"][-1] if stats["valid"] else {},
            "hybrid": {k: v for k, v in hybrid.items() if k != "tower"}}
    (entry / "done.json").write_text(json.dumps(done, indent=2))
    return entry / "model", True


def _train(train_dir: Path, out: Path, rec: dict[str, Any]) -> dict[str, Any]:
    from model.config import EmbSumConfig
    from model.training.train import TrainOptions, train

    cfg = EmbSumConfig(**rec["model"])
    opts = TrainOptions(device="cpu", **rec["train"])
    return train(train_dir, out, cfg, opts, progress=True)


def _add_id_half(train_dir: Path, out: Path, rec: dict[str, Any]) -> dict[str, Any]:
    """The hybrid's ID half next to the quick content model (the worker serves both)."""
    from model.dataset import load_prepared
    from model.ids.hybrid import HybridConfig
    from model.ids.sasrec import SASRecOptions
    from model.training.hybrid_train import train_hybrid

    return train_hybrid(load_prepared(train_dir), out, out, HybridConfig(**rec["hybrid"]),
                        SASRecOptions(**rec["tower"]))
