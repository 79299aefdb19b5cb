"""Retrieval vectors of the synthetic production feed, made by the packaged pretrained encoder: the
items' vectors (ItemEncoding.retrieval, what the index holds) and users' UPE codes (what queries
it), for choosing and checking the ANN index on realistic rather than synthetic geometry.

Items are the first `count` of the 1M-item feed (FeedConfig seed 0), in birth order; users have
2-4 sessions of 2-6 items from 1-3 favourite categories among its first 20k items, like the
feed's own users. The encoder runs in `auto` numerics (bf16 where the CPU has it).

    python -m streams.data.feed_vectors --items 100000 --users 400 --out DIR
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import logging
import time
from pathlib import Path

import numpy as np

from model.config import EmbSumConfig
from model.inference import EmbSumInference
from model.text import item_text, session_text
from streams.data.production_feed import (
    Catalogue,
    FeedConfig,
    TextMaker,
    item_lines,
    make_catalogue,
    vocabulary,
)

logger = logging.getLogger(__name__)

CATALOGUE = FeedConfig(items=1_000_000, users=1, seed=0)
USER_POOL = 20_000  # users' histories come from the feed's first items


@functools.lru_cache(maxsize=1)
def _catalogue() -> Catalogue:
    return make_catalogue(CATALOGUE)


def feed_items(count: int) -> list[dict]:
    """The feed's first `count` item records."""
    lines = item_lines(CATALOGUE, _catalogue(), TextMaker(vocabulary()[0], CATALOGUE.categories))
    return [json.loads(line) for line in itertools.islice(lines, count)]


@functools.lru_cache(maxsize=1)
def _pool() -> tuple[dict, ...]:
    return tuple(feed_items(USER_POOL))


def user_histories(users: int, seed: int = 7) -> list[list[str]]:
    """Session texts of `users` synthetic users (each a list of 2-4 sessions)."""
    items = _pool()
    cats = _catalogue().cats[:USER_POOL]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(users):
        pool = np.flatnonzero(np.isin(cats, rng.integers(0, CATALOGUE.categories, rng.integers(1, 4))))
        out.append([session_text([items[p] for p in rng.choice(pool, rng.integers(2, 7), replace=False)])
                    for _ in range(rng.integers(2, 5))])
    return out


def encode(inf: EmbSumInference, items: int, users: int, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(item vectors [items, d], UPE codes [users, m, d]), float32."""
    codes = [inf.encode_users(h)[0] for h in _batches(user_histories(users), 32)]
    texts = [item_text(r) for r in feed_items(items)]
    vectors, t = [], time.perf_counter()
    for start in range(0, len(texts), chunk):
        vectors.append(inf.encode_items(texts[start:start + chunk]).retrieval.astype(np.float32))
        done = start + len(vectors[-1])
        logger.info("encoded %d items, %.0f/s", done, done / (time.perf_counter() - t))
    return np.concatenate(vectors), np.concatenate(codes).astype(np.float32)


def _batches(xs: list, size: int) -> list[list]:
    return [xs[i:i + size] for i in range(0, len(xs), size)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--users", type=int, default=400)
    p.add_argument("--out", type=Path, required=True, help="writes items.npy and user_codes.npy here")
    p.add_argument("--checkpoint", type=Path, help="a trained checkpoint's encoder (default: the packaged "
                   "backbone with untrained heads, whose UPE codes are near-duplicates)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    import torch

    torch.set_num_threads(1)
    inf = (EmbSumInference.from_checkpoint(args.checkpoint, device="cpu", mode="auto") if args.checkpoint
           else EmbSumInference.pretrained(EmbSumConfig(), device="cpu", mode="auto"))
    vectors, codes = encode(inf, args.items, args.users)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "items.npy", vectors)
    np.save(args.out / "user_codes.npy", codes)


if __name__ == "__main__":
    main()
