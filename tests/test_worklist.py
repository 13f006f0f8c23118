"""Routing wired to cases, the worklist, claims, releases and coordinator actions, through the API
of a running server; time-driven behaviour (leases, SLA warnings, escalation, breach) through the
SLA watch run with a chosen clock against the server's own database."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from sqlalchemy import update

from conftest import Api, Hospital, Server, World, login, wait_until
from helpers import part10, study, upload
from radrelay.config import Settings
from radrelay.kit.runtime import Runtime
from radrelay.models import Case
from radrelay.routing.service import RoutingContext, routing
from radrelay.worklist.schemas import WatchReport
from radrelay.worklist.service import worklist

ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]


@dataclass
class Reader:
    id: int
    api: Api
    password: str = ""

    @property
    def username(self) -> str:
        return self.api.username

    def credentials(self) -> dict[str, str]:
        """Both components of the reader's electronic signature, as a signing body needs."""
        return {"username": self.username, "password": self.password}


def reader(
    world: World,
    hospitals: list[Hospital],
    subspecialties: dict[str, int],
    *,
    state: str = "online",
    qualification: str = "final",
) -> Reader:
    """A radiologist with an expert profile, credentialed for ``hospitals``, on duty all week."""
    username, password = f"dr-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(12)
    world.user(username, "radiologist", password)
    api = login(world.server, username, password)
    user_id = api.get("/api/me").json()["id"]
    r = world.admin.put(
        f"/api/experts/{user_id}",
        json={
            "employment": "full_time",
            "qualification": qualification,
            "subspecialties": subspecialties,
            "credentials": [{"hospital_code": h.code} for h in hospitals],
            "shifts": ALL_WEEK,
        },
    )
    assert r.status_code in (200, 201), r.text
    r = api.put("/api/experts/me/state", json={"state": state})
    assert r.status_code == 200, r.text
    return Reader(user_id, api, password)


def send(hospital: Hospital, **fields: str) -> int:
    """Upload a small CT study as the hospital's technician; the case id."""
    files = [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=2))]
    r = upload(hospital.tech, files, **fields)
    assert r.status_code == 200, r.text
    return int(r.json()["case_ids"][0])


