"""The FastAPI application: routers, error responses, health, the built UI, and the lifespan that
starts the runtime (and, in ``radrelay serve``, the DICOM gateway and in-process jobs)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES

from radrelay import worker
from radrelay.audit.endpoints import router as audit_router
from radrelay.auth.endpoints import router as auth_router
from radrelay.cases.endpoints import router as cases_router
from radrelay.config import Settings
from radrelay.delivery.endpoints import router as delivery_router
from radrelay.dicomweb.endpoints import router as dicomweb_router
from radrelay.dicomweb.endpoints import wado_uri_router
from radrelay.errors import AppError, DatabaseUnavailable, NotFound, QueueUnavailable
from radrelay.experts.endpoints import router as experts_router
from radrelay.hospitals.endpoints import router as hospitals_router
from radrelay.ingest.endpoints import router as upload_router
from radrelay.ingest.stow import router as stow_router
from radrelay.kit import diagnostics
from radrelay.kit.logs import redact_tokens
from radrelay.kit.runtime import Runtime
from radrelay.kit.telemetry import HttpMetrics
from radrelay.live.endpoints import router as live_router
from radrelay.metrics.endpoints import router as metrics_router
from radrelay.reporting.endpoints import router as reports_router
from radrelay.worklist.endpoints import router as worklist_router

log = logging.getLogger(__name__)

REPO_FRONTEND = Path(__file__).resolve().parents[2] / "frontend" / "dist"


def create_app(settings: Settings | None = None, *, with_gateway: bool = False) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # After uvicorn configured its loggers: request lines may carry ?token=.
        redact_tokens("uvicorn.access", "uvicorn.error")
        diagnostics.dump_tasks_on_sigusr2()
        runtime = Runtime(settings)
        await runtime.start(
            run_jobs_here=True,
            functions=worker.FUNCTIONS,
            periodic=worker.periodic(settings),
            listen_events=True,
        )
        app.state.runtime = runtime
        gateway = None
        if with_gateway and settings.dicom_enabled:
            from radrelay.ingest.gateway import DicomGateway

            gateway = DicomGateway(runtime, asyncio.get_running_loop())
            gateway.start(settings.dicom_host, settings.dicom_port)
            app.state.gateway = gateway
        try:
            yield
        finally:
            if gateway is not None:
                await asyncio.to_thread(gateway.stop)
            await runtime.close()

    app = FastAPI(
        title="RadRelay",
        version="0.1.0",
        summary="Teleradiology for a virtual imaging center: intake, routing, reading, reports.",
        lifespan=lifespan,
    )
    # JSON compresses tenfold; DICOM objects, frames and images hardly at all, and compressing
    # them would cost more CPU than the transfer it saves.
    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        compresslevel=5,
        exclude_content_types=(
            *DEFAULT_EXCLUDED_CONTENT_TYPES,
            "multipart/related",
            "application/dicom",
            "application/octet-stream",
        ),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "Content-Location", "Warning", "Content-Range"],
        )
    # Added last, so outermost: request times include the other middleware.
    app.add_middleware(HttpMetrics)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(RedisConnectionError)
    @app.exception_handler(RedisTimeoutError)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A dependency is down: say which, plainly (503, retry later), instead of an opaque
        # 500. The database failing means nothing was committed; Redis failing may come after a
        # commit (sending the jobs), so its message does not claim that nothing was kept.
        log.warning("dependency unavailable: %s", type(exc).__name__)
        error = (
            QueueUnavailable()
            if isinstance(exc, RedisConnectionError | RedisTimeoutError)
            else DatabaseUnavailable()
        )
        return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": e["msg"]}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return JSONResponse(
            {"error": "invalid_request", "message": message, "detail": problems}, status_code=422
        )

    for router in (
        auth_router,
        hospitals_router,
        cases_router,
        worklist_router,
        reports_router,
        delivery_router,
        experts_router,
        metrics_router,
        audit_router,
        upload_router,
        stow_router,
        dicomweb_router,
        wado_uri_router,
        live_router,
    ):
        app.include_router(router)

    @app.get("/api/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/api/health", tags=["health"])
    async def health(request: Request) -> JSONResponse:
        """Readiness: database, storage and job queue all answer. 503 names what does not."""
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, Any] = {}

        async def check(name: str, probe: Any) -> None:
            try:
                await asyncio.wait_for(probe(), timeout=5)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"failed: {type(exc).__name__}: {exc}"[:300]

        async def db() -> None:
            async with runtime.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def storage() -> None:
            await asyncio.to_thread(runtime.storage.check)

        async def queue() -> None:
            assert runtime.jobs is not None
            await runtime.jobs.ping()

        await asyncio.gather(
            check("database", db), check("storage", storage), check("queue", queue)
        )
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {
                "status": "ok" if ok else "unavailable",
                "checks": checks,
                "mode": "scale-out" if settings.redis_url else "embedded",
            },
            status_code=200 if ok else 503,
        )

    _mount_frontend(app, settings.frontend_dir or REPO_FRONTEND)
    return app


def _mount_frontend(app: FastAPI, dist: Path) -> None:
    """Serve the built UI at / with single-page-app fallback; the API keeps its own 404s."""
    index = dist / "index.html"
    if not index.is_file():
        return
    root = dist.resolve()

    @app.get("/{path:path}", include_in_schema=False)
    async def ui(path: str) -> FileResponse:
        if path.startswith(("api/", "dicomweb/", "ws")):
            raise NotFound(f"No such endpoint: /{path}")
        candidate = (root / path).resolve()
        if path and candidate.is_file() and root in candidate.parents:
            return FileResponse(candidate)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
