"""The summary lane's thread is nicer than the engine's; the rest of the process is untouched."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from store.thread_priority import lower_thread_priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_only_the_calling_thread_and_its_children_get_nicer():
    me = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    pool = ThreadPoolExecutor(1, initializer=lower_thread_priority, initargs=(5,))

    def nice_of_self_and_child() -> tuple[int, int]:
        child: list[int] = []
        t = threading.Thread(target=lambda: child.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        t.start()
        t.join()
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), child[0]

    lane, child = pool.submit(nice_of_self_and_child).result()
    pool.shutdown()
    assert lane == child == min(19, me + 5)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == me
    assert lower_thread_priority(0) is None
