"""Turnaround metrics and Prometheus ``/metrics``: the pure computation on hand-built cases
(exact numbers), then the API through a real server."""

from __future__ import annotations

import asyncio
import csv
import io
import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import REGISTRY

from conftest import REDIS_URL, Server, World, running_server, wait_until
from helpers import part10, study, upload
from radrelay.errors import BadRequest, Unauthenticated
from radrelay.kit import telemetry
from radrelay.metrics.schemas import (
    CaseTimes,
    GroupBy,
    Interval,
    TurnaroundFilters,
    TurnaroundReport,
)
from radrelay.metrics.service import (
    CSV_COLUMNS,
    MAX_RANGE,
    aggregate,
    check_scrape_token,
    csv_filename,
    group_of,
    interval_stats,
    percentile,
    resolve_range,
    sla_stats,
    to_csv,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def case(**kw: Any) -> CaseTimes:
    """A case received at T0 at hospital 1 (H1), routine CT, unrouted, with no reader."""
    values: dict[str, Any] = {
        "received_at": T0,
        "assigned_at": None,
        "opened_at": None,
        "preliminary_at": None,
        "final_at": None,
        "deadline": None,
        "hospital_id": 1,
        "hospital_code": "H1",
        "subspecialty": None,
        "priority": "routine",
        "modality": "CT",
        "reader_id": None,
        "reader_name": None,
    }
    values.update(kw)
    return CaseTimes(**values)


def stats_of(group: Any, interval: Interval) -> Any:
    return next(s for s in group.intervals if s.interval == interval)


# --- pure: percentiles -----------------------------------------------------------------------


class TestPercentile:
    def test_nearest_rank_of_one_to_ten(self) -> None:
        values = [float(v) for v in range(1, 11)]
        assert percentile(values, 50) == 5
        assert percentile(values, 90) == 9
        assert percentile(values, 95) == 10
        assert percentile(values, 100) == 10
        assert percentile(values, 1) == 1

    def test_the_textbook_example(self) -> None:
        # Nearest-rank on 15, 20, 35, 40, 50: p30 and p40 are 20, p50 is 35, p100 is 50.
        values = [15.0, 20.0, 35.0, 40.0, 50.0]
        assert [percentile(values, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]

    def test_rank_is_exact_where_floats_would_round_up(self) -> None:
        # 0.7 * 10 is 7.000000000000001 in floats, whose ceiling would be rank 8.
        values = [float(v) for v in range(1, 11)]
        assert percentile(values, 70) == 7
        assert percentile(values, 99.9) == 10

    def test_one_value_is_every_percentile(self) -> None:
        assert [percentile([42.5], p) for p in (50, 90, 95)] == [42.5, 42.5, 42.5]

    def test_agrees_with_numpy_inverted_cdf(self) -> None:
        rng = random.Random(7)
        for n in (1, 2, 3, 7, 20, 101, 1000):
            values = sorted(rng.uniform(0, 600) for _ in range(n))
            for p in (50, 90, 95):
                expected = float(np.percentile(values, p, method="inverted_cdf"))
                assert percentile(values, p) == expected, (n, p)

    def test_refuses_nonsense(self) -> None:
        with pytest.raises(ValueError):
            percentile([], 50)
        with pytest.raises(ValueError):
            percentile([1.0], 0)
        with pytest.raises(ValueError):
            percentile([1.0], 101)


# --- pure: intervals, SLA, grouping ----------------------------------------------------------


class TestIntervalStats:
    def test_only_cases_that_reached_both_ends_count(self) -> None:
        rows = [
            case(assigned_at=at(10), opened_at=at(15)),
            case(assigned_at=at(20), opened_at=at(40)),
            case(assigned_at=at(30)),  # assigned, never opened
            case(),  # waiting
        ]
        assigned = interval_stats(Interval.received_to_assigned, rows)
        assert (assigned.count, assigned.p50, assigned.p90, assigned.p95) == (3, 20, 30, 30)
        opened = interval_stats(Interval.assigned_to_opened, rows)
        assert (opened.count, opened.p50, opened.p90, opened.p95) == (2, 5, 20, 20)
        final = interval_stats(Interval.received_to_final, rows)
        assert (final.count, final.p50, final.p90, final.p95) == (0, None, None, None)

    def test_minutes_keep_seconds_rounded_to_hundredths(self) -> None:
        rows = [case(assigned_at=T0 + timedelta(seconds=100))]
        assert interval_stats(Interval.received_to_assigned, rows).p50 == 1.67

    def test_each_interval_uses_its_own_milestones(self) -> None:
        row = case(
            assigned_at=at(5),
            opened_at=at(12),
            preliminary_at=at(40),
            final_at=at(70),
        )
        got = {i: interval_stats(i, [row]).p50 for i in Interval}
        assert got == {
            Interval.received_to_assigned: 5,
            Interval.assigned_to_opened: 7,
            Interval.received_to_opened: 12,
            Interval.opened_to_preliminary: 28,
            Interval.received_to_preliminary: 40,
            Interval.received_to_final: 70,
        }


class TestSla:
    def test_on_time_late_no_deadline_and_breached_open(self) -> None:
        now = at(600)
        rows = [
            case(deadline=at(60), final_at=at(50)),  # on time
            case(deadline=at(60), final_at=at(60)),  # on time: exactly at the deadline
            case(deadline=at(60), final_at=at(61)),  # late
            case(final_at=at(30)),  # finished, never routed: no deadline
            case(deadline=at(120)),  # open, past its deadline at now
            case(deadline=at(900)),  # open, still within
            case(),  # open, no deadline yet
        ]
        sla = sla_stats(rows, now)
        assert sla.finished == 4
        assert (sla.on_time, sla.late, sla.no_deadline) == (2, 1, 1)
        assert sla.compliance == round(2 / 3, 4) == 0.6667
        assert sla.breached_open == 1

    def test_no_judged_case_means_no_compliance(self) -> None:
        sla = sla_stats([case(final_at=at(30)), case()], at(60))
        assert sla.compliance is None
        assert sla.finished == 1


class TestGrouping:
    def test_labels_per_dimension(self) -> None:
        row = case(
            hospital_id=7,
            hospital_code="COUNTY7",
            subspecialty="neuro",
            priority="stat",
            modality="MR",
            reader_id=12,
            reader_name="Dr. Li",
            received_at=datetime(2025, 3, 1, 23, 30, tzinfo=UTC),
        )
        assert group_of(row, GroupBy.hospital) == ("7", "COUNTY7")
        assert group_of(row, GroupBy.subspecialty) == ("neuro", "neuro")
        assert group_of(row, GroupBy.priority) == ("stat", "stat")
        assert group_of(row, GroupBy.modality) == ("MR", "MR")
        assert group_of(row, GroupBy.expert) == ("12", "Dr. Li")
        assert group_of(row, GroupBy.day) == ("2025-03-01", "2025-03-01")

    def test_day_is_the_utc_date(self) -> None:
        from zoneinfo import ZoneInfo

        local = datetime(2025, 3, 1, 20, 30, tzinfo=ZoneInfo("America/Los_Angeles"))
        assert group_of(case(received_at=local), GroupBy.day)[0] == "2025-03-02"

    def test_missing_values_have_their_own_group(self) -> None:
        assert group_of(case(), GroupBy.subspecialty) == ("", "(unclassified)")
        assert group_of(case(), GroupBy.expert) == ("", "(no reader)")
        assert group_of(case(reader_id=3), GroupBy.expert) == ("3", "3")

    def test_aggregate_by_priority(self) -> None:
        now = at(1000)
        rows = [
            case(priority="routine", assigned_at=at(100), deadline=at(1440)),
            case(priority="stat", assigned_at=at(2), final_at=at(50), deadline=at(60)),
            case(priority="stat", assigned_at=at(8), final_at=at(75), deadline=at(60)),
            case(priority="urgent", assigned_at=at(30), deadline=at(720)),
            case(priority="stat", deadline=at(60)),  # open and late
        ]
        overall, groups = aggregate(rows, GroupBy.priority, now)
        assert [g.key for g in groups] == ["stat", "urgent", "routine"]
        stat = groups[0]
        assert stat.cases == 3
        assigned = stats_of(stat, Interval.received_to_assigned)
        assert (assigned.count, assigned.p50, assigned.p90, assigned.p95) == (2, 2, 8, 8)
        final = stats_of(stat, Interval.received_to_final)
        assert (final.count, final.p50, final.p95) == (2, 50, 75)
        assert (stat.sla.on_time, stat.sla.late, stat.sla.compliance) == (1, 1, 0.5)
        assert stat.sla.breached_open == 1

        assert (overall.key, overall.label, overall.cases) == ("all", "(all)", 5)
        everyone = stats_of(overall, Interval.received_to_assigned)
        # 2, 8, 30, 100: p50 is rank 2, p90 and p95 rank 4.
        assert (everyone.count, everyone.p50, everyone.p90, everyone.p95) == (4, 8, 100, 100)
        # The open stat case and the urgent one (deadline at 720, now 1000).
        assert overall.sla.breached_open == 2

    def test_aggregate_by_expert_orders_by_name_and_leaves_no_reader_last(self) -> None:
        rows = [
            case(),
            case(reader_id=2, reader_name="zhou"),
            case(reader_id=1, reader_name="Anna"),
            case(reader_id=1, reader_name="Anna"),
        ]
        _, groups = aggregate(rows, GroupBy.expert, at(0))
        assert [(g.label, g.cases) for g in groups] == [
            ("Anna", 2),
            ("zhou", 1),
            ("(no reader)", 1),
        ]

    def test_nothing_in_range(self) -> None:
        overall, groups = aggregate([], GroupBy.hospital, at(0))
        assert groups == []
        assert overall.cases == 0
        assert all(s.count == 0 and s.p50 is None for s in overall.intervals)


class TestRange:
    NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

    def test_default_is_the_last_seven_days(self) -> None:
        assert resolve_range(None, None, self.NOW) == (self.NOW - timedelta(days=7), self.NOW)

    def test_times_without_a_zone_are_utc(self) -> None:
        since, until = resolve_range(datetime(2025, 5, 1), datetime(2025, 5, 2), self.NOW)
        assert since == datetime(2025, 5, 1, tzinfo=UTC)
        assert until == datetime(2025, 5, 2, tzinfo=UTC)

    def test_bad_ranges_say_why(self) -> None:
        with pytest.raises(BadRequest, match="before"):
            resolve_range(self.NOW, self.NOW, self.NOW)
        with pytest.raises(BadRequest, match="at most 366 days"):
            resolve_range(self.NOW - MAX_RANGE - timedelta(days=1), self.NOW, self.NOW)
        resolve_range(self.NOW - MAX_RANGE, self.NOW, self.NOW)


class TestCsv:
    def report(self, rows: list[CaseTimes]) -> TurnaroundReport:
        overall, groups = aggregate(rows, GroupBy.expert, at(100))
        return TurnaroundReport(
            since=T0,
            until=T0 + timedelta(days=7),
            generated_at=at(100),
            group_by=GroupBy.expert,
            filters=TurnaroundFilters(),
            percentile_method="nearest-rank",
            overall=overall,
            groups=groups,
        )

    def test_one_line_per_group_and_interval(self) -> None:
        rows = [
            case(reader_id=1, reader_name="Anna", assigned_at=at(4), final_at=at(30)),
            case(reader_id=2, reader_name="=HYPERLINK(1)", assigned_at=at(6), deadline=at(20)),
        ]
        lines = list(csv.DictReader(io.StringIO(to_csv(self.report(rows)))))
        assert len(lines) == 3 * len(Interval)
        assert tuple(lines[0]) == CSV_COLUMNS
        overall = [r for r in lines if r["row"] == "overall"]
        assert [r["interval"] for r in overall] == [i.value for i in Interval]
        assigned = next(r for r in overall if r["interval"] == "received_to_assigned")
        assert (assigned["count"], assigned["p50_minutes"], assigned["p95_minutes"]) == (
            "2",
            "4.0",
            "6.0",
        )
        final = next(r for r in overall if r["interval"] == "received_to_final")
        assert (final["count"], final["p50_minutes"]) == ("1", "30.0")
        # Blank, not "None", where nothing was measured; the open late case is counted.
        anna = [r for r in lines if r["group_label"] == "Anna"]
        unmeasured = next(r for r in anna if r["interval"] == "opened_to_preliminary")
        assert unmeasured["p50_minutes"] == ""
        assert overall[0]["breached_open"] == "1"
        assert overall[0]["compliance"] == ""
        # A name that a spreadsheet would run as a formula is written as text.
        assert {r["group_label"] for r in lines} == {"(all)", "Anna", "'=HYPERLINK(1)"}

    def test_filename_names_the_range(self) -> None:
        assert csv_filename(self.report([])) == (
            "turnaround_expert_20250301T0800Z_20250308T0800Z.csv"
        )


class TestScrapeToken:
    def test_open_without_a_token(self) -> None:
        check_scrape_token(None, None)
        check_scrape_token("", "Bearer whatever")

    def test_token_must_match(self) -> None:
        check_scrape_token("s3cret", "Bearer s3cret")
        check_scrape_token("s3cret", "bearer s3cret")
        for header in (None, "", "Bearer wrong", "Basic s3cret", "s3cret"):
            with pytest.raises(Unauthenticated):
                check_scrape_token("s3cret", header)


# --- telemetry, in process --------------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestTelemetry:
    def test_http_metrics_label_the_route_template_and_status_class(self) -> None:
        class Route:
            path = "/api/things/{thing_id}"

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"].startswith("/api/things/"):
                scope["route"] = Route()
                await send({"type": "http.response.start", "status": 204, "headers": []})
            else:
                await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        async def call(path: str) -> None:
            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b""}

            async def send(message: Any) -> None:
                return None

            scope = {"type": "http", "method": "DELETE", "path": path}
            await telemetry.HttpMetrics(app)(scope, receive, send)

        labels = {"method": "DELETE", "route": "/api/things/{thing_id}", "status": "2xx"}
        unmatched = {"method": "DELETE", "route": "unmatched", "status": "4xx"}
        before = sample("radrelay_http_requests_total", **labels)
        before_unmatched = sample("radrelay_http_requests_total", **unmatched)
        asyncio.run(call("/api/things/41"))
        asyncio.run(call("/api/things/42"))
        asyncio.run(call("/no/such/9"))
        assert sample("radrelay_http_requests_total", **labels) == before + 2
        assert sample("radrelay_http_requests_total", **unmatched) == before_unmatched + 1
        assert sample("radrelay_http_request_duration_seconds_count", **labels) >= 2

    def test_an_app_that_raises_is_counted_as_5xx(self) -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise RuntimeError("boom")

        async def call() -> None:
            scope = {"type": "http", "method": "PATCH", "path": "/x"}
            await telemetry.HttpMetrics(app)(scope, None, None)  # type: ignore[arg-type]

        labels = {"method": "PATCH", "route": "unmatched", "status": "5xx"}
        before = sample("radrelay_http_requests_total", **labels)
        with pytest.raises(RuntimeError):
            asyncio.run(call())
        assert sample("radrelay_http_requests_total", **labels) == before + 1

    def test_jobs_are_counted_by_outcome(self) -> None:
        calls: list[str] = []

        async def telemetry_test_job(ctx: dict[str, Any], fail: bool) -> str:
            calls.append(ctx["job_id"])
            if fail:
                raise ValueError("no")
            return "done"

        job = telemetry.instrumented(telemetry_test_job)
        assert job.__qualname__ == telemetry_test_job.__qualname__
        name = "telemetry_test_job"
        ok = sample("radrelay_jobs_total", function=name, outcome="success")
        failed = sample("radrelay_jobs_total", function=name, outcome="failure")
        assert asyncio.run(job({"job_id": "a"}, fail=False)) == "done"
        with pytest.raises(ValueError):
            asyncio.run(job({"job_id": "b"}, fail=True))
        assert calls == ["a", "b"]
        assert sample("radrelay_jobs_total", function=name, outcome="success") == ok + 1
        assert sample("radrelay_jobs_total", function=name, outcome="failure") == failed + 1
        assert sample("radrelay_job_seconds_count", function=name) >= 2


# --- through the real server ------------------------------------------------------------------


def send(api: Any, datasets: list[Any], **fields: str) -> int:
    r = upload(api, [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(datasets)], **fields)
    assert r.status_code == 200, r.text
    return int(r.json()["case_ids"][0])


def turnaround(api: Any, **params: Any) -> dict[str, Any]:
    r = api.get("/api/metrics/turnaround", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def group(report: dict[str, Any], key: object) -> dict[str, Any] | None:
    return next((g for g in report["groups"] if g["key"] == str(key)), None)


def interval(group: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in group["intervals"] if s["interval"] == name)


class TestTurnaroundApi:
    def test_a_received_case_counts_for_its_hospital_in_each_role_scope(
        self, server: Server, world: World
    ) -> None:
        a, b = world.hospital(), world.hospital()
        send(a.tech, study("MR", slices=2), priority="urgent")

        coordinator = world.signed_in("coordinator")
        everyone = turnaround(coordinator)
        mine = group(everyone, a.id)
        assert mine is not None
        assert (mine["label"], mine["cases"]) == (a.code, 1)
        assert interval(mine, "received_to_assigned")["count"] == 0
        assert mine["sla"] == {
            "finished": 0,
            "on_time": 0,
            "late": 0,
            "no_deadline": 0,
            "compliance": None,
            "breached_open": 0,
        }
        assert everyone["overall"]["cases"] >= 1
        assert everyone["percentile_method"].startswith("nearest-rank")

        # The technician sees their hospital only, whatever they ask for.
        own = turnaround(a.tech)
        assert [g["key"] for g in own["groups"]] == [str(a.id)]
        assert own["overall"]["cases"] == 1
        other = turnaround(b.tech, hospital_id=a.id)
        assert other["groups"] == [] and other["overall"]["cases"] == 0

        # Other groupings label the case by what it is.
        by_modality = turnaround(coordinator, group_by="modality", hospital_id=a.id)
        assert [(g["key"], g["cases"]) for g in by_modality["groups"]] == [("MR", 1)]
        by_priority = turnaround(coordinator, group_by="priority", hospital_id=a.id)
        assert [g["key"] for g in by_priority["groups"]] == ["urgent"]
        [case] = a.tech.get("/api/cases").json()["items"]
        received_day = datetime.fromisoformat(case["received_at"]).astimezone(UTC).date()
        by_day = turnaround(a.tech, group_by="day")
        assert [g["key"] for g in by_day["groups"]] == [received_day.isoformat()]
        assert turnaround(a.tech, priority="stat")["overall"]["cases"] == 0

        r = world.signed_in("radiologist").get("/api/metrics/turnaround")
        assert r.status_code == 403

    def test_the_access_is_audited(self, server: Server, world: World) -> None:
        coordinator = world.signed_in("coordinator")
        h = world.hospital()
        turnaround(coordinator, hospital_id=h.id, group_by="expert")
        r = world.admin.get("/api/audit", params={"action": "metrics.turnaround"})
        entry = next(e for e in r.json()["items"] if e["hospital_id"] == h.id)
        assert entry["detail"]["group_by"] == "expert"
        assert entry["detail"]["filters"] == {"hospital_id": h.id}
        assert entry["detail"]["cases"] == 0

    def test_csv_export(self, server: Server, world: World) -> None:
        h = world.hospital()
        send(h.tech, study("CT", slices=1))
        since = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        r = h.tech.get(
            "/api/metrics/turnaround",
            params={"since": since.isoformat(), "group_by": "hospital"},
            headers={"Accept": "text/csv"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = r.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=")
        assert since.strftime("%Y%m%dT%H%MZ") in disposition
        lines = list(csv.DictReader(io.StringIO(r.text)))
        assert tuple(lines[0]) == CSV_COLUMNS
        assert len(lines) == 2 * len(Interval)  # overall and the one hospital
        mine = [row for row in lines if row["row"] == "group"]
        assert {row["group_label"] for row in mine} == {h.code}
        assert {row["cases"] for row in mine} == {"1"}
        # ?format=csv does the same without the header; ?format=json wins over Accept.
        assert h.tech.get("/api/metrics/turnaround?format=csv").text.startswith("row,")
        as_json = h.tech.get("/api/metrics/turnaround?format=json", headers={"Accept": "text/csv"})
        assert as_json.headers["content-type"] == "application/json"

    def test_bad_ranges_are_refused_with_a_message(self, server: Server, world: World) -> None:
        coordinator = world.signed_in("coordinator")
        r = coordinator.get(
            "/api/metrics/turnaround",
            params={"since": "2024-01-01T00:00:00Z", "until": "2025-06-01T00:00:00Z"},
        )
        assert r.status_code == 400
        assert "366 days" in r.json()["message"]
        r = coordinator.get(
            "/api/metrics/turnaround",
            params={"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        )
        assert r.status_code == 400
        assert "before" in r.json()["message"]
        assert coordinator.get("/api/metrics/turnaround?group_by=color").status_code == 422


class TestTurnaroundMilestones:
    """Needs routing's ``POST /assign`` (coordinator) and ``POST /claim`` (radiologist), which
    set ``assigned_at`` and ``opened_at``."""

    def test_assignment_and_claim_fill_the_intervals_and_the_expert_group(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        case_id = send(h.tech, study("CT", slices=1), priority="stat")
        coordinator = world.signed_in("coordinator")
        reader = world.signed_in("radiologist")
        me = reader.get("/api/me").json()

        # The case may still be in its first routing pass (nobody is credentialed for this new
        # hospital, so that finds no one); assign once the case holds still.
        wait_until(
            lambda: (
                coordinator.post(
                    f"/api/cases/{case_id}/assign",
                    json={"reader_id": me["id"], "reason": "turnaround test"},
                ).status_code
                == 200
            ),
            what="the assignment",
        )
        assigned = turnaround(coordinator, hospital_id=h.id, group_by="expert")
        [mine] = assigned["groups"]
        assert (mine["key"], mine["label"], mine["cases"]) == (str(me["id"]), me["username"], 1)
        assert interval(mine, "received_to_assigned")["count"] == 1
        assert interval(mine, "received_to_assigned")["p50"] >= 0
        assert interval(mine, "assigned_to_opened")["count"] == 0

        r = reader.post(f"/api/cases/{case_id}/claim")
        assert r.status_code == 200, r.text
        opened = turnaround(h.tech, group_by="priority")
        [stat] = opened["groups"]
        assert stat["key"] == "stat"
        for name in ("received_to_assigned", "assigned_to_opened", "received_to_opened"):
            got = interval(stat, name)
            assert got["count"] == 1 and got["p50"] == got["p90"] == got["p95"], (name, got)
        assert (
            interval(stat, "received_to_opened")["p50"]
            >= interval(stat, "received_to_assigned")["p50"]
        )
        assert interval(stat, "received_to_final")["count"] == 0
        assert stat["sla"]["finished"] == 0


class TestPrometheus:
    def test_route_templates_are_counted_and_no_patient_data_is_exposed(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        datasets = study("CT", slices=1)
        patient_name = str(datasets[0].PatientName)
        case_id = send(h.tech, datasets)
        assert h.tech.get(f"/api/cases/{case_id}").status_code == 200

        r = httpx.get(f"{server.url}/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = r.text
        line = re.search(
            r'^radrelay_http_requests_total\{method="GET",route="/api/cases/\{case_id\}",'
            r'status="2xx"\} (\S+)$',
            text,
            re.M,
        )
        assert line is not None and float(line.group(1)) >= 1
        assert 'route="/api/uploads"' in text
        assert f"/api/cases/{case_id}" not in text
        for part in re.split(r"[\^=]", patient_name):
            if len(part) > 1:
                assert part not in text
        assert "radrelay_open_cases{" in text
        assert re.search(r'^radrelay_open_cases_past_deadline\{priority="stat"\} ', text, re.M)
        if not REDIS_URL:
            # Jobs run in this process (embedded): case_ready ran once the upload was complete.
            wait_until(
                lambda: (
                    'radrelay_jobs_total{function="case_ready",outcome="success"}'
                    in httpx.get(f"{server.url}/metrics").text
                ),
                what="the case_ready job to be counted",
            )
            # ... and routing decided: nobody is credentialed for the new hospital, so "none".
            decided = re.compile(
                r'^radrelay_routing_decisions_total\{mode="none",trigger="ready"\} ', re.M
            )
            wait_until(
                lambda: decided.search(httpx.get(f"{server.url}/metrics").text),
                what="the routing decision to be counted",
            )
            assert "radrelay_routing_seconds_count " in httpx.get(f"{server.url}/metrics").text
        # Not part of the API description.
        assert "/metrics" not in httpx.get(f"{server.url}/openapi.json").json()["paths"]

    def test_a_configured_token_is_required(self, tmp_path: Path) -> None:
        token = uuid.uuid4().hex
        with running_server(tmp_path / "server", RADRELAY_METRICS_TOKEN=token) as s:
            assert httpx.get(f"{s.url}/metrics").status_code == 401
            wrong = httpx.get(f"{s.url}/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = httpx.get(f"{s.url}/metrics", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
            assert "radrelay_http_requests_total" in ok.text
