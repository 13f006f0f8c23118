"""Jobs are sent only after commit, run once per business key, on both backends: in-process
(embedded default) and arq on a real Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from conftest import PG_URL, fresh_postgres_database
from radrelay.config import Settings
from radrelay.kit import jobs, migrate
from radrelay.kit.runtime import Runtime
from radrelay.models import AuditEvent

REDIS = os.environ.get("RADRELAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CALLS: list[tuple[str, str]] = []


async def remember(ctx: dict[str, Any], note: str) -> None:
    """A job with an effect in the database, as real jobs have."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        session.add(AuditEvent(action="test.job", object_id=note))
    CALLS.append((ctx.get("job_id", ""), note))


TRIES: list[tuple[str, int]] = []


async def flaky(ctx: dict[str, Any], outage: bool) -> None:
    """Fails its first try: Redis away (``outage``), or a bug."""
    TRIES.append((ctx["job_id"].rsplit(":", 1)[-1], ctx["job_try"]))
    if ctx["job_try"] == 1:
        raise RedisConnectionError("gone") if outage else ValueError("a bug")


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    if PG_URL:
        with fresh_postgres_database() as url:
            migrate.upgrade(url)
            yield Settings(data_dir=tmp_path, database_url=url)
    else:
        s = Settings(data_dir=tmp_path)
        migrate.upgrade(s.resolved_database_url)
        yield s


async def enqueue_in_uow(runtime: Runtime, job_id: str, note: str, fail: bool = False) -> None:
    async with runtime.uow() as session:
        jobs.enqueue(session, "remember", job_id, note=note)
        if fail:
            raise RuntimeError("the request failed after enqueueing")


class TestInProcess:
    async def test_rollback_drops_commit_sends_and_ids_dedupe(self, settings: Settings) -> None:
        CALLS.clear()
        runtime = Runtime(settings.model_copy(update={"redis_url": None}))
        await runtime.start(run_jobs_here=True, functions=[remember])
        try:
            with pytest.raises(RuntimeError):
                await enqueue_in_uow(runtime, "k:1", "rolled back", fail=True)
            await enqueue_in_uow(runtime, "k:2", "first")
            await enqueue_in_uow(runtime, "k:2", "second with the same key")
            await enqueue_in_uow(runtime, "k:3", "third")
            assert isinstance(runtime.jobs, jobs.InProcessQueue)
            await runtime.jobs.drain()
        finally:
            await runtime.close()
        assert sorted(CALLS) == [("k:2", "first"), ("k:3", "third")]

    async def test_a_finished_id_runs_again_only_once_its_result_expires(self) -> None:
        ran: list[str] = []

        async def note(ctx: dict[str, Any], n: str) -> None:
            ran.append(n)

        async def run(keep: float) -> list[str]:
            ran.clear()
            queue = jobs.InProcessQueue([note], [], {}, keep_result_seconds=keep)
            for n in ("a", "b", "a", "c", "b"):
                await queue.send([jobs.Job("note", f"id:{n}", {"n": n})])
                await queue.drain()
            return ran

        assert await run(keep=3600) == ["a", "b", "c"]
        # Kept no time at all: every id finished before the next send may run again.
        assert await run(keep=0) == ["a", "b", "a", "c", "b"]

    def test_arguments_must_be_json(self) -> None:
        session = SimpleNamespace(info={})
        with pytest.raises(TypeError):
            jobs.enqueue(session, "remember", "k", when=object())  # type: ignore[arg-type]
        assert session.info == {}


