"""Offline evaluation: MIND-protocol impression metrics + full ranking, EmbSum and baselines."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from model.dataset import PreparedData, histories, load_prepared
from model.errors import DataDirError
from model.evaluation.baselines import (
    ContentSimilarity,
    CoOccurrence,
    DecayedPopularity,
    Popularity,
    Ranker,
)
from model.evaluation.confidence import bootstrap_interval
from model.evaluation.metrics import full_ranking_metrics, impression_metrics
from model.examples import history_chunks, user_sessions
from model.ids.id_checkpoint import IdCheckpoint, load_id_half
from model.inference import EmbSumInference
from model.text import item_text, session_text

logger = logging.getLogger(__name__)


class EmbSumRanker(Ranker):
    """Exact EmbSum scores; users and items are encoded once and cached."""

    name = "embsum"

    def __init__(self, inf: EmbSumInference, data: PreparedData, history: dict[str, list[dict]],
                 progress: bool = False, chunk: int = 16):
        super().__init__(list(data.items))
        self.inf, self.data, self.history, self.progress, self.chunk = inf, data, history, progress, chunk
        self._codes: dict[str, np.ndarray] = {}
        self._cpe: dict[str, np.ndarray] = {}

    def _encode_items(self, item_ids: Sequence[str]) -> np.ndarray:
        todo = [i for i in dict.fromkeys(item_ids) if i not in self._cpe]
        step = 256
        batches = range(0, len(todo), step)
        for k in (track(batches, description="encode items") if self.progress and len(todo) > step else batches):
            enc = self.inf.encode_items([item_text(self.data.items[i]) for i in todo[k:k + step]])
            self._cpe.update(zip(todo[k:k + step], enc.cpe, strict=True))
        return np.stack([self._cpe[i] for i in item_ids])

    def _encode_users(self, user_ids: Sequence[str]) -> np.ndarray:
        todo = [u for u in dict.fromkeys(user_ids) if u not in self._codes]
        items, cfg = self.data.items, self.inf.config
        batches = range(0, len(todo), self.chunk)
        for k in (track(batches, description="encode users") if self.progress and len(todo) > self.chunk else batches):
            group = todo[k:k + self.chunk]
            hist = [[session_text(items[i] for i in s)
                     for s in history_chunks(user_sessions(self.history.get(u, []), cfg), cfg)] or [""]
                    for u in group]
            codes, _ = self.inf.encode_users(hist)
            self._codes.update(zip(group, codes, strict=True))
        return np.stack([self._codes[u] for u in user_ids])

    def scores(self, user_ids, item_ids):
        cpe = self._encode_items(item_ids)  # (C, n, d)
        codes = self._encode_users(user_ids)  # (U, m, d)
        out = np.empty((len(user_ids), len(item_ids)), np.float32)
        for k in range(0, len(user_ids), self.chunk):  # bounds the (U, C, m*n) intermediate
            for c in range(0, len(item_ids), 2048):
                out[k:k + self.chunk, c:c + 2048] = self.inf.score(codes[k:k + self.chunk], cpe[c:c + 2048])
        return out


class HybridRanker(Ranker):
    """Content scores of the checkpoint's EmbSum (shared, cached) plus its gated ID term."""

    name = "hybrid"

    def __init__(self, content: EmbSumRanker, ck: IdCheckpoint, history: dict[str, list[dict]]):
        import torch

        super().__init__(content.item_ids)
        self.content, self.tower, self.fusion = content, ck.tower, ck.fusion
        self.rows, self.row_of = ck.tensors["id_rows"], {i: k for k, i in enumerate(ck.item_ids)}
        self.present = torch.tensor([i in set(ck.present) for i in ck.item_ids])
        self.history = {u: [str(e["item_id"]) for e in ev] for u, ev in history.items()}
        self.facts = ck.doc.get("facts")

    def scores(self, user_ids, item_ids):
        import torch

        content = torch.from_numpy(self.content.scores(user_ids, item_ids))
        users = torch.from_numpy(self.tower.user_vectors([self.history.get(u, []) for u in user_ids]))
        cols = torch.tensor([self.row_of[i] for i in item_ids])
        with torch.no_grad():
            ref = self.fusion.reference(users, self.rows[self.present])
            return self.fusion(content, users, self.rows[cols], self.present[cols], ref).numpy()


def split_history(data: PreparedData, split: str) -> dict[str, list[dict]]:
    """History visible when evaluating split: train for valid, train+valid for test."""
    rows = data.train if split == "valid" else data.train + sorted(data.valid, key=lambda e: float(e["ts"]))
    return histories(sorted(rows, key=lambda e: float(e["ts"])))