def case(api: Api, case_id: int) -> dict[str, Any]:
    r = api.get(f"/api/cases/{case_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def routed(api: Api, case_id: int, status: str | tuple[str, ...]) -> dict[str, Any]:
    want = (status,) if isinstance(status, str) else status
    return wait_until(  # type: ignore[no-any-return]
        lambda: (c := case(api, case_id))["status"] in want and c["routed_at"] and c,
        what=f"case {case_id} to be {want}",
    )


def worklist_ids(api: Api) -> dict[int, str]:
    r = api.get("/api/worklist")
    assert r.status_code == 200, r.text
    return {i["case"]["id"]: i["hold"] for i in r.json()["items"]}


def coordinator(world: World) -> Api:
    return world.signed_in("coordinator")


# --- time: the SLA watch with a chosen clock, on the server's database --------------------------


@pytest.fixture
def watch(server: Server) -> Iterator[Any]:
    """Run one SLA watch pass at a chosen moment, as the server's periodic job would then."""
    settings = Settings(
        data_dir=server.data_dir,
        database_url=server.database_url,
        redis_url=server.env.get("RADRELAY_REDIS_URL"),
        secret_key="unused",
        sla_watch_seconds=1,
    )
    loop = asyncio.new_event_loop()
    runtime = Runtime(settings)
    ctx = RoutingContext.of(runtime)

    def run(at: datetime) -> WatchReport:
        return loop.run_until_complete(worklist.watch(runtime, ctx, at))

    try:
        yield run
    finally:
        loop.run_until_complete(runtime.close())
        loop.close()


@pytest.fixture
def route(server: Server) -> Iterator[Any]:
    """Route one case with a given trigger, as the routing job would, on the server's database."""
    settings = Settings(
        data_dir=server.data_dir, database_url=server.database_url, secret_key="unused"
    )
    loop = asyncio.new_event_loop()
    runtime = Runtime(settings)
    ctx = RoutingContext.of(runtime)

    async def run(case_id: int, trigger: str) -> str | None:
        async with runtime.uow() as session:
            decision = await routing.route(
                session, ctx, case_id, trigger=trigger, now=datetime.now(UTC)
            )
        return decision.mode.value if decision else None

    try:
        yield lambda case_id, trigger: loop.run_until_complete(run(case_id, trigger))
    finally:
        loop.run_until_complete(runtime.close())
        loop.close()


def received(c: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(c["received_at"]).astimezone(UTC)


def timeline(api: Api, case_id: int) -> list[str]:
    return [e["kind"] for e in case(api, case_id)["events"]]


# --- routing as cases arrive -------------------------------------------------------------------


class TestPushRouting:
    def test_stat_head_ct_goes_to_the_neuro_reader(self, world: World) -> None:
        h = world.hospital()
        neuro = reader(world, [h], {"neuro": 3, "general": 1})
        chest = reader(world, [h], {"chest": 3})
        case_id = send(h, priority="stat", requested_subspecialty="neuro")
        c = routed(h.tech, case_id, "assigned")
        assert c["reader_id"] == neuro.id
        assert c["subspecialty"] == "neuro"
        # CT/MR head STAT: 20 minutes from receipt (worklist_rules/sla.yaml).
        deadline = datetime.fromisoformat(c["deadline"])
        assert deadline - datetime.fromisoformat(c["received_at"]) == timedelta(minutes=20)
        assert c["reader_name"]  # the hospital sees who reads it
        assert worklist_ids(neuro.api) == {case_id: "assigned"}
        assert case_id not in worklist_ids(chest.api)
        assert chest.api.get(f"/api/cases/{case_id}").status_code == 404

    def test_coordinators_see_the_explanation(self, world: World) -> None:
        h = world.hospital()
        neuro = reader(world, [h], {"neuro": 2})
        chest = reader(world, [h], {"chest": 3})
        case_id = send(h, priority="urgent", requested_subspecialty="neuro")
        routed(h.tech, case_id, "assigned")
        coord = coordinator(world)
        r = coord.get(f"/api/cases/{case_id}/routing")
        assert r.status_code == 200, r.text
        [first] = r.json()
        assert (first["trigger"], first["mode"], first["assignee_id"], first["applied"]) == (
            "ready",
            "push",
            neuro.id,
            True,
        )
        candidates = {c["user_id"]: c for c in first["decision"]["candidates"]}
        assert candidates[neuro.id]["eligible"] and candidates[neuro.id]["rank"] == 1
        failed = [f["name"] for f in candidates[chest.id]["filters"] if not f["passed"]]
        assert failed == ["subspecialty"]
        # Explanations are for coordinators, not for readers or hospitals.
        assert neuro.api.get(f"/api/cases/{case_id}/routing").status_code == 403
        assert h.tech.get(f"/api/cases/{case_id}/routing").status_code == 403

    def test_uncredentialed_and_offline_readers_are_passed_over(self, world: World) -> None:
        h, elsewhere = world.hospital(), world.hospital()
        reader(world, [elsewhere], {"neuro": 3})
        offline = reader(world, [h], {"neuro": 3}, state="offline")
        on_duty = reader(world, [h], {"neuro": 1})
        case_id = send(h, priority="urgent", requested_subspecialty="neuro")
        assert routed(h.tech, case_id, "assigned")["reader_id"] == on_duty.id
        assert case_id not in worklist_ids(offline.api)

    def test_nobody_eligible_waits_then_routes_when_a_reader_appears(self, world: World) -> None:
        h = world.hospital()
        case_id = send(h, priority="urgent", requested_subspecialty="msk")
        c = routed(h.tech, case_id, "ready")
        coord = coordinator(world)
        wait_until(lambda: coord.get(f"/api/cases/{case_id}/routing").json(), what="a decision")
        [decision] = coord.get(f"/api/cases/{case_id}/routing").json()
        assert decision["mode"] == "none" and decision["decision"]["reason"]
        assert c["deadline"] is not None  # classified even though nobody took it
        late = reader(world, [h], {"msk": 2})
        # A new expert profile has waiting cases routed again at the SLA watch's next pass (a
        # pass every second in the tests).
        assert routed(h.tech, case_id, "assigned")["reader_id"] == late.id


# --- claims and releases -----------------------------------------------------------------------


class TestClaim:
    def test_claim_renew_release(self, world: World) -> None:
        h = world.hospital()
        first = reader(world, [h], {"chest": 2})
        case_id = send(h, priority="routine", requested_subspecialty="chest")
        routed(h.tech, case_id, "assigned")
        second = reader(world, [h], {"chest": 1})
        r = first.api.post(f"/api/cases/{case_id}/claim")
        assert r.status_code == 200, r.text
        lease = datetime.fromisoformat(r.json()["lease_expires_at"])
        assert r.json()["status"] == "reading" and r.json()["lease_minutes"] == 15
        c = case(h.tech, case_id)
        assert c["status"] == "reading" and c["opened_at"] is not None
        assert worklist_ids(first.api) == {case_id: "reading"}
        # Claiming again renews the lease.
        renewed = datetime.fromisoformat(
            first.api.post(f"/api/cases/{case_id}/claim").json()["lease_expires_at"]
        )
        assert renewed >= lease
        # Another reader cannot see, let alone claim, a case that is not theirs.
        assert second.api.post(f"/api/cases/{case_id}/claim").status_code == 404
        # Releasing gives it to someone else and never back to the one who let it go.
        r = first.api.post(f"/api/cases/{case_id}/release", json={"reason": "conflict of interest"})
        assert r.status_code == 204, r.text
        c = routed(h.tech, case_id, "assigned")
        assert c["reader_id"] == second.id
        assert first.api.get(f"/api/cases/{case_id}").status_code == 404
        assert "released" in timeline(h.tech, case_id)

    def test_only_the_holder_releases(self, world: World) -> None:
        h = world.hospital()
        holder = reader(world, [h], {"chest": 2})
        case_id = send(h, priority="routine", requested_subspecialty="chest")
        routed(h.tech, case_id, "assigned")
        other = reader(world, [h], {"chest": 2})
        assert other.api.post(f"/api/cases/{case_id}/release").status_code == 404
        assert coordinator(world).post(f"/api/cases/{case_id}/release").status_code == 403
        assert h.tech.post(f"/api/cases/{case_id}/claim").status_code == 403
        assert case(h.tech, case_id)["reader_id"] == holder.id

    def test_pool_claim_first_wins_and_the_top_n_rule(self, world: World) -> None:
        h = world.hospital()  # no experts: cases wait, and the coordinator offers them
        ids = [send(h, priority="routine") for _ in range(6)]
        for case_id in ids:
            routed(h.tech, case_id, "ready")
        # Breast readers: the CT cases are not theirs, so only the coordinator's offers reach them.
        one, two = reader(world, [h], {"breast": 1}), reader(world, [h], {"breast": 1})
        coord = coordinator(world)
        for case_id in ids:
            for r_ in (one, two):
                r = coord.post(
                    f"/api/cases/{case_id}/assignments",
                    json={"reader_id": r_.id, "kind": "offered", "reason": "pool"},
                )
                assert r.status_code == 200, r.text
        page = one.api.get("/api/worklist").json()
        # Five visible (pool_visible_per_reader), one hidden until those go.
        assert len(page["items"]) == 5 and page["hidden_offers"] == 1
        visible = [i["case"]["id"] for i in page["items"]]
        hidden = (set(ids) - set(visible)).pop()
        r = one.api.post(f"/api/cases/{hidden}/claim")
        assert r.status_code == 409 and "first 5" in r.json()["message"]
        target = visible[0]
        assert one.api.post(f"/api/cases/{target}/claim").status_code == 200
        r = two.api.post(f"/api/cases/{target}/claim")
        assert r.status_code in (404, 409)
        assert target not in worklist_ids(two.api)
        # The claim took the case out of the pool: the hidden one is visible now.
        assert hidden in worklist_ids(one.api)

    def test_fifty_readers_claim_one_case_exactly_one_wins(self, world: World) -> None:
        h = world.hospital()
        case_id = send(h, priority="stat")
        routed(h.tech, case_id, "ready")
        coord = coordinator(world)
        readers = [reader(world, [h], {"breast": 1}) for _ in range(50)]
        for r_ in readers:
            r = coord.post(
                f"/api/cases/{case_id}/assignments",
                json={"reader_id": r_.id, "kind": "offered", "reason": "everyone"},
            )
            assert r.status_code == 200, r.text
        with ThreadPoolExecutor(max_workers=50) as pool:
            codes = list(
                pool.map(lambda r_: r_.api.post(f"/api/cases/{case_id}/claim").status_code, readers)
            )
        assert codes.count(200) == 1, codes
        assert set(codes) <= {200, 404, 409}, codes
        winner = readers[codes.index(200)]
        c = case(coord, case_id)
        assert (c["status"], c["reader_id"]) == ("reading", winner.id)
        holders = [r_ for r_ in readers if worklist_ids(r_.api)]
        assert holders == [winner]


# --- coordinators ------------------------------------------------------------------------------


class TestCoordinator:
    def test_assign_reassign_pause_resume_priority(self, world: World) -> None:
        h = world.hospital()
        case_id = send(h, priority="routine")
        routed(h.tech, case_id, "ready")
        a = reader(world, [h], {"breast": 1})
        b = reader(world, [h], {"breast": 1})
        coord = coordinator(world)
        r = coord.post(
            f"/api/cases/{case_id}/assign",
            json={"reader_id": a.id, "reason": "she knows the patient"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["reader_id"]) == ("assigned", a.id)
        r = coord.post(
            f"/api/cases/{case_id}/assign", json={"reader_id": b.id, "reason": "a is in theatre"}
        )
        assert r.json()["reader_id"] == b.id
        assert a.api.get(f"/api/cases/{case_id}").status_code == 404
        assert case_id in worklist_ids(b.api)
        # Every action needs a reason.
        r = coord.post(f"/api/cases/{case_id}/pause", json={"reason": ""})
        assert r.status_code == 422
        r = coord.post(
            f"/api/cases/{case_id}/pause", json={"reason": "waiting for the missing series"}
        )
        assert (r.json()["status"], r.json()["reader_id"]) == ("paused", None)
        assert case_id not in worklist_ids(b.api)
        assert (
            coord.post(
                f"/api/cases/{case_id}/assign", json={"reader_id": a.id, "reason": "x"}
            ).status_code
            == 409
        )
        before = datetime.fromisoformat(case(coord, case_id)["deadline"])
        r = coord.post(
            f"/api/cases/{case_id}/priority", json={"priority": "stat", "reason": "deteriorating"}
        )
        assert r.status_code == 200, r.text
        after = datetime.fromisoformat(r.json()["deadline"])
        assert after < before  # 30 min instead of 24 h
        r = coord.post(f"/api/cases/{case_id}/resume", json={"reason": "series arrived"})
        assert r.status_code == 200, r.text
        kinds = timeline(coord, case_id)
        for kind in ("assigned", "paused", "priority", "resumed"):
            assert kind in kinds
        audit = world.admin.get("/api/audit", params={"action": "case.pause"}).json()
        assert any(
            e["object_id"] == str(case_id) or e["object_id"] == case_id for e in audit["items"]
        )

    def test_readers_and_techs_cannot_act_as_coordinators(self, world: World) -> None:
        h = world.hospital()
        a = reader(world, [h], {"chest": 1})
        case_id = send(h, priority="routine", requested_subspecialty="chest")
        routed(h.tech, case_id, "assigned")
        for api in (a.api, h.tech):
            for path, body in (
                ("assign", {"reader_id": a.id, "reason": "me"}),
                ("pause", {"reason": "x"}),
                ("priority", {"priority": "stat", "reason": "x"}),
            ):
                assert api.post(f"/api/cases/{case_id}/{path}", json=body).status_code == 403
        assert h.tech.get("/api/worklist").status_code == 403

    def test_board_filters(self, world: World) -> None:
        h = world.hospital()
        reader(world, [h], {"neuro": 2})
        stat = send(h, priority="stat", requested_subspecialty="neuro")
        routine = send(h, priority="routine", requested_subspecialty="neuro")
        routed(h.tech, stat, "assigned")
        routed(h.tech, routine, "assigned")
        coord = coordinator(world)
        r = coord.get("/api/worklist", params={"hospital_id": h.id, "priority": "stat"})
        assert [i["case"]["id"] for i in r.json()["items"]] == [stat]
        r = coord.get("/api/worklist", params={"hospital_id": h.id})
        # Nearest deadline first.
        assert [i["case"]["id"] for i in r.json()["items"]] == [stat, routine]
        assert r.json()["items"][0]["sla"]["state"] == "ok"
        r = coord.get("/api/worklist", params={"sla_state": "nonsense"})
        assert r.status_code == 422


class TestTriggers:
    def test_a_late_first_routing_leaves_a_coordinators_assignment(
        self, world: World, route: Any
    ) -> None:
        """The routing job of a ready case may run after a coordinator already assigned it (a
        busy worker): it must not take the case back."""
        h = world.hospital()
        case_id = send(h, priority="routine")
        routed(h.tech, case_id, "ready")
        a = reader(world, [h], {"breast": 1})
        r = coordinator(world).post(
            f"/api/cases/{case_id}/assign", json={"reader_id": a.id, "reason": "by hand"}
        )
        assert r.status_code == 200, r.text
        for trigger in ("ready", "retry", "lease_expired", "released"):
            assert route(case_id, trigger) is None
        c = case(h.tech, case_id)
        assert (c["status"], c["reader_id"]) == ("assigned", a.id)
        # An escalation step decides an unopened case again; nobody eligible here (a breast
        # reader, a CT): it stays with the reader it has rather than going to nobody.
        assert route(case_id, "escalation") == "none"
        c = case(h.tech, case_id)
        assert (c["status"], c["reader_id"]) == ("assigned", a.id)
        [latest, *_] = coordinator(world).get(f"/api/cases/{case_id}/routing").json()
        assert (latest["trigger"], latest["applied"]) == ("escalation", False)

    def test_a_case_assigned_before_its_first_routing_gets_its_deadline(self, world: World) -> None:
        """A coordinator may assign a ready case before its routing job ran (a busy worker):
        the rules classify it all the same, so it has a deadline and its SLA runs."""
        h = world.hospital()
        a = reader(world, [h], {"chest": 2}, state="offline")  # nobody eligible: no routing
        case_id = send(h, priority="urgent", requested_subspecialty="chest")
        routed(h.tech, case_id, "ready")
        asyncio.run(unrouted(world.server, case_id))
        assert case(h.tech, case_id)["deadline"] is None
        r = coordinator(world).post(
            f"/api/cases/{case_id}/assign", json={"reader_id": a.id, "reason": "by hand"}
        )
        assert r.status_code == 200, r.text
        c = r.json()
        assert (c["status"], c["reader_id"], c["subspecialty"]) == ("assigned", a.id, "chest")
        assert datetime.fromisoformat(c["deadline"]) > received(c)


async def unrouted(server: Server, case_id: int) -> None:
    """Undo what routing wrote on a waiting case, on the server's database: as if its routing
    job had not run yet (and the SLA watch would not retry it for an hour)."""
    runtime = Runtime(
        Settings(data_dir=server.data_dir, database_url=server.database_url, secret_key="unused")
    )
    try:
        async with runtime.uow() as session:
            await session.execute(
                update(Case)
                .where(Case.id == case_id, Case.status == "ready")
                .values(
                    subspecialty=None,
                    work_units=None,
                    sla_target_minutes=None,
                    deadline=None,
                    sla_next_at=None,
                    routed_at=None,
                    route_retry_at=datetime.now(UTC) + timedelta(hours=1),
                )
            )
    finally:
        await runtime.close()


class TestExpertOffline:
    def test_unstarted_cases_go_back_to_routing(self, world: World) -> None:
        h = world.hospital()
        first = reader(world, [h], {"abdominal": 3})
        started = send(h, priority="urgent", requested_subspecialty="abdominal")
        waiting = send(h, priority="urgent", requested_subspecialty="abdominal")
        routed(h.tech, started, "assigned")
        routed(h.tech, waiting, "assigned")
        assert first.api.post(f"/api/cases/{started}/claim").status_code == 200
        second = reader(world, [h], {"abdominal": 1})
        assert first.api.put("/api/experts/me/state", json={"state": "offline"}).status_code == 200
        c = wait_until(
            lambda: (c := case(h.tech, waiting))["reader_id"] == second.id and c,
            what="the unstarted case to move",
        )
        assert c["status"] == "assigned"
        # The one being read stays with its reader (the lease decides).
        assert case(h.tech, started)["reader_id"] == first.id


# --- time ----------------------------------------------------------------------------------------


class TestTime:
    def test_expired_lease_returns_the_case_to_routing(self, world: World, watch: Any) -> None:
        h = world.hospital()
        a = reader(world, [h], {"chest": 2})
        case_id = send(h, priority="routine", requested_subspecialty="chest")
        routed(h.tech, case_id, "assigned")
        lease = datetime.fromisoformat(
            a.api.post(f"/api/cases/{case_id}/claim").json()["lease_expires_at"]
        )
        # The watch runs over every case of the shared server: look at this one only.
        watch(lease - timedelta(seconds=5))
        assert case(h.tech, case_id)["status"] == "reading"
        report = watch(lease + timedelta(seconds=1))
        assert report.leases_expired >= 1
        c = case(h.tech, case_id)
        # Routed again at once (to the same reader: nobody else reads chest here).
        assert (c["status"], c["lease_expires_at"]) == ("assigned", None)
        assert "lease_expired" in timeline(h.tech, case_id)

    def test_warning_escalation_widens_then_breach(self, world: World, watch: Any) -> None:
        h = world.hospital()
        reader(world, [h], {"neuro": 3}, state="offline")
        general = reader(world, [h], {"general": 2})
        case_id = send(h, priority="routine", requested_subspecialty="neuro")
        c = routed(h.tech, case_id, "ready")
        start, deadline = received(c), datetime.fromisoformat(c["deadline"])
        assert deadline - start == timedelta(hours=24)
        # Before half-time: nothing to do.
        watch(start + timedelta(hours=11))
        assert case(h.tech, case_id)["status"] == "ready"
        # Half-time: the first warning, and the first escalation step admits general readers.
        report = watch(start + timedelta(hours=12, minutes=1))
        assert report.warnings >= 1 and report.escalations >= 1
        c = case(h.tech, case_id)
        assert (c["status"], c["reader_id"]) == ("assigned", general.id)
        coord = coordinator(world)
        latest = coord.get(f"/api/cases/{case_id}/routing").json()[0]
        assert (latest["trigger"], latest["decision"]["widened"]) == ("escalation", True)
        # Past the deadline: breached, coordinators alerted.
        report = watch(deadline + timedelta(minutes=1))
        assert report.breaches >= 1
        kinds = timeline(coord, case_id)
        assert {"sla_warning", "escalated", "sla_breached"} <= set(kinds)
        assert case(coord, case_id)["sla_state"] == "breached"


# --- live events ---------------------------------------------------------------------------------


async def collect(url: str, seconds: float) -> list[dict[str, Any]]:
    events = []
    async with websockets.connect(url) as ws:
        events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        try:
            while True:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), seconds)))
        except TimeoutError:
            return events


