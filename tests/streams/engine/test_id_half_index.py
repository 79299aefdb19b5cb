"""The ID half at any row count: candidates from an index over g_i e_i and r_u from a row sample,
both following changed rows in place, against the dense exact computation over every row."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.ids.hybrid import Fusion
from model.ids.sasrec import SASRec, SASRecOptions
from store import (
    EarlierItems,
    FetchBound,
    IdMemory,
    IdMemoryConfig,
    IdRow,
    SeenItems,
    encode_row,
    row_key,
)
from store.memory_backend import MemoryKV
from streams.engine.config import IdIndexConfig
from streams.engine.id_half import IdHalf
from streams.engine.parameters import apply_parameters
from tests.streams.engine.test_engine_hybrid import dense_table

DIM = 8


def random_half(n: int, prior: float = 0.9, config: IdIndexConfig | None = None, seed: int = 0,
                memory_config: IdMemoryConfig | None = None) -> IdHalf:
    """n random rows i0..i{n-1} (ids sort apart from their numbers: order is not assumed)."""
    rng = np.random.default_rng(seed)
    memory = IdMemory(MemoryKV(), memory_config or IdMemoryConfig(dim=DIM, ttl_s=0))
    rows = rng.standard_normal((n, DIM)).astype(np.float32)
    memory.put_rows([f"i{k}" for k in range(n)], [IdRow(r, np.zeros(DIM, np.float32)) for r in rows])
    torch.manual_seed(seed)
    fusion = Fusion(DIM)
    with torch.no_grad():
        fusion.gate.weight.normal_()  # gates that differ per row
        fusion.prior_q.fill_(prior)
    return IdHalf(memory, SASRec([], SASRecOptions(dim=DIM, max_len=10)).eval(), fusion.eval(), config)


def dense_retrieve(half: IdHalf, users: np.ndarray, k: int, seen) -> list[list[str]]:
    """The exact ID-side top-k over every row (full stable sort), seen items dropped."""
    ids, gated = dense_table(half)
    return [[ids[j] for j in np.argsort(-(u @ gated.T), kind="stable") if ids[j] not in s][:k]
            for u, s in zip(users, seen, strict=True)]


def dense_reference(half: IdHalf, users: np.ndarray) -> np.ndarray:
    _, gated = dense_table(half)
    return half.fusion.reference_of_terms(torch.from_numpy(users @ gated.T)).numpy()


def _put(item_id: str, vector: np.ndarray, version: int) -> tuple[bytes, bytes]:
    row = IdRow(vector.astype(np.float32), np.ones(DIM, np.float32), 1.0, 1, version)
    return row_key("item", item_id), encode_row("item", item_id, row)


def _sync(n_rows: int, rng: np.random.Generator, version: int) -> list[tuple[bytes, bytes | None]]:
    """A parameters chunk: changed rows, new rows and tombstones."""
    changed = [_put(f"i{k}", rng.standard_normal(DIM), version) for k in rng.choice(n_rows, 40, replace=False)]
    new = [_put(f"n{version}-{k}", rng.standard_normal(DIM), version) for k in range(15)]
    gone = [(row_key("item", f"i{k}"), None) for k in rng.choice(n_rows, 25, replace=False)]
    return [*changed, *new, *gone]


@pytest.mark.parametrize("ivf", [False, True])
def test_index_retrieval_equals_the_dense_exact_one(ivf):
    # IVF probing every list is exhaustive, so both layouts must agree with the oracle exactly
    cfg = IdIndexConfig(exact_threshold=100 if ivf else 50_000, nprobe=10_000)
    half = random_half(400, config=cfg)
    assert half.index().mode == ("ivf" if ivf else "flat")
    users = np.random.default_rng(1).standard_normal((4, DIM)).astype(np.float32)
    ids = [f"i{k}" for k in range(400)]
    seen = [set(ids[:30]), SeenItems(frozenset(ids[:5]), EarlierItems.of(ids[100:160])), set(), set(ids[::2])]
    want = dense_retrieve(half, users, 20, seen)
    assert half.retrieve(users, 20, seen) == want
    # bounded: 20 x 4 fetched first, then one pass of at most 512 for a user left short
    assert half.retrieve(users, 20, seen, bound=FetchBound(factor=4, limit=512)) == want


@pytest.mark.parametrize("ivf", [False, True])
def test_incremental_row_updates_equal_a_rebuild(ivf):
    cfg = IdIndexConfig(exact_threshold=100 if ivf else 50_000, nprobe=10_000, reference_sample=10_000)
    half = random_half(300, config=cfg)
    index = half.index()
    users = np.random.default_rng(2).standard_normal((3, DIM)).astype(np.float32)
    half.references(users)  # the sample is drawn now and must follow the syncs too
    rng = np.random.default_rng(3)
    for version in range(1, 4):
        out = apply_parameters(half, _sync(300, rng, version))
        assert {o.outcome for o in out} <= {"applied", "deleted", "absent"}
    assert half.index() is index  # updated in place, never rebuilt
    rebuilt = IdHalf(half.memory, half.tower, half.fusion, cfg)  # built from the rows as they are
    seen = [set(), {"i1", "i2", "n2-3"}, set()]
    assert half.retrieve(users, 25, seen) == rebuilt.retrieve(users, 25, seen)
    assert half.retrieve(users, 25, seen) == dense_retrieve(half, users, 25, seen)
    assert len(index) == len(half.memory)
    np.testing.assert_array_equal(half.references(users).numpy(), rebuilt.references(users).numpy())


def test_sampled_reference_is_exact_up_to_the_sample_size():
    half = random_half(500, config=IdIndexConfig(reference_sample=500))
    users = np.random.default_rng(4).standard_normal((5, DIM)).astype(np.float32)
    np.testing.assert_array_equal(half.references(users).numpy(), dense_reference(half, users))
    # deleting rows keeps it exact: the sample still holds every row
    apply_parameters(half, [(row_key("item", f"i{k}"), None) for k in range(0, 500, 7)])
    np.testing.assert_array_equal(half.references(users).numpy(), dense_reference(half, users))


def test_sampled_reference_is_within_the_stated_rank_error():
    n, q = 512, 0.9
    half = random_half(6000, prior=q, config=IdIndexConfig(reference_sample=n))
    users = np.random.default_rng(5).standard_normal((40, DIM)).astype(np.float32)
    tolerance = 4 * math.sqrt(q * (1 - q) / n)  # 4 standard deviations of the sample quantile's rank

    def ranks() -> np.ndarray:
        _, gated = dense_table(half)
        terms = users @ gated.T
        return (terms <= half.references(users).numpy()).mean(axis=1)

    got = ranks()
    assert len(half.sample()) == n and np.abs(got - q).max() <= tolerance
    assert not np.allclose(half.references(users).numpy(), dense_reference(half, users))  # sampled
    # syncs that delete most sampled rows: the sample refills and stays within the error
    sampled = half.sample().matrix()[0]
    apply_parameters(half, [(row_key("item", i), None) for i in sampled[: n // 2]])
    got = ranks()
    assert len(half.sample()) == n and np.abs(got - q).max() <= tolerance


def test_a_partial_row_sample_follows_syncs_as_every_row_judged_afresh():
    """A sample of 64 of 300+ rows through syncs of changed, new, deleted and re-created rows (a
    row twice in one slice too): its members are exactly the rows at or under its threshold,
    each with its row's gated vector now, whether a row was known before or not."""
    from store.row_sample import priority

    cfg = IdIndexConfig(reference_sample=64, seed=3)
    half = random_half(300, config=cfg)
    half.references(np.zeros((1, DIM), np.float32))  # the sample is drawn and its matrix cached
    rng = np.random.default_rng(4)
    for version in range(1, 5):
        records = _sync(300, rng, version)
        again = records[0][0].decode().split("/", 1)[1]
        records += [_put(again, rng.standard_normal(DIM), version), records[-1],
                    _put(records[-1][0].decode().split("/", 1)[1], rng.standard_normal(DIM), version)]
        apply_parameters(half, records)
        sample = half.sample()
        members, vectors = sample.matrix()
        assert members == sorted(i for i in half.memory.ids() if priority(cfg.seed, i) <= sample.threshold)
        np.testing.assert_allclose(vectors, half.gated(members)[0], rtol=1e-6)


