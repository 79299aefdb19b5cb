"""The hybrid recipe on a trained content checkpoint: ID tower, gate fit, one checkpoint.

1. Cut each user's last `fusion_positions` train engagements (held-in positions).
2. Train the ID tower (SASRec over ID rows) on the rest, early-stopped on valid.
3. Score the held-in positions with the frozen content model and the tower; fit the gate.
4. Write the content checkpoint's files plus hybrid.safetensors / hybrid.json.
The content model is frozen here: its codes are computed once, which is what makes the
recipe fit a 2-core CPU (the content model itself comes from `threadrec train --content-only`).
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.checkpoint import load_hybrid, save_hybrid
from model.dataset import PreparedData, histories
from model.errors import CheckpointError
from model.evaluation.sasrec_baseline import fit_sasrec
from model.ids.hybrid import Fusion, HybridConfig
from model.ids.id_checkpoint import load_id_half
from model.ids.sasrec import SASRec, SASRecOptions
from model.inference import EmbSumInference
from model.training.hybrid_fit import (
    HeldIn,
    fit_fusion,
    fusion_data,
    rowless_share,
    split_held_in,
    tune_gate,
    tune_prior,
    valid_positions,
)

logger = logging.getLogger(__name__)


def admitted_items(rows: list[dict[str, Any]], min_count: int, cold: frozenset[str]) -> set[str]:
    """Items that get an ID row: seen >= min_count times in the tower's rows, never cold."""
    counts = Counter(str(e["item_id"]) for e in rows)
    return {i for i, c in counts.items() if c >= min_count and i not in cold}


def content_scorer(inf: EmbSumInference, data: PreparedData, progress: bool):
    """A callable {key: history events} -> content scores (K, N) over the whole catalogue."""
    from model.evaluation.evaluate import EmbSumRanker

    def scores(hist: dict[str, list[dict]]) -> np.ndarray:
        ranker = EmbSumRanker(inf, data, hist, progress)
        return ranker.scores(list(hist), list(data.items))
    return scores


def fit_positions(data: PreparedData, cfg: HybridConfig) -> tuple[list[dict[str, Any]], list[HeldIn], str]:
    """(rows the tower trains on, positions the gate and prior are fitted on, "valid"|"held-in")."""
    users = histories(data.train)
    fit_rows, held = split_held_in(users, cfg.fusion_positions, data.cold_items)
    if cfg.fusion_positions == 0:
        held = valid_positions(users, data.valid, data.cold_items)
    fit_on = "valid" if cfg.fusion_positions == 0 and held else "held-in"
    if not held:  # no usable valid split: fall back to one held-in position per user
        logger.warning("no valid positions to fit the gate on; using each user's last train engagement")
        fit_rows, held = split_held_in(users, 1, data.cold_items)
    if 0 < cfg.fusion_sample < len(held):  # the content scores of each position cost an encoding
        held = random.Random(0).sample(held, cfg.fusion_sample)
    return fit_rows, held, fit_on


def train_hybrid(data: PreparedData, content_dir: str | Path, out: str | Path,
                 cfg: HybridConfig | None = None, tower: SASRecOptions | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Train the ID half on top of the content checkpoint at content_dir; write out. Returns facts.
    The tower's seed also seeds the gate's fit, so one seed decides the whole ID half."""
    cfg, tower, t0 = cfg or HybridConfig(), tower or SASRecOptions(), time.time()
    fit_rows, held, fit_on = fit_positions(data, cfg)
    rows_ok = admitted_items(fit_rows, cfg.min_count, data.cold_items)
    model = fit_sasrec(data, fit_rows, rows_ok, tower, progress=progress)
    item_ids = list(data.items)
    rows, present = model.item_rows(item_ids)
    inf = EmbSumInference.from_checkpoint(content_dir)
    fd = fusion_data(held, item_ids, content_scorer(inf, data, progress), model.user_vectors, rows, present)
    fusion, losses = fit_fusion(fd, cfg, seed=tower.seed)
    gate_curve = tune_gate(fusion, fd)
    rowless = rowless_share(data.valid, {i for i, p in zip(item_ids, present, strict=True) if p})
    prior_curve = tune_prior(fusion, fd, rowless)
    copy_content(content_dir, out)
    facts = {"held_in_positions": len(held), "fit_on": fit_on, "id_rows": int(present.sum()), "tower": model.facts,
             "fusion_loss": [losses[0], losses[-1]], "gate_scale": float(fusion.log_scale.detach().exp()),
             "gate_recall@10": gate_curve, "prior": prior_facts(fusion, rowless, prior_curve),
             "elapsed_s": round(time.time() - t0, 1)}
    save_hybrid(out, hybrid_tensors(model, fusion, rows),
                {"hybrid": cfg.to_dict(), "tower": model.options_dict(), "item_ids": item_ids,
                 "present": [i for i, p in zip(item_ids, present, strict=True) if p], "facts": facts})
    return facts


def prior_facts(fusion: Fusion, rowless: float, curve: dict) -> dict[str, Any]:
    """What tune_prior chose and why, for hybrid.json's facts."""
    q = float(fusion.prior_q)
    return {"kept": "off" if q < 0 else f"q{q:g}", "valid_rowless_share": rowless, "curve": curve}


def retune_prior(data: PreparedData, checkpoint: str | Path, progress: bool = True) -> dict[str, Any]:
    """Choose the rowless prior of an existing hybrid checkpoint on valid, as train_hybrid does
    (nothing is trained: the tower, rows and gate stay); rewrites hybrid.safetensors/json."""
    ck = load_id_half(checkpoint)
    if ck is None or ck.item_ids != list(data.items):
        raise CheckpointError(f"{checkpoint}: not a hybrid checkpoint of this data's catalogue")
    tensors, doc, tower, fusion = ck.tensors, ck.doc, ck.tower, ck.fusion
    _, held, _ = fit_positions(data, ck.config)  # where train_hybrid fitted the gate
    item_ids, present_ids = doc["item_ids"], set(doc["present"])
    present = np.array([i in present_ids for i in item_ids])
    inf = EmbSumInference.from_checkpoint(checkpoint)
    fd = fusion_data(held, item_ids, content_scorer(inf, data, progress), tower.user_vectors,
                     tensors["id_rows"].numpy(), present)
    rowless = rowless_share(data.valid, present_ids)
    facts = prior_facts(fusion, rowless, tune_prior(fusion, fd, rowless))
    tensors.update({f"fusion.{k}": v for k, v in fusion.state_dict().items()})
    doc.setdefault("facts", {})["prior"] = facts
    save_hybrid(checkpoint, tensors, {k: v for k, v in doc.items() if k != "format_version"})
    return facts


def hybrid_tensors(model: SASRec, fusion: Fusion, rows: np.ndarray) -> dict[str, torch.Tensor]:
    """Everything hybrid.safetensors holds: tower, gate, ID rows and their Adagrad slots."""
    out = {f"tower.{k}": v for k, v in model.state_dict().items()}
    out.update({f"fusion.{k}": v for k, v in fusion.state_dict().items()})
    out["id_rows"] = torch.from_numpy(np.asarray(rows, np.float32))
    out["id_accumulators"] = torch.zeros_like(out["id_rows"])  # online Adagrad starts fresh
    return out


def copy_content(src: str | Path, dst: str | Path) -> None:
    """The content checkpoint's files into dst (a hybrid checkpoint is a content one plus two files)."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith(("optimizer", "hybrid")):
            shutil.copy2(f, dst / f.name)


def is_hybrid(path: str | Path) -> bool:
    """True when the checkpoint carries an ID half."""
    return load_hybrid(path) is not None
