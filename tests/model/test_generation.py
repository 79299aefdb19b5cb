"""Greedy summaries stop at EOS and never repeat a trigram (no_repeat_ngram)."""

from __future__ import annotations

import torch

from model.config import tiny_t5_config
from model.embsum import ban_repeated_ngrams
from model.inference import EmbSumInference
from tests.model.conftest import small_config


def test_a_token_that_would_repeat_a_trigram_is_banned():
    logits = torch.zeros(2, 10)
    generated = torch.tensor([[1, 2, 3, 1, 2], [4, 5, 6, 7, 8]])
    ban_repeated_ngrams(logits, generated, 3)
    assert logits[0, 3] == float("-inf")  # 1 2 -> 3 was said already
    assert torch.isfinite(logits[0, [0, 1, 2, 4, 5]]).all()
    assert torch.isfinite(logits[1]).all()  # no repeated prefix in row 1


def test_generated_summaries_have_no_repeated_trigram():
    torch.manual_seed(0)
    inf = EmbSumInference.pretrained(small_config(backbone="t5", t5_config=tiny_t5_config(),
                                                  summary_max_tokens=40), device="cpu")
    enc = torch.randn(4, 12, inf.dim)
    mask = torch.ones(4, 12, dtype=torch.bool)
    toks, glob = inf.model.generate(enc, mask)
    assert glob.shape[0] == 4
    for row in toks:
        grams = [tuple(row[i:i + 3]) for i in range(len(row) - 2)]
        assert len(grams) == len(set(grams)), row


def test_without_the_ban_an_untrained_decoder_does_repeat():
    """The ban is what removes the loops (a test that could not fail would prove nothing)."""
    torch.manual_seed(0)
    inf = EmbSumInference.pretrained(small_config(backbone="t5", t5_config=tiny_t5_config(),
                                                  summary_max_tokens=40, no_repeat_ngram=0),
                                     device="cpu")
    toks, _ = inf.model.generate(torch.randn(4, 12, inf.dim), torch.ones(4, 12, dtype=torch.bool))
    repeats = sum(len(r) - 2 - len({tuple(r[i:i + 3]) for i in range(len(r) - 2)}) for r in toks)
    assert repeats > 0


def test_summary_targets_keep_whole_sentences_within_the_budget(minilm_inf):
    import torch

    from model.batching import fit_sentences, summary_targets

    tok = minilm_inf.tokenizer
    text = ("The user mostly engages with drama and comedy. Recent favourites include Heat, Fargo "
            "and Casino. About 40% of the 60 items are drama.")
    whole = tok(text, add_special_tokens=False)["input_ids"]
    two = tok(text.rsplit(" About", 1)[0], add_special_tokens=False)["input_ids"]
    assert fit_sentences(tok, text, len(whole)) == whole
    assert fit_sentences(tok, text, len(whole) - 1) == two  # the third sentence does not fit: dropped
    assert tok.decode(fit_sentences(tok, text, len(two))).endswith("casino.")
    assert fit_sentences(tok, text, 4) == whole[:4]  # even the first sentence is too long: cut
    dec = summary_targets(tok, [text], len(two) + 2, 1, 2, torch.device("cpu"))
    labels = dec["labels"][0][dec["labels"][0] != -100].tolist()
    assert labels == [*two, 2]  # ends with EOS right after a full stop
