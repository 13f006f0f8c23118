"""``/ws``: live events for the signed-in user (case received, ready, updated ...).

Browsers cannot set headers on a WebSocket, so the access token comes as ``?token=``. Each event
names its hospital; a user gets only events of cases they may see, through the same rule as the
case list (``cases.auth``). Events carry ids, never patient data: the client fetches the case.
A connection whose account is deactivated, or moved to another hospital, is closed with 1008 as
soon as the change is committed (``auth.service.ACCOUNT_CHANGED``).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from radrelay.auth.service import ACCOUNT_CHANGED, account_check
from radrelay.auth.tokens import read_access_token
from radrelay.cases import auth as case_auth
from radrelay.errors import Unauthenticated
from radrelay.kit import telemetry
from radrelay.kit.runtime import Runtime

router = APIRouter(tags=["live"])

_PING_SECONDS = 25


@router.websocket("/ws")
async def live_events(websocket: WebSocket, token: str = "") -> None:
    runtime: Runtime = websocket.app.state.runtime
    accounts = account_check(runtime)
    await websocket.accept()
    try:
        principal = read_access_token(token, runtime.secret_key)
        await accounts.verify(principal)
    except Unauthenticated as exc:
        # Accepted first, then closed with 1008 (policy violation): a browser can only see a
        # close code after the handshake, and this one tells it to refresh the token rather than
        # retry as after a network failure.
        await websocket.close(code=1008, reason=exc.message[:120])
        return
    await websocket.send_json({"type": "hello", "user_id": principal.user_id})
    scope = case_auth.scope_of(principal)
    telemetry.LIVE_CONNECTIONS.inc()
    async with runtime.events.subscribe() as queue:
        # Wait for the next event and for the client at once, so a closed tab ends this handler
        # at once rather than at the next event or ping.
        gone = asyncio.create_task(_drain_client(websocket))
        next_event: asyncio.Task[dict[str, object]] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {next_event, gone}, timeout=_PING_SECONDS, return_when=asyncio.FIRST_COMPLETED
                )
                if gone in done:
                    return
                if next_event not in done:
                    await websocket.send_json({"type": "ping"})
                    continue
                event, next_event = next_event.result(), None
                if event.get("type") == ACCOUNT_CHANGED:
                    if event.get("user_id") == principal.user_id:
                        # Deactivated, or moved to another hospital: 1008 makes the client
                        # refresh its token, which fails or brings the new hospital.
                        accounts.forget(principal.user_id)
                        try:
                            await accounts.verify(principal)
                        except Unauthenticated as exc:
                            await websocket.close(code=1008, reason=exc.message[:120])
                            return
                elif scope.sees_event(event):
                    await websocket.send_json(event)
        except WebSocketDisconnect:
            pass
        finally:
            telemetry.LIVE_CONNECTIONS.dec()
            for task in (gone, next_event):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                        await task


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
