"""Turnaround metrics: percentiles of the intervals between case milestones, and SLA compliance,
by hospital, subspecialty, priority, modality, expert or day; and the scrape-time gauges of
``/metrics``.

The SQL fetches one narrow row per case in the range (``repository.case_times``) and the
aggregation is plain Python: a range of 100,000 cases is a few megabytes and well under a
second, and percentiles stay exact, which SQLite cannot compute and PostgreSQL computes per
group with one query per interval.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal
from radrelay.cases import auth
from radrelay.cases.schemas import Priority
from radrelay.errors import BadRequest, Unauthenticated
from radrelay.kit.db import Database, utcnow
from radrelay.metrics.repository import repository
from radrelay.metrics.schemas import (
    INTERVAL_ENDS,
    PERCENTILES,
    CaseTimes,
    GroupBy,
    GroupStats,
    Interval,
    IntervalStats,
    SlaStats,
    TurnaroundFilters,
    TurnaroundReport,
)

DEFAULT_RANGE = timedelta(days=7)
MAX_RANGE = timedelta(days=366)
# Beyond this many cases the report would hold the request for seconds and the answer would
# not be read anyway: the caller narrows the range or filters instead.
MAX_CASES = 250_000

PERCENTILE_METHOD = (
    "nearest-rank: the smallest observed value with at least p% of the values at or below it "
    "(numpy method 'inverted_cdf')"
)

NONE_KEY = ""
_NONE_LABELS = {
    GroupBy.subspecialty: "(unclassified)",
    GroupBy.expert: "(no reader)",
}
_PRIORITY_ORDER = {p.value: i for i, p in enumerate(Priority)}


# --- pure computation -------------------------------------------------------------------------


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of ``ordered`` (sorted ascending, not empty), 0 < p <= 100.

    Chosen over linear interpolation because the answer is always a case's real time and reads
    as an SLA statement: "90% of cases took at most p90 minutes" holds exactly, however few
    cases there are. The rank is computed in exact fractions so 70% of 10 is rank 7, not 8.
    """
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    rank = math.ceil(Fraction(str(p)) * len(ordered) / 100)
    return ordered[max(rank, 1) - 1]


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60


def interval_stats(interval: Interval, rows: Iterable[CaseTimes]) -> IntervalStats:
    """Percentiles in minutes over the cases that reached both ends of ``interval``."""
    start, end = INTERVAL_ENDS[interval]
    values = sorted(
        m
        for row in rows
        if (m := minutes_between(getattr(row, start), getattr(row, end))) is not None
    )
    found = {p: round(percentile(values, p), 2) if values else None for p in PERCENTILES}
    return IntervalStats(
        interval=interval, count=len(values), p50=found[50], p90=found[90], p95=found[95]
    )


def sla_stats(rows: Iterable[CaseTimes], now: datetime) -> SlaStats:
    on_time = late = no_deadline = breached_open = 0
    for row in rows:
        if row.final_at is None:
            if row.deadline is not None and row.deadline < now:
                breached_open += 1
        elif row.deadline is None:
            no_deadline += 1
        elif row.final_at <= row.deadline:
            on_time += 1
        else:
            late += 1
    judged = on_time + late
    return SlaStats(
        finished=on_time + late + no_deadline,
        on_time=on_time,
        late=late,
        no_deadline=no_deadline,
        compliance=round(on_time / judged, 4) if judged else None,
        breached_open=breached_open,
    )


def group_stats(key: str, label: str, rows: Sequence[CaseTimes], now: datetime) -> GroupStats:
    return GroupStats(
        key=key,
        label=label,
        cases=len(rows),
        intervals=[interval_stats(i, rows) for i in Interval],
        sla=sla_stats(rows, now),
    )


def group_of(row: CaseTimes, group_by: GroupBy) -> tuple[str, str]:
    """(key, label) of the group a case falls in."""
    match group_by:
        case GroupBy.hospital:
            return str(row.hospital_id), row.hospital_code
        case GroupBy.subspecialty:
            value = row.subspecialty or NONE_KEY
            return value, value or _NONE_LABELS[group_by]
        case GroupBy.priority:
            return row.priority, row.priority
        case GroupBy.modality:
            return row.modality, row.modality
        case GroupBy.expert:
            if row.reader_id is None:
                return NONE_KEY, _NONE_LABELS[group_by]
            return str(row.reader_id), row.reader_name or str(row.reader_id)
        case GroupBy.day:
            day = row.received_at.astimezone(UTC).date().isoformat()
            return day, day


def _order(group_by: GroupBy) -> Callable[[GroupStats], tuple[object, ...]]:
    if group_by == GroupBy.priority:
        return lambda g: (_PRIORITY_ORDER.get(g.key, len(_PRIORITY_ORDER)), g.key)
    # Days sort by date; everything else by what a person reads, with "(none)" groups last.
    return lambda g: (g.key == NONE_KEY, g.label.casefold(), g.key)


def aggregate(
    rows: Sequence[CaseTimes], group_by: GroupBy, now: datetime
) -> tuple[GroupStats, list[GroupStats]]:
    """The overall row and one row per group, in a stable order."""
    grouped: dict[tuple[str, str], list[CaseTimes]] = defaultdict(list)
    for row in rows:
        grouped[group_of(row, group_by)].append(row)
    groups = [group_stats(key, label, members, now) for (key, label), members in grouped.items()]
    groups.sort(key=_order(group_by))
    return group_stats("all", "(all)", rows, now), groups


