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

from radrelay.kit.jobs import time_out_reads

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
    def __init__(self, redis_url: str | None, channel: str, read_timeout: float = 15.0):
        self.redis_url = redis_url
        self.channel = channel
        # A Redis reply later than this means a dead connection (kit/jobs.time_out_reads).
        self.read_timeout = read_timeout
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._redis: Any = None
        self._listen_redis: Any = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self, *, listen: bool) -> None:
        """``listen``: this process serves websockets and must receive others' events."""
        if self.redis_url is None:
            return
        from redis.asyncio import Redis

        timeout = self.read_timeout
        self._redis = Redis.from_url(
            self.redis_url,
            socket_connect_timeout=timeout,
            retry_on_timeout=True,  # once more, on a new connection
        )
        await time_out_reads(self._redis, timeout)
        if listen:
            # Its own connection, without a read timeout: a quiet channel sends nothing for
            # as long as nothing happens; _listen pings instead.
            self._listen_redis = Redis.from_url(self.redis_url, socket_connect_timeout=timeout)
            self._listener = asyncio.create_task(self._listen(), name="events:listen")

    async def send(self, events: list[dict[str, Any]]) -> None:
        if self._redis is None:
            for event in events:
                self._deliver(event)
            return
        from redis.exceptions import RedisError

        try:
            for event in events:
                await self._redis.publish(self.channel, json.dumps(event))
        except (RedisError, OSError) as error:
            # After the commit: what they announce is stored, and clients refetch their lists
            # when they reconnect. Failing the request or job here would only make its sender
            # try again what is already done.
            log.warning("live events not sent, Redis failed: %s", type(error).__name__)

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
                async with self._listen_redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    await self._receive(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live event listener lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(1)

    async def _receive(self, pubsub: Any) -> None:
        """Until the connection fails or goes silent: after a third of the read timeout
        without a message, a PING; no answer (not even the PONG) for the whole read timeout
        means a connection dropped on the way, which would otherwise wait here forever while
        every event went past this process's users."""
        loop = asyncio.get_running_loop()
        heard = loop.time()
        while True:
            message = await pubsub.get_message(timeout=self.read_timeout / 3)
            now = loop.time()
            if message is not None:
                heard = now
                if message["type"] == "message":
                    self._deliver(json.loads(message["data"]))
            elif now - heard > self.read_timeout:
                raise TimeoutError(f"no answer from Redis for {self.read_timeout:g} s")
            elif now - heard >= self.read_timeout / 3:
                await pubsub.ping()

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
        for redis in (self._redis, self._listen_redis):
            if redis is not None:
                await redis.aclose()