class TestLive:
    async def test_routing_reaches_the_reader_and_not_others(
        self, server: Server, world: World
    ) -> None:
        h, other_h = world.hospital(), world.hospital()
        chosen = await asyncio.to_thread(reader, world, [h], {"neuro": 3})
        bystander = await asyncio.to_thread(reader, world, [other_h], {"neuro": 3})
        ws = server.url.replace("http", "ws")
        mine = asyncio.create_task(collect(f"{ws}/ws?token={chosen.api.token}", 5))
        theirs = asyncio.create_task(collect(f"{ws}/ws?token={bystander.api.token}", 5))
        tech = asyncio.create_task(collect(f"{ws}/ws?token={other_h.tech.token}", 5))
        await asyncio.sleep(1)
        case_id = await asyncio.to_thread(send, h, priority="stat", requested_subspecialty="neuro")
        got, not_mine, other_tech = await mine, await theirs, await tech
        assert any(e["type"] == "case.routed" and e["case_id"] == case_id for e in got)
        assert all(e.get("case_id") != case_id for e in not_mine + other_tech)


class TestRosterCache:
    def test_profiles_are_reused_but_states_are_fresh(self, server: Server, world: World) -> None:
        """Routing reuses a hospital's roster for ``roster_cache_seconds`` (it is most of a
        decision's cost), but reads states every time: an expert who went offline a moment ago
        is never chosen."""
        h = world.hospital()
        a = reader(world, [h], {"chest": 2})
        settings = Settings(
            data_dir=server.data_dir, database_url=server.database_url, secret_key="unused"
        )
        loop = asyncio.new_event_loop()
        runtime = Runtime(settings)
        ctx = RoutingContext(RoutingContext.of(runtime).rules, "Asia/Shanghai", roster_seconds=60)

        def roster() -> dict[int, tuple[str, dict[str, int]]]:
            async def load() -> dict[int, tuple[str, dict[str, int]]]:
                async with runtime.db.reading() as session:
                    profiles = await ctx.roster(session, h.id, datetime.now(UTC))
                return {p.user_id: (str(p.state), dict(p.subspecialties)) for p in profiles}

            return loop.run_until_complete(load())

        try:
            assert roster() == {a.id: ("online", {"chest": 2})}
            assert a.api.put("/api/experts/me/state", json={"state": "offline"}).status_code == 200
            r = world.admin.put(
                f"/api/experts/{a.id}",
                json={
                    "employment": "full_time",
                    "qualification": "final",
                    "subspecialties": {"neuro": 3},
                    "credentials": [{"hospital_code": h.code}],
                    "shifts": ALL_WEEK,
                },
            )
            assert r.status_code == 200, r.text
            # The state is read again; the profile (subspecialties) comes from the cache.
            assert roster() == {a.id: ("offline", {"chest": 2})}
            ctx.roster_seconds = 0
            assert roster() == {a.id: ("offline", {"neuro": 3})}
        finally:
            loop.run_until_complete(runtime.close())
            loop.close()
