"""Job functions and the arq worker (``radrelay worker``, scale-out).

The same functions run in-process in the embedded default (``kit.jobs.InProcessQueue``).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings

from radrelay.cases.tasks import case_ready, sweep_stable_studies
from radrelay.config import Settings
from radrelay.delivery.tasks import deliver, delivery_retry
from radrelay.dicomweb.tasks import index_study
from radrelay.kit import jobs, telemetry
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
]


def periodic(settings: Settings) -> list[jobs.Periodic]:
    return [
        jobs.Periodic(sweep_stable_studies, settings.sweep_interval_seconds),
        jobs.Periodic(sla_watch, settings.sla_watch_seconds),
        jobs.Periodic(critical_watch, settings.sla_watch_seconds),
        jobs.Periodic(delivery_retry, settings.delivery_retry_seconds),
    ]


def worker_settings(settings: Settings) -> type:
    """arq's WorkerSettings for these settings (arq reads class attributes)."""
    if not settings.redis_url:
        raise RuntimeError("radrelay worker needs RADRELAY_REDIS_URL")
    redis = RedisSettings.from_dsn(settings.redis_url)
    step = max(1, int(settings.sweep_interval_seconds))
    seconds = set(range(0, 60, step))
    watch_seconds = set(range(0, 60, max(1, min(59, int(settings.sla_watch_seconds)))))
    retry_seconds = set(range(0, 60, max(1, min(59, int(settings.delivery_retry_seconds)))))

    async def on_startup(ctx: dict[str, Any]) -> None:
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
        functions: ClassVar[list[Any]] = [telemetry.instrumented(f) for f in FUNCTIONS]
        cron_jobs: ClassVar[list[Any]] = [
            cron(
                telemetry.instrumented(sweep_stable_studies),
                second=seconds,
                run_at_startup=True,
                unique=True,
            ),
            cron(
                telemetry.instrumented(sla_watch),
                second=watch_seconds,
                run_at_startup=True,
                unique=True,
            ),
            cron(
                telemetry.instrumented(critical_watch),
                second=watch_seconds,
                run_at_startup=True,
                unique=True,
            ),
            cron(
                telemetry.instrumented(delivery_retry),
                second=retry_seconds,
                run_at_startup=True,
                unique=True,
            ),
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
