"""Errors that users of `store` see."""


class StoreError(Exception):
    """Base class for every error raised by `store`."""


class StateCodecError(StoreError, ValueError):
    """Bytes are not a valid encoded record: bad magic, unknown version, corrupt or truncated."""


class StoreClosedError(StoreError):
    """An operation was attempted on a store that has been closed."""


class VectorIndexError(StoreError, ValueError):
    """A vector index was used wrongly (dimension mismatch, bad snapshot, id collision)."""
