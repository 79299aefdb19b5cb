"""Per-seed evaluation JSONs merged into one results JSON: means over seeds, intervals over users."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.evaluation.seeds import SeedMergeError, claim, merge_seeds

USERS = 900


def _run(seed: int, hybrid_p: float, sasrec_p: float, shared: float = 0.5) -> dict:
    """One seed's evaluation: per-user hits at 10 (0/1) and nDCG values of two models; a user's
    difficulty is shared by both (as real users are), the rest is the seed's own draw."""
    easy = np.random.default_rng(99).uniform(0, 1, USERS)  # the same users in every seed
    rng = np.random.default_rng(seed)

    def hits(p: float) -> np.ndarray:
        return (rng.uniform(0, 1, USERS) * (1 - shared) + easy * shared < p).astype(float)

    per = {}
    for name, p in (("hybrid", hybrid_p), ("sasrec", sasrec_p)):
        h = hits(p)
        per[name] = {"full_recall@10": h.tolist(), "full_ndcg@10": (h * rng.uniform(0.3, 1, USERS)).tolist()}
    models = {n: {m: float(np.mean(v)) for m, v in ms.items()} for n, ms in per.items()}
    return {"seed": seed, "models": models, "per_user": per, "per_user_ids": [f"u{k}" for k in range(USERS)],
            "checkpoint": {"path": f"ck-{seed}", "metadata": {"elapsed_s": 600.0, "train_dtype": "torch.float32",
                                                                 "options": {"seed": seed, "steps": 587,
                                                                             "max_minutes": 40.0 if seed else None}}},
            "training": {"sasrec": {"seconds": 120.0}}}


def test_a_clear_margin_is_above_with_the_fixed_names():
    runs = [_run(s, 0.30, 0.20) for s in (0, 1, 2)]
    out = merge_seeds(runs)
    assert out["seeds"] == [0, 1, 2] and out["users"] == USERS
    for name in ("hybrid", "sasrec"):
        for metric in ("full_recall@10", "full_ndcg@10"):
            d = out["models"][name][metric]
            assert d["ci_low"] < d["mean"] < d["ci_high"]
            assert d["mean"] == pytest.approx(np.mean([np.mean(r["per_user"][name][metric]) for r in runs]))
    h, s = out["models"]["hybrid"]["full_recall@10"]["mean"], out["models"]["sasrec"]["full_recall@10"]["mean"]
    assert out["hybrid_over_sasrec_recall@10"] == pytest.approx(h / s) and out["hybrid_over_sasrec_recall@10"] > 1.3
    for key in ("diff_hybrid_sasrec_recall@10", "diff_hybrid_sasrec_ndcg@10"):
        assert out[key]["ci_low"] > 0 and claim(out[key]) == "above", out[key]
    assert out["models"]["hybrid"]["per_seed"]["full_recall@10"] == [r["models"]["hybrid"]["full_recall@10"]
                                                                     for r in runs]
    assert [(r["seed"], r["train_seed"], r["content_minutes"], r["sasrec_minutes"]) for r in out["runs"]] == \
        [(0, 0, 10.0, 2.0), (1, 1, 10.0, 2.0), (2, 2, 10.0, 2.0)]
    # how each seed was bounded (a time budget wins over the step count it stops short of) and its dtype
    assert [(r["content_budget"], r["train_dtype"]) for r in out["runs"]] == \
        [("587 steps", "float32"), ("40 min", "float32"), ("40 min", "float32")]


def test_a_null_margin_is_on_par_and_a_reversed_one_below():
    null = merge_seeds([_run(s, 0.20, 0.20) for s in (0, 1, 2)])
    d = null["diff_hybrid_sasrec_recall@10"]
    assert d["ci_low"] < 0 < d["ci_high"] and claim(d) == "on par"
    assert claim(merge_seeds([_run(s, 0.15, 0.25) for s in (0, 1, 2)])["diff_hybrid_sasrec_recall@10"]) == "below"


def test_averaging_over_seeds_narrows_the_interval_of_seed_noise():
    one = merge_seeds([_run(0, 0.22, 0.20, shared=0.0)])["diff_hybrid_sasrec_recall@10"]
    five = merge_seeds([_run(s, 0.22, 0.20, shared=0.0) for s in range(5)])["diff_hybrid_sasrec_recall@10"]
    assert five["ci_high"] - five["ci_low"] < 0.6 * (one["ci_high"] - one["ci_low"])


def test_runs_that_cannot_be_paired_are_refused():
    a, b = _run(0, 0.3, 0.2), _run(1, 0.3, 0.2)
    with pytest.raises(SeedMergeError, match="own seed"):
        merge_seeds([a, _run(0, 0.3, 0.2)])
    b["per_user_ids"] = b["per_user_ids"][::-1]
    with pytest.raises(SeedMergeError, match="other users"):
        merge_seeds([a, b])
    with pytest.raises(SeedMergeError, match="per-user"):
        merge_seeds([a, {k: v for k, v in _run(2, 0.3, 0.2).items() if k != "per_user"}])


def test_the_command_writes_the_results_json(tmp_path, capsys):
    from streams.cli import main

    files = []
    for s in (3, 4):
        files.append(tmp_path / f"seed{s}.json")
        files[-1].write_text(json.dumps(_run(s, 0.30, 0.20)))
    assert main(["merge-seeds", *map(str, files), "--json", str(tmp_path / "out" / "seeds.json")]) == 0
    out = json.loads((tmp_path / "out" / "seeds.json").read_text())
    assert out["seeds"] == [3, 4] and [r["file"] for r in out["runs"]] == [str(f) for f in files]
    printed = capsys.readouterr().out
    assert f"diff_hybrid_sasrec_recall@10: {out['diff_hybrid_sasrec_recall@10']['mean']:+.4f}" in printed
    assert "] above" in printed
    assert main(["merge-seeds", str(files[0]), str(files[0]), "--json", str(tmp_path / "x.json")]) == 1


def test_a_recipe_variant_joins_by_seed_and_is_compared_over_the_same_users(tmp_path):
    from model.evaluation.seeds import with_variant
    from streams.cli import main

    runs = [_run(s, 0.30, 0.20) for s in (0, 1, 2)]
    variant = [_run(s + 10, 0.22, 0.20) | {"seed": s} for s in (2, 0, 1)]  # lambda 0: other draws, any order
    merged = merge_seeds(with_variant(runs, variant, "lambda0"))
    assert "hybrid_lambda0" in merged["models"] and "sasrec_lambda0" not in merged["models"]
    assert merged["models"]["hybrid_lambda0"]["full_recall@10"]["mean"] == pytest.approx(
        np.mean([np.mean(v["per_user"]["hybrid"]["full_recall@10"]) for v in variant]))
    assert claim(merged["diff_hybrid_hybrid_lambda0_recall@10"]) == "above"
    with pytest.raises(SeedMergeError, match="seed 2"):
        with_variant(runs, variant[1:], "lambda0")
    files = []
    for k, r in enumerate([*runs, *variant]):
        files.append(tmp_path / f"{k}.json")
        files[-1].write_text(json.dumps(r))
    out = tmp_path / "seeds.json"
    assert main(["merge-seeds", *map(str, files[:3]), "--variant-name", "lambda0", "--variant-runs",
                 *map(str, files[3:]), "--json", str(out)]) == 0
    assert "diff_hybrid_hybrid_lambda0_ndcg@10" in json.loads(out.read_text())
    assert main(["merge-seeds", *map(str, files[:3]), "--variant-name", "x", "--json", str(out)]) == 1
