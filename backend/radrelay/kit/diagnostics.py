"""Stack dumps on demand, for a process that seems stuck: ``kill -USR1 PID`` writes every
thread's Python stack to stderr, ``kill -USR2 PID`` logs where every asyncio task waits.

Two signals because they answer different questions. faulthandler writes from inside the
signal, so SIGUSR1 works even while the event loop is blocked by synchronous code; the task
dump runs on the loop, so SIGUSR2 answers only when the loop is free, and then shows which
await (a database lock, a Redis reply, a peer) each task is parked on. Stacks name code, never
data, so no patient identifier reaches the log.

faulthandler reads the other threads without the interpreter lock: a thread that starts at that
very instant can cut the dump short (a frame at "line ???", then nothing; the main thread comes
last). Sending the signal again gives a whole one."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import inspect
import logging
import signal
from typing import Any

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
        lines.append(f"{task.get_name()}:")
        lines.extend(_awaiting(task.get_coro()))
    log.warning("\n".join(lines))


def _awaiting(coro: Any, depth: int = 40) -> list[str]:
    """The chain of awaits from a task's coroutine down to what it waits on. Unlike
    ``Task.print_stack`` it goes through async generators (``async for``), where arq's poll
    loop and redis-py's retries wait."""
    lines: list[str] = []
    obj = coro
    for _ in range(depth):
        if obj is None:
            break
        frame = (
            getattr(obj, "cr_frame", None)
            or getattr(obj, "gi_frame", None)
            or getattr(obj, "ag_frame", None)
        )
        if frame is not None:
            code = frame.f_code
            lines.append(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        following = (
            getattr(obj, "cr_await", None)
            or getattr(obj, "gi_yieldfrom", None)
            or getattr(obj, "ag_await", None)
        )
        if following is None and type(obj).__name__ in (
            "async_generator_asend",
            "coroutine_wrapper",
        ):
            # An ``async for`` step: only the garbage collector knows its generator.
            following = next((r for r in gc.get_referents(obj) if inspect.isasyncgen(r)), None)
        if following is None and frame is None:
            lines.append(f"  waiting on {obj!r:.200}")
        obj = following
    return lines
