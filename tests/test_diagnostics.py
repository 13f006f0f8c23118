"""Stack dumps on demand (kit/diagnostics.py): a running server answers SIGUSR1 with its thread
stacks and SIGUSR2 with its asyncio tasks, in its log, and keeps serving."""

from __future__ import annotations

import os
import signal

import httpx

from conftest import Server, wait_until


def test_a_running_server_dumps_its_stacks_and_keeps_serving(server: Server) -> None:
    def log_since(offset: int) -> str:
        with server.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def main_thread_dumped(offset: int) -> bool:
        # faulthandler writes one "(most recent call first):" block per thread; a process's main
        # thread is the one inside our CLI. (Which thread gets the "Current thread" title
        # depends on which one the kernel delivers the signal to, so that is not looked at.)
        blocks = log_since(offset).split("(most recent call first):")[1:]
        return any("radrelay/cli.py" in block for block in blocks)

    def tasks_dumped(offset: int) -> bool:
        return "asyncio tasks:" in log_since(offset)

    if len(server.procs) > 1:
        # The fixture waits for the API only. The worker takes SIGUSR2 once its event loop
        # runs, which its periodic jobs (every second here) show.
        wait_until(lambda: "cron:" in log_since(0), what="the worker to run its periodic jobs")

    # One process at a time: faulthandler writes each stack in many small pieces, and two
    # processes dumping into one log at once interleave them (in CI one "most recent call
    # first" block then held both main threads, and the test saw one of two).
    for proc, command in zip(server.procs, ("serve", "worker"), strict=False):
        # faulthandler walks the other threads without the interpreter lock, and a thread that
        # is starting at that instant can end the dump early (about 1 in 10 runs here, before
        # the main thread, which comes last): as an operator would, signal again.
        for attempt in range(3):
            offset = server.log_path.stat().st_size
            os.kill(proc.pid, signal.SIGUSR1)
            try:
                wait_until(
                    lambda o=offset: main_thread_dumped(o),
                    timeout=10,
                    what=f"the stacks of {command}",
                )
                break
            except AssertionError:
                if attempt == 2:
                    raise
        offset = server.log_path.stat().st_size
        os.kill(proc.pid, signal.SIGUSR2)
        wait_until(lambda o=offset: tasks_dumped(o), what=f"the task dump of {command}")
        if command == "serve":
            assert "uvicorn" in log_since(offset)  # its serving task is among the tasks

    assert all(proc.poll() is None for proc in server.procs)
    assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
