"""Metric functions against hand-computed values and sklearn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from model.evaluation.metrics import (
    NextEngagement,
    auc,
    full_ranking_metrics,
    impression_metrics,
    mrr,
    ndcg_at_k,
)


def test_hand_computed_impression():
    labels, scores = [0, 1, 0, 1, 0], [0.9, 0.8, 0.1, 0.3, 0.2]
    # ranking: 0.9(0) 0.8(1) 0.3(1) 0.2(0) 0.1(0): positives at ranks 2 and 3
    assert mrr(labels, scores) == pytest.approx((1 / 2 + 1 / 3) / 2)
    dcg = 1 / np.log2(3) + 1 / np.log2(4)
    idcg = 1 + 1 / np.log2(3)
    assert ndcg_at_k(labels, scores, 5) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(labels, scores, 2) == pytest.approx((1 / np.log2(3)) / idcg)
    assert auc(labels, scores) == pytest.approx(4 / 6)  # 4 of 6 (pos, neg) pairs ordered
    m = impression_metrics([(labels, scores), ([1, 0], [1.0, 0.0])])
    assert m["auc"] == pytest.approx((4 / 6 + 1) / 2)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=30))
def test_auc_matches_sklearn_with_ties(pairs):
    y, s = zip(*pairs, strict=True)
    if len(set(y)) < 2:
        assert np.isnan(auc(y, s))
    else:
        assert auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_full_ranking_excludes_seen():
    scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    m = full_ranking_metrics(scores, positives=[2], excluded=[0, 1], ks=(1, 3))
    assert m["recall@1"] == 1.0 and m["ndcg@1"] == 1.0
    m = full_ranking_metrics(scores, positives=[3], excluded=[], ks=(1, 3))
    assert m["recall@1"] == 0.0 and m["recall@3"] == 0.0
    m = full_ranking_metrics(scores, positives=[2], excluded=[], ks=(3,))
    assert m["ndcg@3"] == pytest.approx(1 / np.log2(4))


def test_next_engagement_hand_computed():
    judge = NextEngagement(k=2)
    assert judge.result() == {"recall@2": 0.0, "ndcg@2": 0.0, "judged": 0}
    assert judge.add(["a", "b", "c"], "a") == 1.0
    assert judge.add(["a", "b", "c"], "b") == pytest.approx(1 / np.log2(3))
    assert judge.add(["a", "b", "c"], "c") == 0.0  # outside the top 2
    r = judge.result()
    assert r["judged"] == 3 and r["recall@2"] == pytest.approx(2 / 3)
    assert r["ndcg@2"] == pytest.approx((1 + 1 / np.log2(3)) / 3)
