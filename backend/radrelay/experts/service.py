"""Experts: profiles (admins), the roster with availability and load (coordinators, routing),
and what an expert sets themself (state, one-off windows, caps).

``availability`` turns weekly shifts and one-off windows into concrete UTC windows; it is pure
so that routing and tests can call it with any clock.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal, Role
from radrelay.cases.repository import repository as cases
from radrelay.errors import BadRequest, Forbidden, NotFound
from radrelay.experts.repository import Ids, repository
from radrelay.experts.schemas import (
    CapsUpdate,
    CredentialRead,
    Employment,
    ExpertProfile,
    ExpertRead,
    ExpertState,
    ExpertUpdate,
    Qualification,
    ShiftRead,
    SigningProfile,
    Subspecialty,
    WindowIn,
    WindowRead,
)
from radrelay.hospitals.service import hospitals
from radrelay.kit import events, jobs
from radrelay.kit.db import utcnow
from radrelay.models import Expert

__all__ = ["ExpertProfile", "ExpertService", "availability", "experts", "roster"]

# How far ahead an expert may declare windows: further plans change anyway, and routing never
# looks that far.
MAX_AHEAD = timedelta(days=60)
# What the roster shows as "next window": a weekly shift always opens within a week.
_SHOWN_AHEAD = timedelta(days=8)
# Shifts end up to 48 h after the start of their weekday: those of the days before the range
# can reach into it.
_SHIFT_REACH_DAYS = 2


def availability(
    shifts: Iterable[tuple[int, int, int]],
    windows: Iterable[tuple[datetime, datetime]],
    tz: str,
    around: datetime,
    *,
    before: timedelta = timedelta(days=1),
    after: timedelta = timedelta(days=3),
) -> tuple[tuple[datetime, datetime], ...]:
    """The expert's [start, end) windows in UTC that overlap [around - before, around + after],
    sorted, with overlapping and touching windows merged into one.

    ``shifts`` are weekly (weekday 0 = Monday, start minute, end minute past that weekday's
    midnight, up to 48 h) in wall-clock time of ``tz``: each is placed on the local calendar
    and only then converted, so an 08:00 shift starts at 08:00 local on both sides of a DST
    change, and a night shift over the change lasts an hour less or more. A wall time that does
    not exist (skipped by the spring change) is read with the offset before the change; one
    that happens twice (autumn) means the first. ``windows`` are one-off and aware.
    """
    if around.tzinfo is None:
        raise ValueError("around must be timezone-aware")
    lo, hi = around - before, around + after
    zone = ZoneInfo(tz)
    by_weekday: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for weekday, start_minute, end_minute in shifts:
        by_weekday[weekday].append((start_minute, end_minute))

    spans: list[tuple[datetime, datetime]] = []
    if by_weekday:
        day = lo.astimezone(zone).date() - timedelta(days=_SHIFT_REACH_DAYS)
        last = hi.astimezone(zone).date()
        while day <= last:
            for start_minute, end_minute in by_weekday.get(day.weekday(), ()):
                start = _wall(day, start_minute, tz)
                end = _wall(day, end_minute, tz)
                if start < hi and end > lo and end > start:
                    spans.append((start, end))
            day += timedelta(days=1)
    for start, end in windows:
        if start < hi and end > lo and end > start:
            spans.append((start.astimezone(UTC), end.astimezone(UTC)))
    return _merged(spans)


# Remembered: routing expands the shifts of hundreds of experts per decision, and they share
# a few zones, days and shift boundaries, while attaching a zone costs microseconds each time.
@functools.lru_cache(maxsize=8192)
def _wall(day: date, minutes: int, tz: str) -> datetime:
    # Naive arithmetic is wall-clock arithmetic: add the minutes, then attach the zone.
    local = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return local.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _merged(spans: list[tuple[datetime, datetime]]) -> tuple[tuple[datetime, datetime], ...]:
    spans.sort()
    out: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _name(row: Any) -> str:
    return str(row.display_name or row.username)


class ExpertService:
    # --- the admin's profile ------------------------------------------------------------------

    async def put_profile(
        self, session: AsyncSession, actor: Principal | None, user_id: int, data: ExpertUpdate
    ) -> tuple[Expert, bool]:
        """Create or replace the profile of an active radiologist: every field and list is
        replaced; the state and the expert's one-off windows are kept. Returns (expert,
        created)."""
        user = await repository.user(session, user_id)
        if user is None:
            raise NotFound(f"No user {user_id}.")
        if user.role != Role.radiologist:
            raise BadRequest(
                f"User {user.username!r} is a {user.role}, not a radiologist: only radiologists "
                "have an expert profile."
            )
        if not user.active:
            raise BadRequest(f"User {user.username!r} is disabled: enable the account first.")
        expiries = await self._hospital_ids(session, data)

        expert = await repository.get(session, user_id)
        created = expert is None
        if expert is None:
            expert = Expert(
                user_id=user_id,
                state=ExpertState.offline.value,
                state_changed_at=utcnow(),
            )
            session.add(expert)
        expert.employment = data.employment.value
        expert.qualification = data.qualification.value
        expert.cap_open_cases = data.cap_open_cases
        expert.cap_daily_units = data.cap_daily_units
        expert.timezone = data.timezone
        expert.updated_at = utcnow()
        # The lists refer to the expert row: it must exist before they are written.
        await session.flush()
        await repository.replace_subspecialties(
            session, user_id, {s.value: level for s, level in data.subspecialties.items()}
        )
        await repository.replace_credentials(session, user_id, expiries)
        await repository.replace_shifts(session, user_id, [s.stored() for s in data.shifts])
        # The new profile may make them eligible for cases that are waiting.
        await cases.retry_waiting_now(session, list(expiries))
        await session.flush()
        audit.record(
            session,
            actor,
            "expert.update",
            object_type="expert",
            object_id=user_id,
            detail={
                "created": created,
                "subspecialties": {s.value: lvl for s, lvl in data.subspecialties.items()},
                "hospitals": [c.hospital_code for c in data.credentials],
            },
        )
        return expert, created

    async def _hospital_ids(
        self, session: AsyncSession, data: ExpertUpdate
    ) -> dict[int, datetime | None]:
        expiries: dict[int, datetime | None] = {}
        unknown = []
        for credential in data.credentials:
            try:
                hospital = await hospitals.get_by_code(session, credential.hospital_code)
            except NotFound:
                unknown.append(credential.hospital_code)
                continue
            expiries[hospital.id] = credential.expires_at
        if unknown:
            names = ", ".join(repr(c) for c in unknown)
            raise BadRequest(
                f"Unknown hospital code {names} in credentials: fix the code or create the "
                "hospital first.",
                detail={"unknown_hospital_codes": unknown},
            )
        return expiries

    # --- reading profiles ---------------------------------------------------------------------

    async def read(self, session: AsyncSession, principal: Principal, user_id: int) -> ExpertRead:
        """One profile: coordinators and admins read any, a radiologist their own."""
        if not principal.sees_all_hospitals and not (
            principal.role == Role.radiologist and principal.user_id == user_id
        ):
            raise Forbidden("Only coordinators, admins and the expert themself see a profile.")
        found = await self._reads(session, repository.ids(user_id=user_id, only_active=False))
        if not found:
            raise NotFound(f"User {user_id} has no expert profile.")
        return found[0]

    async def read_own(self, session: AsyncSession, principal: Principal) -> ExpertRead:
        found = await self._reads(
            session, repository.ids(user_id=principal.user_id, only_active=False)
        )
        if not found:
            raise _no_profile()
        return found[0]

    async def listing(
        self,
        session: AsyncSession,
        *,
        state: ExpertState | None = None,
        subspecialty: Subspecialty | None = None,
        hospital_code: str | None = None,
    ) -> list[ExpertRead]:
        """The roster of active experts, by username. ``hospital_code``: those whose credential
        there has not expired."""
        now = utcnow()
        hospital_id = None
        if hospital_code is not None:
            try:
                hospital_id = (await hospitals.get_by_code(session, hospital_code)).id
            except NotFound:
                raise BadRequest(f"Unknown hospital code {hospital_code!r}.") from None
        ids = repository.ids(
            state=state.value if state else None,
            subspecialty=subspecialty.value if subspecialty else None,
            credentialed_for=hospital_id,
            valid_at=now,
        )
        return await self._reads(session, ids, now)

    async def _reads(
        self, session: AsyncSession, ids: Ids, now: datetime | None = None
    ) -> list[ExpertRead]:
        now = now or utcnow()
        heads = await repository.heads(session, ids)
        if not heads:
            return []
        levels = await repository.subspecialties(session, ids)
        credentials = await repository.credentials(session, ids)
        shifts = await repository.shifts(session, ids)
        windows = await repository.windows(session, ids, since=now)
        load = await repository.load(session, ids)
        out = []
        for row in heads:
            uid = row.user_id
            own_shifts, own_windows = shifts.get(uid, []), windows.get(uid, [])
            spans = availability(
                own_shifts,
                own_windows,
                row.timezone,
                now,
                before=timedelta(0),
                after=_SHOWN_AHEAD,
            )
            current = next((end for start, end in spans if start <= now < end), None)
            # Windows past the horizon cannot touch the spans, so their starts are starts.
            upcoming = [start for start, _ in spans if start > now]
            upcoming += [start for start, _ in own_windows if start >= now + _SHOWN_AHEAD]
            open_cases, open_units = load.get(uid, (0, 0.0))
            out.append(
                ExpertRead(
                    user_id=uid,
                    username=row.username,
                    name=_name(row),
                    active=row.active,
                    employment=Employment(row.employment),
                    qualification=Qualification(row.qualification),
                    state=ExpertState(row.state),
                    state_changed_at=row.state_changed_at,
                    subspecialties=levels.get(uid, {}),
                    credentials=[
                        CredentialRead(
                            hospital_id=h,
                            hospital_code=code,
                            expires_at=expires,
                            expired=expires is not None and expires <= now,
                        )
                        for h, code, expires in credentials.get(uid, [])
                    ],
                    cap_open_cases=row.cap_open_cases,
                    cap_daily_units=row.cap_daily_units,
                    timezone=row.timezone,
                    shifts=[ShiftRead.of(s) for s in own_shifts],
                    windows=[WindowRead(starts_at=s, ends_at=e) for s, e in own_windows],
                    available_now=current is not None,
                    available_until=current,
                    next_window_start=min(upcoming, default=None),
                    open_cases=open_cases,
                    open_units=open_units,
                    updated_at=row.updated_at,
                )
            )
        return out

    # --- routing ------------------------------------------------------------------------------

    async def roster(
        self, session: AsyncSession, hospital_id: int, now: datetime
    ) -> list[ExpertProfile]:
        """The active experts with a credential for the hospital (expired ones too: routing
        explains why they were passed over), with availability around ``now``. Five queries
        whatever the number of experts."""
        before, after = timedelta(days=1), timedelta(days=3)
        ids = repository.ids(credentialed_for=hospital_id)
        heads = await repository.heads(session, ids)
        if not heads:
            return []
        levels = await repository.subspecialties(session, ids)
        credentials = await repository.credentials(session, ids)
        shifts = await repository.shifts(session, ids)
        windows = await repository.windows(session, ids, since=now - before, until=now + after)
        return [
            ExpertProfile(
                user_id=row.user_id,
                name=_name(row),
                employment=Employment(row.employment),
                state=ExpertState(row.state),
                qualification=Qualification(row.qualification),
                subspecialties=levels.get(row.user_id, {}),
                credentials={h: e for h, _, e in credentials.get(row.user_id, [])},
                availability=availability(
                    shifts.get(row.user_id, ()),
                    windows.get(row.user_id, ()),
                    row.timezone,
                    now,
                    before=before,
                    after=after,
                ),
                cap_open_cases=row.cap_open_cases,
                cap_daily_units=row.cap_daily_units,
            )
            for row in heads
        ]

    # --- what the expert sets -----------------------------------------------------------------

    async def signing_profile(
        self, session: AsyncSession, user_id: int, now: datetime
    ) -> SigningProfile | None:
        """The signer behind an active radiologist's expert profile; None without one."""
        user = await repository.user(session, user_id)
        expert = await repository.get(session, user_id)
        if user is None or expert is None or not user.active or user.role != Role.radiologist:
            return None
        held = (await repository.credentials(session, repository.ids(user_id=user_id))).get(
            user_id, []
        )
        return SigningProfile(
            user_id=user_id,
            name=_name(user),
            qualification=Qualification(expert.qualification),
            hospital_ids=tuple(h for h, _, ends in held if ends is None or ends > now),
        )

    async def senior_ids(self, session: AsyncSession, hospital_id: int, now: datetime) -> set[int]:
        """Active final-qualified experts credentialed for the hospital: who may co-sign."""
        rows = await repository.heads(
            session, repository.ids(credentialed_for=hospital_id, valid_at=now)
        )
        return {int(r.user_id) for r in rows if r.qualification == Qualification.final.value}

    async def _retry_waiting(self, session: AsyncSession, user_id: int) -> None:
        """The cases waiting at the expert's hospitals are tried again at the next pass: what
        changed may make the expert eligible for them."""
        await cases.retry_waiting_now(session, await repository.hospital_ids(session, user_id))

    async def _own(self, session: AsyncSession, user_id: int) -> Expert:
        expert = await repository.get(session, user_id)
        if expert is None:
            raise _no_profile()
        return expert

    async def set_state(
        self, session: AsyncSession, actor: Principal | None, user_id: int, state: ExpertState
    ) -> Expert:
        """Set an expert online, away or offline (the expert themself, or staff on their
        behalf). Setting the state they are already in changes nothing. Announced live to
        staff and to the expert, and audited."""
        expert = await repository.get(session, user_id)
        if expert is None:
            if actor is not None and actor.user_id == user_id:
                raise _no_profile()
            raise NotFound(f"User {user_id} has no expert profile.")
        previous = expert.state
        if previous == state.value:
            return expert
        expert.state = state.value
        expert.state_changed_at = utcnow()
        if state == ExpertState.online:
            await self._retry_waiting(session, user_id)
        if state == ExpertState.offline:
            # Their unopened cases and their offers go back to routing (worklist domain), once
            # this change is committed; the id makes one job per going-offline.
            stamp = int(expert.state_changed_at.timestamp() * 1000)
            jobs.enqueue(
                session, "expert_offline", f"expert-offline:{user_id}:{stamp}", user_id=user_id
            )
        events.publish(
            session,
            {
                "type": "expert.state",
                "user_id": user_id,
                "state": state.value,
                "reader_ids": [user_id],
                "staff_only": True,
            },
        )
        audit.record(
            session,
            actor,
            "expert.state",
            object_type="expert",
            object_id=user_id,
            detail={"from": previous, "to": state.value},
        )
        await session.flush()
        return expert

    async def set_windows(
        self, session: AsyncSession, principal: Principal, windows: Sequence[WindowIn]
    ) -> None:
        """Replace the expert's one-off windows. Windows already over are dropped, old ones
        included: only the present and the future matter to routing."""
        await self._own(session, principal.user_id)
        now = utcnow()
        too_far = [w for w in windows if w.starts_at > now + MAX_AHEAD]
        if too_far:
            raise BadRequest(
                f"A window may start at most {MAX_AHEAD.days} days ahead; "
                f"{too_far[0].starts_at.isoformat()} is further.",
            )
        kept = sorted(
            (w.starts_at.astimezone(UTC), w.ends_at.astimezone(UTC))
            for w in windows
            if w.ends_at > now
        )
        await repository.replace_windows(session, principal.user_id, kept)
        await self._retry_waiting(session, principal.user_id)
        await session.flush()
        audit.record(
            session,
            principal,
            "expert.availability",
            object_type="expert",
            object_id=principal.user_id,
            detail={"windows": len(kept), "dropped_past": len(windows) - len(kept)},
        )

    async def set_caps(self, session: AsyncSession, principal: Principal, caps: CapsUpdate) -> None:
        expert = await self._own(session, principal.user_id)
        given = caps.given()
        if not given:
            raise BadRequest("Nothing to change: give cap_open_cases or cap_daily_units.")
        for key, value in given.items():
            setattr(expert, key, value)
        expert.updated_at = utcnow()
        await self._retry_waiting(session, principal.user_id)
        await session.flush()
        audit.record(
            session,
            principal,
            "expert.caps",
            object_type="expert",
            object_id=principal.user_id,
            detail=given,
        )


def _no_profile() -> NotFound:
    return NotFound(
        "You have no expert profile yet: an admin must create it (PUT /api/experts/{user_id}) "
        "before you can set your state, availability or caps."
    )


experts = ExpertService()
# Routing's entry point, by the name it knows.
roster = experts.roster
