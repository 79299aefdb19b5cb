"""The trainer's per-event logic (a plain class; streams/trainer/loop.py wraps it): each
engagement admits or refreshes its item's row and extends its user's history, and each block of
engagements (`learn_block` consecutive offsets of a partition) takes one step: one forward and
backward of the frozen tower over the block's engagements against a candidate table they share,
then one Adagrad step per row read. The cost of an engagement is then the tower's share of a
batched pass plus bookkeeping over its own rows, whatever the catalogue's size.

Order and block bounds are the only inputs besides the events, and both come from the log:
negatives are a function of the block (streams/trainer/negatives.py) and the tower is frozen, so
the same log gives the same table.
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
from model.ids.online import batch_row_step, freeze
from model.ids.sasrec import SASRec
from store import IdMemory, IdMemoryConfig, IdRow, RowBlock
from streams.errors import ThreadrecError
from streams.trainer.config import TrainerSettings
from streams.trainer.histories import Histories, History
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


@dataclass
class Example:
    """One engagement to step on: its user's history rows (oldest first), the engaged item, and
    the user's skipped impressions with rows (hard negatives)."""

    history: list[str]
    item: str
    hard: list[str]


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
        """Learn (event, partition, offset) in order, one step per run of consecutive events of
        one block (partition, offset // learn_block). The trainer hands over whole blocks only
        (streams/trainer/loop.py), so a block is one step however the polls cut the log."""
        run: list[dict] = []
        key: tuple[int, int] | None = None
        for event, partition, offset in events:
            at = (partition, offset // self.settings.learn_block)
            if run and at != key:
                self._learn_block(key, run)
                run = []
            key = at
            run.append(event)
        if run and key is not None:
            self._learn_block(key, run)

    def learn(self, event: dict, partition: int, offset: int) -> None:
        """One validated engagement as a block of its own."""
        self.learn_all([(event, partition, offset)])

    def _learn_block(self, key: tuple[int, int], events: list[dict]) -> None:
        """Histories and admissions event by event, in order; then one step for the block."""
        examples = [ex for ex in map(self._record, events) if ex is not None]
        in_batch = [e["item_id"] for e in events if e["kind"] != "impression" and e["item_id"] in self._rows]
        if examples:
            self._step(key, examples, in_batch)

    def _record(self, event: dict) -> Example | None:
        """The event into its user's history (an impression: a hard negative); the example it
        makes, or None (an impression, no row to learn, or no history rows to learn it from)."""
        user, item = event["user_id"], event["item_id"]
        h = self.histories.get(user)
        if h.last_seen and self.settings.user_ttl_s and event["ts"] - h.last_seen > self.settings.user_ttl_s:
            h = History()  # the workers' rule: an idle user starts over
        h.last_seen = max(h.last_seen, float(event["ts"]))
        if event["kind"] == "impression":
            if item not in h.impressions and item not in h.items:
                h.impressions.append(item)
                self.stats.impressions += 1
            self.histories.put(user, h)
            return None
        if self.memory.observe([item], event["ts"])[0] and item not in self._rows:
            self._admit(item)
        history = [i for i in h.items if i in self._rows][-self.tower.opts.max_len:]
        example = None
        if item in self._rows and history:
            hard = list(dict.fromkeys(x for x in h.impressions if x in self._rows and x != item))
            example = Example(history, item, hard)
        h.items.append(item)
        h.impressions = [x for x in h.impressions if x != item]
        self.histories.put(user, h)
        self.stats.engagements += 1
        return example

    def _step(self, key: tuple[int, int], examples: list[Example], in_batch: list[str]) -> None:
        """One forward and backward for the block's examples over rows as the block found them;
        one Adagrad step per row read (gradients of its uses summed)."""
        positives = [e.item for e in examples]
        picked = self.sampler.block(*key, positives, [e.hard for e in examples], in_batch)
        block = RowBlock(self.memory)
        history = [i for e in examples for i in e.history]
        opts = self.tower.opts
        rows = np.zeros((len(examples), opts.max_len, opts.dim), np.float32)
        real = np.arange(opts.max_len)[None, :] >= opts.max_len - np.array([len(e.history) for e in examples])[:, None]
        rows[real] = block.lookup(history)  # C order: each example's rows, oldest first
        step = batch_row_step(self.tower, self.fusion, rows, real, block.lookup(picked.ids), picked.labels,
                              picked.allowed, picked.log_q)
        # accumulators grow by each engagement's squared gradients, as steps one by one would: the
        # square of the block's sum grew them up to B times faster, and a row's step is capped near
        # lr whatever its uses, so the online lift fell with the block (ML-100K demo, block 16)
        if self.settings.input_rows:
            hist = step.history[real]
            block.apply_gradients(history + picked.ids, np.concatenate([hist, step.candidates]),
                                  np.concatenate([hist * hist, step.candidate_squares]))
        else:
            block.apply_gradients(picked.ids, step.candidates, step.candidate_squares)
        must = positives + history if self.settings.input_rows else positives
        self.publish_rule.stepped(must, picked.ids, block.origin)
        block.commit()
        s = self.stats
        s.steps, s.loss_sum = s.steps + len(examples), s.loss_sum + float(step.losses.sum())
        s.candidates += int(picked.seen().sum())
        s.recent = [*s.recent, *step.losses.tolist()][-1000:]

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
