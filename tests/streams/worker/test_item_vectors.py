"""Items encoded once per deployment, without a broker: the items agent's publisher (parse,
validate, encode, publish, dead-letter) and the item-vectors replica's apply (store without
encoding; another model's vectors re-encoded; bad records dead-lettered)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading

import numpy as np
import pytest
import torch

from model.inference import EmbSumInference
from model.training.tiny import tiny_inference
from store import BruteForceIndex, ItemVector, decode_item_vector, encode_item_vector
from streams.data.synthetic import make_items
from streams.engine.engine import Engine
from streams.kafka.messages import source_ref
from streams.worker import runtime as runtime_module
from streams.worker.config import WorkerSettings
from streams.worker.item_publisher import ItemPublisher
from streams.worker.runtime import Runtime


class _Rec:
    def __init__(self, offset: int, key: bytes | None, value: bytes | None,
                 topic: str = "items") -> None:
        self.topic, self.partition, self.offset, self.key, self.value = topic, 0, offset, key, value


def _item_rec(offset: int, item: dict, key: bytes | None = None) -> _Rec:
    return _Rec(offset, key or item["item_id"].encode(), json.dumps(item).encode())


class _Sink:
    """What the publisher sent to item-vectors, and the dead letters."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes | None]] = []
        self.letters: list[tuple[int, str]] = []

    async def send(self, key: bytes, value: bytes | None) -> asyncio.Future:
        self.sent.append((key, value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def dead_letter(self, rec, error: str) -> None:
        self.letters.append((rec.offset, error.split(":")[0]))


def _publish(engine, records: list[_Rec]) -> tuple[_Sink, Runtime]:
    sink, runtime = _Sink(), Runtime(WorkerSettings(), engine)
    asyncio.run(ItemPublisher(runtime, sink.send, sink.dead_letter).handle(records))
    return sink, runtime


def _as_vector_records(sent: list[tuple[bytes, bytes | None]]) -> list[_Rec]:
    return [_Rec(k, key, value, "item-vectors") for k, (key, value) in enumerate(sent)]


def test_the_publisher_encodes_in_one_batch_and_dead_letters_each_bad_item(engine_factory, catalogue):
    engine = engine_factory(items=False)
    real = engine.model.encode_items
    calls: list[int] = []

    def encode(texts):  # an encoder failure nobody listed, on one item only
        calls.append(len(texts))
        if any(catalogue[2]["title"] in t for t in texts):
            raise RuntimeError("tokenizer failed")
        return real(texts)

    engine.model.encode_items = encode
    surrogate = json.dumps({"item_id": "bad", "title": "x"}).replace('"x"', '"\\udc00"').encode()
    records = [_item_rec(0, catalogue[0]), _item_rec(1, catalogue[1]), _item_rec(2, catalogue[2]),
               _item_rec(3, catalogue[3], key=b"another-id"), _Rec(4, b"bad", surrogate),
               _Rec(5, catalogue[0]["item_id"].encode(), None), _Rec(6, None, None),
               _item_rec(7, catalogue[4])]
    try:
        sink, runtime = _publish(engine, records)
    finally:
        engine.model.encode_items = real
    assert sorted(sink.letters) == [(2, "unexpected error"), (3, "key mismatch"), (4, "bad text"),
                                    (6, "missing field")]
    assert runtime.bad_items == 4
    # the good ones in offset order, the tombstone forwarded as a tombstone
    assert [(k.decode(), v is None) for k, v in sink.sent] == [
        (catalogue[0]["item_id"], False), (catalogue[1]["item_id"], False),
        (catalogue[0]["item_id"], True), (catalogue[4]["item_id"], False)]
    assert calls[0] == 4  # one batch first; then one at a time after it failed
    assert engine.stats.items_encoded == 3 and engine.items.offsets() == {}
    assert not any(it["item_id"] in engine.items for it in catalogue)  # publishing stores nothing


def test_a_replica_stores_published_vectors_without_encoding(engine_factory, catalogue):
    encoder = engine_factory(items=False)
    sink, _ = _publish(encoder, [_item_rec(k, it) for k, it in enumerate(catalogue)])
    reader = engine_factory(items=False)
    runtime = Runtime(WorkerSettings(), reader)
    asyncio.run(runtime.apply_item_vectors(0, _as_vector_records(sink.sent)))
    assert reader.stats.items_encoded == 0 and reader.stats.items_upserted == len(catalogue)
    assert reader.items.offsets() == {0: len(catalogue)}
    direct = engine_factory()  # encodes the catalogue itself, as every worker used to
    for it in catalogue:
        assert reader.items.get(it["item_id"]) == direct.items.get(it["item_id"])
    ev = {"user_id": "u", "item_id": catalogue[0]["item_id"], "ts": 1.0e6, "kind": "click"}
    assert reader.process_one(ev).recommendation["items"] == direct.process_one(ev).recommendation["items"]


def test_a_tombstone_removes_the_item_and_bad_vector_records_are_dead_lettered(engine_factory, catalogue):
    encoder = engine_factory(items=False)
    sink, _ = _publish(encoder, [_item_rec(0, catalogue[0]), _item_rec(1, catalogue[1]),
                                 _Rec(2, catalogue[0]["item_id"].encode(), None)])
    good = _as_vector_records(sink.sent)
    corrupt = bytearray(good[1].value)
    corrupt[40] ^= 0xFF
    records = [*good, _Rec(3, b"x", bytes(corrupt), "item-vectors"),
               _Rec(4, b"someone-else", good[1].value, "item-vectors"),
               _Rec(5, b"j", b"{not a vector", "item-vectors")]
    reader = engine_factory(items=False)
    runtime = Runtime(WorkerSettings(), reader)
    letters: list[tuple[int, str]] = []

    async def dead_letter(rec, error: str) -> None:
        letters.append((rec.offset, error.split(":")[0]))

    runtime.dead_letter = dead_letter
    asyncio.run(runtime.apply_item_vectors(0, records))
    assert letters == [(3, "bad item vector"), (4, "key mismatch"), (5, "bad item vector")]
    assert catalogue[0]["item_id"] not in reader.items and catalogue[1]["item_id"] in reader.items
    assert len(reader.index) == 1 and reader.items.offsets() == {0: 6} and runtime.bad_vectors == 3


def test_vectors_of_another_model_are_re_encoded_never_mixed(engine_factory, catalogue, tiny_model):
    other = _another_model()
    assert other.identity != tiny_model.identity
    foreign_engine = Engine.in_memory(other, index=BruteForceIndex(other.dim))  # another checkpoint
    sink, _ = _publish(foreign_engine, [_item_rec(k, it) for k, it in enumerate(catalogue[:5])])
    vec = decode_item_vector(sink.sent[0][1])
    assert vec.encoder.identity == other.identity
    reader = engine_factory(items=False)
    asyncio.run(Runtime(WorkerSettings(), reader).apply_item_vectors(0, _as_vector_records(sink.sent)))
    assert reader.stats.vectors_reencoded == 5 and reader.stats.items_encoded == 5
    direct = engine_factory()
    for it in catalogue[:5]:
        got, want = reader.items.get(it["item_id"]), direct.items.get(it["item_id"])
        assert got == want  # this worker's own vector space, exactly
    assert not np.allclose(reader.items.get(catalogue[0]["item_id"]).vector, vec.item.vector)


def _another_model() -> EmbSumInference:
    """The tiny model with every weight scaled: same shapes, another checkpoint."""
    base = tiny_inference()
    with torch.no_grad():
        for p in base.model.parameters():
            p.mul_(1.5)
    return EmbSumInference(base.model, base.tokenizer, base.device)


@pytest.mark.parametrize("path", ["direct", "published"])
def test_an_item_edit_reaches_sessions_through_either_path(engine_factory, catalogue, path):
    live = engine_factory(items=False)
    live.upsert_items(catalogue)
    clicks = [{"user_id": "u", "item_id": it["item_id"], "ts": 1.0e6 + 60.0 * k, "kind": "click"}
              for k, it in enumerate(catalogue[:4])]
    live.process_engagements(clicks[:3])
    edited = {**catalogue[0], "title": "Pasta Recipes From Mars"}
    if path == "direct":
        live.upsert_items([edited])
    else:  # encoded by another worker of the group, read from item-vectors
        sink, _ = _publish(engine_factory(items=False), [_item_rec(0, edited)])
        asyncio.run(Runtime(WorkerSettings(), live).apply_item_vectors(0, _as_vector_records(sink.sent)))
    before = live.stats.sessions_encoded
    live.process_one(clicks[3])
    assert live.items.get(catalogue[0]["item_id"]).text.startswith("Pasta Recipes From Mars")
    assert live.stats.sessions_encoded > before  # the session holding the edited item re-encoded


def test_published_bytes_are_the_codec_of_the_engines_vectors(engine_factory, catalogue):
    engine = engine_factory(items=False)
    vecs = engine.encode_items(catalogue[:2])
    assert all(isinstance(v, ItemVector) and v.encoder == engine.fingerprint for v in vecs)
    back = decode_item_vector(encode_item_vector(vecs[0]))
    assert back.item == vecs[0].item and back.encoder == vecs[0].encoder
    assert dataclasses.astuple(engine.fingerprint)[1:] == (engine.model.dim, engine.model.config.n)


def test_a_burst_of_vectors_is_applied_in_slices_with_engagement_batches_between(
        engine_factory, catalogue, monkeypatch):
    new = [{**it, "item_id": f"n{k}"} for k, it in enumerate(make_items(200, random.Random(5)))]
    sink, _ = _publish(engine_factory(items=False), [_item_rec(k, it) for k, it in enumerate(new)])
    reader = engine_factory()  # serving the catalogue while a catalogue's worth more arrives
    # a budget no slice fits: after the first (64 records, before any cost is measured) each
    # slice holds the least a slice takes (32), whatever this machine's speed (no rate floor: on
    # a loaded machine, over 1 ms per record, the floor would take the rest in one slice)
    runtime = Runtime(WorkerSettings(param_apply_budget_ms=1e-6, item_apply_min_per_s=0), reader)
    runtime.serving = True  # past catch-up: engagement batches may wait for the lock
    held: list[tuple] = []  # what held the engine lock, in turn
    put, process = reader.put_encoded, reader.process_batch

    def put_encoded(vectors, offsets=None, stored=False):
        n = put(vectors, offsets, stored)
        held.append(("slice", n, reader.items.offsets()[0], stored))
        return n

    def process_batch(*args):
        held.append(("batch",))
        return process(*args)

    reader.put_encoded, reader.process_batch = put_encoded, process_batch
    threads: set[str] = set()
    read = runtime_module.read_item_vector

    def read_item_vector(*args):
        threads.add(threading.current_thread().name)
        return read(*args)

    monkeypatch.setattr(runtime_module, "read_item_vector", read_item_vector)
    clicks = [{"user_id": f"u{k}", "item_id": catalogue[k]["item_id"], "ts": 1.0e6 + k, "kind": "click"}
              for k in range(12)]

    async def main() -> list:
        apply = asyncio.create_task(runtime.apply_item_vectors(0, _as_vector_records(sink.sent)))
        results = []
        for k, ev in enumerate(clicks):
            if apply.done():
                break
            out, _ = await runtime.process([ev], [source_ref("engagements", 0, k, ev["ts"])], {ev["user_id"]: None})
            results += out
            runtime.item_pacer.served(0.01)  # as the agent reports each batch
        await apply
        return results

    results = asyncio.run(main())
    slices = [h for h in held if h[0] == "slice"]
    assert [n for _, n, *_ in slices] == [64, 32, 32, 32, 32, 8] and runtime.item_slices == 6
    assert all(stored for *_, stored in slices)  # written ahead, off the lock: indexed under it
    first, last = held.index(slices[0]), held.index(slices[-1])
    assert ("batch",) in held[first:last]  # engagements served between slices, not after them all
    assert results and all(r.recommendation["items"] for r in results)
    # every slice records the offset past its own last record: a restart resumes at the next one
    assert [off for _, _, off, _ in slices] == list(np.cumsum([n for _, n, *_ in slices]))
    assert all(reader.items.get(it["item_id"]) is not None for it in new) and len(reader.index) == 230
    # never on the event loop, nor on the engine's thread that batches wait for
    assert threads and all(t.startswith("replica-prepare") for t in threads)


def test_a_vector_that_fails_to_store_is_dead_lettered_before_the_offsets_pass_it(engine_factory, catalogue):
    """A kill -9 after the offsets moved past a record that failed to store, and before its dead
    letter was out, would lose it: the slice stops at it until the dead letter is sent."""
    new = [{**it, "item_id": f"n{k}"} for k, it in enumerate(make_items(6, random.Random(3)))]
    sink, _ = _publish(engine_factory(items=False), [_item_rec(k, it) for k, it in enumerate(new)])
    reader = engine_factory(items=False)
    runtime = Runtime(WorkerSettings(), reader)
    put = reader.put_encoded

    def put_encoded(vectors, offsets=None, stored=False):
        if any(v.item.item_id == "n2" for v in vectors):
            raise ValueError("n2 does not store")
        return put(vectors, offsets, stored)

    reader.put_encoded = put_encoded
    seen: list[tuple[int, int]] = []  # (dead-lettered offset, the stored offset at that moment)

    async def dead_letter(rec, error: str) -> None:
        seen.append((rec.offset, reader.items.offsets().get(0, 0)))

    runtime.dead_letter = dead_letter
    records = _as_vector_records(sink.sent)
    asyncio.run(runtime.apply_item_vectors(0, [*records, _Rec(6, b"x", b"{not a vector", "item-vectors")]))
    assert [off for off, _ in seen] == [6, 2] and dict(seen)[2] <= 2  # decode failures first: no offset moved
    assert reader.items.offsets() == {0: 7} and runtime.bad_vectors == 2
    assert [it["item_id"] in reader.items for it in new] == [True, True, False, True, True, True]


def test_an_edit_that_fails_to_index_leaves_the_stored_item_as_it_was(engine_factory, catalogue):
    """Vectors are written ahead of their index upsert: an edit whose upsert fails is dead-lettered
    and its write undone, so the store keeps the version the index was built from."""
    reader = engine_factory(items=False)
    reader.upsert_items(catalogue[:3])
    old = reader.items.get(catalogue[1]["item_id"])
    edits = [{**it, "title": f"Edited {k}"} for k, it in enumerate(catalogue[:3])]
    sink, _ = _publish(engine_factory(items=False), [_item_rec(k, it) for k, it in enumerate(edits)])
    runtime = Runtime(WorkerSettings(), reader)
    upsert = reader.index.upsert

    def failing(ids, vectors):
        if catalogue[1]["item_id"] in ids:
            raise ValueError("the vector does not index")
        return upsert(ids, vectors)

    reader.index.upsert = failing
    letters: list[int] = []

    async def dead_letter(rec, error: str) -> None:
        letters.append(rec.offset)

    runtime.dead_letter = dead_letter
    asyncio.run(runtime.apply_item_vectors(0, _as_vector_records(sink.sent)))
    assert letters == [1] and reader.items.offsets() == {0: 3}
    assert reader.items.get(catalogue[1]["item_id"]) == old  # the undone write: as before the edit
    assert [reader.items.get(it["item_id"]).text.startswith(f"Edited {k}") for k, it in enumerate(catalogue[:3])] \
        == [True, False, True]


def test_a_slice_of_edit_tombstone_edit_ends_with_the_last_edit(engine_factory, catalogue):
    """Only the vectors before a slice's first tombstone are written ahead: the later edit of the
    same item is stored after the tombstone, under the lock, in offset order."""
    first, second = ({**catalogue[0], "title": t} for t in ("First Title", "Second Title"))
    sink, _ = _publish(engine_factory(items=False), [_item_rec(0, first), _item_rec(1, second)])
    (k1, v1), (k2, v2) = sink.sent
    records = [_Rec(0, k1, v1, "item-vectors"), _Rec(1, k1, None, "item-vectors"), _Rec(2, k2, v2, "item-vectors")]
    reader = engine_factory(items=False)
    asyncio.run(Runtime(WorkerSettings(), reader).apply_item_vectors(0, records))
    item = reader.items.get(catalogue[0]["item_id"])
    assert item is not None and item.text.startswith("Second Title") and len(reader.index) == 1
    assert reader.items.offsets() == {0: 3}


def test_a_write_ahead_that_fails_midway_puts_back_what_it_wrote(engine_factory, catalogue):
    reader = engine_factory(items=False)
    reader.upsert_items(catalogue[:1])
    old = reader.items.raw(catalogue[0]["item_id"])
    new = [{**it, "item_id": f"n{k}"} for k, it in enumerate(make_items(39, random.Random(7)))]
    vectors = reader.encode_items([{**catalogue[0], "title": "Edited"}, *new])
    put_many, calls = reader.items.put_many, []

    def failing(items, offsets=None, encoded=None):
        calls.append(len(items))
        if len(calls) == 2:
            raise OSError("disk full")
        return put_many(items, offsets, encoded)

    reader.items.put_many = failing
    with pytest.raises(OSError):
        reader.write_ahead(vectors)
    assert calls == [32, 8]  # the first write went through, the second failed
    assert reader.items.raw(catalogue[0]["item_id"]) == old  # an item stored before: as it was
    assert not any(it["item_id"] in reader.items for it in new)  # new ones: gone again


def test_the_default_worker_keeps_applying_vectors_at_its_floor_when_saturated(engine_factory):
    """The default settings' rate floor: with half-second batches (a saturated worker) a slice
    holds the ~500 records that keep 1,000/s, where the 2 ms cap alone allowed 33."""
    runtime = Runtime(WorkerSettings(), engine_factory(items=False))
    for pacer in (runtime.item_pacer, runtime.param_pacer):
        pacer.took(64, 64 * 6e-5)  # 60 us per record
        pacer.served(0.5)
        n = pacer.next()
        assert n / (0.5 + n * 6e-5) >= pacer.min_per_s >= 1000.0
        assert n / (0.5 + n * 6e-5) < 1.05 * pacer.min_per_s
