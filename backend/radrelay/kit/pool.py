"""The process's pool of workers for CPU-heavy work away from the event loop: inspecting and
storing received objects (ingest), computing DICOM JSON metadata (dicomweb).

Worker processes (``RADRELAY_INGEST_PROCESSES``, two per core by default): Python threads would
queue on the interpreter lock, processes use every core while the serving process keeps
answering. They start with multiprocessing's forkserver (forking a process that runs threads is
unsafe), which imports the parent's ``__main__``: entry points must keep their work under
``if __name__ == "__main__"`` (console scripts do). Functions and arguments must be picklable.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, TypeVar

from radrelay.kit.runtime import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")

_KEY = "kit.pool"
_lock = threading.Lock()
# Modules the workers import once at start, so the first task does not pay for pydicom.
PRELOAD = ["radrelay.ingest.prepare", "radrelay.dicomweb.metadata"]


def make_executor(processes: int | None) -> Executor:
    """Worker processes, or threads when ``processes`` is 0. By default two per core: half of
    an ingest worker's time is spent waiting for fsync, which another worker can use."""
    if processes == 0:
        return ThreadPoolExecutor(max_workers=4, thread_name_prefix="worker-pool")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    workers = processes or min(8, 2 * (os.cpu_count() or 1))
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _executor(runtime: Runtime, *, replace: bool = False) -> Executor:
    with _lock:
        executor = runtime.local.get(_KEY)
        if executor is None or replace:
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            executor = make_executor(runtime.settings.ingest_processes)
            runtime.local[_KEY] = executor
            runtime.on_close(partial(executor.shutdown, wait=True, cancel_futures=True))
        return executor  # type: ignore[no-any-return]


def submit(runtime: Runtime, fn: Callable[..., T], *args: Any) -> Future[T]:
    try:
        return _executor(runtime).submit(fn, *args)
    except BrokenProcessPool:
        # A worker died (killed, out of memory): start a fresh pool rather than fail forever.
        log.warning("worker pool broke; starting a new one")
        return _executor(runtime, replace=True).submit(fn, *args)