def impression_eval(ranker: Ranker, impressions: list[dict]) -> dict[str, float]:
    """Score each impression's candidates (one batched call) and average the MIND metrics."""
    users = list(dict.fromkeys(r["user_id"] for r in impressions))
    cands = list(dict.fromkeys(c for r in impressions for c in r["candidates"]))
    s = ranker.scores(users, cands)
    urow, ccol = {u: k for k, u in enumerate(users)}, {c: k for k, c in enumerate(cands)}
    return impression_metrics((r["labels"], s[urow[r["user_id"]], [ccol[c] for c in r["candidates"]]])
                              for r in impressions)


def full_ranking_per_user(ranker: Ranker, users: list[str], targets: dict[str, set[str]],
                          seen: dict[str, list[dict]], all_items: list[str]) -> dict[str, list[float]]:
    """{"full_recall@10": [one value per user, in users' order], ...} over all items minus each
    user's seen (history) items: what means and bootstrap intervals are computed from."""
    idx = {i: k for k, i in enumerate(all_items)}
    s = ranker.scores(users, all_items)
    per = [full_ranking_metrics(s[k], [idx[i] for i in targets[u]], [idx[e["item_id"]] for e in seen.get(u, [])])
           for k, u in enumerate(users)]
    return {f"full_{m}": [p[m] for p in per] for m in per[0]} if per else {}


def full_ranking_eval(ranker: Ranker, users: list[str], targets: dict[str, set[str]],
                      seen: dict[str, list[dict]], all_items: list[str]) -> dict[str, float]:
    """Recall/nDCG@10/50 over all items minus each user's seen (history) items."""
    per = full_ranking_per_user(ranker, users, targets, seen, all_items)
    return {m: float(np.mean(v)) for m, v in per.items()}


def with_intervals(result: dict[str, Any], name: str, per_user: dict[str, list[float]]) -> None:
    """Store a model's full-ranking means, per-user values (rounded) and 95% bootstrap intervals."""
    result["models"][name].update({m: float(np.mean(v)) for m, v in per_user.items()})
    result.setdefault("per_user", {})[name] = {m: [round(x, 5) for x in v] for m, v in per_user.items()}
    result.setdefault("intervals", {})[name] = {m: bootstrap_interval(v).as_dict() for m, v in per_user.items()}


def select_impressions(data: PreparedData, split: str, max_users: int | None) -> list[dict]:
    rows = [r for r in data.impressions(split) if all(c in data.items for c in r["candidates"])]
    if not rows:
        raise DataDirError(f"{data.root}: impressions_{split}.jsonl has no usable impression")
    users = sorted(dict.fromkeys(r["user_id"] for r in rows))[:max_users] if max_users else None
    return [r for r in rows if users is None or r["user_id"] in set(users)]


def split_targets(data: PreparedData, split: str) -> dict[str, set[str]]:
    """Held-out items per user of a split (the full-ranking positives)."""
    targets: dict[str, set[str]] = {}
    for e in data.test if split == "test" else data.valid:
        targets.setdefault(e["user_id"], set()).add(e["item_id"])
    return targets


def validate(model, tokenizer, data: PreparedData, max_users: int | None = 200,
             full: bool = True) -> dict[str, float]:
    """EmbSum impression metrics on impressions_valid (used during training), and full-ranking
    Recall/nDCG@10/50 on the valid targets of the same users when full is True."""
    inf = EmbSumInference(model, tokenizer, next(model.parameters()).device)
    hist = split_history(data, "valid")
    ranker = EmbSumRanker(inf, data, hist)
    imps = select_impressions(data, "valid", max_users)
    res = impression_eval(ranker, imps)
    if full:
        targets = split_targets(data, "valid")
        users = [u for u in dict.fromkeys(r["user_id"] for r in imps) if u in targets]
        res.update(full_ranking_eval(ranker, users, targets, hist, list(data.items)))
    return res


def model_rankers(data: PreparedData, hist: dict[str, list[dict]], inf: EmbSumInference | None,
                  hybrid: IdCheckpoint | None, progress: bool) -> list[Ranker]:
    """The checkpoint's rankers: content-only EmbSum, and the hybrid when it carries an ID half."""
    if inf is None:
        return []
    content = EmbSumRanker(inf, data, hist, progress)
    return [content] + ([HybridRanker(content, hybrid, hist)] if hybrid else [])


