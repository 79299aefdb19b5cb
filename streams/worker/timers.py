"""The worker's periodic jobs: a faust timer whose exception would crash the whole worker, so
each job's failure is logged and the job tried again at its next interval."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import faust

logger = logging.getLogger(__name__)


def safe_timer(app: faust.App, every_s: float, failure: str) -> Callable:
    """Register the decorated coroutine as a timer of `app` that never takes the worker down;
    `failure` is what the log says when one run raises."""

    def wrap(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(fn)
        async def guarded() -> None:
            try:
                await fn()
            except Exception:  # the job's own failure: the worker and the next run go on
                logger.warning("%s; retrying at the next interval", failure, exc_info=True)

        return app.timer(interval=every_s)(guarded)

    return wrap
