"""Routing a case: gather the facts and the roster, ask the engine, apply its decision.

The engine is pure; everything with I/O is here. A decision is applied with one conditional
update of the case (it must still be in the status, with the reader and escalation step, that the
decision was computed from), so a routing pass racing a claim, a release or another pass cannot
hand a case to two readers: the loser's decision is stored as not applied and changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.cases.repository import repository as case_repository
from radrelay.cases.schemas import CaseStatus, Priority, Subspecialty
from radrelay.experts.schemas import ExpertProfile
from radrelay.experts.service import experts as expert_service
from radrelay.kit import events, telemetry
from radrelay.kit.runtime import Runtime
from radrelay.models import Case, CaseEvent, Study
from radrelay.routing.engine import classify, decide, primary_modality, sla_status
from radrelay.routing.repository import Load, repository
from radrelay.routing.rules import RuleSet, SlaRule, load_rules
from radrelay.routing.schemas import CaseFacts, Decision, ExpertSnapshot, ExpertState, Mode

# Statuses routing may (re)decide: nobody has opened the case yet.
ROUTABLE = (CaseStatus.ready.value, CaseStatus.offered.value, CaseStatus.assigned.value)
# What each trigger may route. Most only route a case that waits for a reader: a reader or a
# coordinator may have taken it since the trigger fired (a coordinator assigning a case before
# its first routing ran must keep it). An escalation step may move a case that was offered or
# assigned and not opened (widen the pool, reassign); a declined or withdrawn offer (its reader
# went offline) routes the pool again; a new priority re-routes what is offered and only moves
# the deadline of a held case.
_ROUTES: dict[str, tuple[str, ...]] = {
    "escalation": ROUTABLE,
    "declined": (CaseStatus.ready.value, CaseStatus.offered.value),
    "expert_offline": (CaseStatus.ready.value, CaseStatus.offered.value),
    "priority": (CaseStatus.ready.value, CaseStatus.offered.value),
}
# Ineligible experts kept one by one in a stored decision; past this many they are grouped.
INELIGIBLE_KEPT = 25
# Familiarity counts the hospital's cases a reader was given over this period.
FAMILIARITY_DAYS = 180
_FAMILIARITY_TTL = 300.0
# A case nobody could take is routed again every this many SLA watch passes (2 min by default),
# or at the next pass once a reader comes online or an expert profile changes.
RETRY_WATCH_PASSES = 4


def rules_of(runtime: Runtime) -> RuleSet:
    """The rules this process routes by: loaded (and checked) once, at first use."""
    rules: RuleSet | None = runtime.local.get("routing.rules")
    if rules is None:
        rules = runtime.local["routing.rules"] = load_rules(runtime.settings.rules_dir)
    return rules


def next_check(
    received_at: datetime, deadline: datetime, now: datetime, sla: SlaRule
) -> datetime | None:
    """When the SLA watch must look at the case again: the next warning, escalation, deadline
    or maximum-wait moment after ``now``; None once all have passed."""
    total = deadline - received_at
    moments = [received_at + total * f for f in sla.warn_at]
    moments += [received_at + total * step.at for step in sla.escalation]
    moments.append(deadline)
    if sla.max_wait_minutes is not None:
        moments.append(received_at + timedelta(minutes=sla.max_wait_minutes))
    later = [m for m in moments if m > now]
    return min(later) if later else None


def stored(decision: Decision) -> dict[str, Any]:
    """What is kept of a decision: its compact explanation, with the ineligible experts grouped
    by the first filter they failed once there are many (a large roster's failed filters would
    otherwise make every stored decision a hundred kilobytes), in the shadow decision too. Each
    group keeps its count, every user id, and one expert's failures in full as an example."""
    data = decision.to_json(compact=True)
    _group_ineligible(data)
    if data.get("shadow"):
        _group_ineligible(data["shadow"])
    return data


def _group_ineligible(data: dict[str, Any]) -> None:
    ineligible = [c for c in data["candidates"] if not c["eligible"]]
    if len(ineligible) <= INELIGIBLE_KEPT:
        return
    groups: dict[str, dict[str, Any]] = {}
    for c in ineligible:
        first = c["filters"][0]["name"] if c["filters"] else "unknown"
        group = groups.setdefault(
            first, {"failed": first, "count": 0, "user_ids": [], "example": c}
        )
        group["count"] += 1
        group["user_ids"].append(c["user_id"])
    data["candidates"] = [c for c in data["candidates"] if c["eligible"]]
    data["ineligible"] = sorted(groups.values(), key=lambda g: -g["count"])


