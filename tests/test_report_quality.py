"""bench/report_quality.py: target verdicts and the generated README section come from the JSON."""

from __future__ import annotations

import json

import numpy as np

from tests.fixtures.bench_scripts import load_bench_script

rq = load_bench_script("report_quality")

METRICS = ("auc", "mrr", "ndcg@5", "ndcg@10", "full_recall@10", "full_recall@50", "full_ndcg@10", "full_ndcg@50")


def _test_result(embsum_auc: float, embsum_ndcg: float) -> dict:
    models = {"embsum": dict.fromkeys(METRICS, 0.5) | {"auc": embsum_auc, "full_ndcg@10": embsum_ndcg},
              "cooccurrence": dict.fromkeys(METRICS, 0.5) | {"auc": 0.81, "full_ndcg@10": 0.055}}
    return {"models": models,
            "data": {"split": "test", "impressions": 3, "users": 3, "items": 10, "full_ranking_users": 3,
                     "dir": "d", "meta": {"counts": {"users": 3}}},
            "checkpoint": {"path": "ck", "config": {}, "metadata": {"step": 7, "options": {}}}}


def _per_user(res: dict, name: str, metric: str, mean: float, users: int = 400, seed: int = 0) -> None:
    """Per-user values of one model: a shared per-user base (as real users share difficulty)
    plus the model's offset, so `mean` sets the model's mean exactly."""
    base = np.random.default_rng(seed).uniform(-0.2, 0.2, users)
    vals = mean + base - base.mean()
    res.setdefault("per_user", {}).setdefault(name, {})[metric] = vals.tolist()
    res["models"][name][metric] = mean


def _hits(recall: float, judged: int = 1500) -> dict[str, int]:
    """Per-judgment hits with the given recall; judgments are spread evenly, so two policies'
    hits nest (a higher recall hits where a lower one does, and more)."""
    return {f"u{j}|{j}.0|i{j}": int((j * 0.618034) % 1 < recall) for j in range(judged)}


def _online(realtime: float, stale: float, frozen: float, held_out: bool, hits: bool = False) -> dict:
    pol = {n: {"recall@10": r, "ndcg@10": r / 2, "judged": 5, "warm_users_recall@10": r,
               "warm_users_ndcg@10": r / 2, "warm_users_judged": 4, "replay_s": 1.0}
           | ({"hits": _hits(r)} if hits else {})
           for n, r in (("realtime", realtime), ("stale", stale), ("frozen", frozen))}
    proto = {"k": 10, "holdout_events": 9, "replayed_events": 6, "max_per_user": 2, "cutoff_utc": "a",
             "end_utc": "b", "held_out_days": 1, "users": 2, "warm_users": 1, "held_out_by_split": {},
             "exclusion": "e", "retrieval": "r", "stale_refresh": "s", "candidates": 100}
    return {"protocol": proto, "policies": pol, "data": "d",
            "checkpoint": {"path": "ck", "period_held_out_from_training": held_out}}


def test_target_verdicts_follow_the_intervals():
    res = _test_result(0.82, 0.050)
    _per_user(res, "embsum", "full_ndcg@10", 0.050)
    _per_user(res, "cooccurrence", "full_ndcg@10", 0.055)
    lines = rq.targets(res, [("main", _online(0.15, 0.10, 0.11, False, hits=True)),
                             ("held", _online(0.10, 0.12, 0.09, True, hits=True)),
                             ("old", _online(0.15, 0.10, 0.11, False))])
    assert "nDCG@10 (full): **missed**" in lines[0] and "cooccurrence below -0.0050" in lines[0]
    assert "AUC: **not claimed" in lines[1]  # AUC point values only: no interval, no claim
    assert "(main): **met**" in lines[2] and "stale above +0.05" in lines[2] and "over 1500 judgments" in lines[2]
    assert "(held): **missed**" in lines[3] and "stale below -0.0" in lines[3]
    assert "(old): **not claimed: no per-judgment hits, so no interval**" in lines[4]  # point values only


