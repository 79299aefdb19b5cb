"""Loss decreases on a small subset; train() writes a resumable checkpoint; evaluate() runs."""

from __future__ import annotations

import random

import pytest
import torch

from model.config import tiny_t5_config
from model.dataset import histories, load_prepared
from model.evaluation.evaluate import evaluate
from model.examples import NegativeSampler, build_examples
from model.sessions import SessionRule, sessionize
from model.summaries import FallbackSummarizer
from model.training.train import BatchBuilder, TrainOptions, make_optimizer, train
from streams.data.synthetic import write_prepared_dir
from tests.model.conftest import small_config

pytestmark = pytest.mark.slow  # every test here trains a model


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_prepared_dir(tmp_path_factory.mktemp("prepared"))


def test_sessionize_by_gap_and_size():
    ev = [{"item_id": str(i), "ts": t} for i, t in enumerate([0, 10, 5000, 5010, 5020])]
    pairs = [(e["item_id"], e["ts"]) for e in ev]
    assert sessionize(pairs, SessionRule(100, 10, 8, 60)) == [["0", "1"], ["2", "3", "4"]]
    assert sessionize(pairs, SessionRule(100, 2, 8, 60)) == [["0", "1"], ["2", "3"], ["4"]]


def test_loss_decreases_on_fixed_subset(data_dir, t5_inf):
    from model.backbones import build_backbone
    from model.embsum import EmbSum

    torch.manual_seed(0)  # tiny T5: the same loss path as MiniLM at a fraction of the CPU time
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    model = EmbSum(cfg, build_backbone(cfg, t5_inf.tokenizer))
    data = load_prepared(data_dir)
    ev = histories(data.train)
    exs = random.Random(0).sample(build_examples(ev, cfg), 4)
    bb = BatchBuilder(data, cfg, t5_inf.tokenizer, FallbackSummarizer(), NegativeSampler(list(data.items), ev), torch.device("cpu"))
    batch = bb(exs, model.backbone.start_id, model.backbone.eos_id)
    opt, _ = make_optimizer(model, TrainOptions(lr=2e-3, head_lr_mult=1.0, warmup=0.0, steps=10))
    losses = []
    model.train()
    for _ in range(10):
        res = model(batch)
        opt.zero_grad()
        res["loss"].backward()
        opt.step()
        losses.append(float(res["loss"].detach()))
    assert losses[-1] < 0.6 * losses[0], losses


def test_train_resume_and_evaluate(data_dir, tmp_path):
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    out = tmp_path / "ckpt"
    st = train(data_dir, out, cfg, TrainOptions(steps=3, batch_size=2, eval_every=2, eval_users=3), progress=False)
    assert len(st["losses"]) == 3 and [v["step"] for v in st["valid"]] == [2, 3]
    assert (out / "model.safetensors").exists() and (out / "optimizer.safetensors").exists()
    st2 = train(data_dir, out, cfg, TrainOptions(steps=5, batch_size=2, eval_every=0, eval_users=3),
                resume=True, progress=False)
    assert len(st2["losses"]) == 2  # continued from step 3
    import json  # the curve survives the resume and gains the resumed run's final validation
    curve = json.loads((out / "validations.json").read_text())["validations"]
    assert [v["step"] for v in curve] == [2, 3, 5] and all("loss" in v and "auc" in v for v in curve)
    assert [v["best_so_far"] for v in curve][0] is True
    res = evaluate(data_dir, out, split="test", max_users=4, progress=False, sasrec_minutes=0.05,
                   bpr_minutes=0.02)
    assert set(res["models"]) == {"embsum", "popularity", "recent_popularity", "cooccurrence", "content_minilm",
                                  "sasrec", "bpr"}
    assert res["checkpoint"]["metadata"]["summary_source"] == "fallback"
    for m in res["models"].values():
        assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["full_recall@10"] <= 1.0


def test_time_budget_best_checkpoint_and_log_lines(data_dir, tmp_path, capsys):
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    out = tmp_path / "ckpt"
    # a budget far below one step: the run stops after its first step, validates and saves
    st = train(data_dir, out, cfg, TrainOptions(steps=1000, batch_size=2, eval_every=0, eval_users=3,
                                                max_minutes=1e-4), progress=False)
    assert st["step"] == 1 and [v["step"] for v in st["valid"]] == [1]
    assert (out / "model.safetensors").exists() and (out / "best" / "model.safetensors").exists()
    from model.checkpoint import read_checkpoint_config
    meta = read_checkpoint_config(out)["metadata"]
    assert meta["stopped_by_time"] and meta["best_step"] == 1
    assert "full_ndcg@10" in meta["valid"]
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("[train] step")]
    assert len(lines) == 1 and "valid auc" in lines[0]