@pytest.mark.parametrize("ivf", [False, True])
def test_random_syncs_follow_the_version_rule_record_by_record(ivf):
    """Slices of random syncs (rows at newer, equal and older versions, new rows, tombstones,
    rows deleted and created again) into a worker's memory (versions held, a small cache): each
    record's outcome is the rule's, applied record by record to what is stored, and the index
    and rows end as the last accepted rows say."""
    cfg = IdIndexConfig(exact_threshold=100 if ivf else 50_000, nprobe=10_000)
    held = IdMemoryConfig(dim=DIM, ttl_s=0, versions_held=True, cache_rows=16)
    half = random_half(300, config=cfg, memory_config=held)
    half.index(), half.sample()  # both follow the syncs from here
    rng = np.random.default_rng(5)
    stored = {f"i{k}": (0, None) for k in range(300)}  # the rule's model: id -> (version, vector)
    for _ in range(25):
        records, want = [], []
        tombstones = rng.random() < 0.4  # else a slice of distinct rows: apply_parameters' usual path
        picks = rng.choice(340, 30, replace=bool(tombstones))
        for k in picks.tolist():
            item_id = f"i{k}"
            if tombstones and rng.random() < 0.3:
                records.append((row_key("item", item_id), None))
                want.append("deleted" if stored.pop(item_id, None) is not None else "absent")
                continue
            version = max(0, stored.get(item_id, (3, None))[0] + int(rng.integers(-2, 3)))
            vector = rng.standard_normal(DIM).astype(np.float32)
            row = IdRow(vector, np.zeros(DIM, np.float32), 1.0, 1, version)
            records.append((row_key("item", item_id), encode_row("item", item_id, row, served=True)))
            fresh = item_id not in stored or version >= stored[item_id][0]
            if fresh:
                stored[item_id] = (version, vector)
            want.append("applied" if fresh else "stale")
        assert [o.outcome for o in apply_parameters(half, records)] == want
    assert sorted(half.memory.ids()) == sorted(stored) and len(half.index()) == len(stored)
    for item_id, (_, vector) in stored.items():
        if vector is not None:
            np.testing.assert_array_equal(half.memory.get_row(item_id).vector, vector.astype(np.float32))
    users = np.random.default_rng(6).standard_normal((3, DIM)).astype(np.float32)
    assert half.retrieve(users, 25, [set()] * 3) == dense_retrieve(half, users, 25, [set()] * 3)
    rebuilt = IdHalf(half.memory, half.tower, half.fusion, cfg)  # its sample drawn from the rows as they are
    # the same members and rows; their gates computed in batches of other shapes may differ in
    # the last bit on CPUs whose matmul kernels depend on the shape (seen without AVX-512)
    np.testing.assert_allclose(half.references(users).numpy(), rebuilt.references(users).numpy(), rtol=1e-6)
