"""stop_process: SIGTERM first, SIGKILL (of the process or its group) when it hangs."""

from __future__ import annotations

import signal
import subprocess
import sys

from streams.kafka.processes import stop_process

IGNORES_SIGTERM = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                   "print('ready', flush=True); time.sleep(60)")


def _start(code: str, **kw) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, **kw)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_sigterm_stops_a_well_behaved_process():
    proc = _start("import time; print('ready', flush=True); time.sleep(60)")
    stop_process(proc, timeout_s=10)
    assert proc.returncode == -signal.SIGTERM
    stop_process(proc)  # already exited: nothing to do
    stop_process(None)


def test_a_hanging_process_is_killed_alone_or_with_its_group():
    for group in (False, True):
        proc = _start(IGNORES_SIGTERM, start_new_session=group)
        stop_process(proc, timeout_s=0.5, group=group)
        assert proc.returncode == -signal.SIGKILL
