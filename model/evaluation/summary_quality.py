"""Is a generated summary readable (length, EOS, repeated 3-grams, distinct-2), and does it say
something true about its user (distinct across users, names only titles of the user's history)?"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np


def has_repeated_ngram(tokens: Sequence[int], n: int = 3) -> bool:
    """True when some n-gram occurs twice in tokens."""
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(grams) != len(set(grams))


def distinct_n(rows: Sequence[Sequence[int]], n: int = 2) -> float:
    """Distinct n-grams over all n-grams, pooled across rows (diversity across users)."""
    grams = [tuple(r[i:i + n]) for r in rows for i in range(len(r) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def summary_quality(rows: Sequence[Sequence[int]], max_new_tokens: int) -> dict[str, float]:
    """Metrics over generated token rows (EOS stripped). Generation runs max_new_tokens steps and a
    row keeps only the tokens before its EOS, so a row shorter than that ended with EOS."""
    if not rows:
        return {"summaries": 0}
    return {"summaries": len(rows),
            "mean_tokens": float(np.mean([len(r) for r in rows])),
            "eos_share": float(np.mean([len(r) < max_new_tokens for r in rows])),
            "repeated_3gram_share": float(np.mean([has_repeated_ngram(r, 3) for r in rows])),
            "distinct_2": distinct_n(rows, 2)}


def _norm(text: str) -> str:
    """Lower case, words only: decoded summaries of an uncased tokenizer space out punctuation."""
    return " " + re.sub(r"[^0-9a-z]+", " ", text.lower()).strip() + " "


class TitleFinder:
    """Finds the catalogue titles a summary names (titles under `min_chars` letters are skipped:
    too short to tell a title from an ordinary word). A title found only inside a longer one named
    at the same place ("Fear (1996)" in "Primal Fear (1996)") is not counted: it was not named."""

    def __init__(self, titles: Iterable[str], min_chars: int = 6):
        self.titles = {n: t for t in titles if len(n := _norm(t)) - 2 >= min_chars}

    def named(self, text: str) -> set[str]:
        t = _norm(text)
        spans = [(m.start(), m.start() + len(n), title) for n, title in self.titles.items()
                 for m in re.finditer(re.escape(n[:-1]) + "(?= )", t)]  # overlapping: the spaces are shared
        return {title for a, b, title in spans
                if not any(a2 <= a and b <= b2 and (a2, b2) != (a, b) for a2, b2, _ in spans)}


def grounding(summaries: Sequence[str], history_titles: Sequence[set[str]], last_genres: Sequence[set[str]],
              finder: TitleFinder) -> dict[str, float | int | None]:
    """Do summaries say something about their user? distinct share, titles named per summary, the
    share of named titles that are in the user's history (1.0 = no invented title), and the share
    of summaries naming a genre of the user's last session."""
    named = [finder.named(s) for s in summaries]
    total = sum(len(n) for n in named)
    inside = sum(len(n & h) for n, h in zip(named, history_titles, strict=True))
    genre_hit = [any(_norm(g) in _norm(s) for g in gs) for s, gs in zip(summaries, last_genres, strict=True)]
    return {"users": len(summaries), "distinct_share": len(set(summaries)) / max(len(summaries), 1),
            "titles_named": total, "titles_named_per_summary": total / max(len(summaries), 1),
            "named_titles_in_history_share": inside / total if total else None,
            "last_session_genre_share": float(np.mean(genre_hit)) if genre_hit else None}
