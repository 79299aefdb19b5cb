"""bench/report_quality.py: target verdicts and the generated README section come from the JSON."""

from __future__ import annotations

import json

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


def _online(realtime: float, stale: float, frozen: float, held_out: bool) -> dict:
    pol = {n: {"recall@10": r, "ndcg@10": r / 2, "judged": 5, "warm_users_recall@10": r,
               "warm_users_ndcg@10": r / 2, "warm_users_judged": 4, "replay_s": 1.0}
           for n, r in (("realtime", realtime), ("stale", stale), ("frozen", frozen))}
    proto = {"k": 10, "holdout_events": 9, "replayed_events": 6, "max_per_user": 2, "cutoff_utc": "a",
             "end_utc": "b", "held_out_days": 1, "users": 2, "warm_users": 1, "held_out_by_split": {},
             "exclusion": "e", "retrieval": "r", "stale_refresh": "s", "candidates": 100}
    return {"protocol": proto, "policies": pol, "data": "d",
            "checkpoint": {"path": "ck", "period_held_out_from_training": held_out}}


def test_target_verdicts_follow_the_numbers():
    lines = rq.targets(_test_result(0.82, 0.050), [("main", _online(0.15, 0.10, 0.11, False)),
                                                   ("held", _online(0.10, 0.12, 0.09, True))])
    assert "nDCG@10 (full): **missed**" in lines[0] and "cooccurrence 0.0550" in lines[0]
    assert "AUC: **met**" in lines[1]
    assert "(main): **met**" in lines[2] and "(held): **missed**" in lines[3]


def test_build_writes_the_readme_section(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "quality_test.json").write_text(json.dumps(_test_result(0.82, 0.06)))
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
    lines = rq.hybrid_targets(res)
    assert "**met** (0.1900)" in lines[0]
    assert "**missed** (0.0800)" in lines[1]  # nDCG@10 below 0.09
    assert "not beaten: embsum 0.5000" in lines[2]  # the others hold R@10 0.5
    assert "**met** (hybrid 0.0800)" in lines[3]  # above 0.05 and 0.055
    assert "**met** (hybrid 0.9000)" in lines[4]  # AUC above 0.8 and 0.81
    res["cold"] = {"hybrid": {"full_recall@10": 0.1, "full_ndcg@10": 0.05}}
    res["cold_users"] = 30
    (tmp_path / "quality_test_hybrid.json").write_text(json.dumps(res))
    body = rq.build(tmp_path, {"test": "t", "valid": "v", "ablation": "a"})
    assert "Hybrid (EmbSum content + ID memory)" in body and "Cold-item slice: 30 test users" in body
