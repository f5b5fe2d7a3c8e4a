"""Costly computations kept off the event loop when the site is served by gevent.

Argon2id (receipt lookups, staff passphrases) holds a core and tens of MiB for a tenth of a
second or more. Under gunicorn's gevent worker every request of the process shares one thread,
so a derivation run there would stall every other person for that long; `cpu_bound` runs it
in a small pool of real threads instead and lets the event loop serve others meanwhile. The
pool has one thread per core: more at once is no faster, and each holds its memory cost.

Without gevent (the threaded worker, the tests, the offline and server commands) the function
runs in the calling thread, and the same bound holds through a semaphore. This module never
imports gevent unless the process has already been monkey-patched by the gevent worker.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

CORES = len(os.sched_getaffinity(0)) or 1
_lock = threading.Lock()
_state: dict[str, Any] = {}


def _green_pool() -> Any:
    """gevent's pool of real threads, made in the serving process; None without gevent."""
    if "gevent.monkey" not in sys.modules:
        return None
    from gevent import monkey  # type: ignore[import-untyped]

    if not monkey.is_module_patched("socket"):
        return None
    pool = _state.get("pool")
    if pool is None:
        from gevent.threadpool import ThreadPool  # type: ignore[import-untyped]

        # Made in the one event-loop thread, so no lock is needed (or usable) here.
        pool = _state["pool"] = ThreadPool(CORES)
    return pool


def _turns() -> threading.BoundedSemaphore:
    with _lock:
        turns = _state.get("turns")
        if turns is None:
            turns = _state["turns"] = threading.BoundedSemaphore(CORES)
        return turns


def cpu_bound(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)`, at most one per core at a time, off the event loop under gevent."""
    pool = _green_pool()
    if pool is not None:
        return pool.apply(function, args)  # type: ignore[no-any-return]
    with _turns():
        return function(*args)
