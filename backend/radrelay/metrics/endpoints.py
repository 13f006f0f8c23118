"""Turnaround metrics for coordinators, and Prometheus ``/metrics`` for operations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, generate_latest

from radrelay.auth.dependencies import RuntimeDep, Session, require
from radrelay.auth.schemas import Principal, Role
from radrelay.cases.schemas import Priority, Subspecialty
from radrelay.metrics.schemas import GroupBy, OutputFormat, TurnaroundFilters, TurnaroundReport
from radrelay.metrics.service import check_scrape_token, csv_filename, metrics, to_csv

router = APIRouter(tags=["metrics"])

# Technicians see their own hospital's turnaround through the scope rule; a radiologist's scope
# is their own cases, which says nothing about a service level.
MetricsPrincipal = Annotated[Principal, Depends(require(Role.coordinator, Role.admin, Role.tech))]

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# The text format every Prometheus version reads (what generate_latest writes); newer clients
# name version 1.0.0 as "latest", which older servers do not recognise.
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _wants_csv(output: OutputFormat | None, accept: str | None) -> bool:
    if output is not None:
        return output == OutputFormat.csv
    return "text/csv" in (accept or "").lower()


@router.get(
    "/api/metrics/turnaround",
    response_model=TurnaroundReport,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV when asked."}},
)
async def turnaround(
    session: Session,
    runtime: RuntimeDep,
    principal: MetricsPrincipal,
    since: Annotated[
        datetime | None,
        Query(description="Start on received_at, inclusive (ISO 8601; no zone: UTC)."),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="End on received_at, exclusive; default now.")
    ] = None,
    group_by: GroupBy = GroupBy.hospital,
    hospital_id: int | None = None,
    priority: Priority | None = None,
    subspecialty: Subspecialty | None = None,
    output: Annotated[
        OutputFormat | None,
        Query(alias="format", description="csv or json; default from Accept, else json."),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> TurnaroundReport | Response:
    """Turnaround of the cases received in the range (default the last 7 days, at most 366):
    per group and overall, the count, the p50/p90/p95 minutes of each interval between
    milestones, and SLA compliance. See docs/metrics.md."""
    as_csv = _wants_csv(output, accept)
    report = await metrics.turnaround(
        runtime.db,
        session,
        principal,
        since=since,
        until=until,
        group_by=group_by,
        filters=TurnaroundFilters(
            hospital_id=hospital_id, priority=priority, subspecialty=subspecialty
        ),
        output="csv" if as_csv else "json",
    )
    if not as_csv:
        return report
    return Response(
        to_csv(report),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'},
    )


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus text exposition: this process's counters and histograms, and open-case gauges
    computed from the database now. Counts and timings only, never patient data."""
    check_scrape_token(runtime.settings.metrics_token, request.headers.get("authorization"))
    snapshot = await metrics.scrape_collector(runtime.db)
    body = generate_latest(REGISTRY) + generate_latest(snapshot)
    return Response(body, media_type=PROMETHEUS_TEXT)
