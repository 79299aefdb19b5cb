"""Durable user state, item records, bounded caches and vector indexes for threadrec.

Never imports faust, kafka, torch, `model` or `streams`. FAISS loads only from store.faiss_index.
"""

from .base import KVStore
from .bruteforce_index import BruteForceIndex
from .config import (
    CacheConfig,
    FetchBound,
    FrequencyConfig,
    IdMemoryConfig,
    IndexConfig,
    RocksMemory,
)
from .errors import StateCodecError, StoreClosedError, StoreError, VectorIndexError
from .frequency import FrequencyFilter
from .id_memory import IdMemory, VersionsAhead
from .id_row import IdRow, decode_row, encode_row, parse_row_key, row_key
from .item_record import ItemRecord, decode_item_record, encode_item_record
from .item_vector import (
    EncoderFingerprint,
    ItemVector,
    VectorBounds,
    check_item_vector,
    decode_item_vector,
    encode_item_vector,
)
from .memory_backend import MemoryKV
from .row_block import RowBlock
from .row_sample import RowSample
from .seen_items import EarlierItems, SeenItems
from .token_cache import BoundedCache, CacheStats
from .typed_stores import ItemStore
from .user_state import (
    KIND_CODES,
    StateHeader,
    UserState,
    decode_user_state,
    encode_user_state,
    peek_user_state,
    session_content_key,
)
from .vector_index import VectorIndex, rebuild_from_store

__all__ = [
    "BoundedCache",
    "BruteForceIndex",
    "CacheStats",
    "FrequencyFilter",
    "IdMemory",
    "VersionsAhead",
    "IdMemoryConfig",
    "IdRow",
    "VectorIndex",
    "rebuild_from_store",
    "KIND_CODES",
    "CacheConfig",
    "FetchBound",
    "FrequencyConfig",
    "IndexConfig",
    "EncoderFingerprint",
    "ItemRecord",
    "ItemVector",
    "VectorBounds",
    "check_item_vector",
    "decode_item_vector",
    "encode_item_vector",
    "ItemStore",
    "KVStore",
    "MemoryKV",
    "RowBlock",
    "RowSample",
    "EarlierItems",
    "SeenItems",
    "RocksMemory",
    "StateCodecError",
    "StoreClosedError",
    "StoreError",
    "StateHeader",
    "UserState",
    "VectorIndexError",
    "decode_item_record",
    "decode_row",
    "decode_user_state",
    "encode_item_record",
    "encode_row",
    "parse_row_key",
    "peek_user_state",
    "row_key",
    "encode_user_state",
    "session_content_key",
]
