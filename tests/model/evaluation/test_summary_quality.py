"""Summary readability metrics on hand-made token rows."""

from __future__ import annotations

from model.evaluation.summary_quality import distinct_n, has_repeated_ngram, summary_quality


def test_repeated_trigram_detection():
    assert has_repeated_ngram([1, 2, 3, 4, 1, 2, 3])
    assert not has_repeated_ngram([1, 2, 3, 1, 2, 4])
    assert not has_repeated_ngram([1, 2])


def test_distinct_two_pools_across_rows():
    assert distinct_n([[1, 2, 3], [1, 2, 3]], 2) == 0.5  # (1,2),(2,3) twice: 2 of 4 distinct
    assert distinct_n([[1, 2], [3, 4]], 2) == 1.0
    assert distinct_n([[1]], 2) == 0.0


def test_quality_counts_rows_shorter_than_the_bound_as_ended():
    q = summary_quality([[1, 2, 3], [5, 6, 5, 6, 5, 6], [7, 8]], max_new_tokens=6)
    assert q["summaries"] == 3
    assert q["eos_share"] == 2 / 3  # the 6-token row hit the bound without EOS
    assert q["repeated_3gram_share"] == 1 / 3
    assert q["mean_tokens"] == 11 / 3
