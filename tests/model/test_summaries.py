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
    assert s.startswith("Last session: Action, Crime and Romance. "  # default: the last three items
                        "Lately: Speed (1994) and Casablanca (1942).")  # newest first
    assert "Their taste moved from Drama to Action." in s
    assert "Titles from the 1990s, the oldest from 1942." in s
    finder = TitleFinder([it["title"] for it in OLDER + RECENT] + ["Fargo (1996)", "Toy Story (1995)"])
    assert finder.named(s) == {"Speed (1994)", "Casablanca (1942)"}  # all from the history


def test_the_second_latest_title_is_the_latest_of_another_year():
    # two titles of one year would repeat "( 1995 )", a 3-gram generation may not repeat
    recent = [_movie("Casablanca (1942)", "War"), _movie("Heat (1995)", "Crime"), _movie("Babe (1995)", "Comedy")]
    s = FallbackSummarizer().summarize(OLDER + recent)
    assert "Lately: Babe (1995) and Casablanca (1942)." in s
    same = [_movie("Heat (1995)", "Crime"), _movie("Babe (1995)", "Comedy"), _movie("Fargo (1995)", "Crime")]
    assert "Lately: Fargo (1995)." in FallbackSummarizer().summarize(same)  # no other year: one title


def test_the_last_session_names_its_own_genres_most_frequent_first():
    last = [_movie("Speed (1994)", "Action"), _movie("Heat (1995)", "Action", "Crime")]
    s = FallbackSummarizer().summarize(OLDER + RECENT, last_session=last)
    assert "Last session: Action and Crime." in s and "Romance" not in s


def test_every_word_of_a_target_is_a_history_word_or_a_template_word():
    import random
    import re

    from model.summaries import NUMBERS, TEMPLATE

    words = ["Heat", "Fargo", "Casablanca", "Speed", "Alien", "Vertigo", "Psycho", "Jaws", "Ran", "Clue"]
    kinds = ["Action", "Crime", "Drama", "Horror", "Comedy", "Western"]
    catalogue = [_movie(f"{a} {b} ({1930 + 7 * k})", *random.Random(k).sample(kinds, 2))
                 for k, (a, b) in enumerate(zip(words, words[3:] + words[:3], strict=True))]

    def tokens(text: str) -> set[str]:
        return set(re.findall(r"[0-9a-z]+", text.lower()))

    allowed = tokens(TEMPLATE) | set(NUMBERS.split())
    for seed in range(30):
        rng = random.Random(seed)
        history = rng.sample(catalogue, rng.randint(1, len(catalogue)))
        s = FallbackSummarizer().summarize(history, history[-rng.randint(1, len(history)):])
        facts = tokens(" ".join(f"{it['title']} {' '.join(it['genres'])}" for it in history))
        assert tokens(s) <= facts | allowed, (tokens(s) - facts - allowed, s)
        decades = {w for w in tokens(s) if w.endswith("0s")}  # a decade of the history's own years
        assert decades <= {f"{int(y) // 10 * 10}s" for it in history for y in re.findall(r"\((\d{4})\)", it["title"])}
        outside = {it["title"] for it in catalogue} - {it["title"] for it in history}
        assert not TitleFinder(outside).named(s), s  # no title the user never engaged with


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


def test_a_title_inside_a_longer_named_title_is_not_named():
    finder = TitleFinder(["Fear (1996)", "Primal Fear (1996)", "Heat (1995)"])
    assert finder.named("lately : primal fear ( 1996 ) and heat ( 1995 ).") == {"Primal Fear (1996)", "Heat (1995)"}
    assert finder.named("fear (1996), then primal fear (1996)") == {"Fear (1996)", "Primal Fear (1996)"}
    assert finder.named("heat (1995) heat (1995)") == {"Heat (1995)"} and finder.named("preheat (1995)") == set()


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
    ids = [set(g.ids.tolist()) for g in minilm_inf.grounding_ids([["Heat. Crime | Fargo. Crime"], []])]
    tok = minilm_inf.tokenizer
    heat = tok("heat fargo", add_special_tokens=False)["input_ids"]
    lately = tok("lately moved", add_special_tokens=False)["input_ids"]
    assert set(heat) <= ids[0] and not set(heat) <= ids[1] and set(lately) <= ids[0] & ids[1]


def test_grounding_with_the_tokenizer_cannot_splice_two_titles(minilm_inf):
    from model.grounding import SpanWalker

    tok = minilm_inf.tokenizer
    g = minilm_inf.grounding_ids([["Star Trek (1979). Sci-Fi", "War Games (1983). Thriller"]])[0]
    star, games, trek = (tok(w, add_special_tokens=False)["input_ids"][0] for w in ("star", "games", "trek"))
    assert {star, games, trek} <= set(g.ids.tolist())  # each word alone is the user's
    w = SpanWalker(g)
    w.advance(star)
    assert trek in w.continuations() and games not in w.continuations()  # "star games": never
