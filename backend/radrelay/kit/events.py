"""Live events for the ``/ws`` websocket, published after commit.

An event is a small JSON dict with a ``type`` and the ids needed to decide who may see it
(``hospital_id`` at least); it never carries patient data, the client fetches that through the
authorised API. With Redis configured, events go through Redis pub/sub so every API process
(and the events that workers or the DICOM gateway publish) reaches every connected user; without
it they stay in this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

PENDING = "pending_events"


def channel_for(queue_name: str) -> str:
    """The pub/sub channel of one deployment, named after its job queue: two deployments (or
    test runs) sharing a Redis must not hear each other's events, whose hospital and case ids
    would otherwise reach the users who hold the same ids in the other database."""
    return f"{queue_name}:events"


def publish(session: AsyncSession, event: dict[str, Any]) -> None:
    """Buffer an event on the session; it is sent only if the session commits."""
    session.info.setdefault(PENDING, []).append(event)


class EventBus:
    def __init__(self, redis_url: str | None, channel: str):
        self.redis_url = redis_url
        self.channel = channel
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self, *, listen: bool) -> None:
        """``listen``: this process serves websockets and must receive others' events."""
        if self.redis_url is None:
            return
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.redis_url)
        if listen:
            self._listener = asyncio.create_task(self._listen(), name="events:listen")

    async def send(self, events: list[dict[str, Any]]) -> None:
        if self._redis is None:
            for event in events:
                self._deliver(event)
            return
        for event in events:
            await self._redis.publish(self.channel, json.dumps(event))

    def _deliver(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A stalled client loses events rather than holding memory for everyone; it
                # refetches the list when it reconnects.
                log.warning("dropping a live event for a slow subscriber")

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live event listener lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(1)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()
