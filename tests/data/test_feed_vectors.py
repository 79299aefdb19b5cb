"""What the feed's vectors are made from: the feed's own items, users from its first items."""

from __future__ import annotations

from model.text import ITEM_SEP, item_text
from streams.data.feed_vectors import USER_POOL, feed_items, user_histories


def test_items_are_the_feeds_first_and_users_are_seeded_sessions_of_them() -> None:
    first = feed_items(50)
    assert [r["item_id"] for r in first] == [f"i{k}" for k in range(50)]
    assert feed_items(20) == first[:20]  # a prefix: more encoded items extend the same set
    users = user_histories(5)
    assert users == user_histories(5) and users != user_histories(5, seed=8)
    texts = {item_text(r) for r in feed_items(USER_POOL)}  # the same as users draw from
    for sessions in users:
        assert 2 <= len(sessions) <= 4
        for session in sessions:
            assert 2 <= len(session.split(ITEM_SEP)) <= 6
            assert set(session.split(ITEM_SEP)) <= texts
