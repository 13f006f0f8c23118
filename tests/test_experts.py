"""Experts: admins write profiles, coordinators read the roster, readers set their own state,
windows and caps; ``availability`` turns shifts and windows into UTC windows."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import websockets

from conftest import Api, Server, World
from radrelay.experts.service import availability


def user_id(api: Api) -> int:
    return int(api.get("/api/me").json()["id"])


def profile(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "employment": "full_time",
        "qualification": "final",
        "subspecialties": {"neuro": 3, "general": 1},
        "credentials": [],
        "timezone": "Asia/Shanghai",
        "shifts": [],
    }
    body.update(overrides)
    return body


def iso(moment: datetime) -> str:
    return moment.isoformat()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expert(world: World, **overrides: Any) -> tuple[Api, int]:
    """A signed-in radiologist with a profile."""
    reader = world.signed_in("radiologist")
    uid = user_id(reader)
    r = world.admin.put(f"/api/experts/{uid}", json=profile(**overrides))
    assert r.status_code == 201, r.text
    return reader, uid


def audit_actions(world: World, action: str, object_id: int) -> list[dict[str, Any]]:
    r = world.admin.get("/api/audit", params={"action": action, "limit": 1000})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["object_id"] == str(object_id)]


class TestPutProfile:
    def test_admin_creates_then_replaces_a_profile(self, server: Server, world: World) -> None:
        a, b = world.hospital(), world.hospital()
        reader = world.signed_in("radiologist")
        uid = user_id(reader)
        expiry = datetime(2031, 1, 1, tzinfo=UTC)
        created = world.admin.put(
            f"/api/experts/{uid}",
            json=profile(
                employment="part_time",
                qualification="preliminary",
                subspecialties={"chest": 2, "cardiac": 1},
                credentials=[
                    {"hospital_code": a.code, "expires_at": iso(expiry)},
                    {"hospital_code": b.code, "expires_at": None},
                ],
                cap_open_cases=4,
                cap_daily_units=30.5,
                timezone="Europe/Berlin",
                shifts=[
                    {"weekday": 0, "start": "08:00", "end": "16:00"},
                    {"weekday": 4, "start": "22:00", "end": "06:00"},
                ],
            ),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["user_id"] == uid
        assert body["username"] == reader.username
        assert (body["employment"], body["qualification"]) == ("part_time", "preliminary")
        assert body["subspecialties"] == {"chest": 2, "cardiac": 1}
        assert body["state"] == "offline"  # a new expert is not routed to until they say so
        assert {
            c["hospital_code"]: utc(c["expires_at"]) if c["expires_at"] else None
            for c in body["credentials"]
        } == {a.code: expiry, b.code: None}
        assert not any(c["expired"] for c in body["credentials"])
        assert (body["cap_open_cases"], body["cap_daily_units"]) == (4, 30.5)
        assert body["timezone"] == "Europe/Berlin"
        # A night shift reads back as written: the end before the start means past midnight.
        assert body["shifts"] == [
            {"weekday": 0, "start": "08:00", "end": "16:00"},
            {"weekday": 4, "start": "22:00", "end": "06:00"},
        ]
        assert (body["open_cases"], body["open_units"]) == (0, 0.0)

        reader.put("/api/experts/me/state", json={"state": "online"})
        replaced = world.admin.put(
            f"/api/experts/{uid}",
            json=profile(
                subspecialties={"msk": 1},
                credentials=[{"hospital_code": b.code}],
                shifts=[{"weekday": 6, "start": "00:00", "end": "24:00"}],
            ),
        )
        assert replaced.status_code == 200, replaced.text
        body = replaced.json()
        # Every list and field is replaced; the state is the expert's and is kept.
        assert body["subspecialties"] == {"msk": 1}
        assert [c["hospital_code"] for c in body["credentials"]] == [b.code]
        assert body["shifts"] == [{"weekday": 6, "start": "00:00", "end": "24:00"}]
        assert (body["cap_open_cases"], body["cap_daily_units"]) == (None, None)
        assert (body["employment"], body["qualification"]) == ("full_time", "final")
        assert body["state"] == "online"
        assert world.admin.get(f"/api/experts/{uid}").json() == body

        updates = audit_actions(world, "expert.update", uid)
        assert [e["detail"]["created"] for e in updates] == [False, True]  # newest first
        assert updates[0]["actor_id"] == user_id(world.admin)

    def test_refusals_say_what_to_fix(self, server: Server, world: World) -> None:
        h = world.hospital()
        uid = user_id(world.signed_in("radiologist"))
        put = world.admin.put

        r = put(f"/api/experts/{uid}", json=profile(credentials=[{"hospital_code": "NOPE1"}]))
        assert r.status_code == 400
        assert "NOPE1" in r.json()["message"]
        r = put(
            f"/api/experts/{uid}",
            json=profile(credentials=[{"hospital_code": h.code}, {"hospital_code": h.code}]),
        )
        assert r.status_code == 422
        assert "more than once" in r.json()["message"]

        coordinator = user_id(world.signed_in("coordinator"))
        r = put(f"/api/experts/{coordinator}", json=profile())
        assert r.status_code == 400
        assert "not a radiologist" in r.json()["message"]
        r = put("/api/experts/987654321", json=profile())
        assert r.status_code == 404
        assert "987654321" in r.json()["message"]

        malformed = [
            ("subspecialties", {"subspecialties": {"neuro": 4}}),
            ("subspecialties", {"subspecialties": {"dermatology": 1}}),
            ("subspecialties", {"subspecialties": {}}),
            ("shifts", {"shifts": [{"weekday": 0, "start": "25:00", "end": "06:00"}]}),
            ("shifts", {"shifts": [{"weekday": 0, "start": "08:00", "end": "8pm"}]}),
            ("shifts", {"shifts": [{"weekday": 7, "start": "08:00", "end": "16:00"}]}),
            ("timezone", {"timezone": "Mars/Olympus_Mons"}),
            ("cap_open_cases", {"cap_open_cases": -1}),
            (
                "credentials",
                {"credentials": [{"hospital_code": h.code, "expires_at": "2030-01-01T00:00"}]},
            ),
            ("employment", {"employment": "sometimes"}),
        ]
        for field, change in malformed:
            r = put(f"/api/experts/{uid}", json=profile(**change))
            assert r.status_code == 422, (change, r.text)
            assert r.json()["message"].startswith(field), (change, r.text)
        # Nothing above was kept.
        assert world.admin.get(f"/api/experts/{uid}").status_code == 404

    def test_only_admins_write_profiles(self, server: Server, world: World) -> None:
        uid = user_id(world.signed_in("radiologist"))
        for role in ("coordinator", "radiologist", "tech"):
            api = world.hospital().tech if role == "tech" else world.signed_in(role)
            r = api.put(f"/api/experts/{uid}", json=profile())
            assert r.status_code == 403, (role, r.text)


class TestRoster:
    def test_coordinator_sees_profiles_availability_and_load(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        now = datetime.now(UTC)
        expired = now - timedelta(days=1)
        _, neuro = expert(
            world, subspecialties={"neuro": 3}, credentials=[{"hospital_code": h.code}]
        )
        chest_reader, chest = expert(
            world,
            employment="part_time",
            subspecialties={"chest": 2},
            credentials=[{"hospital_code": h.code}],
        )
        _, lapsed = expert(
            world,
            subspecialties={"chest": 1},
            credentials=[{"hospital_code": h.code, "expires_at": iso(expired)}],
        )
        chest_reader.put("/api/experts/me/state", json={"state": "online"})
        chest_reader.put(
            "/api/experts/me/availability",
            json={
                "windows": [
                    {
                        "starts_at": iso(now - timedelta(hours=1)),
                        "ends_at": iso(now + timedelta(hours=2)),
                    }
                ]
            },
        )

        coordinator = world.signed_in("coordinator")
        r = coordinator.get("/api/experts", params={"hospital_code": h.code})
        assert r.status_code == 200, r.text
        # Credentialed there and not expired.
        by_id = {e["user_id"]: e for e in r.json()}
        assert set(by_id) == {neuro, chest}
        assert by_id[chest]["available_now"] is True
        assert utc(by_id[chest]["available_until"]) == now + timedelta(hours=2)
        assert by_id[neuro]["available_now"] is False
        assert by_id[neuro]["next_window_start"] is None  # no shifts, no windows
        assert all((e["open_cases"], e["open_units"]) == (0, 0.0) for e in by_id.values())

        filtered = coordinator.get(
            "/api/experts", params={"hospital_code": h.code, "subspecialty": "chest"}
        ).json()
        assert [e["user_id"] for e in filtered] == [chest]
        online = coordinator.get(
            "/api/experts", params={"hospital_code": h.code, "state": "online"}
        ).json()
        assert [e["user_id"] for e in online] == [chest]
        offline = coordinator.get(
            "/api/experts", params={"hospital_code": h.code, "state": "offline"}
        ).json()
        assert [e["user_id"] for e in offline] == [neuro]

        # Without the hospital filter the lapsed expert is on the roster, marked expired.
        everyone = {e["user_id"]: e for e in world.admin.get("/api/experts").json()}
        assert {neuro, chest, lapsed} <= set(everyone)
        assert everyone[lapsed]["credentials"][0]["expired"] is True

        r = coordinator.get("/api/experts", params={"hospital_code": "NOPE2"})
        assert r.status_code == 400
        assert "NOPE2" in r.json()["message"]
        assert coordinator.get("/api/experts", params={"subspecialty": "x"}).status_code == 422

    def test_a_weekly_shift_shows_when_it_next_opens(self, server: Server, world: World) -> None:
        # A shift on every day but today (in UTC) opens within a day or so, never now.
        today = datetime.now(UTC).weekday()
        shifts = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7) if d != today]
        _, uid = expert(world, timezone="UTC", shifts=shifts)
        body = world.admin.get(f"/api/experts/{uid}").json()
        assert body["available_now"] is False
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        assert utc(body["next_window_start"]) == tomorrow

    def test_who_may_read_a_profile(self, server: Server, world: World) -> None:
        reader, uid = expert(world)
        other, _ = expert(world)
        tech = world.hospital().tech
        assert world.signed_in("coordinator").get(f"/api/experts/{uid}").status_code == 200
        assert world.admin.get(f"/api/experts/{uid}").status_code == 200
        assert reader.get(f"/api/experts/{uid}").status_code == 200
        r = other.get(f"/api/experts/{uid}")
        assert r.status_code == 403
        assert "themself" in r.json()["message"]
        assert other.get("/api/experts").status_code == 403
        for path in ("/api/experts", f"/api/experts/{uid}"):
            assert tech.get(path).status_code == 403, path
        unknown = user_id(world.signed_in("radiologist"))
        assert world.admin.get(f"/api/experts/{unknown}").status_code == 404


class TestSelfService:
    def test_a_reader_without_a_profile_is_told_who_creates_it(
        self, server: Server, world: World
    ) -> None:
        reader = world.signed_in("radiologist")
        calls = [
            reader.get("/api/experts/me"),
            reader.put("/api/experts/me/state", json={"state": "online"}),
            reader.put("/api/experts/me/availability", json={"windows": []}),
            reader.patch("/api/experts/me", json={"cap_open_cases": 2}),
        ]
        for r in calls:
            assert r.status_code == 404, r.text
            assert "an admin must create it" in r.json()["message"]

    def test_only_radiologists_use_self_service(self, server: Server, world: World) -> None:
        tech = world.hospital().tech
        coordinator = world.signed_in("coordinator")
        for api in (tech, coordinator):
            assert api.get("/api/experts/me").status_code == 403
            assert api.put("/api/experts/me/state", json={"state": "online"}).status_code == 403
            r = api.put("/api/experts/me/availability", json={"windows": []})
            assert r.status_code == 403
            assert api.patch("/api/experts/me", json={"cap_open_cases": 1}).status_code == 403

    def test_state(self, server: Server, world: World) -> None:
        reader, uid = expert(world)
        before = reader.get("/api/experts/me").json()
        assert before["state"] == "offline"
        r = reader.put("/api/experts/me/state", json={"state": "away"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "away"
        assert utc(r.json()["state_changed_at"]) > utc(before["state_changed_at"])
        # The same state again changes nothing and is not recorded twice.
        again = reader.put("/api/experts/me/state", json={"state": "away"}).json()
        assert again["state_changed_at"] == r.json()["state_changed_at"]
        r = reader.put("/api/experts/me/state", json={"state": "asleep"})
        assert r.status_code == 422
        assert "state" in r.json()["message"]
        changes = audit_actions(world, "expert.state", uid)
        assert [e["detail"] for e in changes] == [{"from": "offline", "to": "away"}]
        assert changes[0]["actor_id"] == uid

    async def test_state_changes_reach_staff_live(self, server: Server, world: World) -> None:
        reader, uid = expert(world)
        coordinator = world.signed_in("coordinator")
        url = server.url.replace("http", "ws") + f"/ws?token={coordinator.token}"
        async with websockets.connect(url) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
            # The socket subscribes just after its hello: change the state until the change
            # shows up, rather than guess how long that takes.
            seen = None
            for attempt in range(40):
                state = ("online", "away")[attempt % 2]
                await asyncio.to_thread(reader.put, "/api/experts/me/state", json={"state": state})
                try:
                    while seen is None:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        if event.get("type") == "expert.state" and event["user_id"] == uid:
                            seen = event
                except TimeoutError:
                    continue
                break
        assert seen is not None, "no expert.state event reached the coordinator"
        assert seen["state"] in ("online", "away")
        assert seen["reader_ids"] == [uid]
        assert seen["staff_only"] is True
        assert "hospital_id" not in seen

    def test_availability_windows(self, server: Server, world: World) -> None:
        reader, uid = expert(world, employment="part_time")
        now = datetime.now(UTC).replace(microsecond=0)
        current = (now - timedelta(hours=1), now + timedelta(hours=3))
        later = (now + timedelta(days=2), now + timedelta(days=2, hours=4))
        past = (now - timedelta(days=1), now - timedelta(days=1) + timedelta(hours=2))
        r = reader.put(
            "/api/experts/me/availability",
            json={
                "windows": [
                    {"starts_at": iso(s), "ends_at": iso(e)} for s, e in (later, past, current)
                ]
            },
        )
        assert r.status_code == 200, r.text
        body = r.json()
        # Sorted, and the window already over is dropped.
        assert [(utc(w["starts_at"]), utc(w["ends_at"])) for w in body["windows"]] == [
            current,
            later,
        ]
        assert body["available_now"] is True
        assert utc(body["available_until"]) == current[1]
        assert utc(body["next_window_start"]) == later[0]

        # The list replaces the windows: an empty one clears them.
        cleared = reader.put("/api/experts/me/availability", json={"windows": []}).json()
        assert (cleared["windows"], cleared["available_now"]) == ([], False)
        assert cleared["next_window_start"] is None

        # A window in another zone is the same moment.
        shanghai = (now + timedelta(hours=5)).astimezone(ZoneInfo("Asia/Shanghai"))
        r = reader.put(
            "/api/experts/me/availability",
            json={
                "windows": [
                    {"starts_at": iso(shanghai), "ends_at": iso(shanghai + timedelta(hours=1))}
                ]
            },
        )
        assert utc(r.json()["windows"][0]["starts_at"]) == now + timedelta(hours=5)

        audit = audit_actions(world, "expert.availability", uid)
        assert [e["detail"] for e in audit] == [
            {"windows": 1, "dropped_past": 0},
            {"windows": 0, "dropped_past": 0},
            {"windows": 2, "dropped_past": 1},
        ]

    def test_bad_windows_are_refused(self, server: Server, world: World) -> None:
        reader, _ = expert(world, employment="part_time")
        now = datetime.now(UTC)

        def put(start: datetime | str, end: datetime | str):  # type: ignore[no-untyped-def]
            window = {
                "starts_at": start if isinstance(start, str) else iso(start),
                "ends_at": end if isinstance(end, str) else iso(end),
            }
            return reader.put("/api/experts/me/availability", json={"windows": [window]})

        backwards = put(now + timedelta(hours=2), now + timedelta(hours=1))
        assert backwards.status_code == 422
        assert "ends_at must be after starts_at" in backwards.json()["message"]
        too_long = put(now, now + timedelta(hours=25))
        assert too_long.status_code == 422
        assert "24 hours" in too_long.json()["message"]
        naive = put("2030-01-01T08:00:00", "2030-01-01T12:00:00")
        assert naive.status_code == 422
        assert "timezone" in naive.json()["message"]
        far = put(now + timedelta(days=61), now + timedelta(days=61, hours=2))
        assert far.status_code == 400
        assert "60 days" in far.json()["message"]

    def test_caps(self, server: Server, world: World) -> None:
        reader, uid = expert(world, employment="part_time", cap_daily_units=20)
        r = reader.patch("/api/experts/me", json={"cap_open_cases": 3})
        assert r.status_code == 200, r.text
        # A field left out keeps its value.
        assert (r.json()["cap_open_cases"], r.json()["cap_daily_units"]) == (3, 20.0)
        r = reader.patch("/api/experts/me", json={"cap_daily_units": None})
        assert (r.json()["cap_open_cases"], r.json()["cap_daily_units"]) == (3, None)
        empty = reader.patch("/api/experts/me", json={})
        assert empty.status_code == 400
        assert "Nothing to change" in empty.json()["message"]
        negative = reader.patch("/api/experts/me", json={"cap_open_cases": -2})
        assert negative.status_code == 422
        assert "cap_open_cases" in negative.json()["message"]
        assert world.admin.get(f"/api/experts/{uid}").json()["cap_open_cases"] == 3
        caps = audit_actions(world, "expert.caps", uid)
        assert [e["detail"] for e in caps] == [{"cap_daily_units": None}, {"cap_open_cases": 3}]


# --- availability(), pure --------------------------------------------------------------------

SHANGHAI, BERLIN = "Asia/Shanghai", "Europe/Berlin"


def at(text: str) -> datetime:
    """An instant written in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class TestAvailability:
    def test_a_day_shift_is_placed_in_the_experts_zone(self) -> None:
        # Monday 2025-01-06, 08:00-16:00 in Shanghai (UTC+8) is 00:00-08:00 UTC.
        spans = availability(
            [(0, 8 * 60, 16 * 60)],
            [],
            SHANGHAI,
            at("2025-01-06 04:00"),
            before=timedelta(hours=1),
            after=timedelta(hours=1),
        )
        assert spans == ((at("2025-01-06 00:00"), at("2025-01-06 08:00")),)
        assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in spans)

    def test_a_night_shift_runs_past_midnight(self) -> None:
        # Friday 22:00 to Saturday 06:00 in UTC: weekday 4, end minute 30 h after Friday 00:00.
        night = (4, 22 * 60, 30 * 60)
        # Saturday 03:00 is inside Friday's shift.
        spans = availability(
            [night],
            [],
            "UTC",
            at("2025-01-11 03:00"),
            before=timedelta(0),
            after=timedelta(hours=1),
        )
        assert spans == ((at("2025-01-10 22:00"), at("2025-01-11 06:00")),)
        # A whole week shows it once.
        week = availability(
            [night], [], "UTC", at("2025-01-06 00:00"), before=timedelta(0), after=timedelta(days=7)
        )
        assert week == ((at("2025-01-10 22:00"), at("2025-01-11 06:00")),)

    def test_shifts_keep_wall_clock_time_across_the_spring_change(self) -> None:
        # Berlin moves from UTC+1 to UTC+2 at 01:00 UTC on Sunday 2025-03-30.
        day = [(d, 8 * 60, 16 * 60) for d in range(7)]
        spans = availability(day, [], BERLIN, at("2025-03-30 12:00"))
        assert (at("2025-03-29 07:00"), at("2025-03-29 15:00")) in spans  # Sat, CET
        assert (at("2025-03-30 06:00"), at("2025-03-30 14:00")) in spans  # Sun, CEST
        assert (at("2025-03-31 06:00"), at("2025-03-31 14:00")) in spans  # Mon, CEST

        # The night over the change is an hour short: 22:00 CET to 06:00 CEST is 7 h.
        night = availability(
            [(5, 22 * 60, 30 * 60)],
            [],
            BERLIN,
            at("2025-03-30 00:00"),
            before=timedelta(0),
            after=timedelta(hours=1),
        )
        assert night == ((at("2025-03-29 21:00"), at("2025-03-30 04:00")),)
        assert night[0][1] - night[0][0] == timedelta(hours=7)

        # 02:30 does not exist that night: it is read with the winter offset (03:30 summer time).
        gap = availability([(6, 150, 240)], [], BERLIN, at("2025-03-30 02:00"))
        assert gap == ((at("2025-03-30 01:30"), at("2025-03-30 02:00")),)

    def test_the_autumn_night_is_an_hour_longer(self) -> None:
        # Berlin moves back to UTC+1 at 01:00 UTC on Sunday 2025-10-26: that night lasts 9 h.
        night = availability(
            [(5, 22 * 60, 30 * 60)],
            [],
            BERLIN,
            at("2025-10-26 00:00"),
            before=timedelta(0),
            after=timedelta(hours=1),
        )
        assert night == ((at("2025-10-25 20:00"), at("2025-10-26 05:00")),)

    def test_touching_and_overlapping_windows_merge(self) -> None:
        around_the_clock = [(d, 0, 24 * 60) for d in range(7)]
        spans = availability(around_the_clock, [], SHANGHAI, at("2025-03-12 00:00"))
        # Seven adjacent days are one window covering the whole range.
        assert len(spans) == 1
        start, end = spans[0]
        assert start <= at("2025-03-11 00:00") and end >= at("2025-03-15 00:00")

        shift = (2, 9 * 60, 12 * 60)  # Wednesday 09:00-12:00 UTC
        windows = [
            (at("2025-03-12 11:00"), at("2025-03-12 13:00")),  # overlaps the shift
            (at("2025-03-12 13:00"), at("2025-03-12 14:00")),  # touches the previous
            (at("2025-03-12 15:00"), at("2025-03-12 16:00")),  # stands apart
            (at("2025-03-12 09:30"), at("2025-03-12 10:00")),  # inside the shift
        ]
        spans = availability([shift], windows, "UTC", at("2025-03-12 12:00"))
        assert spans == (
            (at("2025-03-12 09:00"), at("2025-03-12 14:00")),
            (at("2025-03-12 15:00"), at("2025-03-12 16:00")),
        )

    def test_only_windows_overlapping_the_range_are_returned(self) -> None:
        around = at("2025-03-12 12:00")  # a Wednesday
        windows = [
            (at("2025-03-10 00:00"), at("2025-03-10 02:00")),  # ended before the range
            (at("2025-03-11 11:00"), at("2025-03-11 13:00")),  # reaches in: kept whole
            (at("2025-03-15 11:00"), at("2025-03-15 13:00")),  # straddles the end: kept
            (at("2025-03-16 00:00"), at("2025-03-16 02:00")),  # starts after the range
        ]
        spans = availability([], windows, "UTC", around)  # 1 day before, 3 days after
        assert spans == (
            (at("2025-03-11 11:00"), at("2025-03-11 13:00")),
            (at("2025-03-15 11:00"), at("2025-03-15 13:00")),
        )
        # Weekly shifts are expanded over the range only, including one that began the day
        # before it and runs 47 hours.
        long = (0, 60, 48 * 60)  # Monday 01:00 to Wednesday 00:00
        daily = [(d, 10 * 60, 11 * 60) for d in range(7)]
        spans = availability(
            [long, *daily], [], "UTC", around, before=timedelta(hours=36), after=timedelta(days=1)
        )
        assert spans == (
            (at("2025-03-10 01:00"), at("2025-03-12 00:00")),
            (at("2025-03-12 10:00"), at("2025-03-12 11:00")),
            (at("2025-03-13 10:00"), at("2025-03-13 11:00")),
        )

    def test_windows_come_back_in_utc_and_the_clock_must_be_aware(self) -> None:
        local = datetime(2025, 3, 12, 20, 0, tzinfo=ZoneInfo(SHANGHAI))
        spans = availability([], [(local, local + timedelta(hours=1))], "UTC", local)
        assert spans == ((at("2025-03-12 12:00"), at("2025-03-12 13:00")),)
        with pytest.raises(ValueError, match="aware"):
            availability([], [], "UTC", datetime(2025, 3, 12, 12, 0))
