"""Real data in: loaders that write the prepared directory format (docs/data-format.md)."""

from streams.data.movielens import ensure_movielens, prepare_movielens
from streams.data.records import Engagement, Impression, Item, Problems

__all__ = ["Engagement", "Impression", "Item", "Problems", "ensure_movielens", "prepare_movielens"]
