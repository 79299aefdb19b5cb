"""Thread priority: background work (the summary lane, an index rebuild) yields the cores to
the recommendation path.

They run in one process on the same cores; at equal priority a batch of summaries (hundreds of
ms of decoder work) or a k-means takes CPU time from the engagements waiting behind it. A nicer
thread still gets every idle cycle, so background work finishes when the path leaves room.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)


def lower_thread_priority(nice: int) -> int | None:
    """Make the calling thread `nice` steps nicer than it is (Linux: per thread; threads it
    starts, such as OpenMP workers, inherit it). Returns its new nice value, or None where the
    platform has no per-thread priority."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return None
    tid = threading.get_native_id()
    try:
        now = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, now + nice))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError:  # raising niceness is always allowed on Linux; elsewhere, run as is
        logger.warning("could not lower the priority of thread %s", tid, exc_info=True)
        return None
