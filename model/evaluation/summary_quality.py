"""Is a generated summary readable? Length, EOS, repeated 3-grams, distinct-2 (issue 14)."""

from __future__ import annotations

from collections.abc import Sequence

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
