"""The trainer's per-event logic (a plain class; streams/trainer/loop.py wraps it): each
engagement admits or refreshes its item's row and takes one Adagrad step on the rows it reads.

Order is the only input besides the events: negatives are a function of the log
(streams/trainer/negatives.py) and the tower is frozen, so the same log in the same order gives
the same table.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.ids.hybrid import Fusion, HybridConfig
from model.ids.id_checkpoint import IdCheckpoint, load_id_half
from model.ids.online import freeze, row_step
from model.ids.sasrec import SASRec
from store import IdMemory, IdMemoryConfig, IdRow, RowBlock
from streams.errors import ThreadrecError
from streams.trainer.config import TrainerSettings
from streams.trainer.histories import Histories
from streams.trainer.negatives import NegativeSampler
from streams.trainer.publish_rule import PublishRule

logger = logging.getLogger(__name__)


@dataclass
class LearnerStats:
    """Counters the trainer reports (and snapshots, so a restart keeps counting)."""

    engagements: int = 0  # engagements learned from (positives)
    steps: int = 0  # Adagrad steps taken (engagements with history rows and an item row)
    impressions: int = 0  # skipped impressions recorded as negatives
    admitted: int = 0  # rows created online
    expired: int = 0  # rows removed by the TTL
    loss_sum: float = 0.0  # summed step losses (mean = loss_sum / steps)
    candidates: int = 0  # summed candidates scored per step (mean = candidates / steps)
    recent: list[float] = field(default_factory=list)  # the last 1,000 step losses

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "recent"}
        out["mean_loss"] = self.loss_sum / self.steps if self.steps else None
        out["recent_loss"] = float(np.mean(self.recent)) if self.recent else None
        out["mean_candidates"] = self.candidates / self.steps if self.steps else None
        return out


def memory_config(settings: TrainerSettings, dim: int, hybrid: HybridConfig) -> IdMemoryConfig:
    """The trainer's table: the tower's width, the checkpoint's admission unless overridden."""
    min_count = settings.min_count if settings.min_count is not None else hybrid.min_count
    return IdMemoryConfig(dim=dim, min_count=min_count, ttl_s=settings.ttl_s, lr=settings.lr)


