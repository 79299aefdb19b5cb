"""A `threadrec worker` subprocess (the production code path) for the demo and the benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streams.errors import ThreadrecError
from streams.kafka.processes import stop_process
from streams.kafka.settings import KafkaSettings
from streams.worker.stats import read_stats

ROOT = Path(__file__).resolve().parents[2]


class WorkerFailed(ThreadrecError):
    """The worker process exited or did not get ready in time."""


def worker_env() -> dict[str, str]:
    """This environment (torch threads come from the --torch-threads flag, not from here)."""
    return dict(os.environ)


def start_replay(k: KafkaSettings, source: Path, rate: float | None, log: Path) -> subprocess.Popen:
    """`threadrec replay SOURCE` as a subprocess (the CLI users run; stoppable at any time)."""
    cmd = [sys.executable, "-m", "streams.cli", "replay", str(source), "--no-progress",
           "--bootstrap", k.bootstrap, "--broker-kind", k.broker_kind, "--partitions", str(k.partitions)]
    if k.topic_prefix:
        cmd += ["--topic-prefix", k.topic_prefix]
    if rate:
        cmd += ["--rate", str(rate)]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def cli_flag(name: str, value: Any) -> list[str]:
    """The command-line words that set settings field `name` to `value` (none for None)."""
    flag = name.replace("_", "-")
    if isinstance(value, bool):  # BooleanOptionalAction flags
        return [f"--{flag}" if value else f"--no-{flag}"]
    return [] if value is None else [f"--{flag}", str(value)]


class WorkerProcess:
    """Starts `python -m streams.cli worker ...` with a stats file; stop() sends SIGTERM.
    Subclasses name another long-running command with the same flags (e.g. the trainer)."""

    command = "worker"

    def __init__(self, k: KafkaSettings, checkpoint: Path, data_dir: Path, log: Path,
                 **flags: Any) -> None:
        self.stats_file = data_dir / "stats.json"
        self.log = log
        cmd = [sys.executable, "-m", "streams.cli", self.command, "--bootstrap", k.bootstrap,
               "--broker-kind", k.broker_kind, "--partitions", str(k.partitions),
               "--checkpoint", str(checkpoint), "--data-dir", str(data_dir),
               "--stats-file", str(self.stats_file), "--stats-every-s", "0.5"]
        if k.topic_prefix:
            cmd += ["--topic-prefix", k.topic_prefix]
        for name, value in flags.items():
            cmd += cli_flag(name, value)
        self.cmd = cmd
        self.proc: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:  # the latest run's log only
            # its own process group: a Ctrl-C in the terminal reaches only us; we stop it cleanly
            self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         env=worker_env(), start_new_session=True)
        return self

    def stats(self) -> dict[str, Any] | None:
        return read_stats(self.stats_file)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise WorkerFailed(f"{self.command} exited with code {self.proc.returncode} (log: {self.log})")

    def wait_until(self, predicate, timeout_s: float, what: str) -> dict[str, Any]:
        """Poll the stats file until predicate(stats) holds; WorkerFailed on exit or timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            st = self.stats()
            if st is not None and predicate(st):
                return st
            time.sleep(0.2)
        raise WorkerFailed(f"{self.command} not {what} after {timeout_s:.0f}s (log: {self.log})")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (faust stops agents, commits, flushes), then SIGKILL its group if it hangs."""
        stop_process(self.proc, timeout_s, group=True)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
