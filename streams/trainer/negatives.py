"""The candidates one block of engagements is scored against: at a cost independent of the
catalogue (the `sampled` loss, the default), or every row (the `full` loss, kept for comparison).

Sampled: a partition's engagements are cut into blocks of `learn_block` by offset (offset //
learn_block), and a block is one step (streams/trainer/learner.py). Its steps share one candidate
table: the positives of the block's engagements (in-batch negatives, which arrive in proportion to
popularity) and `negatives` uniform draws over the rows, seeded by (seed, partition, block); each
step also sees its own user's hard negatives (skipped impressions), which no other step sees.
Each candidate j's logit is corrected by log Q_j, Q_j = n_in * p_j + S / N: its expected count
among the sampled candidates, with n_in in-batch positives, p_j the item's share of the
engagements (the admission filter's counts over its weight, IdMemory.occurrence_shares), S
uniform draws over N rows. That is Yi et al. 2019's log-Q correction for the mixture of the two
samplers; the engaged item and the hard negatives get theirs too.

Everything is a function of the block, and the block a function of the log, so the same log
gives the same candidates however the polls cut it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from model.ids.online import uniform_draws
from streams.trainer.config import TrainerSettings


@dataclass
class BlockCandidates:
    """The candidate table of one block's steps."""

    ids: list[str]  # (C,) distinct rows: in-batch positives, uniform draws, then hard negatives
    labels: np.ndarray  # (B,) each step's engaged item, as an index into ids
    allowed: np.ndarray | None  # (B, C) what each step sees (hard negatives are its own); None: all
    log_q: np.ndarray | None  # (C,) subtracted from the logits; None: an exact softmax

    def seen(self) -> np.ndarray:
        """(B,) how many candidates each step scored."""
        if self.allowed is None:
            return np.full(len(self.labels), len(self.ids))
        return self.allowed.sum(axis=1)


class NegativeSampler:
    """Candidates per block over the learner's rows (`catalogue`, sorted; `rows`, a set)."""

    def __init__(self, settings: TrainerSettings, catalogue: list[str], rows: set[str],
                 shares: Callable[[list[str]], np.ndarray]) -> None:
        self.settings, self.catalogue, self.rows, self.shares = settings, catalogue, rows, shares

    def block(self, partition: int, block: int, positives: Sequence[str], hard: Sequence[Sequence[str]],
              in_batch: Sequence[str]) -> BlockCandidates:
        """The candidates of a block's steps: positives[b] and hard[b] per step, in_batch the
        engaged items of the whole block that have rows (every step's positive among them)."""
        if self.settings.loss == "full":
            ids = list(self.catalogue)
            at = {i: k for k, i in enumerate(ids)}
            return BlockCandidates(ids, np.array([at[p] for p in positives], np.int64), None, None)
        draws = uniform_draws(len(self.catalogue), self.settings.negatives,
                              (self.settings.seed, partition, block))
        shared = list(dict.fromkeys([*in_batch, *(self.catalogue[k] for k in draws.tolist())]))
        at = {i: k for k, i in enumerate(shared)}
        ids, own = list(shared), []
        for b, negatives in enumerate(hard):
            for item in negatives:
                if item not in at:
                    at[item] = len(ids)
                    ids.append(item)
                if at[item] >= len(shared):
                    own.append((b, at[item]))
        allowed = None
        if own:  # a hard negative of one user is no negative of another's
            allowed = np.zeros((len(positives), len(ids)), bool)
            allowed[:, :len(shared)] = True
            rows, cols = zip(*own, strict=True)
            allowed[list(rows), list(cols)] = True
        q = len(in_batch) * self.shares(ids) + len(draws) / max(len(self.catalogue), 1)
        return BlockCandidates(ids, np.array([at[p] for p in positives], np.int64), allowed, np.log(q))
