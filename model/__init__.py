"""EmbSum in PyTorch + transformers. Never imports streams, store, faust or kafka."""

from model.config import EmbSumConfig

__all__ = ["EmbSumConfig"]
