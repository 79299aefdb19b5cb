"""The KVStore contract, run against every backend."""

from __future__ import annotations

import pytest

from store.base import KVStore
from store.errors import StoreClosedError
from store.rocksdict_backend import RocksDictKV


def test_get_put_delete(kv_factory) -> None:
    kv = kv_factory()
    assert isinstance(kv, KVStore)
    assert kv.get(b"a") is None
    kv.put(b"a", b"1")
    kv.put(b"a", b"2")
    assert kv.get(b"a") == b"2"
    kv.delete(b"a")
    kv.delete(b"never-there")
    assert kv.get(b"a") is None


def test_iterate_prefix_in_key_order(kv_factory) -> None:
    kv = kv_factory()
    for key in [b"b/2", b"a/9", b"b/10", b"b/1", b"c", b"b"]:
        kv.put(key, key + b"!")
    assert [k for k, _ in kv.iterate(b"b/")] == [b"b/1", b"b/10", b"b/2"]
    assert [v for _, v in kv.iterate(b"b/")] == [b"b/1!", b"b/10!", b"b/2!"]
    assert [k for k, _ in kv.iterate()] == [b"a/9", b"b", b"b/1", b"b/10", b"b/2", b"c"]
    assert list(kv.iterate(b"zz")) == []


def test_delete_while_iterating(kv_factory) -> None:
    kv = kv_factory()
    for i in range(10):
        kv.put(b"k%02d" % i, b"")
    for key, _ in kv.iterate(b"k"):
        kv.delete(key)
    assert list(kv.iterate()) == []


def test_write_batch_applies_deletes_and_puts(kv_factory) -> None:
    kv = kv_factory()
    kv.put(b"old", b"x")
    kv.write_batch([(b"new", b"y"), (b"n2", b"z")], [b"old"])
    assert kv.get(b"old") is None
    assert (kv.get(b"new"), kv.get(b"n2")) == (b"y", b"z")


def test_binary_keys_and_values(kv_factory) -> None:
    kv = kv_factory()
    key, value = bytes(range(256)), bytes(range(255, -1, -1)) * 100
    kv.put(key, value)
    assert kv.get(key) == value


def test_closed_store_raises(kv_factory) -> None:
    kv = kv_factory()
    kv.close()
    with pytest.raises(StoreClosedError):
        kv.get(b"a")


def test_rocksdict_persists_across_reopen(kv_factory) -> None:
    if kv_factory.backend != "rocksdict":
        pytest.skip("memory backend does not persist")
    kv = kv_factory()
    kv.put(b"k", b"v")
    kv.flush()
    kv.close()
    assert kv_factory().get(b"k") == b"v"


def test_get_many_reads_each_key_in_order(kv_factory) -> None:
    kv = kv_factory()
    kv.write_batch([(b"a", b"1"), (b"c", b"3")])
    assert kv.get_many([b"c", b"b", b"a", b"c"]) == [b"3", None, b"1", b"3"]
    assert kv.get_many([]) == []


def test_an_unlogged_batch_reads_at_once_and_survives_a_flush_and_reopen(kv_factory) -> None:
    kv = kv_factory()
    kv.write_batch([(b"u", b"1"), (b"v", b"2")], [b"gone"], logged=False)
    assert kv.get_many([b"u", b"v"]) == [b"1", b"2"]
    if kv_factory.backend != "rocksdict":
        return
    kv.flush()
    kv.close()
    assert kv_factory().get_many([b"u", b"v"]) == [b"1", b"2"]


def test_a_checkpoint_is_a_copy_that_later_writes_do_not_reach(tmp_path) -> None:
    live = RocksDictKV(tmp_path / "live")
    live.write_batch([(b"k%03d" % i, b"v%d" % i) for i in range(300)])
    live.flush()
    live.checkpoint(tmp_path / "ck1")
    live.write_batch([(b"k000", b"changed"), (b"new", b"x")], [b"k001"])
    copy = RocksDictKV.from_checkpoint(tmp_path / "ck1", tmp_path / "copy")
    assert dict(copy.iterate()) == {b"k%03d" % i: b"v%d" % i for i in range(300)}
    # the copy is written to; a second copy from the same checkpoint still holds the checkpoint
    copy.write_batch([(b"k002", b"copy-wrote")], [b"k003"])
    copy.flush()
    copy.close()
    again = RocksDictKV.from_checkpoint(tmp_path / "ck1", tmp_path / "again")
    assert again.get(b"k002") == b"v2" and again.get(b"k003") == b"v3" and again.get(b"new") is None
    assert live.get(b"k000") == b"changed"
    again.close()
    live.close()


def test_a_second_checkpoint_links_the_table_files_the_first_holds(tmp_path) -> None:
    live = RocksDictKV(tmp_path / "live")
    live.write_batch([(b"a%05d" % i, bytes(200)) for i in range(5_000)])
    live.flush()
    live.checkpoint(tmp_path / "ck1")
    live.put(b"later", b"1")
    live.checkpoint(tmp_path / "ck2")
    first = {f.name: f.stat().st_ino for f in (tmp_path / "ck1").glob("*.sst")}
    second = {f.name: f.stat().st_ino for f in (tmp_path / "ck2").glob("*.sst")}
    assert first and all(second.get(name) == ino for name, ino in first.items())
    assert RocksDictKV.from_checkpoint(tmp_path / "ck2", tmp_path / "c2").get(b"later") == b"1"
    live.close()
