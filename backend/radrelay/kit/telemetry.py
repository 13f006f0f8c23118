"""Prometheus metrics of this process, for operations: the objects other modules update, and the
ASGI middleware that times HTTP requests. ``GET /metrics`` (``radrelay.metrics``) exposes them
with the default registry.

Labels are kept to small, fixed sets (route templates, never raw paths, which hold ids; status
classes, never codes): every label combination is a time series Prometheus keeps. No label ever
holds patient data or an id.

Each process keeps its own counters: in scale-out, Prometheus scrapes each API process, and the
arq worker's job metrics live in the worker (see docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

# ASGI types, spelled out so the kit does not depend on a web framework.
AsgiScope = MutableMapping[str, Any]
AsgiMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[AsgiMessage]]
Send = Callable[[AsgiMessage], Awaitable[None]]
AsgiApp = Callable[[AsgiScope, Receive, Send], Awaitable[None]]

UNMATCHED = "unmatched"

HTTP_REQUESTS = Counter(
    "radrelay_http_requests",
    "HTTP requests answered, by method, route template and status class.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "radrelay_http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response body.",
    ["method", "route", "status"],
    # Uploads and DICOMweb retrieves stream for tens of seconds; API calls take milliseconds.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)

ROUTING_DECISIONS = Counter(
    "radrelay_routing_decisions",
    "Routing engine decisions, by mode (push, pool, none) and trigger (ready, escalation, ...).",
    ["mode", "trigger"],
)
ROUTING_SECONDS = Histogram(
    "radrelay_routing_seconds",
    "Time the routing engine takes for one decision (pure computation, no I/O).",
    # The engine decides in 1-50 ms for a realistic roster; finer buckets there.
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 1),
)

JOBS = Counter(
    "radrelay_jobs",
    "Background jobs run, by function and outcome (success, failure, cancelled).",
    ["function", "outcome"],
)
JOB_SECONDS = Histogram(
    "radrelay_job_seconds",
    "Time one background job takes, by function.",
    ["function"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)

LIVE_CONNECTIONS = Gauge(
    "radrelay_live_connections",
    "Open /ws live-event connections in this process.",
)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def route_of(scope: AsgiScope) -> str:
    """The template of the route that answered (``/api/cases/{case_id}``), set by the router in
    the scope; ``unmatched`` when none did, so unknown paths cannot add series."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class HttpMetrics:
    """Counts and times HTTP requests by method, route template and status class.

    Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which buffers each response
    through a memory stream (breaking streamed DICOMweb and upload answers) and runs the app in
    another task. Register it last (outermost) so the time includes the other middleware.
    """

    def __init__(self, app: AsgiApp):
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_and_note(message: AsgiMessage) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            labels = (scope["method"], route_of(scope), status_class(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_SECONDS.labels(*labels).observe(time.perf_counter() - started)


@contextmanager
def job_timer(function: str) -> Iterator[None]:
    """Count and time one run of a background job: success, failure (it raised) or cancelled
    (shutdown, or arq's job timeout)."""
    started = time.perf_counter()
    outcome = "failure"
    try:
        yield
        outcome = "success"
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        JOBS.labels(function, outcome).inc()
        JOB_SECONDS.labels(function).observe(time.perf_counter() - started)


P = ParamSpec("P")
R = TypeVar("R")


def instrumented(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``fn`` counted and timed under its own name, for the arq worker's function list. Keeps
    ``__name__`` and ``__qualname__``, which arq names the function by."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with job_timer(fn.__name__):
            return await fn(*args, **kwargs)

    return run
