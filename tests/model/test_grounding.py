"""Grounded decoding: a summary's tokens come from the user's history or the template, and every
run of history words is a span of the history (two titles cannot be spliced into a third)."""

from __future__ import annotations

import numpy as np
import torch

from model.config import tiny_t5_config
from model.grounding import GroundedMasks, Grounding, SpanWalker
from model.inference import EmbSumInference
from tests.model.conftest import small_config

TEMPLATE = np.array([1, 2, 3, 4], np.int32)  # "(" ")" "," "and"
# "star trek ( 1979 )", "star wars ( 1977 )", "war games ( 1983 )"
HISTORY = [[10, 11, 1, 50, 2], [10, 12, 1, 51, 2], [13, 14, 1, 52, 2]]


def test_a_run_continues_only_as_the_history_does_and_a_template_token_closes_it():
    g = Grounding.of(HISTORY, TEMPLATE)
    assert set(g.ids.tolist()) == {1, 2, 3, 4, 10, 11, 12, 13, 14, 50, 51, 52}
    w = SpanWalker(g)
    assert w.continuations() is None  # nothing open: any history word may start
    w.advance(10)  # "star"
    assert set(w.continuations().tolist()) == {11, 12}  # "trek" or "wars", never "games"
    w.advance(12)
    assert set(w.continuations().tolist()) == {1}
    w.advance(1)  # "(" continues the span (it follows "wars" in the history) ...
    assert set(w.continuations().tolist()) == {51}  # ... so only 1977 may follow, not 1979
    w.advance(51)
    w.advance(2)
    w.advance(3)  # "," does not continue "star wars ( 1977 )": the run closes
    assert w.continuations() is None
    w.advance(13)
    assert set(w.continuations().tolist()) == {14}


def test_the_mask_forbids_a_splice_the_ids_alone_allow():
    g = Grounding.of(HISTORY, TEMPLATE)
    masks = GroundedMasks([g], vocab=60, eos_id=0, device="cpu")
    assert masks.mask()[0, 14]  # nothing open: "games" may start a run
    masks.advance(torch.tensor([10]), torch.tensor([False]))  # "star"
    m = masks.mask()[0]
    assert m[11] and m[12] and not m[14] and not m[13]  # "star games": both ids allowed, the span not
    assert m[0] and m[3] and not m[50]  # EOS and the template stay open
    masks.advance(torch.tensor([3]), torch.tensor([False]))  # ","
    assert masks.mask()[0, 14]


def test_grounded_generation_keeps_every_pair_of_history_words_a_pair_of_the_history():
    torch.manual_seed(0)
    inf = EmbSumInference.pretrained(small_config(backbone="t5", t5_config=tiny_t5_config(),
                                                  summary_max_tokens=40), device="cpu")
    rng = np.random.default_rng(0)
    template = np.array([5], np.int32)  # one template token: a random decoder would emit little else
    histories = [[rng.integers(100, 400, size=12).tolist() for _ in range(3)] for _ in range(4)]
    groundings = [Grounding.of(h, template) for h in histories]
    enc, mask = torch.randn(4, 10, inf.dim), torch.ones(4, 10, dtype=torch.bool)

    def word_pairs(rows) -> tuple[int, int]:
        """(adjacent history words, those never adjacent in the user's history)."""
        n = bad = 0
        for row, h in zip(rows, histories, strict=True):
            pairs = {(a, b) for text in h for a, b in zip(text, text[1:], strict=False)}
            adjacent = [(a, b) for a, b in zip(row, row[1:], strict=False) if a not in template and b not in template]
            n, bad = n + len(adjacent), bad + sum(p not in pairs for p in adjacent)
        return n, bad

    by_ids, _ = inf.model.generate(enc, mask, allowed=[g.ids for g in groundings])
    assert word_pairs(by_ids)[1] > 20  # the id rule alone lets a random decoder splice: the span rule has work
    grounded, _ = inf.model.generate(enc, mask, allowed=groundings)
    n, bad = word_pairs(grounded)
    assert n >= 1 and bad == 0  # runs of history words were written, each a span of the history
    for row, g in zip(grounded, groundings, strict=True):
        assert set(row) <= set(g.ids.tolist())
