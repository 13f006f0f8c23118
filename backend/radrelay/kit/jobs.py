"""Background jobs: buffered during a unit of work, sent only after it commits.

A job is a registered coroutine ``fn(ctx, **kwargs)`` plus a business-key id such as
``case-ready:42``. Both backends treat the id the way arq does: while a job with that id is
queued, running, or its result is still kept, enqueueing it again does nothing. Jobs may still run
more than once (a worker dies mid-job and arq retries it), so every job must be idempotent.

- ``ArqQueue`` (``RADRELAY_REDIS_URL`` set): jobs go to Redis, ``radrelay worker`` runs them.
- ``InProcessQueue`` (embedded default): jobs run as asyncio tasks in the serving process, and
  the periodic jobs run on a timer. Same functions, same ids, same JSON arguments.

Arguments are JSON (ids, never ORM objects or pickles) so a job can be read, logged and replayed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.errors import QueueUnavailable
from radrelay.kit import telemetry

log = logging.getLogger(__name__)

JobFunction = Callable[..., Coroutine[Any, Any, Any]]
PENDING = "pending_jobs"


@dataclass(frozen=True)
class Job:
    function: str
    job_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Periodic:
    """A job run every ``seconds`` by exactly one process (arq cron is unique across workers)."""

    function: JobFunction
    seconds: float


def enqueue(session: AsyncSession, function: str, job_id: str, **kwargs: Any) -> None:
    """Buffer a job on the session; the unit of work sends it after commit, drops it on rollback."""
    json.dumps(kwargs)  # fail here, in the caller, not later in a worker
    session.info.setdefault(PENDING, []).append(Job(function, job_id, kwargs))


def serialize(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def deserialize(data: bytes) -> Any:
    return json.loads(data)


class JobQueue(Protocol):
    async def start(self) -> None: ...
    async def send(self, jobs: Iterable[Job]) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...


class _SendsWithoutWaitFor:
    """A redis-py connection whose ``socket_timeout`` bounds reads only.

    With ``socket_timeout`` set, redis-py sends each command inside ``asyncio.wait_for``, and
    on Python 3.11 ``wait_for`` swallows a cancellation that arrives just as the send finishes
    (CPython gh-86296, fixed in 3.12): the cancelled task carries on. A task that talks to
    Redis in a loop, as arq's poll loop does, then ignores most cancellations; measured here,
    121 of 300 cancellations of a loop of GETs went unnoticed, and a worker told to stop went
    on polling. A send only waits when the socket's buffer is full, which our small commands
    never fill; a dead connection shows as a read that times out."""

    socket_timeout: float | None

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # Connecting and the health check's PING read replies: they keep the timeout.
        if not self.is_connected:  # type: ignore[attr-defined]
            await self.connect()  # type: ignore[attr-defined]
        elif check_health:
            await self.check_health()  # type: ignore[attr-defined]
        # A connection serves one command at a time, so the timeout can be lifted for the send.
        timeout, self.socket_timeout = self.socket_timeout, None
        try:
            await super().send_packed_command(command, check_health=False)  # type: ignore[misc]
        finally:
            self.socket_timeout = timeout


@functools.cache
def _reads_time_out(connection_class: type) -> type:
    # The pool's own class (plain TCP, TLS or a Unix socket), with the send above.
    name = f"ReadTimeout{connection_class.__name__}"
    return type(name, (_SendsWithoutWaitFor, connection_class), {})


async def time_out_reads(client: Any, seconds: float) -> None:
    """Give a Redis client's connections (an arq pool's too) a read timeout; arq sets only a
    connect timeout.

    A connection dropped on the way without a reset (a Redis failover, a NAT or firewall
    forgetting it) leaves a command waiting for a reply that never comes, until TCP gives up
    hours later; a worker's poll loop, and with it every job and cron, waits as long. No
    command of ours blocks on Redis by design (arq polls), so a reply this late means a dead
    connection: redis-py raises TimeoutError, and the retry policy reconnects. The client's
    existing connections were built without the timeout and are replaced."""
    connections = client.connection_pool
    connections.connection_kwargs["socket_timeout"] = seconds
    connections.connection_class = _reads_time_out(connections.connection_class)
    await connections.disconnect()
    connections.reset()


class ArqQueue:
    def __init__(self, redis_url: str, queue_name: str, read_timeout: float = 15.0):
        self.redis_url = redis_url
        self.queue_name = queue_name
        self.read_timeout = read_timeout
        self._pool: Any = None

    async def start(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        redis = RedisSettings.from_dsn(self.redis_url)
        # A command that timed out (time_out_reads) goes once more, on a new connection: the
        # jobs of a committed transaction must not be lost to one dead connection.
        redis.retry_on_timeout = True
        self._pool = await create_pool(
            redis,
            default_queue_name=self.queue_name,
            job_serializer=serialize,
            job_deserializer=deserialize,
        )
        await time_out_reads(self._pool, self.read_timeout)

    def arq_job_id(self, job_id: str) -> str:
        # arq's job ids are global to the Redis server: prefixing the queue name keeps two
        # deployments (or test runs) on one Redis from swallowing each other's jobs.
        return f"{self.queue_name}:{job_id}"

    async def send(self, jobs: Iterable[Job]) -> None:
        for job in jobs:
            await self._enqueue(job)

    async def _enqueue(self, job: Job, tries: int = 3) -> None:
        from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

        job_id = self.arq_job_id(job.job_id)
        for _ in range(tries):
            if await self._pool.enqueue_job(job.function, _job_id=job_id, **job.kwargs):
                return
            # arq answers None when the id is taken (the job is queued, running or done:
            # ours are idempotent, so that is success), and also when the connection died
            # under its WATCH (redis-py's WatchError), where nothing was queued: look.
            keys = (job_key_prefix + job_id, in_progress_key_prefix + job_id)
            if await self._pool.exists(*keys, result_key_prefix + job_id):
                return
        raise QueueUnavailable(f"the job queue did not take a {job.function} job")

    async def ping(self) -> None:
        await self._pool.ping()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


class InProcessQueue:
    """Runs jobs on this event loop. ``ctx`` is the same dict an arq worker would pass."""

    def __init__(
        self,
        functions: Iterable[JobFunction],
        periodic: Iterable[Periodic],
        ctx: dict[str, Any],
        keep_result_seconds: float = 3600.0,
    ):
        self.functions = {fn.__name__: fn for fn in functions}
        self.periodic = list(periodic)
        self.ctx = ctx
        self.keep_result_seconds = keep_result_seconds
        self._running: dict[str, asyncio.Task[Any]] = {}
        # Job id -> when it finished, oldest first (a job id finishes once while kept), so
        # expiry looks only at the front: filling a busy day's studies sends a job per
        # instance, and a scan of the whole hour on each send took 15% of the time.
        self._finished: OrderedDict[str, float] = OrderedDict()
        self._timers: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        for p in self.periodic:
            self._timers.append(
                asyncio.create_task(self._every(p), name=f"periodic:{p.function.__name__}")
            )

    async def send(self, jobs: Iterable[Job]) -> None:
        expired = time.monotonic() - self.keep_result_seconds
        while self._finished and next(iter(self._finished.values())) < expired:
            self._finished.popitem(last=False)
        for job in jobs:
            if job.job_id in self._running or job.job_id in self._finished:
                continue
            fn = self.functions.get(job.function)
            if fn is None:
                raise LookupError(f"no job function named {job.function!r}")
            task = asyncio.create_task(self._run(job, fn), name=f"job:{job.job_id}")
            self._running[job.job_id] = task

    async def _run(self, job: Job, fn: JobFunction) -> None:
        try:
            with telemetry.job_timer(job.function):
                await fn(dict(self.ctx, job_id=job.job_id), **job.kwargs)
        except Exception:
            log.exception("job %s failed", job.job_id)
        finally:
            self._running.pop(job.job_id, None)
            self._finished[job.job_id] = time.monotonic()

    async def _every(self, p: Periodic) -> None:
        while True:
            await asyncio.sleep(p.seconds)
            try:
                await p.function(dict(self.ctx))
            except Exception:
                log.exception("periodic job %s failed", p.function.__name__)

    async def drain(self) -> None:
        """Wait until no job is running (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for t in self._timers:
            t.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        await self.drain()
