"""The candidates one engagement is scored against: at a cost independent of the catalogue (the
`sampled` loss, the default), or every row (the `full` loss, kept for comparison).

Sampled: a partition's engagements are cut into blocks of `negatives_block` by offset (offset //
negatives_block). A block shares one set of `negatives` uniform draws over the rows, seeded by
(seed, partition, block), and each engagement also takes the positives of the block's earlier
engagements (in-batch negatives, which arrive in proportion to popularity). Each candidate j's
logit is corrected by log Q_j, Q_j = n_in * p_j + S / N: its expected count among the sampled
candidates, with n_in in-batch positives, p_j the item's share of the engagements (the admission
filter's counts over its weight, IdMemory.occurrence_shares), S uniform draws over N rows. That is Yi et al. 2019's log-Q correction for the
mixture of the two samplers; the engaged item and the hard negatives get theirs too, so a
uniform-only sample (n_in = 0) shifts every logit alike and changes nothing.

Everything is a function of the log, so the same log gives the same candidates; the block's
earlier positives go into the trainer's snapshot (state/restore), so a kill -9 does not change
them either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from model.ids.online import uniform_draws
from streams.trainer.config import TrainerSettings


@dataclass
class Candidates:
    """The rows one step scores: the engaged item first, then hard negatives, then sampled ones."""

    ids: list[str]
    log_q: np.ndarray | None  # (C,) subtracted from the logits; None: an exact softmax


class NegativeSampler:
    """Candidates per engagement over the learner's rows (`catalogue`, sorted; `rows`, a set)."""

    def __init__(self, settings: TrainerSettings, catalogue: list[str], rows: set[str],
                 shares: Callable[[list[str]], np.ndarray]) -> None:
        self.settings, self.catalogue, self.rows, self.shares = settings, catalogue, rows, shares
        self.blocks: dict[int, tuple[int, list[str]]] = {}  # partition -> (block, its positives so far)

    def candidates(self, item: str, hard: Sequence[str], partition: int, offset: int) -> Candidates:
        """The candidates of `item` engaged at (partition, offset)."""
        if self.settings.loss == "full":
            exclude = {item, *hard}
            return Candidates([item, *hard, *(i for i in self.catalogue if i not in exclude)], None)
        block = offset // self.settings.negatives_block
        earlier = self._earlier(partition, block)
        draws = uniform_draws(len(self.catalogue), self.settings.negatives,
                              (self.settings.seed, partition, block))
        sampled = [self.catalogue[k] for k in draws.tolist()]
        in_batch = [i for i in earlier if i in self.rows]
        # dict.fromkeys: the engaged item stays first, so a draw of it is no negative (an accidental hit)
        ids = list(dict.fromkeys([item, *hard, *in_batch, *sampled]))
        if not earlier and not len(draws):
            return Candidates(ids, None)  # hard negatives only: nothing was sampled
        q = len(earlier) * self.shares(ids) + len(draws) / max(len(self.catalogue), 1)
        return Candidates(ids, np.log(q))

    def record(self, partition: int, offset: int, item: str) -> None:
        """The positive at (partition, offset) becomes an in-batch negative for the rest of its block."""
        block = offset // self.settings.negatives_block
        held, positives = self.blocks.get(partition, (block, []))
        self.blocks[partition] = (block, [*positives, item] if held == block else [item])

    def _earlier(self, partition: int, block: int) -> list[str]:
        held, positives = self.blocks.get(partition, (None, []))
        return positives if held == block else []

    def state(self) -> dict[str, list]:
        """The open blocks, for the trainer's snapshot (JSON)."""
        return {str(p): [b, list(pos)] for p, (b, pos) in self.blocks.items()}

    def restore(self, state: dict[str, list]) -> None:
        """The open blocks a snapshot holds (none in a snapshot from before blocks existed)."""
        self.blocks = {int(p): (int(b), [str(i) for i in pos]) for p, (b, pos) in state.items()}