def test_one_chunk_history_mode(data_dir, tmp_path):
    from model.examples import history_chunks

    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=3, history_mode="one_chunk")
    assert history_chunks([["a", "b"], ["c"]], cfg) == [["a", "b", "c"]]
    assert history_chunks([["a", "b"], ["c"]], cfg.replace(history_mode="sessions")) == [["a", "b"], ["c"]]
    assert cfg.history_token_limit() == 3 * cfg.max_session_tokens
    st = train(data_dir, tmp_path / "oc", cfg, TrainOptions(steps=2, batch_size=2, eval_every=0, eval_users=3),
               progress=False)
    assert len(st["losses"]) == 2
    res = evaluate(data_dir, tmp_path / "oc", split="valid", max_users=3, progress=False, sasrec_minutes=0,
                   bpr_minutes=0)
    assert res["checkpoint"]["config"]["history_mode"] == "one_chunk"


def test_sample_by_user_draws_distinct_users(data_dir):
    from model.training.train import _drawer

    data = load_prepared(data_dir)
    exs = build_examples(histories(data.train), small_config())
    draw = _drawer(exs, TrainOptions(batch_size=4, sample_by="user"))
    batch = draw(random.Random(0))
    assert len(batch) == 4 and len({e.user_id for e in batch}) == 4


def test_precision_resolution():
    from model.precision import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    assert resolve_precision("auto", torch.device("cuda")) in (torch.bfloat16, torch.float16)
    with pytest.raises(ValueError, match="CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp8", cpu)


def test_bf16_training_keeps_float32_weights(data_dir, tmp_path):
    from model.checkpoint import read_checkpoint_config

    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    st = train(data_dir, tmp_path / "bf", cfg, TrainOptions(steps=2, batch_size=2, eval_every=0, eval_users=3,
                                                         precision="bf16"), progress=False)
    assert all(torch.isfinite(torch.tensor(x)) for x in st["losses"])
    ck = read_checkpoint_config(tmp_path / "bf")
    assert ck["metadata"]["train_dtype"] == "torch.bfloat16"
    from model.checkpoint import load_checkpoint
    assert all(p.dtype == torch.float32 for p in load_checkpoint(tmp_path / "bf", "cpu").model.parameters())


def test_holdout_events_trains_only_before_the_period(data_dir, tmp_path):
    from model.checkpoint import read_checkpoint_config
    from model.dataset import event_rows, holdout_cutoff

    data = load_prepared(data_dir)
    rows = event_rows(data)
    n = len(rows) // 3
    cutoff = holdout_cutoff(rows, n)
    assert sum(float(e["ts"]) > cutoff for e in rows) <= n < sum(float(e["ts"]) >= cutoff for e in rows)
    assert holdout_cutoff(rows, len(rows)) == float("-inf") and holdout_cutoff(rows, 0) == float("inf")
    cfg = small_config(backbone="t5", t5_config=tiny_t5_config(), max_sessions=2)
    train(data_dir, tmp_path / "h", cfg, TrainOptions(steps=1, batch_size=2, eval_every=0, eval_users=3,
                                                      holdout_events=n), progress=False)
    meta = read_checkpoint_config(tmp_path / "h")["metadata"]
    full = len(build_examples(histories(data.train), cfg))
    before = [e for e in data.train if float(e["ts"]) <= cutoff]
    assert meta["train_cutoff_ts"] == cutoff and meta["train_examples"] == len(build_examples(histories(before), cfg))
    assert meta["train_examples"] < full


def test_cold_items_are_never_a_training_target(data_dir):
    from model.training.train import _train_examples

    data = load_prepared(data_dir)
    counts: dict[str, int] = {}
    for e in data.train:
        counts[e["item_id"]] = counts.get(e["item_id"], 0) + 1
    cold = sorted(counts, key=counts.get)[-3:]  # the busiest items, so they would be targets
    data.meta = {**data.meta, "cold_items": cold}
    cfg = small_config(max_sessions=2)
    examples, _, _ = _train_examples(data, cfg, TrainOptions(), data_dir)
    assert examples and not {ex.positive for ex in examples} & set(cold)
    assert len(examples) < len(build_examples(histories(data.train), cfg))
