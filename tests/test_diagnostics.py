"""Stack dumps on demand (kit/diagnostics.py): a running server answers SIGUSR1 with its thread
stacks and SIGUSR2 with its asyncio tasks, in its log, and keeps serving."""

from __future__ import annotations

import os
import signal

import httpx

from conftest import Server, wait_until


def test_a_running_server_dumps_its_stacks_and_keeps_serving(server: Server) -> None:
    log_size = server.log_path.stat().st_size

    def written_since() -> str:
        with server.log_path.open("rb") as f:
            f.seek(log_size)
            return f.read().decode(errors="replace")

    for proc in server.procs:  # radrelay serve, and radrelay worker in scale-out mode
        os.kill(proc.pid, signal.SIGUSR2)
        os.kill(proc.pid, signal.SIGUSR1)
    count = len(server.procs)

    def main_threads_dumped() -> int:
        # faulthandler writes one "(most recent call first):" block per thread; each process's
        # main thread is the one inside our CLI. (Which thread gets the "Current thread" title
        # depends on which one the kernel delivers the signal to, so that is not counted.)
        blocks = written_since().split("(most recent call first):")[1:]
        return sum("radrelay/cli.py" in block for block in blocks)

    wait_until(lambda: main_threads_dumped() >= count, what="the thread stacks")
    # The task dump, from each event loop; uvicorn's serving task is among the server's.
    wait_until(
        lambda: written_since().count("asyncio tasks:") >= count, what="the asyncio task dumps"
    )
    assert "uvicorn" in written_since()
    assert all(proc.poll() is None for proc in server.procs)
    assert httpx.get(f"{server.url}/api/health", timeout=10).status_code == 200