def build_rankers(data: PreparedData, hist: dict[str, list[dict]], progress: bool,
                  ref_ts: dict[str, float] | None = None, sasrec_minutes: float = 15.0,
                  bpr_minutes: float = 5.0, seed: int = 0) -> list[Ranker]:
    """The baselines, all fitted on the train split only. The ID baselines (SASRec, BPR-MF)
    early-stop on the valid targets with train histories, within a wall-clock budget each (0
    minutes skips one), seeded by seed; recent popularity counts train engagements before each
    user's target time. Cold items (data.cold_items) are never counted, trained on or given an ID row."""
    ids = list(data.items)
    hist_ids = {u: [e["item_id"] for e in ev] for u, ev in hist.items()}
    cold = data.cold_items  # never counted by popularity / co-occurrence
    rankers: list[Ranker] = [Popularity(ids, data.train, cold),
                             DecayedPopularity(ids, data.train, ref_ts=ref_ts, cold=cold),
                             CoOccurrence(ids, data.train, hist_ids, cold),
                             ContentSimilarity(ids, data.items, hist_ids)]
    if sasrec_minutes > 0:
        from model.evaluation.sasrec_baseline import SASRecRanker
        from model.ids.sasrec import SASRecOptions

        sasrec = SASRecRanker(ids, hist_ids, data.cold_items, SASRecOptions(max_minutes=sasrec_minutes, seed=seed))
        rankers.append(sasrec.fit(data, progress))
    if bpr_minutes > 0:
        from model.evaluation.bpr import BPROptions, BPRRanker

        bpr = BPRRanker(ids, data.cold_items, BPROptions(max_minutes=bpr_minutes, seed=seed))
        rankers.append(bpr.fit(data.train, data.valid, progress))
    return rankers


def evaluate(data_dir: str | Path, checkpoint: str | Path | None, split: str = "test",
             max_users: int | None = None, device: str | None = None, progress: bool = True,
             baselines: bool = True, sasrec_minutes: float = 15.0, bpr_minutes: float = 5.0,
             id_baselines: bool = True, mode: str = "fp32", seed: int = 0) -> dict[str, Any]:
    """All models on one split: {"models": {name: metrics}, "data": {...}, "checkpoint": {...},
    "training": {name: facts} for the models trained here or carried by the checkpoint, and,
    when the data has cold items and split is test, "cold": {name: metrics} over the test users
    whose target is a cold item}. id_baselines=False (or a 0-minute budget) skips SASRec/BPR.
    mode: the checkpoint's numerics (model/numerics.py; fp32 is exact). seed: the ID baselines'
    seed, stored as "seed" (a per-seed run pairs it with the checkpoint trained with that seed)."""
    if split not in ("test", "valid"):
        raise DataDirError(f"unknown split {split!r} (test or valid)")
    data = load_prepared(data_dir)
    inf = EmbSumInference.from_checkpoint(checkpoint, device, mode) if checkpoint else None
    hist = split_history(data, split)
    imps = select_impressions(data, split, max_users)
    users = list(dict.fromkeys(r["user_id"] for r in imps))
    targets = split_targets(data, split)
    users_full = [u for u in users if u in targets]
    result: dict[str, Any] = {"models": {}, "seed": seed}
    ref_ts = {r["user_id"]: float(r["ts"]) for r in imps}  # the held-out engagement's time
    rankers = model_rankers(data, hist, inf, load_id_half(checkpoint) if checkpoint else None, progress)
    if baselines or inf is None:
        rankers += build_rankers(data, hist, progress, ref_ts, sasrec_minutes if id_baselines else 0,
                                 bpr_minutes if id_baselines else 0, seed)
    result["elapsed_s"] = {}
    cold_users = [u for u in users_full if targets[u] & data.cold_items] if split == "test" else []
    for r in rankers:
        t0 = time.time()
        result["models"][r.name] = impression_eval(r, imps)
        with_intervals(result, r.name, full_ranking_per_user(r, users_full, targets, hist, list(data.items)))
        if cold_users:  # the cold-item slice: test users whose target no model trained on
            result.setdefault("cold", {})[r.name] = full_ranking_eval(r, cold_users, targets, hist, list(data.items))
        if getattr(r, "facts", None):
            result.setdefault("training", {})[r.name] = r.facts
        result["elapsed_s"][r.name] = round(time.time() - t0, 1)
    result["cold_users"] = len(cold_users)
    result["cold_user_ids"] = cold_users  # a subset of per_user_ids: the slice's per-user values
    result["per_user_ids"] = users_full  # the order of every per_user list
    result["data"] = {"dir": str(data_dir), "split": split, "impressions": len(imps), "users": len(users),
                      "full_ranking_users": len(users_full), "items": len(data.items), "meta": data.meta}
    result["checkpoint"] = ({"path": str(checkpoint), "config": inf.config.to_dict(), "metadata": inf.metadata,
                             "inference": inf.mode}
                            if inf else None)
    return result


def print_table(result: dict[str, Any]) -> None:
    """A rich table: one row per model, one column per metric."""
    from rich.console import Console
    from rich.table import Table

    metrics = list(next(iter(result["models"].values()), {}))
    d = result["data"]
    table = Table(title=f"{d['split']}: {d['impressions']} impressions, {d['users']} users, {d['items']} items")
    table.add_column("model")
    for m in metrics:
        table.add_column(m, justify="right")
    for name, vals in result["models"].items():
        table.add_row(name, *[f"{vals[m]:.4f}" for m in metrics])
    console = Console()
    console.width = max(console.width, 140)  # keep metric names readable when piped
    console.print(table)