class OnlineLearner:
    """ID rows (IdMemory), user histories and the frozen tower of one hybrid checkpoint."""

    def __init__(self, memory: IdMemory, tower: SASRec, histories: Histories, settings: TrainerSettings,
                 fusion: Fusion | None = None):
        self.memory, self.tower, self.histories = memory, freeze(tower), histories
        # the served term's fusion gate (None: steps on the bare tower logits)
        self.fusion = freeze(fusion) if fusion is not None and settings.served_loss else None
        self.settings, self.stats = settings, LearnerStats()
        self.catalogue = sorted(memory.ids())  # row ids, the uniform negatives' population
        self._rows = set(self.catalogue)
        self.sampler = NegativeSampler(settings, self.catalogue, self._rows, memory.occurrence_shares)
        self.publish_rule = PublishRule(settings.publish_threshold)

    def learn_all(self, events: Iterable[tuple[dict, int, int]]) -> None:
        """learn() each (event, partition, offset) in order; the rows are written back once (the
        same table as one by one, store/row_block.py)."""
        block = RowBlock(self.memory)
        for event, partition, offset in events:
            self._learn(event, partition, offset, block)
        block.commit()

    def learn(self, event: dict, partition: int, offset: int) -> float | None:
        """One validated engagement; returns the step's loss, or None when no step was taken."""
        block = RowBlock(self.memory)
        loss = self._learn(event, partition, offset, block)
        block.commit()
        return loss

    def _learn(self, event: dict, partition: int, offset: int, block: RowBlock) -> float | None:
        user, item = event["user_id"], event["item_id"]
        h = self.histories.get(user)
        if event["kind"] == "impression":
            if item not in h.impressions and item not in h.items:
                h.impressions.append(item)
                self.stats.impressions += 1
                self.histories.put(user, h)
            return None
        if self.memory.observe([item], event["ts"])[0] and item not in self._rows:
            self._admit(item)
        loss = self._step(h.items, h.impressions, item, (partition, offset), block)
        self.sampler.record(partition, offset, item)
        h.items.append(item)
        h.impressions = [x for x in h.impressions if x != item]
        self.histories.put(user, h)
        self.stats.engagements += 1
        return loss

    def _step(self, items: list[str], impressions: list[str], item: str, at: tuple[int, int],
              block: RowBlock) -> float | None:
        history = [i for i in items if i in self._rows][-self.tower.opts.max_len:]
        if item not in self._rows or not history:
            return None  # no row to learn, or no history rows to learn it from
        hard = list(dict.fromkeys(x for x in impressions if x in self._rows and x != item))
        picked = self.sampler.candidates(item, hard, *at)
        candidates = picked.ids
        step = row_step(self.tower, self.fusion, block.lookup(history), block.lookup(candidates), picked.log_q)
        if self.settings.input_rows:
            block.apply_gradients(history + candidates, np.concatenate([step.history, step.candidates]))
        else:
            block.apply_gradients(candidates, step.candidates)
        must = [item, *history] if self.settings.input_rows else [item]
        self.publish_rule.stepped(must, candidates[1:], block.origin)
        s = self.stats
        s.steps, s.loss_sum, s.candidates = s.steps + 1, s.loss_sum + step.loss, s.candidates + len(candidates)
        s.recent = [*s.recent[-999:], step.loss]
        return step.loss

    def _admit(self, item: str) -> None:
        bisect.insort(self.catalogue, item)
        self._rows.add(item)
        self.stats.admitted += 1

    def expire(self, now_ts: float) -> list[str]:
        """Rows idle for ttl_s of event time are removed (published as tombstones at the next sync)."""
        gone = self.memory.expire(now_ts)
        for item in gone:
            self._rows.discard(item)
            del self.catalogue[bisect.bisect_left(self.catalogue, item)]
        self.stats.expired += len(gone)
        return gone

    def stamp_unseen(self, ts: float) -> None:
        """Give checkpoint rows (last_seen 0) a first sighting, so the TTL counts from the stream."""
        ids = [i for i in self.catalogue if (r := self.memory.get_row(i)) is not None and r.last_seen == 0]
        rows = [self.memory.get_row(i) for i in ids]
        for r in rows:
            r.last_seen = float(ts)
        self.memory.put_rows(ids, rows)
        self.memory.drain_touched()  # not a change worth publishing


@dataclass
class CheckpointHalf:
    """The ID half of a hybrid checkpoint as the trainer needs it."""

    tower: SASRec
    fusion: Fusion  # the fitted gate the workers serve the ID term with
    config: IdMemoryConfig  # the trainer's table over the tower's rows
    checkpoint: IdCheckpoint

    @classmethod
    def load(cls, checkpoint: Path, settings: TrainerSettings) -> CheckpointHalf:
        ck = load_id_half(checkpoint)
        if ck is None:
            raise ThreadrecError(f"{checkpoint}: not a hybrid checkpoint (no hybrid.json); the "
                                 "trainer learns the ID half")
        cfg = memory_config(settings, ck.tower.opts.dim, ck.config)
        return cls(ck.tower, ck.fusion, cfg, ck)

    def write_rows(self, memory: IdMemory) -> None:
        """The checkpoint's rows with fresh Adagrad slots; not reported as touched (workers
        load the same rows from the checkpoint)."""
        ids, vectors, _ = self.checkpoint.present_rows()
        # the checkpoint's slots are zeros (hybrid_tensors); Adagrad starts at initial_accumulator
        acc = np.full(memory.config.dim, memory.config.initial_accumulator, np.float32)
        memory.put_rows(ids, [IdRow(v, acc.copy()) for v in vectors])
        memory.drain_touched()
        logger.info("trainer: %d ID rows from the checkpoint", len(ids))
