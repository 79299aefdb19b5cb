"""Two seeds end to end: `threadrec train --seed` (content + ID half), `threadrec evaluate --seed`,
`threadrec merge-seeds`: each seed trains its own models and the merge pairs them over users."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # trains two tiny models


def test_two_seeds_train_evaluate_and_merge(tmp_path):
    from model.checkpoint import load_hybrid
    from model.config import tiny_t5_config
    from model.training.train import TrainOptions, train
    from streams.cli import main
    from streams.data.synthetic import write_prepared_dir
    from tests.model.conftest import small_config

    data = write_prepared_dir(tmp_path / "data", n_users=12, per_user=12)
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    files = []
    for seed in (0, 1):
        content, hyb = tmp_path / f"content{seed}", tmp_path / f"hyb{seed}"
        train(data, content, cfg, TrainOptions(steps=1, batch_size=2, eval_every=0, eval_users=3, seed=seed),
              progress=False)
        assert main(["train", "--data", str(data), "--out", str(hyb), "--content-checkpoint", str(content),
                     "--seed", str(seed), "--sasrec-dim", "8", "--sasrec-max-len", "8", "--sasrec-max-epochs", "3",
                     "--fusion-positions", "2", "--fusion-epochs", "5", "--no-progress"]) == 0
        assert load_hybrid(hyb)[1]["tower"]["options"]["seed"] == seed  # --seed reached the ID half
        files.append(tmp_path / f"test_seed{seed}.json")
        assert main(["evaluate", "--data", str(data), "--checkpoint", str(hyb), "--seed", str(seed),
                     "--sasrec-minutes", "0.05", "--bpr-minutes", "0", "--no-progress",
                     "--json", str(files[-1])]) == 0
    runs = [json.loads(f.read_text()) for f in files]
    assert [r["seed"] for r in runs] == [0, 1]
    rows = [load_hybrid(tmp_path / f"hyb{seed}")[0]["id_rows"] for seed in (0, 1)]
    assert rows[0].shape == rows[1].shape and not rows[0].equal(rows[1])  # each seed trained its own tower
    out_file = tmp_path / "results" / "quality_seeds.json"
    assert main(["merge-seeds", *map(str, files), "--json", str(out_file)]) == 0
    out = json.loads(out_file.read_text())
    assert out["seeds"] == [0, 1] and out["users"] == len(runs[0]["per_user_ids"]) > 0
    for name in ("embsum", "hybrid", "sasrec"):
        d = out["models"][name]["full_recall@10"]
        assert d["ci_low"] <= d["mean"] <= d["ci_high"]
        assert d["mean"] == pytest.approx(sum(r["models"][name]["full_recall@10"] for r in runs) / 2, abs=1e-4)
    assert {"diff_hybrid_sasrec_recall@10", "diff_hybrid_sasrec_ndcg@10", "diff_hybrid_embsum_recall@10",
            "hybrid_over_sasrec_recall@10"} <= set(out)
    assert [r["train_seed"] for r in out["runs"]] == [0, 1]
