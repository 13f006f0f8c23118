"""A loopback TCP proxy in a process of its own: ``python tests/tcp_proxy.py HOST PORT LISTEN``.

tests/cluster.py's ``TcpProxy`` runs it and drives it over stdin and stdout, a command per line
(``cut``, ``restore``, ``stall``, ``unstall``, ``clients``, ``close``), each answered by a JSON
line. A process of its own, not a thread of the test process: every byte between the servers
under test and PostgreSQL or Redis passes here, and a thread would wait for the test process's
interpreter lock behind whatever the test and its leftovers from earlier tests do there.
Standard library only, so it starts in a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from typing import Any


class Relay:
    """``cut()`` resets every connection and refuses new ones, as a stopped PostgreSQL or Redis
    does; ``restore()`` listens again on the same port. ``stall()`` silently stops forwarding
    on the connections open now (bytes sent are held, nothing is closed), as a connection
    dropped by a failover or a NAT is; new connections work. ``unstall()`` resets the stalled
    connections, as TCP does in the end (their held bytes never arrive)."""

    def __init__(self, target: tuple[str, int], port: int):
        self.target = target
        self.port = port
        # Our port towards the target -> the client's port: which client a server-side
        # connection (pg_stat_activity.client_port) belongs to.
        self._clients: dict[int, int] = {}
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # One gate per connection: a cleared gate holds that connection's bytes.
        self._gates: dict[asyncio.Event, tuple[asyncio.StreamWriter, ...]] = {}

    async def restore(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            # RST, not FIN: the peer learns at once that the server is gone.
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            writer.transport.abort()
        self._writers.clear()

    async def stall(self) -> None:
        for gate in self._gates:
            gate.clear()

    async def unstall(self) -> None:
        for gate, pair in list(self._gates.items()):
            if not gate.is_set():
                for writer in pair:
                    writer.transport.abort()
                gate.set()  # its pipes find their streams closed and end

    async def clients(self) -> dict[int, int]:
        return self._clients

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        up_port = up_writer.get_extra_info("sockname")[1]
        self._clients[up_port] = writer.get_extra_info("peername")[1]
        gate = asyncio.Event()
        gate.set()
        self._gates[gate] = (writer, up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await gate.wait()
                    if dst.transport.is_closing():  # reset by unstall()
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}
        self._gates.pop(gate, None)


async def main(host: str, port: str, listen: str) -> None:
    relay = Relay((host, int(port)), int(listen))
    await relay.restore()
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)

    def answer(value: Any) -> None:
        sys.stdout.write(json.dumps(value) + "\n")
        sys.stdout.flush()

    answer("ready")
    while line := await commands.readline():
        command = line.decode().strip()
        if command == "close":
            await relay.cut()
            answer(None)
            return
        answer(await getattr(relay, command)())


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
