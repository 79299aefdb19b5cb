"""The demo's online learning: `threadrec trainer` beside the worker, and what the report shows
of it (a learning curve against popularity on the same pairs, the parameter version used)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from model.records import write_jsonl
from streams.demo.data import HeldOut
from streams.demo.report import Report, by_bucket
from streams.kafka.settings import KafkaSettings
from streams.worker.process import WorkerProcess


class TrainerProcess(WorkerProcess):
    """`python -m streams.cli trainer ...`: same flags and stats file as a worker."""

    command = "trainer"


def start_trainer(k: KafkaSettings, opts, ckpt: Path, ho: HeldOut, run_dir: Path,
                  console: Console) -> TrainerProcess | None:
    """The online trainer on the replayed users' earlier history, learning only what the worker
    has served (it follows the worker's committed offsets); None without an ID half.
    opts: the demo's DemoOptions (trainer, trainer_sync_s, trainer_sync_clock, trainer_learn_block,
    workdir)."""
    if not opts.trainer or not (ckpt / "hybrid.json").is_file():
        return None
    history = run_dir / "history.jsonl"
    write_jsonl(history, sorted((e for h in ho.history.values() for e in h), key=lambda e: e["ts"]))
    trainer = TrainerProcess(k, ckpt, run_dir / "trainer", opts.workdir / "trainer.log",
                             sync_every_s=opts.trainer_sync_s, sync_clock=opts.trainer_sync_clock,
                             follow_group="threadrec" if opts.trainer_follow else None,
                             history_file=history, torch_threads=opts.torch_threads,
                             **{"learn_block": opts.trainer_learn_block, **opts.trainer_flags}).start()
    console.print(f"online trainer: syncs ID rows every {opts.trainer_sync_s:g}s "
                  f"({opts.trainer_sync_clock} clock) to the parameters topic")
    return trainer


def add_learning(report: Report, ho: HeldOut, trainer: TrainerProcess | None, chunks: int) -> None:
    """The learning curve (online vs popularity Recall@10 per chunk of the replay's event time),
    the parameter version the last recommendation used, and the trainer's counters."""
    if not report.judged:
        return
    lo, hi = ho.replay[0]["ts"], ho.replay[-1]["ts"]
    width = max((hi - lo) / max(chunks, 1), 1e-9)

    def bucket(ts: float) -> int:
        return min(int((ts - lo) / width), chunks - 1)

    model, pop = by_bucket(report.judged, bucket), ho.popularity_by(bucket)
    report.extra["curve"] = [{"chunk": b, "from_ts": lo + b * width, "model": model[b], "popularity": pop.get(b)}
                             for b in sorted(model)]
    report.extra["param_version_last"] = report.judged[-1].param_version
    if trainer is not None:
        report.extra["trainer"] = trainer.stats() or {}  # worker, collector and broker are stopped by now
