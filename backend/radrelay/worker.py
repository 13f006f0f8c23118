"""Job functions and the arq worker (``radrelay worker``, scale-out).

The same functions run in-process in the embedded default (``kit.jobs.InProcessQueue``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from arq import Retry as RetryJob
from arq import cron
from arq.connections import RedisSettings
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from radrelay.archive.tasks import offload_objects, offload_sweep
from radrelay.cases.tasks import case_ready, sweep_stable_studies
from radrelay.config import Settings
from radrelay.delivery.tasks import deliver, delivery_retry
from radrelay.dicomweb.tasks import index_study
from radrelay.errors import TEMPORARY
from radrelay.kit import diagnostics, jobs, telemetry
from radrelay.kit.runtime import Runtime
from radrelay.reporting.tasks import critical_watch
from radrelay.worklist.tasks import expert_offline, route_case, sla_watch

log = logging.getLogger(__name__)

FUNCTIONS: list[jobs.JobFunction] = [
    case_ready,
    index_study,
    route_case,
    expert_offline,
    deliver,
    offload_objects,
]


def retried_when_unavailable(
    fn: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """``fn``, tried again later (up to ``max_tries``) when a dependency fails under it. arq
    would otherwise record the job as failed and never run it again, and the work it carries
    (routing a ready case, indexing a study, a delivery) would wait for a periodic sweep that
    may not look for it. Our jobs are idempotent, so a second run after a half-done first one
    is safe."""

    @functools.wraps(fn)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(ctx, *args, **kwargs)
        except TEMPORARY as error:
            defer = min(30, 2 ** ctx.get("job_try", 1))
            log.warning("%s: %s, trying again in %d s", fn.__name__, type(error).__name__, defer)
            raise RetryJob(defer=defer) from error

    return run


def periodic(settings: Settings) -> list[jobs.Periodic]:
    return [
        jobs.Periodic(sweep_stable_studies, settings.sweep_interval_seconds),
        jobs.Periodic(sla_watch, settings.sla_watch_seconds),
        jobs.Periodic(critical_watch, settings.sla_watch_seconds),
        jobs.Periodic(delivery_retry, settings.delivery_retry_seconds),
        jobs.Periodic(offload_sweep, settings.s3_sweep_seconds),
    ]


def worker_settings(settings: Settings, *, outlast_outages: bool = True) -> type:
    """arq's WorkerSettings for these settings (arq reads class attributes).

    ``outlast_outages``: the worker's Redis commands retry, with a backoff of up to 5 s, for as
    long as Redis is unreachable, so a worker waits out an outage and carries on by itself
    (arq would otherwise end the process at the first failed poll). Not for the health check,
    which must answer rather than wait."""
    if not settings.redis_url:
        raise RuntimeError("radrelay worker needs RADRELAY_REDIS_URL")
    redis = RedisSettings.from_dsn(settings.redis_url)
    if outlast_outages:
        # OSError too: a refused connection is raised as it comes from the socket.
        errors = (RedisConnectionError, RedisTimeoutError, OSError)
        redis.retry = Retry(ExponentialBackoff(cap=5, base=0.2), -1, errors)  # type: ignore[arg-type]
        redis.retry_on_error = list(errors)
    step = max(1, int(settings.sweep_interval_seconds))
    seconds = set(range(0, 60, step))
    watch_seconds = set(range(0, 60, max(1, min(59, int(settings.sla_watch_seconds)))))
    retry_seconds = set(range(0, 60, max(1, min(59, int(settings.delivery_retry_seconds)))))
    # Sweeps of a minute or more: once a minute (cron has no longer step of seconds).
    offload_step = max(1, int(settings.s3_sweep_seconds))
    offload_seconds = set(range(0, 60, offload_step)) if offload_step < 60 else {0}

    async def on_startup(ctx: dict[str, Any]) -> None:
        diagnostics.dump_tasks_on_sigusr2()
        await jobs.time_out_reads(ctx["redis"], settings.redis_read_timeout_seconds)
        if settings.worker_metrics_port:
            # A worker serves no HTTP: its job counts reach Prometheus on a port of its own.
            from prometheus_client import start_http_server

            start_http_server(settings.worker_metrics_port, addr=settings.host)
        runtime = Runtime(settings)
        await runtime.start(run_jobs_here=False)
        ctx["runtime"] = runtime

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        runtime: Runtime | None = ctx.get("runtime")
        if runtime is not None:
            await runtime.close()

    class WorkerSettings:
        functions: ClassVar[list[Any]] = [
            retried_when_unavailable(telemetry.instrumented(f)) for f in FUNCTIONS
        ]
        cron_jobs: ClassVar[list[Any]] = [
            cron(
                telemetry.instrumented(fn),
                # arq names a cron run's job "cron:<function>:<time>", one id for the whole
                # Redis server: two deployments (or a test run's servers) on one Redis would
                # take each other's runs, and the loser's sweep or watch would not run at all.
                name=f"{settings.queue_name}:cron:{fn.__name__}",
                second=second,
                run_at_startup=True,
                unique=True,
            )
            for fn, second in (
                (sweep_stable_studies, seconds),
                (sla_watch, watch_seconds),
                (critical_watch, watch_seconds),
                (delivery_retry, retry_seconds),
                (offload_sweep, offload_seconds),
            )
        ]
        redis_settings = redis
        queue_name = settings.queue_name
        job_serializer = staticmethod(jobs.serialize)
        job_deserializer = staticmethod(jobs.deserialize)
        max_tries = 5
        keep_result = 3600
        health_check_key = f"{settings.queue_name}:health-check"

    WorkerSettings.on_startup = staticmethod(on_startup)  # type: ignore[attr-defined]
    WorkerSettings.on_shutdown = staticmethod(on_shutdown)  # type: ignore[attr-defined]
    return WorkerSettings
