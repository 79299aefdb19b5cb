"""Results over several seeds: one evaluation JSON per seed (`threadrec evaluate --seed S`) merged
into one results JSON, each model's per-user values averaged over the seeds first.

Averaging per user before the bootstrap keeps the unit of resampling the user (what varies
between test sets), while the seeds' spread shrinks each user's value to what the recipe, not one
draw of it, gives. A recipe variant (e.g. lambda = 0) joins as its own models, paired by seed
(with_variant). Names are fixed (issue 28): `seeds`, per model `full_recall@10` and
`full_ndcg@10` as {mean, ci_low, ci_high}, `hybrid_over_sasrec_recall@10` (ratio of means), and
`diff_hybrid_<model>_recall@10` / `..._ndcg@10` as {mean, ci_low, ci_high} (paired bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from model.errors import ModelError
from model.evaluation.confidence import Interval, bootstrap_interval, paired_difference, verdict

SHORT = {"full_recall@10": "recall@10", "full_ndcg@10": "ndcg@10"}  # the metrics compared by name


class SeedMergeError(ModelError):
    """Per-seed results that cannot be merged (no per-user values, other users, a seed twice)."""


def _ci(iv: Interval) -> dict[str, float | int]:
    return {"mean": iv.mean, "ci_low": iv.lo, "ci_high": iv.hi, "n": iv.n}


def claim(d: dict[str, float]) -> str:
    """'above', 'below' or 'on par' for a {mean, ci_low, ci_high} difference (on par: it holds 0)."""
    return verdict(Interval(d["mean"], d["ci_low"], d["ci_high"], 0))


def _check(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The users every run scored, in order; refuses runs that cannot be paired."""
    if not runs:
        raise SeedMergeError("no per-seed results to merge")
    seeds = [r.get("seed") for r in runs]
    if None in seeds or len(set(seeds)) != len(seeds):
        raise SeedMergeError(f"each run needs its own seed (threadrec evaluate --seed); got {seeds}")
    users = runs[0].get("per_user_ids")
    for r in runs:
        if not r.get("per_user") or r.get("per_user_ids") != users:
            raise SeedMergeError(f"seed {r.get('seed')}: no per-user values, or other users than seed {seeds[0]}'s "
                                 "(evaluate every seed on the same data, split and --max-users)")
    return users


CHECKPOINT_MODELS = ("embsum", "hybrid")  # what a recipe variant changes (the baselines it shares)


def with_variant(runs: Sequence[dict[str, Any]], variant: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Each run with the same seed's variant checkpoint models added as "<model>_<name>" (e.g.
    hybrid_lambda0), so a recipe change is compared over the same seeds and users."""
    by_seed = {v.get("seed"): v for v in variant}
    out = []
    for r in runs:
        v = by_seed.get(r.get("seed"))
        if v is None or v.get("per_user_ids") != r.get("per_user_ids") or not v.get("per_user"):
            raise SeedMergeError(f"variant {name!r}: no run of seed {r.get('seed')} on the same users")
        added = {f"{m}_{name}": v["per_user"][m] for m in CHECKPOINT_MODELS if m in v["per_user"]}
        out.append(r | {"per_user": r["per_user"] | added,
                        "models": r["models"] | {f"{m}_{name}": v["models"][m] for m in CHECKPOINT_MODELS
                                                 if m in v["per_user"]}})
    return out


def seed_means(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """model -> metric -> per-user values averaged over the seeds (models every run scored)."""
    names = [n for n in runs[0]["per_user"] if all(n in r["per_user"] for r in runs)]
    metrics = {n: [m for m in runs[0]["per_user"][n] if all(m in r["per_user"][n] for r in runs)] for n in names}
    return {n: {m: np.mean([np.asarray(r["per_user"][n][m], float) for r in runs], axis=0) for m in metrics[n]}
            for n in names}


def run_facts(run: dict[str, Any], source: str) -> dict[str, Any]:
    """Where a seed's numbers came from and how long its models trained (minutes)."""
    ck = run.get("checkpoint") or {}
    meta, tr = ck.get("metadata") or {}, run.get("training") or {}
    opts = meta.get("options") or {}
    # a seed trained to a time budget and one to that run's step count differ only in pace
    budget = (f"{opts['max_minutes']:g} min" if opts.get("max_minutes") else
              f"{opts['steps']} steps" if opts.get("steps") else None)
    return {"seed": run["seed"], "file": source, "checkpoint": ck.get("path"),
            "train_seed": opts.get("seed"), "content_budget": budget,
            "train_dtype": str(meta.get("train_dtype", "")).removeprefix("torch.") or None,
            "content_minutes": round(meta["elapsed_s"] / 60, 1) if meta.get("elapsed_s") else None,
            **{f"{n}_minutes": round(f.get("elapsed_s", f.get("seconds", 0)) / 60, 1)
               for n, f in tr.items() if isinstance(f, dict) and ("elapsed_s" in f or "seconds" in f)}}


def merge_seeds(runs: Sequence[dict[str, Any]], sources: Sequence[str] | None = None,
                focus: str = "hybrid") -> dict[str, Any]:
    """One results JSON from per-seed evaluation JSONs: per model each metric's mean over users of
    the seed-averaged values with its 95% bootstrap interval; `focus` (the hybrid, else EmbSum)
    against every other model: paired differences and, for SASRec, the ratio of means."""
    users = _check(runs)
    per = seed_means(runs)
    focus = focus if focus in per else "embsum"
    out: dict[str, Any] = {"seeds": [r["seed"] for r in runs], "users": len(users), "focus": focus,
                           "data": runs[0].get("data"),
                           "runs": [run_facts(r, s) for r, s in zip(runs, sources or [""] * len(runs), strict=True)],
                           "models": {n: {m: _ci(bootstrap_interval(v)) for m, v in ms.items()} for n, ms in per.items()}}
    for n, ms in out["models"].items():
        ms["per_seed"] = {m: [float(np.mean(r["per_user"][n][m])) for r in runs] for m in SHORT if m in ms}
    for other in (n for n in per if n != focus and focus in per):
        for metric, short in SHORT.items():
            if metric in per[focus] and metric in per[other]:
                out[f"diff_{focus}_{other}_{short}"] = _ci(paired_difference(per[focus][metric], per[other][metric]))
    if {"hybrid", "sasrec"} <= set(per):
        out["hybrid_over_sasrec_recall@10"] = (float(per["hybrid"]["full_recall@10"].mean())
                                               / max(float(per["sasrec"]["full_recall@10"].mean()), 1e-12))
    return out
