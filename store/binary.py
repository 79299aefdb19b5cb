"""Little-endian binary framing shared by the record codecs: magic, version, body, CRC32."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

from .errors import StateCodecError

# dtype codes written before each array; decoding checks them against what the field expects.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f2"),
    2: np.dtype("<f4"),
    3: np.dtype("<f8"),
    4: np.dtype("u1"),
    5: np.dtype("<u4"),
    6: np.dtype("<u8"),
    7: np.dtype("<i8"),
}
_CODES = {dt: code for code, dt in _DTYPES.items()}
_HEADER = struct.Struct("<4sB")
_CRC = struct.Struct("<I")
_STRUCTS: dict[str, struct.Struct] = {}  # compiled formats of Reader.unpack, by format string


class Writer:
    """Accumulates the body of one record."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def pack(self, fmt: str, *values: object) -> None:
        self._parts.append(struct.pack("<" + fmt, *values))

    def text(self, value: str) -> None:
        raw = value.encode("utf-8")
        self._parts.append(struct.pack("<I", len(raw)) + raw)

    def texts(self, values: list[str]) -> None:
        """A list of strings as u32 count, u32 lengths array, one UTF-8 blob."""
        raws = [v.encode("utf-8") for v in values]
        self._parts.append(struct.pack("<I", len(raws)))
        self._parts.append(np.fromiter(map(len, raws), "<u4", len(raws)).tobytes())
        self._parts.append(b"".join(raws))

    def array(self, arr: np.ndarray, dtype: str | None = None) -> None:
        """dtype code, ndim, shape (u32 each), then the raw little-endian values."""
        a = np.ascontiguousarray(arr, dtype=np.dtype(dtype) if dtype else None)
        if a.dtype.newbyteorder("<") not in _CODES:
            raise StateCodecError(f"unsupported array dtype {a.dtype}")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        self._parts.append(struct.pack(f"<BB{a.ndim}I", _CODES[a.dtype], a.ndim, *a.shape))
        self._parts.append(a.tobytes())

    def frame(self, magic: bytes, version: int) -> bytes:
        body = _HEADER.pack(magic, version) + b"".join(self._parts)
        return body + _CRC.pack(zlib.crc32(body))


class Reader:
    """Reads one record body; every short read or bad value raises StateCodecError."""

    def __init__(self, data: bytes, what: str) -> None:
        self._buf = memoryview(data)
        self._pos = 0
        self._what = what

    def _take(self, n: int) -> memoryview:
        end = self._pos + n
        if n < 0 or end > len(self._buf):
            raise StateCodecError(f"{self._what}: truncated at byte {self._pos} (wanted {n} more)")
        out = self._buf[self._pos : end]
        self._pos = end
        return out

    def unpack(self, fmt: str) -> tuple:
        s = _STRUCTS.get(fmt) or _STRUCTS.setdefault(fmt, struct.Struct("<" + fmt))
        return s.unpack(self._take(s.size))

    def text(self) -> str:
        (n,) = self.unpack("I")
        return self._decode(self._take(n))

    def texts(self) -> list[str]:
        (count,) = self.unpack("I")
        lengths = np.frombuffer(self._take(4 * count), "<u4")
        blob = self._take(int(lengths.sum(dtype=np.int64)))
        ends = np.cumsum(lengths, dtype=np.int64)
        starts = ends - lengths
        return [
            self._decode(blob[s:e]) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
        ]

    def array(self, dtype: str | None, ndim: int | None) -> np.ndarray:
        """An array written by Writer.array; None accepts whatever dtype / ndim was written."""
        want, shape = self._array_header(dtype, ndim)
        raw = self._take(math.prod(shape) * want.itemsize)
        # copy: callers mutate state arrays, and a view would pin the whole input buffer
        return np.frombuffer(raw, want).reshape(shape).copy()

    def skip_array(self, dtype: str | None, ndim: int | None) -> None:
        """Step over an array, checking its header as `array` does, without reading the values."""
        want, shape = self._array_header(dtype, ndim)
        self._take(math.prod(shape) * want.itemsize)

    def skip_text(self) -> None:
        """Step over a text without decoding it."""
        (n,) = self.unpack("I")
        self._take(n)

    def skip_texts(self) -> None:
        """Step over a list of texts without decoding them."""
        (count,) = self.unpack("I")
        lengths = np.frombuffer(self._take(4 * count), "<u4")
        self._take(int(lengths.sum(dtype=np.int64)))

    def _array_header(self, dtype: str | None, ndim: int | None) -> tuple[np.dtype, tuple]:
        code, got_ndim = self.unpack("BB")
        got = _DTYPES.get(code)
        want = got if dtype is None else np.dtype(dtype)
        if got is None or got != want or got_ndim != (got_ndim if ndim is None else ndim):
            raise StateCodecError(f"{self._what}: expected {want} array of ndim {ndim}")
        return want, self.unpack(f"{got_ndim}I")

    @property
    def position(self) -> int:
        """Bytes read so far, the frame's header included (an offset into the frame)."""
        return self._pos

    def finish(self) -> None:
        if self._pos != len(self._buf):
            raise StateCodecError(f"{self._what}: {len(self._buf) - self._pos} trailing bytes")

    def _decode(self, raw: memoryview) -> str:
        try:
            return str(raw, "utf-8")
        except UnicodeDecodeError as exc:
            raise StateCodecError(f"{self._what}: invalid UTF-8 text") from exc


def reframe(data: bytes, start: int, magic: bytes, version: int) -> bytes:
    """The body of a checked frame from byte `start` on, framed again under another magic and
    version (a record whose body ends another's: its bytes without decoding and encoding it)."""
    body = _HEADER.pack(magic, version) + data[start : len(data) - _CRC.size]
    return body + _CRC.pack(zlib.crc32(body))


def open_frame(data: bytes, magic: bytes, versions: set[int], what: str) -> tuple[int, Reader]:
    """Check magic, CRC and version; return the version and a reader positioned at the body."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StateCodecError(f"{what}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size + _CRC.size:
        raise StateCodecError(f"{what}: truncated ({len(data)} bytes)")
    got_magic, version = _HEADER.unpack_from(data)
    if got_magic != magic:
        raise StateCodecError(f"{what}: bad magic {got_magic!r}, expected {magic!r}")
    body, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    if version not in versions:
        raise StateCodecError(
            f"{what}: unknown format version {version} (known: {sorted(versions)})"
        )
    if zlib.crc32(body) != crc:
        raise StateCodecError(f"{what}: checksum mismatch (corrupt or truncated bytes)")
    reader = Reader(body, what)
    reader._take(_HEADER.size)
    return version, reader


def values_equal(a: object, b: object) -> bool:
    """Equality that compares numpy arrays by dtype, shape and values."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    return a == b