def test_a_realtime_margin_inside_the_noise_is_on_par():
    online = _online(0.15, 0.10, 0.11, False, hits=True)
    online["policies"]["stale"]["hits"] = dict(online["policies"]["realtime"]["hits"])
    first = next(k for k, v in online["policies"]["stale"]["hits"].items() if v)
    online["policies"]["stale"]["hits"][first] = 0  # one judgment apart: not a margin
    claim = rq.realtime_claim(online)
    assert claim.startswith("**on par**") and "stale on par" in claim and "frozen above" in claim


def test_a_margin_inside_the_noise_is_written_on_par():
    res = _test_result(0.82, 0.050)
    for name, mean, seed in (("embsum", 0.21, 1), ("cooccurrence", 0.2036, 2)):  # independent users' noise
        _per_user(res, name, "full_ndcg@10", mean, users=943, seed=seed)
    line = rq.targets(res, [])[0]
    assert "**on par** (embsum 0.2100; cooccurrence on par +0.0064 [" in line


def test_build_writes_the_readme_section(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    test = _test_result(0.82, 0.06)
    _per_user(test, "embsum", "full_ndcg@10", 0.06)
    _per_user(test, "cooccurrence", "full_ndcg@10", 0.055)
    (res / "quality_test.json").write_text(json.dumps(test))
    (res / "online_policies_heldout.json").write_text(json.dumps(_online(0.15, 0.10, 0.11, True)))
    readme = tmp_path / "README.md"
    readme.write_text("# top\n")
    assert rq.main(["--results", str(res), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# top\n") and rq.START in text and rq.END in text
    assert "nDCG@10 (full): **met**" in text and "make quality-online-heldout" in text
    assert "never trained on an engagement of the period" in text
    assert (res / "online_policies.png").stat().st_size > 0


def test_hybrid_targets_and_section_come_from_the_json(tmp_path):
    res = _test_result(0.8, 0.05)
    res["models"]["hybrid"] = dict.fromkeys(METRICS, 0.6) | {"full_recall@10": 0.19, "full_ndcg@10": 0.08,
                                                              "auc": 0.9}
    for name, mean in (("hybrid", 0.08), ("embsum", 0.05), ("cooccurrence", 0.055)):
        _per_user(res, name, "full_ndcg@10", mean)
    lines = rq.hybrid_targets(res)
    assert "**met** (0.1900)" in lines[0]
    assert "**missed** (0.0800)" in lines[1]  # nDCG@10 below 0.09
    assert "**not claimed" in lines[2] and "not beaten: embsum 0.5000" in lines[2]  # no per-user R@10
    assert "**met** (hybrid 0.0800)" in lines[3]  # above 0.05 and 0.055, every pair's interval above 0
    assert "**not claimed" in lines[4] and "point values only)" in lines[4]  # AUC above, but no interval
    res["cold"] = {"hybrid": {"full_recall@10": 0.1, "full_ndcg@10": 0.05}}
    res["cold_users"] = 30
    (tmp_path / "quality_test_hybrid.json").write_text(json.dumps(res))
    body = rq.build(tmp_path, {"test": "t", "valid": "v", "ablation": "a"})
    assert "Hybrid (EmbSum content + ID memory)" in body and "Cold-item slice: 30 test users" in body


def _seed_run(seed: int, hybrid: float, sasrec: float, users: int = 900) -> dict:
    """One seed's evaluation JSON: per-user 0/1 hits (R@10) and nDCG of the hybrid and SASRec;
    every seed scores the same users, whose difficulty both models share."""
    easy = np.random.default_rng(7).uniform(0, 1, users)
    rng = np.random.default_rng(seed)
    per = {}
    for name, p in (("hybrid", hybrid), ("sasrec", sasrec)):
        hits = (0.5 * easy + 0.5 * rng.uniform(0, 1, users) < p).astype(float)
        per[name] = {"full_recall@10": hits.tolist(), "full_ndcg@10": (hits * 0.5).tolist()}
    return {"seed": seed, "per_user": per, "per_user_ids": list(range(users)),
            "models": {n: {m: float(np.mean(v)) for m, v in ms.items()} for n, ms in per.items()},
            "checkpoint": {"path": f"ck{seed}", "metadata": {"elapsed_s": 2400.0, "options": {"seed": seed}}},
            "training": {"hybrid": {"elapsed_s": 900.0}}}


def test_seed_section_writes_above_on_par_and_the_margin_target(tmp_path):
    from model.evaluation.seeds import merge_seeds

    clear = rq.seeds_section(merge_seeds([_seed_run(s, 0.30, 0.20) for s in (0, 1, 2)]))
    assert "- hybrid vs sasrec on test R@10 (full): **above** (difference +0.09" in "\n".join(clear)
    assert any(ln.startswith("- Hybrid test R@10 >= 1.10 x SASRec's, its paired interval above 0: **met**")
               for ln in clear)
    row = next(ln for ln in clear if ln.startswith("| hybrid |"))
    assert row.count("[") == 2 and row.count(", ") >= 4  # two intervals, three per-seed means
    assert "- seed 1: checkpoint `ck1` (trained with seed 1); content 40.0 min, hybrid 15.0 min" in clear
    null = "\n".join(rq.seeds_section(merge_seeds([_seed_run(s, 0.20, 0.20) for s in (0, 1, 2)])))
    assert "R@10 (full): **on par** (difference" in null and "nDCG@10 (full): **on par**" in null
    assert "paired interval above 0: **missed**" in null
    two = "\n".join(rq.seeds_section(merge_seeds([_seed_run(s, 0.30, 0.20) for s in (0, 1)])))
    assert "**not claimed: 2 seed(s), the target needs >= 3**" in two and "**above**" in two
    (tmp_path / "quality_seeds.json").write_text(json.dumps(merge_seeds([_seed_run(s, 0.3, 0.2) for s in (0, 1, 2)])))
    assert "### Over seeds (0, 1, 2): hybrid vs every model" in rq.build(tmp_path, {"test": "", "valid": "",
                                                                                   "ablation": ""})


def test_summary_section_reads_the_targets_and_a_checkpoints_summaries(tmp_path):
    assert rq.summary_section(tmp_path) == []
    block = {"quality": {"eos_share": 0.97, "repeated_3gram_share": 0.25},
             "grounding": {"distinct_share": 0.5, "named_titles_in_history_share": None,
                           "last_session_genre_share": 0.8125, "titles_named_per_summary": 0.0}}
    (tmp_path / "summary_targets.json").write_text(json.dumps({"users": 3, "targets": block | {
        "summary_max_tokens": 48}}))
    (tmp_path / "summary_quality.json").write_text(json.dumps({"checkpoint": "ck", "grounded": block}))
    md = rq.summary_section(tmp_path)
    rows = [ln for ln in md if ln.startswith("| training targets") or ln.startswith("| `ck`, grounded")]
    assert len(rows) == 2 and "(target 100%)" in md[2] and "(target >= 80%)" in md[2]
    assert all("| 50.0% | n/a | 81.2% | 97.0% | 75.0% | 0.00 |" in r for r in rows)  # no repeat = 1 - share


def test_cold_slice_claims_use_the_slices_own_per_user_values():
    users = [f"u{k}" for k in range(300)]
    cold = users[:120]
    hits = {"hybrid": [int(k % 3 == 0) for k in range(300)],  # 40 of the slice's 120
            # 4 of those missed, 3 others hit: one hit behind over the slice, inside the noise
            "embsum": [int((k % 3 == 0 and k % 30 != 0) or k in (1, 31, 61)) for k in range(300)],
            "sasrec": [0] * 300, "bpr": [int(k == 5) for k in range(300)]}
    res = {"per_user_ids": users, "cold_user_ids": cold,
           "per_user": {n: {"full_recall@10": h, "full_recall@50": h} for n, h in hits.items()},
           "cold": {n: {"full_recall@10": sum(h[:120]) / 120} for n, h in hits.items()}}
    assert rq.cold_values(res, "bpr", "full_recall@10") == [int(k == 5) for k in range(120)]
    par = rq.cold_claim(res, ("embsum",), "full_recall@10")
    assert par.startswith("**on par**") and "embsum on par +0.0083" in par and "120 users" in par
    assert rq.cold_claim(res, ("sasrec", "bpr"), "full_recall@10").startswith("**met**")
    del res["cold_user_ids"]  # a run from before the slice kept its users: no claim
    assert rq.cold_claim(res, ("sasrec",), "full_recall@10").startswith("**not claimed")
