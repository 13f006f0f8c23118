"""What readers and coordinators do with routed cases, and the SLA watch.

- A reader **claims** a case offered or assigned to them: one conditional UPDATE of the case row
  (``status``/``reader_id``), so of fifty readers claiming at once exactly one wins; the partial
  unique index on active assignments backs it. The claim is a lease, renewed by claiming again
  while reading; an expired lease returns the case to routing.
- **Release** checks the owner, returns the case to routing and keeps that reader out of it.
  Releasing an offer declines it.
- Coordinators **assign** (or reassign), **offer**, **pause**, **resume** and change the
  **priority** of a case, always with a reason, always audited.
- The **SLA watch** (every ``sla_watch_seconds``) expires leases, announces warnings and
  breaches, applies escalation steps by routing again, and retries cases nobody could take.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal, Role
from radrelay.cases import auth
from radrelay.cases.repository import CaseRow
from radrelay.cases.repository import repository as cases
from radrelay.cases.schemas import AssignmentKind, CaseStatus, Priority
from radrelay.cases.service import to_read
from radrelay.errors import BadRequest, Conflict, Forbidden, NotFound
from radrelay.kit import events
from radrelay.kit.runtime import Runtime
from radrelay.models import Case, CaseEvent
from radrelay.routing.engine import sla_status
from radrelay.routing.repository import repository as routing_repository
from radrelay.routing.service import ROUTABLE, RoutingContext, next_check, routing
from radrelay.worklist.repository import BoardFilter, offer_of, repository
from radrelay.worklist.schemas import (
    ClaimRead,
    Hold,
    RoutingDecisionRead,
    SlaRead,
    WatchReport,
    WorklistItem,
    WorklistPage,
)

log = logging.getLogger(__name__)

_OPEN_UNPAUSED = (*ROUTABLE, CaseStatus.reading.value)


def _event(
    case_id: int, kind: str, now: datetime, actor: Principal | None, **detail: object
) -> CaseEvent:
    return CaseEvent(
        case_id=case_id, at=now, kind=kind, actor_id=actor.user_id if actor else None, detail=detail
    )


def _audit(
    session: AsyncSession, principal: Principal, action: str, case: Case, **detail: object
) -> None:
    audit.record(
        session,
        principal,
        action,
        object_type="case",
        object_id=case.id,
        hospital_id=case.hospital_id,
        detail=detail or None,
    )


class WorklistService:
    # --- reading the worklist ---------------------------------------------------------------

    def _item(
        self, ctx: RoutingContext, row: CaseRow, hold: Hold | None, now: datetime
    ) -> WorklistItem:
        case = row[0]
        sla = None
        if case.deadline is not None:
            s = sla_status(case.received_at, case.deadline, now, ctx.rules)
            sla = SlaRead(
                state=s.state.value,
                remaining_minutes=s.remaining_minutes,
                elapsed_fraction=s.elapsed_fraction,
                overdue_wait=s.overdue_wait,
            )
        return WorklistItem(case=to_read(row), hold=hold, sla=sla)

    async def worklist(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        principal: Principal,
        board: BoardFilter,
        *,
        limit: int,
        offset: int,
        now: datetime,
    ) -> WorklistPage:
        """A reader's cases (held, then the top of their pool), or the coordinators' board."""
        if principal.role == Role.radiologist:
            page = await self._reader_list(session, ctx, principal.user_id, now)
        elif principal.sees_all_hospitals:
            rows, total = await repository.board(session, board, limit, offset)
            page = WorklistPage(
                items=[self._item(ctx, r, None, now) for r in rows],
                total=total,
                limit=limit,
                offset=offset,
            )
        else:
            raise Forbidden("The worklist is for readers and coordinators; see /api/cases.")
        audit.record(
            session,
            principal,
            "worklist.read",
            object_type="case",
            detail={"count": len(page.items), "case_ids": [i.case.id for i in page.items][:200]},
        )
        return page

    async def _reader_list(
        self, session: AsyncSession, ctx: RoutingContext, reader_id: int, now: datetime
    ) -> WorklistPage:
        held = await repository.held(session, reader_id)
        visible = ctx.rules.policy.pool_visible_per_reader
        offers, offered_total = await repository.offers(session, reader_id, visible)
        items = [
            self._item(ctx, r, Hold.reading if r[0].status == "reading" else Hold.assigned, now)
            for r in held
        ]
        items += [self._item(ctx, r, Hold.offered, now) for r in offers]
        return WorklistPage(
            items=items,
            total=len(held) + offered_total,
            limit=len(items),
            offset=0,
            hidden_offers=offered_total - len(offers),
        )

    # --- a reader's actions -----------------------------------------------------------------

    async def _visible(self, session: AsyncSession, principal: Principal, case_id: int) -> Case:
        row = await cases.row(session, case_id, auth.scope_of(principal))
        if row is None:
            raise NotFound(f"No case {case_id}.")
        fresh = await repository.fresh(session, case_id)
        assert fresh is not None
        return fresh

    async def claim(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        principal: Principal,
        case_id: int,
        now: datetime,
    ) -> ClaimRead:
        if principal.role != Role.radiologist:
            raise Forbidden("Only radiologists claim cases; coordinators assign them.")
        me = principal.user_id
        case = await self._visible(session, principal, case_id)
        policy = ctx.rules.policy
        if case.status == CaseStatus.offered.value:
            top = await repository.top_offer_ids(session, me, policy.pool_visible_per_reader)
            offered = me in await cases.active_offers(session, case_id)
            if offered and case_id not in top:
                raise Conflict(
                    f"Case {case_id} is not among the first {policy.pool_visible_per_reader} of "
                    "your pool; take those first (priority, then deadline)."
                )
        was = case.status
        lease = now + timedelta(minutes=policy.claim_lease_minutes)
        won = await cases.update_if(
            session,
            case_id,
            expect={},
            values={
                "status": CaseStatus.reading.value,
                "reader_id": me,
                "lease_expires_at": lease,
                "opened_at": func.coalesce(Case.opened_at, now),
                "assigned_at": func.coalesce(Case.assigned_at, now),
                "updated_at": now,
            },
            extra_where=[
                or_(
                    (Case.status.in_(("assigned", "reading"))) & (Case.reader_id == me),
                    (Case.status == "offered") & offer_of(me),
                )
            ],
        )
        if not won:
            current = await repository.fresh(session, case_id)
            assert current is not None
            if current.status in ("assigned", "reading", "offered") and current.reader_id not in (
                None,
                me,
            ):
                raise Conflict(f"Another reader holds case {case_id}.")
            if current.status == CaseStatus.paused.value:
                raise Conflict(f"Case {case_id} is paused: {current.paused_reason}")
            raise Conflict(f"Case {case_id} is not offered or assigned to you ({current.status}).")
        if was != CaseStatus.reading.value:
            others: list[int] = []
            if was == CaseStatus.offered.value:
                others = await cases.end_assignments(session, case_id, "offered")
                await cases.add_assignment(
                    session,
                    {
                        "case_id": case_id,
                        "user_id": me,
                        "kind": "assigned",
                        "active": True,
                        "reason": "claimed",
                        "created_by_id": me,
                        "created_at": now,
                    },
                )
            session.add(_event(case_id, "claimed", now, principal, reader_id=me))
            events.publish(
                session,
                {
                    "type": "case.claimed",
                    "case_id": case_id,
                    "hospital_id": case.hospital_id,
                    "reader_ids": sorted({me, *others}),
                },
            )
            _audit(session, principal, "case.claim", case)
        return ClaimRead(
            case_id=case_id,
            status=CaseStatus.reading.value,
            lease_expires_at=lease,
            lease_minutes=policy.claim_lease_minutes,
        )

    async def release(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        principal: Principal,
        case_id: int,
        reason: str,
        now: datetime,
    ) -> None:
        """Give a held case back (it is routed again, to someone else) or decline an offer."""
        if principal.role != Role.radiologist:
            raise Forbidden("Only the reader who holds a case releases it; coordinators assign.")
        me = principal.user_id
        case = await self._visible(session, principal, case_id)
        released = await cases.update_if(
            session,
            case_id,
            expect={"reader_id": me},
            values={
                "status": CaseStatus.ready.value,
                "reader_id": None,
                "lease_expires_at": None,
                "updated_at": now,
            },
            extra_where=[Case.status.in_(("assigned", "reading"))],
        )
        if released:
            await cases.end_assignments(session, case_id, "assigned", me)
            session.add(_event(case_id, "released", now, principal, reader_id=me, reason=reason))
            _audit(session, principal, "case.release", case, reason=reason)
            await routing.route(session, ctx, case_id, trigger="released", now=now)
            return
        if me in await cases.active_offers(session, case_id):
            await cases.end_assignments(session, case_id, "offered", me)
            session.add(_event(case_id, "declined", now, principal, reader_id=me, reason=reason))
            _audit(session, principal, "case.decline", case, reason=reason)
            if not await cases.active_offers(session, case_id):
                await routing.route(session, ctx, case_id, trigger="declined", now=now)
            return
        raise Conflict(f"Case {case_id} is not held by or offered to you.")

    # --- coordinators' actions --------------------------------------------------------------

    async def _staff_case(self, session: AsyncSession, case_id: int) -> Case:
        case = await repository.fresh(session, case_id)
        if case is None:
            raise NotFound(f"No case {case_id}.")
        return case

    async def assign(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        principal: Principal,
        case_id: int,
        reader_id: int,
        reason: str,
        now: datetime,
        *,
        kind: AssignmentKind = AssignmentKind.assigned,
    ) -> None:
        """Give the case to a reader (taking it from whoever held it or had it offered), or offer
        it to one more reader."""
        case = await self._staff_case(session, case_id)
        if case.status == CaseStatus.receiving.value:
            raise Conflict(f"Case {case_id} is still receiving images; assign it once complete.")
        if case.status == CaseStatus.paused.value:
            raise Conflict(f"Case {case_id} is paused; resume it first.")
        reader = await cases.reader(session, reader_id)
        if reader is None:
            raise BadRequest(f"User {reader_id} is not an active radiologist.")
        await routing.classify_unrouted(session, ctx, case_id, now)
        if kind == AssignmentKind.offered:
            if case.status not in (CaseStatus.ready.value, CaseStatus.offered.value):
                raise Conflict(f"Case {case_id} is held by a reader; assign it instead.")
            if reader_id in await cases.active_offers(session, case_id):
                raise Conflict(f"Case {case_id} is already offered to that reader.")
            await cases.update_if(
                session,
                case_id,
                expect={"status": case.status},
                values={"status": CaseStatus.offered.value, "updated_at": now},
            )
            removed: list[int] = []
        else:
            moved = await cases.update_if(
                session,
                case_id,
                expect={"status": case.status, "reader_id": case.reader_id},
                values={
                    "status": CaseStatus.assigned.value,
                    "reader_id": reader_id,
                    "lease_expires_at": None,
                    "assigned_at": case.assigned_at or now,
                    "updated_at": now,
                },
            )
            if not moved:
                raise Conflict(f"Case {case_id} changed while you assigned it; look again.")
            removed = await cases.end_assignments(session, case_id, "assigned")
            removed += await cases.end_assignments(session, case_id, "offered")
        await cases.add_assignment(
            session,
            {
                "case_id": case_id,
                "user_id": reader_id,
                "kind": kind.value,
                "active": True,
                "reason": reason,
                "created_by_id": principal.user_id,
                "created_at": now,
            },
        )
        session.add(
            _event(
                case_id,
                kind.value,
                now,
                principal,
                reader_id=reader_id,
                previous=removed,
                reason=reason,
            )
        )
        events.publish(
            session,
            {
                "type": "case.assigned",
                "case_id": case_id,
                "hospital_id": case.hospital_id,
                "reader_ids": sorted({reader_id, *removed}),
            },
        )
        _audit(
            session,
            principal,
            "case.assign",
            case,
            reader_id=reader_id,
            kind=kind.value,
            reason=reason,
        )

    async def pause(
        self, session: AsyncSession, principal: Principal, case_id: int, reason: str, now: datetime
    ) -> None:
        """Hold a case out of routing and the SLA watch; its reader and offers are let go."""
        case = await self._staff_case(session, case_id)
        if case.status not in _OPEN_UNPAUSED:
            raise Conflict(f"Case {case_id} cannot be paused ({case.status}).")
        done = await cases.update_if(
            session,
            case_id,
            expect={"status": case.status, "reader_id": case.reader_id},
            values={
                "status": CaseStatus.paused.value,
                "reader_id": None,
                "lease_expires_at": None,
                "paused_reason": reason,
                "updated_at": now,
            },
        )
        if not done:
            raise Conflict(f"Case {case_id} changed while you paused it; look again.")
        removed = await cases.end_assignments(session, case_id, "assigned")
        removed += await cases.end_assignments(session, case_id, "offered")
        session.add(_event(case_id, "paused", now, principal, reason=reason, previous=removed))
        events.publish(
            session,
            {
                "type": "case.paused",
                "case_id": case_id,
                "hospital_id": case.hospital_id,
                "reader_ids": sorted(set(removed)),
            },
        )
        _audit(session, principal, "case.pause", case, reason=reason)

    async def resume(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        principal: Principal,
        case_id: int,
        reason: str,
        now: datetime,
    ) -> None:
        case = await self._staff_case(session, case_id)
        done = await cases.update_if(
            session,
            case_id,
            expect={"status": CaseStatus.paused.value},
            values={"status": CaseStatus.ready.value, "paused_reason": "", "updated_at": now},
        )
        if not done:
            raise Conflict(f"Case {case_id} is not paused ({case.status}).")
        session.add(_event(case_id, "resumed", now, principal, reason=reason))
        _audit(session, principal, "case.resume", case, reason=reason)
        await routing.route(session, ctx, case_id, trigger="resumed", now=now)

    async def change_priority(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        principal: Principal,
        case_id: int,
        priority: Priority,
        reason: str,
        now: datetime,
    ) -> None:
        """A new priority moves the deadline; a case nobody has opened is routed again."""
        case = await self._staff_case(session, case_id)
        if case.priority == priority.value:
            raise Conflict(f"Case {case_id} is already {priority.value}.")
        await repository.set_values(
            session, case_id, {"priority": priority.value, "updated_at": now}
        )
        session.add(
            _event(
                case_id,
                "priority",
                now,
                principal,
                previous=case.priority,
                priority=priority.value,
                reason=reason,
            )
        )
        events.publish(
            session, {"type": "case.updated", "case_id": case_id, "hospital_id": case.hospital_id}
        )
        _audit(
            session,
            principal,
            "case.priority",
            case,
            **{"from": case.priority, "to": priority.value, "reason": reason},
        )
        if case.routed_at is not None:
            await routing.route(session, ctx, case_id, trigger="priority", now=now)

    async def decisions(
        self, session: AsyncSession, principal: Principal, case_id: int
    ) -> list[RoutingDecisionRead]:
        case = await self._staff_case(session, case_id)
        rows = await routing_repository.decisions(session, case_id)
        _audit(session, principal, "case.routing", case)
        return [
            RoutingDecisionRead(
                id=r.id,
                decided_at=r.decided_at,
                trigger=r.trigger,
                mode=r.mode,
                assignee_id=r.assignee_id,
                escalation_step=r.escalation_step,
                applied=r.applied,
                decision=r.decision,
            )
            for r in rows
        ]

    # --- experts going offline, the SLA watch -----------------------------------------------

    async def expert_offline(
        self, session: AsyncSession, ctx: RoutingContext, user_id: int, now: datetime
    ) -> int:
        """Return an offline reader's unstarted cases and their offers to routing. Cases they
        are reading stay theirs (the lease decides). Returns how many cases were touched."""
        touched = 0
        for case_id in await repository.held_by(session, user_id, [CaseStatus.assigned.value]):
            if await cases.update_if(
                session,
                case_id,
                expect={"status": "assigned", "reader_id": user_id},
                values={"status": CaseStatus.ready.value, "reader_id": None, "updated_at": now},
            ):
                await cases.end_assignments(session, case_id, "assigned", user_id)
                session.add(_event(case_id, "reader_offline", now, None, reader_id=user_id))
                await routing.route(session, ctx, case_id, trigger="expert_offline", now=now)
                touched += 1
        for case_id in await repository.offered_to(session, user_id):
            await cases.end_assignments(session, case_id, "offered", user_id)
            touched += 1
            if not await cases.active_offers(session, case_id):
                await routing.route(session, ctx, case_id, trigger="expert_offline", now=now)
        return touched

    async def watch(self, runtime: Runtime, ctx: RoutingContext, now: datetime) -> WatchReport:
        """One pass of the SLA watch at ``now`` (a parameter, so tests drive the clock). Each
        case is handled in its own unit of work: one failing case does not stop the others."""
        report = WatchReport()
        async with runtime.db.reading() as session:
            expired = await repository.expired_leases(session, now, 200)
        for case_id in expired:
            async with runtime.uow() as session:
                if await self._expire_lease(session, ctx, case_id, now):
                    report.leases_expired += 1
        async with runtime.db.reading() as session:
            due = await repository.sla_due(session, now, 500)
        for case_id in due:
            try:
                async with runtime.uow() as session:
                    await self._check_sla(session, ctx, case_id, now, report)
            except Exception:
                log.exception("SLA watch failed on case %s", case_id)
        # A waiting case is retried when its route_retry_at comes; a case never routed (its
        # case_ready job lost, or queued behind others) after the same wait.
        async with runtime.db.reading() as session:
            waiting = await routing_repository.to_route(
                session,
                statuses=[CaseStatus.ready.value],
                ready_before=now - ctx.retry_after,
                now=now,
                limit=200,
            )
        for case_id in waiting:
            try:
                async with runtime.uow() as session:
                    decision = await routing.route(session, ctx, case_id, trigger="retry", now=now)
                if decision is not None and decision.mode.value != "none":
                    report.rerouted += 1
            except Exception:
                log.exception("SLA watch could not route case %s", case_id)
        return report

    async def _expire_lease(
        self, session: AsyncSession, ctx: RoutingContext, case_id: int, now: datetime
    ) -> bool:
        case = await repository.fresh(session, case_id)
        if case is None or case.status != "reading" or case.lease_expires_at is None:
            return False
        if case.lease_expires_at >= now:
            return False
        done = await cases.update_if(
            session,
            case_id,
            expect={"status": "reading", "reader_id": case.reader_id},
            values={
                "status": CaseStatus.ready.value,
                "reader_id": None,
                "lease_expires_at": None,
                "updated_at": now,
            },
            extra_where=[Case.lease_expires_at < now],
        )
        if not done:
            return False
        await cases.end_assignments(session, case_id, "assigned")
        session.add(_event(case_id, "lease_expired", now, None, reader_id=case.reader_id))
        await routing.route(session, ctx, case_id, trigger="lease_expired", now=now)
        return True

    async def _check_sla(
        self,
        session: AsyncSession,
        ctx: RoutingContext,
        case_id: int,
        now: datetime,
        report: WatchReport,
    ) -> None:
        case = await repository.fresh(session, case_id)
        if case is None or case.deadline is None or case.status not in _OPEN_UNPAUSED:
            return
        s = sla_status(case.received_at, case.deadline, now, ctx.rules)
        concerned = sorted(
            {
                *(await cases.active_offers(session, case_id)),
                *([case.reader_id] if case.reader_id else []),
            }
        )
        values: dict[str, object] = {
            "sla_state": s.state.value,
            "sla_next_at": next_check(case.received_at, case.deadline, now, ctx.rules.sla),
        }
        base = {"case_id": case_id, "hospital_id": case.hospital_id, "reader_ids": concerned}
        if s.state.value == "breached" and case.sla_state != "breached":
            report.breaches += 1
            session.add(
                _event(case_id, "sla_breached", now, None, deadline=case.deadline.isoformat())
            )
            events.publish(
                session, {"type": "case.sla", "state": "breached", "staff_only": True, **base}
            )
        elif s.warnings_passed > case.warnings_sent:
            report.warnings += 1
            session.add(_event(case_id, "sla_warning", now, None, level=s.warnings_passed))
            events.publish(
                session,
                {
                    "type": "case.sla",
                    "state": "warning",
                    "level": s.warnings_passed,
                    "staff_only": True,
                    **base,
                },
            )
        values["warnings_sent"] = max(case.warnings_sent, s.warnings_passed)
        escalate = s.escalation_step_due > case.escalation_step and case.status in ROUTABLE
        if escalate:
            values["escalation_step"] = s.escalation_step_due
        changed = await cases.update_if(
            session,
            case_id,
            expect={"status": case.status, "escalation_step": case.escalation_step},
            values=values,
        )
        if changed and escalate:
            report.escalations += 1
            session.add(
                _event(
                    case_id,
                    "escalated",
                    now,
                    None,
                    step=s.escalation_step_due,
                    overdue_wait=s.overdue_wait,
                )
            )
            await routing.route(session, ctx, case_id, trigger="escalation", now=now)


worklist = WorklistService()