class RoutingContext:
    """What routing passes share in one process: the rules and a short-lived cache of how
    familiar readers are with each hospital (a grouped count over months of cases)."""

    def __init__(
        self,
        rules: RuleSet,
        timezone: str,
        roster_seconds: float = 0.0,
        retry_seconds: float = 0.0,
    ):
        self.rules = rules
        self.zone = ZoneInfo(timezone)
        self.roster_seconds = roster_seconds
        # How long a case nobody could take waits before the SLA watch routes it again.
        self.retry_after = timedelta(seconds=retry_seconds)
        self._familiarity: dict[int, tuple[float, dict[int, int]]] = {}
        self._rosters: dict[int, tuple[float, list[ExpertProfile]]] = {}

    @classmethod
    def of(cls, runtime: Runtime) -> RoutingContext:
        ctx: RoutingContext | None = runtime.local.get("routing.context")
        if ctx is None:
            settings = runtime.settings
            ctx = runtime.local["routing.context"] = cls(
                rules_of(runtime),
                settings.timezone,
                settings.roster_cache_seconds,
                retry_seconds=RETRY_WATCH_PASSES * settings.sla_watch_seconds,
            )
        return ctx

    def day_start(self, now: datetime) -> datetime:
        local = now.astimezone(self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    async def roster(
        self, session: AsyncSession, hospital_id: int, now: datetime
    ) -> list[ExpertProfile]:
        """The hospital's experts: the profiles loaded at most ``roster_seconds`` ago (loading
        them is most of the cost of a decision with hundreds of experts), with their state as
        it is now, so that a reader who just went offline is never chosen."""
        cached = self._rosters.get(hospital_id)
        if cached is None or time.monotonic() - cached[0] >= self.roster_seconds:
            profiles = await expert_service.roster(session, hospital_id, now)
            self._rosters[hospital_id] = (time.monotonic(), profiles)
            return profiles
        profiles = cached[1]
        states = await repository.states(session, [p.user_id for p in profiles])
        return [
            p
            if states.get(p.user_id, p.state) == p.state
            else replace(p, state=ExpertState(states[p.user_id]))
            for p in profiles
            if p.user_id in states
        ]

    async def familiarity(
        self, session: AsyncSession, hospital_id: int, now: datetime
    ) -> dict[int, int]:
        cached = self._familiarity.get(hospital_id)
        if cached is not None and time.monotonic() - cached[0] < _FAMILIARITY_TTL:
            return cached[1]
        counts = await repository.familiarity(
            session, hospital_id, now - timedelta(days=FAMILIARITY_DAYS)
        )
        self._familiarity[hospital_id] = (time.monotonic(), counts)
        return counts


def _facts(
    case: Case, study: Study, code: str, series: list[tuple[str, str]], excluded: frozenset[int]
) -> CaseFacts:
    descriptions = tuple(d for d, _ in series if d)
    body_part = next((b for _, b in series if b), "")
    # What the sender typed as the requested exam describes the study as well as its own
    # description does (often better: "头颅CT平扫" where the modality wrote "Routine").
    description = " ".join(
        part for part in dict.fromkeys((study.study_description, case.requested_exam)) if part
    )
    return CaseFacts(
        case_id=case.id,
        hospital_id=case.hospital_id,
        hospital_code=code,
        priority=Priority(case.priority),
        modality=primary_modality(study.modalities_in_study.split("\\")),
        received_at=case.received_at,
        body_part=body_part,
        study_description=description,
        series_descriptions=descriptions,
        requested_subspecialty=(
            Subspecialty(case.requested_subspecialty) if case.requested_subspecialty else None
        ),
        escalation_step=case.escalation_step,
        patient_key=str(case.patient_pk),
        excluded_expert_ids=excluded,
    )


def _snapshots(
    profiles: list[ExpertProfile],
    load: dict[int, Load],
    case: Case,
    familiarity: dict[int, int],
    same_patient: set[int],
) -> list[ExpertSnapshot]:
    held_here = case.status in (CaseStatus.assigned.value, CaseStatus.reading.value)
    units_here = case.work_units or 0.0
    # The fair share: the mean of what the readers on duty took today. A reader below it is
    # behind and is preferred (policy weight ``fairness``).
    on_duty = [load.get(p.user_id, Load()).units_today for p in profiles if p.state == "online"]
    target = sum(on_duty) / len(on_duty) if on_duty else 0.0
    key = str(case.patient_pk)
    out = []
    for p in profiles:
        got = load.get(p.user_id, Load())
        open_cases, open_units = got.open_cases, got.open_units
        if held_here and p.user_id == case.reader_id:
            # Re-routing a case its reader holds must not count the case against them.
            open_cases, open_units = max(0, open_cases - 1), max(0.0, open_units - units_here)
        out.append(
            ExpertSnapshot(
                user_id=p.user_id,
                name=p.name,
                employment=p.employment,
                state=p.state,
                subspecialties=p.subspecialties,
                qualification=p.qualification,
                credentials=p.credentials,
                availability=p.availability,
                cap_open_cases=p.cap_open_cases,
                cap_daily_units=p.cap_daily_units,
                open_cases=open_cases,
                open_units=open_units,
                units_today=got.units_today,
                units_shift=got.units_today,
                shift_target_units=target,
                familiarity={case.hospital_id: familiarity.get(p.user_id, 0)},
                open_patient_keys=frozenset((key,)) if p.user_id in same_patient else frozenset(),
            )
        )
    return out


def next_retry(ctx: RoutingContext, experts: list[ExpertSnapshot], now: datetime) -> datetime:
    """When the SLA watch routes a case nobody could take again: after ``ctx.retry_after``, or
    sooner when one of the hospital's experts has a window opening (the first pass after it)."""
    openings = [start for e in experts for start, _ in e.availability if now < start]
    return min([now + ctx.retry_after, *openings])


class RoutingService:
    async def route(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        case_id: int,
        *,
        trigger: str,
        now: datetime,
    ) -> Decision | None:
        """Decide who reads the case now and apply it. Returns None when the trigger may not
        route the case as it is now (see ``_ROUTES``; being read, paused, gone: never), except
        that a priority change still moves the deadline of a case already held."""
        row = await repository.case_row(session, case_id)
        if row is None:
            return None
        case, study, code = row
        routable = case.status in _ROUTES.get(trigger, (CaseStatus.ready.value,))
        # A new priority moves the deadline of any case already routed, routable or not.
        reclassify = trigger == "priority" and case.status != CaseStatus.receiving.value
        if not routable and not reclassify:
            return None
        series = await repository.series_facts(session, study.id)
        excluded = await repository.excluded_readers(session, case_id)
        facts = _facts(case, study, code, series, excluded)
        if not routable:
            await self._reclassify(session, ctx, case, facts, now)
            return None

        profiles = await ctx.roster(session, case.hospital_id, now)
        ids = [p.user_id for p in profiles]
        load = await repository.load(session, ids, ctx.day_start(now))
        familiarity = await ctx.familiarity(session, case.hospital_id, now)
        same = await repository.same_patient_readers(session, case.patient_pk, case_id)
        experts = _snapshots(profiles, load, case, familiarity, same)
        started = time.perf_counter()
        decision = decide(facts, experts, now, ctx.rules)
        telemetry.ROUTING_SECONDS.observe(time.perf_counter() - started)
        telemetry.ROUTING_DECISIONS.labels(mode=decision.mode.value, trigger=trigger).inc()

        if trigger == "retry" and decision.mode == Mode.none and case.status == "ready":
            # Still nobody: the case waits as it was; no row per watch pass.
            await case_repository.update_if(
                session,
                case.id,
                expect={"status": case.status},
                values={"route_retry_at": next_retry(ctx, experts, now)},
            )
            return decision
        if decision.mode == Mode.none and case.status != CaseStatus.ready.value:
            # Nobody (else) can take it now: better the reader who holds it, or the pool it is
            # offered to, than nobody. Kept as a decision not applied, for the explanation.
            await self._reclassify(session, ctx, case, facts, now)
            await self._save(session, case.id, decision, trigger, now, applied=False)
            return decision
        await self._apply(
            session,
            ctx,
            case,
            decision,
            trigger=trigger,
            now=now,
            retry_at=next_retry(ctx, experts, now),
        )
        return decision

    async def classify_unrouted(
        self, session: AsyncSession, ctx: RoutingContext, case_id: int, now: datetime
    ) -> None:
        """Give a case its subspecialty, work units and deadline when no routing has yet (a
        coordinator assigns it before its first routing ran): its SLA runs all the same."""
        row = await repository.case_row(session, case_id)
        if row is None or row[0].deadline is not None:
            return
        case, study, code = row
        series = await repository.series_facts(session, study.id)
        excluded = await repository.excluded_readers(session, case_id)
        await self._reclassify(session, ctx, case, _facts(case, study, code, series, excluded), now)

    async def _reclassify(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        case: Case,
        facts: CaseFacts,
        now: datetime,
    ) -> None:
        cls = classify(facts, ctx.rules)
        await case_repository.update_if(
            session,
            case.id,
            expect={"status": case.status},
            values={
                "subspecialty": cls.subspecialty.value,
                "work_units": cls.work_units,
                "sla_target_minutes": cls.sla_target_minutes,
                "deadline": cls.deadline,
                "sla_next_at": next_check(case.received_at, cls.deadline, now, ctx.rules.sla),
                "updated_at": now,
            },
        )

    async def _save(
        self,
        session: AsyncSession,
        case_id: int,
        decision: Decision,
        trigger: str,
        now: datetime,
        *,
        applied: bool,
    ) -> None:
        await repository.save_decision(
            session,
            {
                "case_id": case_id,
                "decided_at": now,
                "trigger": trigger,
                "mode": decision.mode.value,
                "assignee_id": decision.assignee,
                "escalation_step": decision.escalation_step,
                "applied": applied,
                "decision": stored(decision),
            },
        )

    async def _apply(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        case: Case,
        decision: Decision,
        *,
        trigger: str,
        now: datetime,
        retry_at: datetime,
    ) -> None:
        previous = case.reader_id
        if decision.mode == Mode.push:
            status, reader = CaseStatus.assigned.value, decision.assignee
        elif decision.mode == Mode.pool:
            status, reader = CaseStatus.offered.value, None
        else:
            status, reader = CaseStatus.ready.value, None
        sla = sla_status(case.received_at, decision.deadline, now, ctx.rules)
        values: dict[str, Any] = {
            "status": status,
            "reader_id": reader,
            "lease_expires_at": None,
            "subspecialty": decision.subspecialty.value,
            "work_units": decision.work_units,
            "sla_target_minutes": decision.sla_target_minutes,
            "deadline": decision.deadline,
            "sla_state": sla.state.value,
            "sla_next_at": next_check(case.received_at, decision.deadline, now, ctx.rules.sla),
            "routed_at": case.routed_at or now,
            "route_retry_at": retry_at if status == CaseStatus.ready.value else None,
            "updated_at": now,
        }
        if reader is not None:
            values["assigned_at"] = case.assigned_at or now
        applied = await case_repository.update_if(
            session,
            case.id,
            expect={
                "status": case.status,
                "reader_id": previous,
                "escalation_step": case.escalation_step,
            },
            values=values,
        )
        await self._save(session, case.id, decision, trigger, now, applied=applied)
        if not applied:
            return

        # The holds follow the decision: the one assigned reader, the offered pool.
        removed: set[int] = set()
        if previous is not None and previous != reader:
            removed |= set(await case_repository.end_assignments(session, case.id, "assigned"))
        offers = await case_repository.active_offers(session, case.id)
        wanted = set(decision.offered) if decision.mode == Mode.pool else set()
        for user_id in offers - wanted:
            removed |= set(
                await case_repository.end_assignments(session, case.id, "offered", user_id)
            )
        holds: list[tuple[int, str]] = [
            (u, "offered") for u in decision.offered if u not in offers and u in wanted
        ]
        if reader is not None and reader != previous:
            holds.append((reader, "assigned"))
        for user_id, kind in holds:
            await case_repository.add_assignment(
                session,
                {
                    "case_id": case.id,
                    "user_id": user_id,
                    "kind": kind,
                    "active": True,
                    "reason": f"routing: {trigger}",
                    "created_by_id": None,
                    "created_at": now,
                },
            )
        session.add(
            CaseEvent(
                case_id=case.id,
                at=now,
                kind="routed",
                detail={
                    "trigger": trigger,
                    "mode": decision.mode.value,
                    "reader_id": reader,
                    "offered": list(decision.offered),
                    "escalation_step": decision.escalation_step,
                    "reason": decision.reason,
                },
            )
        )
        concerned = sorted({*(u for u, _ in holds), *removed, *([reader] if reader else [])})
        events.publish(
            session,
            {
                "type": "case.routed",
                "case_id": case.id,
                "hospital_id": case.hospital_id,
                "status": status,
                "reader_ids": concerned,
            },
        )
        if decision.alert_coordinator:
            events.publish(
                session,
                {
                    "type": "case.alert",
                    "case_id": case.id,
                    "hospital_id": case.hospital_id,
                    "reason": decision.reason,
                    "staff_only": True,
                },
            )


routing = RoutingService()
