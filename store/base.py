"""The key-value store interface that every backend implements (bytes keys and values)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class KVStore(Protocol):
    """Ordered bytes-to-bytes store; iterate() yields keys in ascending byte order."""

    def get(self, key: bytes) -> bytes | None:
        """The value at key, or None."""
        ...

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """The value at each key (None where absent), in one call where the backend can."""
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Set key to value."""
        ...

    def delete(self, key: bytes) -> None:
        """Remove key; a missing key is not an error."""
        ...

    def write_batch(
        self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = (), logged: bool = True
    ) -> None:
        """Apply deletes then puts atomically where the backend can. logged=False: the backend
        may skip its write-ahead log, so the writes are durable only after flush()."""
        ...

    def iterate(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with prefix, in ascending key order."""
        ...

    def flush(self) -> None:
        """Make writes durable (no-op for memory)."""
        ...

    def close(self) -> None:
        """Release resources; later calls raise StoreClosedError."""
        ...
