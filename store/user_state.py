"""Per-user state and its compact, versioned binary codec (no pickle, no JSON)."""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from .binary import Reader, Writer, open_frame, values_equal
from .errors import StateCodecError
from .seen_items import EarlierItems, SeenItems

logger = logging.getLogger(__name__)

USER_STATE_MAGIC = b"TRUS"
# 2 added `applied`, 3 summary_events/summary_ts, 4 earlier_items (ids); 5 dropped the UPE codes
# (recomputed from the session and global embeddings) and holds earlier items as fingerprints.
# 1-4 still read.
USER_STATE_FORMAT = 5

# Engagement kinds as stored (uint8); the engagements topic carries the names.
KIND_CODES: dict[str, int] = {"impression": 0, "view": 1, "click": 2, "like": 3, "share": 4}


def _f16(rows: int = 0, dim: int = 0) -> np.ndarray:
    return np.zeros((rows, dim), np.float16)


@dataclass(eq=False)
class UserState:
    """Everything the online path keeps for one user; arrays are numpy, sessions index history."""

    user_id: str
    item_ids: list[str] = field(default_factory=list)
    timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # [n]
    kinds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))  # [n]
    session_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # [s]
    session_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))  # [g]
    session_embeddings: np.ndarray = field(default_factory=_f16)  # [g, d] float16
    global_embedding: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.float16)
    )  # [d] or [0]
    summary: str = ""
    total_events: int = 0
    events_since_summary: int = 0
    last_seen: float = 0.0
    version: int = 0
    # source partition -> offset of the last engagement applied to this state, so a
    # redelivered engagement is recognised by the state itself (effectively-once)
    applied: dict[int, int] = field(default_factory=dict)
    # what the summary (and global embedding) reflects: total_events and event time of its input
    # (a summary made off the recommendation path lags the history; recommendations report by how much)
    summary_events: int = 0
    summary_ts: float = 0.0
    # distinct items trimmed from the kept history (bounded by the engine), so a long history's
    # older items are still never recommended again; fingerprints: store/seen_items.py
    earlier_items: EarlierItems = field(default_factory=EarlierItems)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, UserState):
            return NotImplemented
        return all(
            values_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    @property
    def num_sessions(self) -> int:
        return len(self.session_starts)

    def seen_items(self) -> SeenItems:
        """Every item this user engaged with that the state remembers: the kept history exactly,
        earlier items by fingerprint (false positives: store/seen_items.py)."""
        return SeenItems(frozenset(self.item_ids), self.earlier_items)

    def session_item_ids(self, index: int) -> list[str]:
        """Item ids of session `index` (sessions run from their start to the next start)."""
        starts = self.session_starts.tolist() + [len(self.item_ids)]
        return self.item_ids[starts[index] : starts[index + 1]]


def session_content_key(item_ids: list[str], text_keys: Sequence[int | None] | None = None) -> int:
    """64-bit content hash of a session: its item ids and each item's text key (None: not in the
    catalogue), so an edited item changes the key of every session holding it. Without text keys:
    the ids alone, the key that states written before item edits were tracked hold."""
    if text_keys is None:
        digest = hashlib.blake2b("\x1f".join(item_ids).encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little")
    h = hashlib.blake2b(digest_size=8, person=b"session+text")
    for item_id, key in zip(item_ids, text_keys, strict=True):
        raw = item_id.encode("utf-8")  # length-prefixed: no id can run into the next field
        h.update(struct.pack("<I", len(raw)) + raw + struct.pack("<?Q", key is not None, key or 0))
    return int.from_bytes(h.digest(), "little")


def _validate(s: UserState) -> None:
    n = len(s.item_ids)
    if len(s.timestamps) != n or len(s.kinds) != n:
        raise StateCodecError(f"user {s.user_id!r}: history arrays disagree with {n} item ids")
    starts = np.asarray(s.session_starts, np.int64)
    if len(starts) and (starts[0] < 0 or starts[-1] > n or np.any(np.diff(starts) < 0)):
        raise StateCodecError(f"user {s.user_id!r}: session starts must be sorted within history")
    if not isinstance(s.earlier_items, EarlierItems):  # a list of ids was format 4's
        raise StateCodecError(f"user {s.user_id!r}: earlier_items must be EarlierItems, not ids")
    if len(s.session_keys) != len(s.session_embeddings):
        raise StateCodecError(f"user {s.user_id!r}: one content key per cached session embedding")
    if s.total_events < 0 or s.events_since_summary < 0 or not 0 <= s.summary_events <= s.total_events:
        raise StateCodecError(f"user {s.user_id!r}: counters must be non-negative")


def encode_user_state(state: UserState) -> bytes:
    """Encode a UserState to bytes (format USER_STATE_FORMAT)."""
    _validate(state)
    w = Writer()
    w.pack("qQQd", state.version, state.total_events, state.events_since_summary, state.last_seen)
    w.text(state.user_id)
    w.texts(state.item_ids)
    w.array(state.timestamps, "<f8")
    w.array(state.kinds, "u1")
    w.array(state.session_starts, "<u4")
    w.array(state.session_keys, "<u8")
    w.array(state.session_embeddings, "<f2")
    w.array(state.global_embedding, "<f2")
    w.text(state.summary)
    parts = sorted(state.applied)
    w.array(np.array(parts, np.uint32), "<u4")
    w.array(np.array([state.applied[p] for p in parts], np.int64), "<i8")
    w.pack("Qd", state.summary_events, state.summary_ts)
    state.earlier_items.write(w)
    return w.frame(USER_STATE_MAGIC, USER_STATE_FORMAT)


def decode_user_state(data: bytes) -> UserState:
    """Decode bytes from encode_user_state (any format 1-5); raises StateCodecError on anything
    invalid."""
    fmt, r = open_frame(data, USER_STATE_MAGIC, {1, 2, 3, 4, USER_STATE_FORMAT}, "user state")
    return _read(r, fmt)


@dataclass(frozen=True)
class StateHeader:
    """The fields an expiry decision needs, read without decoding the history or embeddings."""

    last_seen: float
    applied: dict[int, int]  # source partition -> offset of the last applied engagement

    @property
    def home_partition(self) -> int | None:
        """The engagements partition of the user's latest applied event (its table partition)."""
        return latest_partition(self.applied)


def latest_partition(applied: dict[int, int]) -> int | None:
    """The partition with the highest applied offset; None before any (format 1 states)."""
    return max(applied, key=lambda p: applied[p]) if applied else None


def peek_user_state(data: bytes) -> StateHeader:
    """last_seen and applied of an encoded state (any format 1-5), checksum verified, the rest
    stepped over: no texts decoded, no arrays copied. Raises StateCodecError as decoding would
    on a frame that is cut short or corrupt (not on every check of the full decode)."""
    fmt, r = open_frame(data, USER_STATE_MAGIC, {1, 2, 3, 4, USER_STATE_FORMAT}, "user state")
    last_seen = r.unpack("qQQd")[3]
    user_id = r.text()  # short, and it names the user in an error
    r.skip_texts()  # item_ids
    for dtype, ndim in _ARRAYS_BEFORE_SUMMARY[: 6 if fmt >= 5 else 7]:
        r.skip_array(dtype, ndim)
    r.skip_text()  # summary
    if fmt < 2:
        return StateHeader(last_seen, {})
    return StateHeader(last_seen, _read_applied(r, user_id))


# timestamps, kinds, session starts, session keys, session and global embeddings; UPE codes (< 5)
_ARRAYS_BEFORE_SUMMARY = (("<f8", 1), ("u1", 1), ("<u4", 1), ("<u8", 1), ("<f2", 2), ("<f2", 1),
                          ("<f2", 2))


def _read_applied(r: Reader, user_id: str) -> dict[int, int]:
    parts, offsets = r.array("<u4", 1), r.array("<i8", 1)
    if len(parts) != len(offsets):
        raise StateCodecError(f"user {user_id!r}: applied partitions and offsets disagree")
    return dict(zip(parts.tolist(), offsets.tolist(), strict=True))


def _read(r: Reader, fmt: int) -> UserState:
    version, total, since, last_seen = r.unpack("qQQd")
    state = UserState(
        user_id=r.text(),
        item_ids=r.texts(),
        timestamps=r.array("<f8", 1),
        kinds=r.array("u1", 1),
        session_starts=r.array("<u4", 1),
        session_keys=r.array("<u8", 1),
        session_embeddings=r.array("<f2", 2),
        global_embedding=r.array("<f2", 1),
        total_events=total,
        events_since_summary=since,
        last_seen=last_seen,
        version=version,
    )
    if fmt < 5:
        r.array("<f2", 2)  # the UPE codes: the engine recomputes them from the two above
    state.summary = r.text()
    if fmt >= 2:
        state.applied = _read_applied(r, state.user_id)
    if fmt >= 3:
        state.summary_events, state.summary_ts = r.unpack("Qd")
    else:  # older states: the summary covered everything before the events counted since
        state.summary_events = max(0, total - since) if state.summary else 0
    if fmt >= 5:
        state.earlier_items = EarlierItems.read(r)
    elif fmt == 4:  # ids, most recent last, already bounded by their writer
        state.earlier_items = EarlierItems.of(r.texts())
    r.finish()
    _validate(state)
    return state
