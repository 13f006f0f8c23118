"""Stack dumps on demand, for a process that seems stuck: ``kill -USR1 PID`` writes every
thread's Python stack to stderr, ``kill -USR2 PID`` logs where every asyncio task waits.

Two signals because they answer different questions. faulthandler writes from inside the
signal, so SIGUSR1 works even while the event loop is blocked by synchronous code; the task
dump runs on the loop, so SIGUSR2 answers only when the loop is free, and then shows which
await (a database lock, a Redis reply, a peer) each task is parked on. Stacks name code, never
data, so no patient identifier reaches the log."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import logging
import signal

log = logging.getLogger(__name__)


def dump_threads_on_sigusr1() -> None:
    """Also ignores SIGUSR2 until an event loop takes it (``dump_tasks_on_sigusr2``): its
    default action would end the process."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def dump_tasks_on_sigusr2() -> None:
    """On the running loop; a no-op where signal handlers cannot be set (not the main thread,
    as in a test client's portal thread)."""
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR2, _log_tasks)


def _log_tasks() -> None:
    tasks = asyncio.all_tasks()
    lines = [f"{len(tasks)} asyncio tasks:"]
    for task in tasks:
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        lines.append(out.getvalue())
    log.warning("\n".join(lines))
