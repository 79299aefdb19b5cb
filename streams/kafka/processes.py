"""Stopping a child process (the broker, a worker, a replay): SIGTERM first, SIGKILL if it hangs."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 10.0, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after timeout_s (to its whole process group when group); nothing
    when there is no process or it has already exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        if group:  # a worker started in its own session: its children go with it
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