class TestArq:
    async def test_jobs_reach_a_real_worker_after_commit_once_per_key(
        self, settings: Settings
    ) -> None:
        CALLS.clear()
        queue = f"radrelay-test:{secrets.token_hex(4)}"
        s = settings.model_copy(update={"redis_url": REDIS, "queue_name": queue})
        runtime = Runtime(s)
        await runtime.start(run_jobs_here=False)
        try:
            with pytest.raises(RuntimeError):
                await enqueue_in_uow(runtime, "a:1", "rolled back", fail=True)
            await enqueue_in_uow(runtime, "a:2", "first")
            await enqueue_in_uow(runtime, "a:2", "duplicate key")
            redis = Redis.from_url(REDIS)
            queued = await redis.zrange(queue, 0, -1)
            await redis.aclose()
            assert len(queued) == 1

            worker = Worker(
                functions=[remember],
                redis_settings=RedisSettings.from_dsn(REDIS),
                queue_name=queue,
                burst=True,
                job_serializer=jobs.serialize,
                job_deserializer=jobs.deserialize,
                ctx={"runtime": runtime},
                poll_delay=0.05,
            )
            await worker.main()
            await worker.close()
        finally:
            await runtime.close()
        assert [note for _, note in CALLS] == ["first"]

    async def test_a_dependency_failing_under_a_job_runs_it_again(self) -> None:
        """A job that meets Redis (or the database) away is tried again later, up to
        max_tries; a job that fails for any other reason is not: trying again would fail the
        same way."""
        from radrelay.worker import retried_when_unavailable

        TRIES.clear()
        queue = f"radrelay-test:{secrets.token_hex(4)}"
        redis = RedisSettings.from_dsn(REDIS)
        worker = Worker(
            functions=[retried_when_unavailable(flaky)],
            redis_settings=redis,
            queue_name=queue,
            burst=True,
            poll_delay=0.05,
            max_tries=5,
        )
        sender = await create_pool(redis, default_queue_name=queue)
        await sender.enqueue_job("flaky", True, _job_id=f"{queue}:outage")
        await sender.enqueue_job("flaky", False, _job_id=f"{queue}:bug")
        await sender.aclose()
        await worker.main()
        await worker.close()
        assert sorted(TRIES) == [("bug", 1), ("outage", 1), ("outage", 2)]
        assert (worker.jobs_complete, worker.jobs_failed, worker.jobs_retried) == (1, 1, 1)

    async def test_two_deployments_on_one_redis_each_run_every_periodic_tick(
        self, settings: Settings
    ) -> None:
        """Two deployments (queues) sharing a Redis: each worker runs its own sweeps and
        watches at every tick. arq's cron job ids are global to the Redis server, so unless
        they carry the queue, the workers race for each tick and each runs about half."""
        from arq.worker import get_kwargs

        from radrelay.worker import worker_settings

        every_second = {
            "redis_url": REDIS,
            "sweep_interval_seconds": 1,
            "sla_watch_seconds": 1,
            "delivery_retry_seconds": 1,
            "s3_sweep_seconds": 1,
        }
        workers = []
        for _ in range(2):
            queue = f"radrelay-test:{secrets.token_hex(4)}"
            s = settings.model_copy(update={**every_second, "queue_name": queue})
            kwargs = get_kwargs(worker_settings(s))
            workers.append(Worker(**kwargs, handle_signals=False, poll_delay=0.05))
        runs = [asyncio.create_task(w.main()) for w in workers]
        await asyncio.sleep(4.5)
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for w in workers:
            # A periodic job may be running at this instant: let it end, as it would in a worker
            # stopping for a deploy. close() would cancel it and raise its CancelledError.
            await asyncio.gather(*w.tasks.values())
            await w.close()
        # Five periodic jobs, run at start-up and at each of the 4 or more whole seconds
        # since: at least 3 of those ticks each, allowing a slow start.
        assert [w.jobs_complete >= 5 * (1 + 3) for w in workers] == [True, True], [
            (w.jobs_complete, w.jobs_failed) for w in workers
        ]
        assert [w.jobs_failed for w in workers] == [0, 0]

    async def test_a_worker_told_to_stop_stops(self, settings: Settings) -> None:
        """Cancelling a worker's poll loop (what arq does on SIGTERM) ends it. On Python 3.11
        redis-py's send under a socket timeout went through asyncio.wait_for, which swallows a
        cancellation arriving as the send finishes: the worker polled on (kit/jobs.py)."""
        from arq.worker import get_kwargs

        from radrelay.worker import worker_settings

        queue = f"radrelay-test:{secrets.token_hex(4)}"
        s = settings.model_copy(update={"redis_url": REDIS, "queue_name": queue})
        kwargs = get_kwargs(worker_settings(s))
        start_up = kwargs.pop("on_startup")
        ignored = []
        for attempt in range(24):
            started = asyncio.Event()

            async def on_startup(ctx: dict[str, Any], started: asyncio.Event = started) -> None:
                await start_up(ctx)
                started.set()  # polling from now on

            # No pause between polls: the loop is in a Redis command nearly all the time.
            worker = Worker(**kwargs, on_startup=on_startup, handle_signals=False, poll_delay=0)
            run = asyncio.create_task(worker.main())
            await started.wait()
            await asyncio.sleep(0.02 + attempt * 0.003)
            run.cancel()
            await asyncio.wait([run], timeout=2)
            if not run.done():
                ignored.append(attempt)
                while not run.done():  # stop it anyway, to clean up
                    run.cancel()
                    await asyncio.wait([run], timeout=0.1)
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            await worker.close()
        assert ignored == []

    async def test_job_payload_is_json_not_pickle(self, settings: Settings) -> None:
        queue = f"radrelay-test:{secrets.token_hex(4)}"
        runtime = Runtime(settings.model_copy(update={"redis_url": REDIS, "queue_name": queue}))
        await runtime.start(run_jobs_here=False)
        try:
            await enqueue_in_uow(runtime, "j:1", "readable")
            redis = Redis.from_url(REDIS)
            raw = await redis.get(f"arq:job:{queue}:j:1")
            await redis.aclose()
        finally:
            await runtime.close()
        decoded = jobs.deserialize(raw)
        assert decoded["f"] == "remember"
        assert decoded["k"] == {"note": "readable"}
