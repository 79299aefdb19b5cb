"""Checkpoint round trip: identical scores, metadata kept, secrets dropped, optimizer restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.checkpoint import load_checkpoint, load_optimizer, save_checkpoint
from model.errors import CheckpointError
from model.inference import EmbSumInference

from .test_inference_parity import HIST, ITEMS


@pytest.mark.parametrize("name", ["minilm_inf", "t5_inf"])
def test_round_trip_identical_scores(name, request, tmp_path):
    inf = request.getfixturevalue(name)
    inf.model.cfg.llm_api_key = "secret"
    try:
        save_checkpoint(tmp_path, inf.model, inf.tokenizer, metadata={"summary_source": "fallback"})
    finally:
        inf.model.cfg.llm_api_key = None
    assert "secret" not in (tmp_path / "config.json").read_text()
    back = EmbSumInference.from_checkpoint(tmp_path, device="cpu")
    assert back.metadata["summary_source"] == "fallback"
    for x in (inf, back):
        ss = x.encode_sessions(HIST)
        sm = x.summarize([ss])
        a = x.user_codes([np.stack([s.embedding for s in ss])], sm[0].embedding[None])
        x._scores = x.score(a, x.encode_items(ITEMS).cpe)
    assert np.array_equal(inf._scores, back._scores)


def test_optimizer_round_trip(tmp_path, t5_inf):
    params = [p for p in t5_inf.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    loss = sum(p.float().pow(2).sum() for p in params[:3])
    loss.backward()
    opt.step()
    opt.zero_grad()
    save_checkpoint(tmp_path, t5_inf.model, t5_inf.tokenizer, optimizer=opt)
    opt2 = torch.optim.AdamW(params, lr=5.0)
    assert load_optimizer(tmp_path, opt2)
    assert opt2.param_groups[0]["lr"] == 1e-3
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_bad_checkpoint_is_clear(tmp_path):
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(CheckpointError, match="invalid JSON"):
        load_checkpoint(tmp_path)
