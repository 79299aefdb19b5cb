"""The engine with a hybrid checkpoint's ID half: exact hybrid scores, ID-side candidates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.ids.hybrid import Fusion
from model.ids.sasrec import SASRec, SASRecOptions
from store import EarlierItems, IdMemory, IdMemoryConfig, IdRow, SeenItems
from store.memory_backend import MemoryKV
from streams.engine.id_half import IdHalf


def make_id_half(item_ids: list[str], rowless: set[str], prior: float = -1.0) -> IdHalf:
    torch.manual_seed(0)
    tower = SASRec([i for i in item_ids if i not in rowless], SASRecOptions(dim=8, max_len=10)).eval()
    fusion = Fusion(8)
    with torch.no_grad():
        fusion.log_scale.fill_(1.5)
        fusion.prior_q.fill_(prior)
    rows, present = tower.item_rows(item_ids)
    memory = IdMemory(MemoryKV(), IdMemoryConfig(dim=8, ttl_s=0))
    ids = [i for i, p in zip(item_ids, present, strict=True) if p]
    memory.put_rows(ids, [IdRow(rows[k].copy(), np.zeros(8, np.float32)) for k, p in enumerate(present) if p])
    return IdHalf(memory, tower, fusion.eval())


def dense_table(half: IdHalf) -> tuple[list[str], np.ndarray]:
    """The exact oracle of the ID side: (sorted ids, g_i e_i) of every row, read from the memory."""
    ids = sorted(half.memory.ids())
    return ids, half.gated(ids)[0]


def _scores(result) -> dict[str, float]:
    return {x["item_id"]: x["score"] for x in result.recommendation["items"]}


@pytest.mark.parametrize("prior", [-1.0, 0.9])
def test_hybrid_scores_are_content_plus_the_id_term(engine_factory, catalogue, events, prior):
    ids = [it["item_id"] for it in catalogue]
    rowless = set(ids[::3])
    half = make_id_half(ids, rowless, prior)
    content = engine_factory(top_k=30, candidates=30)
    hybrid = engine_factory(top_k=30, candidates=30)
    hybrid.id_half = half
    user = events[0]["user_id"]
    mine = [e for e in events if e["user_id"] == user]
    for e in mine[:-1]:
        content.process_one(e)
        hybrid.process_one(e)
    c, h = _scores(content.process_one(mine[-1])), _scores(hybrid.process_one(mine[-1]))
    assert set(c) == set(h) and len(h) > 10
    history = [e["item_id"] for e in mine]
    users = half.user_vectors([history[-hybrid.config.max_history:]])
    for item in h:
        term = half.terms(users, [[item]])[0][0]
        if item in rowless:  # a row's term may be 0 too: the user's quantile item under a prior
            assert term == 0.0
        assert abs(h[item] - (c[item] + term)) < 1e-4
    # the prior: every present item's term less the user's quantile over all rows, as offline
    rows, present = half.tower.item_rows(ids)
    u, r = torch.from_numpy(users), torch.from_numpy(rows)
    with torch.no_grad():
        ref = half.fusion.reference(u, r[torch.from_numpy(present)])
        want = half.fusion.id_term(u, r, torch.from_numpy(present), ref)[0].numpy()
    assert (ref is None) == (prior < 0)
    np.testing.assert_allclose(half.terms(users, [ids])[0], want, rtol=1e-5, atol=1e-5)


def test_id_term_brings_its_own_candidates(engine_factory, catalogue, events):
    ids = [it["item_id"] for it in catalogue]
    content = engine_factory(top_k=10, candidates=2)
    hybrid = engine_factory(top_k=10, candidates=2)
    hybrid.id_half = make_id_half(ids, set())
    for e in events[:5]:
        c, h = content.process_one(e), hybrid.process_one(e)
    assert len(_scores(c)) <= 2 < len(_scores(h)) <= 4


def test_id_retrieval_and_terms_of_a_batch_equal_each_users_alone(catalogue):
    ids = [it["item_id"] for it in catalogue]
    half = make_id_half(ids, set(ids[::4]), prior=0.9)
    users = half.user_vectors([ids[:3], ids[5:9], ids[2:3]])
    seen = [set(ids[:3]), set(ids[5:30]), set()]
    table_ids, gated = dense_table(half)
    for u, got in enumerate(half.retrieve(users, 6, seen)):  # index against a full stable sort
        s = users[u] @ gated.T
        want = [table_ids[j] for j in np.argsort(-s, kind="stable") if table_ids[j] not in seen[u]][:6]
        assert got == want
    cands = [ids[:5], ids[3:12], []]
    batch = half.terms(users, cands)
    for u, c in enumerate(cands):
        np.testing.assert_allclose(batch[u], half.terms(users[u:u + 1], [c])[0], rtol=1e-6, atol=1e-6)
    assert [len(b) for b in batch] == [5, 9, 0]


def test_id_retrieval_excludes_earlier_items_by_fingerprint(catalogue):
    ids = [it["item_id"] for it in catalogue]
    half = make_id_half(ids, set(ids[::4]))
    users = half.user_vectors([ids[:3], ids[5:9]])
    exact = [set(ids[:3]) | set(ids[5:30]), set(ids[:2])]
    seen = [SeenItems(frozenset(ids[:3]), EarlierItems.of(ids[5:30])),
            SeenItems(frozenset(ids[:2]), EarlierItems())]
    assert [[i in s for i in ids] for s in seen] == [[i in s for i in ids] for s in exact]  # no collision here
    assert half.retrieve(users, 6, seen) == half.retrieve(users, 6, exact)


def test_from_checkpoint_loads_rows_into_the_memory(tmp_path, catalogue):
    from model.checkpoint import save_hybrid

    ids = [it["item_id"] for it in catalogue]
    half = make_id_half(ids, {ids[0]})
    rows, present = half.tower.item_rows(ids)
    tensors = {**{f"tower.{k}": v for k, v in half.tower.state_dict().items()},
               **{f"fusion.{k}": v for k, v in half.fusion.state_dict().items()},
               "id_rows": torch.from_numpy(rows), "id_accumulators": torch.zeros_like(torch.from_numpy(rows))}
    save_hybrid(tmp_path, tensors, {"tower": half.tower.options_dict(), "item_ids": ids,
                                    "present": [i for i, p in zip(ids, present, strict=True) if p]})
    loaded = IdHalf.from_checkpoint(tmp_path)
    assert len(loaded.memory) == len(ids) - 1 and ids[0] not in loaded.memory
    got, ok = loaded.memory.lookup(ids[1:4])
    assert ok.all() and np.array_equal(got, rows[1:4])
    assert IdHalf.from_checkpoint(tmp_path / "content-only") is None
    # a checkpoint from before the prior loads with none
    del tensors["fusion.prior_q"]
    save_hybrid(tmp_path / "old", tensors, {"tower": half.tower.options_dict(), "item_ids": ids,
                                            "present": [i for i, p in zip(ids, present, strict=True) if p]})
    assert float(IdHalf.from_checkpoint(tmp_path / "old").fusion.prior_q) < 0
