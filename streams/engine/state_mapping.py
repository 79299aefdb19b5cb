"""Where the engine keeps user states: the StateMapping protocol and its bytes-mapping adapter."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from typing import Protocol, runtime_checkable

from store import UserState, decode_user_state, encode_user_state

logger = logging.getLogger(__name__)


@runtime_checkable
class StateMapping(Protocol):
    """User id -> UserState; the engine reads each user once per batch and writes it back once."""

    def get(self, user_id: str) -> UserState | None: ...

    def put(self, state: UserState) -> None: ...

    def delete(self, user_id: str) -> None: ...

    def user_ids(self) -> Iterator[str]: ...


class BytesStateMapping:
    """UserStates encoded with the store codec in any str -> bytes mapping (dict, Faust Table)."""

    def __init__(self, mapping: MutableMapping) -> None:
        self.mapping = mapping

    def get(self, user_id: str) -> UserState | None:
        raw = self.mapping.get(user_id)
        return None if raw is None else decode_user_state(bytes(raw))

    def put(self, state: UserState) -> None:
        # a fresh assignment, so a Faust table writes its changelog
        self.mapping[state.user_id] = encode_user_state(state)

    def delete(self, user_id: str) -> None:
        if self.mapping.get(user_id) is not None:
            del self.mapping[user_id]

    def user_ids(self) -> Iterator[str]:
        return iter(list(self.mapping.keys()))
