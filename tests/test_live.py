"""/ws pushes case events to the users who may see the case, and nobody else."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from conftest import Server, World
from helpers import part10, study, upload


async def collect(url: str, seconds: float) -> list[dict]:  # type: ignore[type-arg]
    events = []
    async with websockets.connect(url) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello"
        events.append(hello)
        try:
            while True:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), seconds)))
        except TimeoutError:
            return events


class TestLiveEvents:
    async def test_tech_gets_own_hospital_events_only(self, server: Server, world: World) -> None:
        mine, other = world.hospital(), world.hospital()
        ws = server.url.replace("http", "ws")
        mine_task = asyncio.create_task(collect(f"{ws}/ws?token={mine.tech.token}", 4))
        other_task = asyncio.create_task(collect(f"{ws}/ws?token={other.tech.token}", 4))
        await asyncio.sleep(1)  # both sockets subscribed (the hello arrives first)
        r = await asyncio.to_thread(
            upload, mine.tech, [("a.dcm", part10(ds)) for ds in study(slices=2)]
        )
        case_id = r.json()["case_ids"][0]
        mine_events, other_events = await mine_task, await other_task
        kinds = {(e["type"], e.get("case_id")) for e in mine_events}
        assert ("case.received", case_id) in kinds
        assert ("case.ready", case_id) in kinds
        assert all(e.get("case_id") != case_id for e in other_events)
        # Events carry ids and states only, never patient data.
        allowed = {"type", "case_id", "hospital_id", "user_id", "status", "reader_ids"}
        assert all(set(e) <= allowed for e in mine_events)

    async def test_bad_token_is_closed_with_policy_violation(self, server: Server) -> None:
        """1008, not a failed handshake: the client can tell "sign in again" from "network"."""
        ws = server.url.replace("http", "ws")
        async with websockets.connect(f"{ws}/ws?token=nonsense") as conn:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await conn.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


class TestTokenHygiene:
    async def test_socket_token_never_reaches_the_log(self, server: Server, world: World) -> None:
        h = world.hospital()
        ws = server.url.replace("http", "ws")
        await collect(f"{ws}/ws?token={h.tech.token}", 0.5)
        log = server.log_path.read_text()
        assert "/ws?token=[redacted]" in log
        assert h.tech.token not in log
