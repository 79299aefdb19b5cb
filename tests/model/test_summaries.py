"""Summary targets from facts of the user's history, grounded generation, grounding metrics."""

from __future__ import annotations

import torch

from model.config import tiny_t5_config
from model.evaluation.summary_quality import TitleFinder, grounding
from model.inference import EmbSumInference
from model.summaries import FallbackSummarizer
from tests.model.conftest import small_config


def _movie(title: str, *genres: str) -> dict:
    return {"title": title, "genres": list(genres), "category": genres[0]}


OLDER = [_movie(f"Old Drama {k} (1994)", "Drama") for k in range(8)]
RECENT = [_movie("Heat (1995)", "Action", "Crime"), _movie("Casablanca (1942)", "Romance", "War"),
          _movie("Speed (1994)", "Action")]


def test_the_fallback_states_facts_of_the_history_only():
    s = FallbackSummarizer().summarize(OLDER + RECENT)
    assert s == FallbackSummarizer().summarize(OLDER + RECENT)  # deterministic: a training target
    assert s.startswith("Lately: Speed (1994), Casablanca (1942) and Heat (1995).")  # newest first
    assert "Their taste moved from Drama to Action." in s
    assert "Titles from the 1990s, the oldest from 1942." in s
    finder = TitleFinder([it["title"] for it in OLDER + RECENT] + ["Fargo (1996)", "Toy Story (1995)"])
    assert finder.named(s) == {"Speed (1994)", "Casablanca (1942)", "Heat (1995)"}  # all from the history


def test_a_steady_taste_is_said_with_its_share_and_text_items_get_their_first_title():
    items = [{"title": f"Story {k}", "category": "news|sports"} for k in range(10)]
    s = FallbackSummarizer().summarize(items)
    assert "Mostly news as before; news is 100% of their 10 items." in s and s.endswith("The first was Story 0.")
    assert FallbackSummarizer().summarize([]) == "This user has no history yet."


def test_grounding_counts_invented_titles_and_the_last_sessions_genre():
    finder = TitleFinder(["Heat (1995)", "Fargo (1996)", "Up (2009)"])  # "Up": too short to find
    out = grounding(["lately : heat ( 1995 ) and fargo ( 1996 ). mostly crime.", "lately: heat (1995).",
                     "lately: heat (1995)."],
                    [{"Heat (1995)"}, {"Heat (1995)"}, {"Heat (1995)"}], [{"Crime"}, {"Drama"}, {"Drama"}], finder)
    assert out["titles_named"] == 4 and out["named_titles_in_history_share"] == 3 / 4  # Fargo invented
    assert out["distinct_share"] == 2 / 3 and out["last_session_genre_share"] == 1 / 3


def test_grounded_generation_uses_only_the_allowed_tokens():
    torch.manual_seed(0)
    inf = EmbSumInference.pretrained(small_config(backbone="t5", t5_config=tiny_t5_config(),
                                                  summary_max_tokens=24), device="cpu")
    enc, mask = torch.randn(3, 10, inf.dim), torch.ones(3, 10, dtype=torch.bool)
    free, _ = inf.model.generate(enc, mask)
    allowed = [{5, 6, 7, 8}, {9, 10, 11}, {12, 13, 14, 15, 16}]
    assert any(set(row) - allowed[u] for u, row in enumerate(free))  # the constraint has work to do
    grounded, _ = inf.model.generate(enc, mask, allowed=allowed)
    for u, row in enumerate(grounded):
        assert row and set(row) <= allowed[u], row


def test_grounding_ids_hold_the_users_history_and_the_template(minilm_inf):
    ids = [set(a.tolist()) for a in minilm_inf.grounding_ids([["Heat. Crime | Fargo. Crime"], []])]
    tok = minilm_inf.tokenizer
    heat = tok("heat fargo", add_special_tokens=False)["input_ids"]
    lately = tok("lately moved", add_special_tokens=False)["input_ids"]
    assert set(heat) <= ids[0] and not set(heat) <= ids[1] and set(lately) <= ids[0] & ids[1]
