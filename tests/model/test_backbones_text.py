"""Backbones load offline, texts, summaries and the import boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.backbones import packaged_minilm_dir
from model.config import EmbSumConfig
from model.errors import SummaryError
from model.summaries import FallbackSummarizer, make_summarizer
from model.text import item_text, session_text


def test_minilm_loads_packaged_weights_offline(minilm_inf):
    assert (packaged_minilm_dir() / "model.safetensors").exists()
    tok, enc = minilm_inf.tokenizer, minilm_inf.model.backbone.encoder

    def embed(s):
        b = tok([s], return_tensors="pt")
        with torch.no_grad():
            h = enc(**b).last_hidden_state
        return F.normalize(h.mean(1), dim=-1)[0]

    a, b = embed("A man is playing a guitar."), embed("Someone plays the guitar.")
    c = embed("The stock market fell sharply today.")
    assert torch.equal(a, embed("A man is playing a guitar."))
    assert float(a @ b) > float(a @ c) + 0.2
    # decoder warm-started from the same checkpoint (BERT2BERT)
    dec = minilm_inf.model.backbone.decoder
    assert torch.equal(dec.bert.embeddings.word_embeddings.weight, enc.embeddings.word_embeddings.weight)
    assert dec.config.is_decoder and dec.config.add_cross_attention


def test_t5_backbone_runs(t5_inf):
    assert t5_inf.dim == 32
    codes, sums = t5_inf.encode_users([["space rocket | planet"], ["pasta recipe", "bread oven"]])
    assert codes.shape == (2, t5_inf.config.m, 32) and np.isfinite(codes).all()


def test_text_helpers():
    it = {"title": "Heat.", "category": "Crime", "body": ""}
    assert item_text(it) == "Heat. Crime"
    assert session_text([it, {"title": "Fargo"}]) == "Heat. Crime | Fargo"


def test_fallback_summary_is_deterministic_and_informative():
    items = [{"title": f"T{i}", "category": "Space" if i % 3 else "Cooking"} for i in range(6)]
    s = FallbackSummarizer().summarize(items)
    assert s == FallbackSummarizer().summarize(items)
    assert "Space" in s and "T5" in s and s.count(".") >= 3


def test_llm_summarizer_needs_url():
    with pytest.raises(SummaryError, match="llm_url"):
        make_summarizer(EmbSumConfig(summary_source="llm"))


def test_model_never_imports_streams_or_kafka(imported_by):
    # every model module, training, evaluation, inference and checkpoint among them
    bad = imported_by("model") & {"faust", "kafka", "aiokafka", "rocksdict", "store", "streams"}
    assert not bad, sorted(bad)