def resolve_range(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until) in UTC; naive times are taken as UTC. Default: the 7 days before now."""
    until = _as_utc(until) if until is not None else now
    since = _as_utc(since) if since is not None else until - DEFAULT_RANGE
    if since >= until:
        raise BadRequest("since must be before until.")
    if until - since > MAX_RANGE:
        raise BadRequest(
            f"The range may span at most {MAX_RANGE.days} days; "
            f"this one spans {(until - since).days}. Ask for a shorter range."
        )
    return since, until


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


CSV_COLUMNS = (
    "row",
    "group_by",
    "group_key",
    "group_label",
    "cases",
    "interval",
    "count",
    "p50_minutes",
    "p90_minutes",
    "p95_minutes",
    "finished",
    "on_time",
    "late",
    "no_deadline",
    "compliance",
    "breached_open",
)


def _cell_text(value: str) -> str:
    # Names are typed by people and the file is opened in spreadsheets: a leading = + - @ would
    # run as a formula (CSV injection), so such a text is quoted as text.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _blank(value: object) -> object:
    return "" if value is None else value


def to_csv(report: TurnaroundReport) -> str:
    """One line per group and interval (overall first), the group's SLA figures repeated."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for kind, group in [("overall", report.overall), *(("group", g) for g in report.groups)]:
        sla = group.sla
        for stats in group.intervals:
            writer.writerow(
                [
                    kind,
                    report.group_by.value,
                    _cell_text(group.key),
                    _cell_text(group.label),
                    group.cases,
                    stats.interval.value,
                    stats.count,
                    _blank(stats.p50),
                    _blank(stats.p90),
                    _blank(stats.p95),
                    sla.finished,
                    sla.on_time,
                    sla.late,
                    sla.no_deadline,
                    _blank(sla.compliance),
                    sla.breached_open,
                ]
            )
    return out.getvalue()


def csv_filename(report: TurnaroundReport) -> str:
    stamp = "%Y%m%dT%H%MZ"
    return (
        f"turnaround_{report.group_by.value}_"
        f"{report.since.strftime(stamp)}_{report.until.strftime(stamp)}.csv"
    )


def check_scrape_token(expected: str | None, authorization: str | None) -> None:
    """``/metrics`` is open unless a token is configured; then ``Bearer <token>`` is needed."""
    if not expected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthenticated("Present the metrics token: Authorization: Bearer <token>.")


class _Snapshot(Collector):
    """Metric families computed once, at scrape, from the database."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


# --- the service ------------------------------------------------------------------------------


class MetricsService:
    async def turnaround(
        self,
        db: Database,
        session: AsyncSession,
        principal: Principal,
        *,
        since: datetime | None,
        until: datetime | None,
        group_by: GroupBy,
        filters: TurnaroundFilters,
        output: str,
    ) -> TurnaroundReport:
        """Read through ``db.reading()`` (on SQLite a snapshot beside the writer, so a year's
        report never holds up ingest); audit on the request's ``session``."""
        now = utcnow()
        since, until = resolve_range(since, until, now)
        async with db.reading() as reading:
            rows = await repository.case_times(
                reading,
                scope=auth.scope_of(principal),
                since=since,
                until=until,
                filters=filters,
                limit=MAX_CASES + 1,
            )
        if len(rows) > MAX_CASES:
            raise BadRequest(
                f"More than {MAX_CASES} cases in this range: ask for a shorter range or filter "
                "by hospital, priority or subspecialty."
            )
        # Pure CPU (about half a second for 100,000 cases): off the event loop, so other
        # requests go on being answered meanwhile.
        overall, groups = await asyncio.to_thread(aggregate, rows, group_by, now)
        audit.record(
            session,
            principal,
            "metrics.turnaround",
            object_type="metrics",
            hospital_id=filters.hospital_id,
            detail={
                "since": since.isoformat(),
                "until": until.isoformat(),
                "group_by": group_by.value,
                "filters": filters.model_dump(mode="json", exclude_none=True),
                "format": output,
                "cases": len(rows),
            },
        )
        return TurnaroundReport(
            since=since,
            until=until,
            generated_at=now,
            group_by=group_by,
            filters=filters,
            percentile_method=PERCENTILE_METHOD,
            overall=overall,
            groups=groups,
        )

    async def scrape_collector(self, db: Database) -> Collector:
        """Open-case gauges as of now, for one scrape: computed from the database each time
        (not kept in process gauges) so every API process reports the same truth and a count
        that falls to zero is not left behind at its last value."""
        now = utcnow()
        async with db.reading() as session:
            open_cases = await repository.open_cases(session)
            past_deadline = await repository.open_past_deadline(session, now)
        by_status = GaugeMetricFamily(
            "radrelay_open_cases",
            "Cases without a final report, by status and priority.",
            labels=["status", "priority"],
        )
        for status, priority, n in open_cases:
            by_status.add_metric([status, priority], n)
        late = GaugeMetricFamily(
            "radrelay_open_cases_past_deadline",
            "Cases without a final report whose SLA deadline has passed, by priority.",
            labels=["priority"],
        )
        # Every priority, zero included: an alert on "> 0" must see a zero, not no series.
        counts = dict(past_deadline)
        for priority in [*(p.value for p in Priority), *sorted(counts.keys() - set(Priority))]:
            late.add_metric([priority], counts.get(priority, 0))
        return _Snapshot([by_status, late])


metrics = MetricsService()
