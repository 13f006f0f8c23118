"""The worklist, and what readers and coordinators do with cases: claim, release, assign,
pause, resume, change priority, and the routing decisions behind a case."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.auth.dependencies import CurrentPrincipal, RuntimeDep, Session, require
from radrelay.auth.schemas import Principal, Role
from radrelay.cases.schemas import (
    AssignmentCreate,
    AssignmentKind,
    CaseDetail,
    CaseStatus,
    Priority,
    Subspecialty,
)
from radrelay.cases.service import cases
from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime
from radrelay.routing.schemas import SlaState
from radrelay.routing.service import RoutingContext
from radrelay.worklist.repository import BoardFilter
from radrelay.worklist.schemas import (
    AssignBody,
    ClaimRead,
    CoordinatorReason,
    PriorityBody,
    Reason,
    RoutingDecisionRead,
    WorklistPage,
)
from radrelay.worklist.service import worklist

router = APIRouter(tags=["worklist"])

StaffPrincipal = Annotated[Principal, Depends(require(Role.coordinator, Role.admin))]


@router.get("/api/worklist", response_model=WorklistPage)
async def get_worklist(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    hospital_id: Annotated[list[int], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    subspecialty: Annotated[list[Subspecialty], Query()] = [],  # noqa: B006
    status: Annotated[list[CaseStatus], Query()] = [],  # noqa: B006
    priority: Annotated[list[Priority], Query()] = [],  # noqa: B006
    sla_state: Annotated[list[SlaState], Query()] = [],  # noqa: B006
    reader_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> WorklistPage:
    """A radiologist: the cases they hold, then the top of their pool (priority, then
    deadline). Coordinators and admins: every open case by deadline, with filters."""
    board = BoardFilter(
        statuses=[s.value for s in status],
        hospital_ids=hospital_id,
        subspecialties=[s.value for s in subspecialty],
        priorities=[p.value for p in priority],
        sla_states=[s.value for s in sla_state],
        reader_id=reader_id,
    )
    return await worklist.worklist(
        session,
        RoutingContext.of(runtime),
        principal,
        board,
        limit=limit,
        offset=offset,
        now=utcnow(),
    )


@router.post("/api/cases/{case_id}/claim", response_model=ClaimRead)
async def claim_case(
    session: Session, runtime: RuntimeDep, principal: CurrentPrincipal, case_id: int
) -> ClaimRead:
    """Take an offered or assigned case and start reading it, or renew the lease on one being
    read. 409 when another reader holds it."""
    return await worklist.claim(session, RoutingContext.of(runtime), principal, case_id, utcnow())


@router.post("/api/cases/{case_id}/release", status_code=204)
async def release_case(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    case_id: int,
    body: Reason | None = None,
) -> Response:
    """Give back a held case (it is routed to someone else) or decline an offer."""
    reason = body.reason if body else ""
    await worklist.release(
        session, RoutingContext.of(runtime), principal, case_id, reason, utcnow()
    )
    return Response(status_code=204)


async def _detail(session: Session, principal: Principal, case_id: int) -> CaseDetail:
    await session.flush()
    session.expire_all()
    return await cases.detail(session, principal, case_id)


@router.post("/api/cases/{case_id}/assign", response_model=CaseDetail)
async def assign_case(
    session: Session,
    runtime: RuntimeDep,
    principal: StaffPrincipal,
    case_id: int,
    body: AssignBody,
) -> CaseDetail:
    """Give a case to a radiologist (reassigning it if someone held it), with a reason."""
    return await _assign(
        session, runtime, principal, case_id, body.reader_id, body.reason, AssignmentKind.assigned
    )


@router.post("/api/cases/{case_id}/assignments", response_model=CaseDetail)
async def add_assignment(
    session: Session,
    runtime: RuntimeDep,
    principal: StaffPrincipal,
    case_id: int,
    body: AssignmentCreate,
) -> CaseDetail:
    """Assign a case to a radiologist, or offer it to one more (``kind``)."""
    return await _assign(
        session, runtime, principal, case_id, body.reader_id, body.reason, body.kind
    )


async def _assign(
    session: AsyncSession,
    runtime: Runtime,
    principal: Principal,
    case_id: int,
    reader_id: int,
    reason: str,
    kind: AssignmentKind,
) -> CaseDetail:
    ctx = RoutingContext.of(runtime)
    await worklist.assign(session, ctx, principal, case_id, reader_id, reason, utcnow(), kind=kind)
    return await _detail(session, principal, case_id)


@router.post("/api/cases/{case_id}/pause", response_model=CaseDetail)
async def pause_case(
    session: Session, principal: StaffPrincipal, case_id: int, body: CoordinatorReason
) -> CaseDetail:
    """Hold a case out of routing and the SLA watch (its reader and offers are let go)."""
    await worklist.pause(session, principal, case_id, body.reason, utcnow())
    return await _detail(session, principal, case_id)


@router.post("/api/cases/{case_id}/resume", response_model=CaseDetail)
async def resume_case(
    session: Session,
    runtime: RuntimeDep,
    principal: StaffPrincipal,
    case_id: int,
    body: CoordinatorReason,
) -> CaseDetail:
    """Put a paused case back into routing."""
    await worklist.resume(
        session, RoutingContext.of(runtime), principal, case_id, body.reason, utcnow()
    )
    return await _detail(session, principal, case_id)


@router.post("/api/cases/{case_id}/priority", response_model=CaseDetail)
async def change_priority(
    session: Session,
    runtime: RuntimeDep,
    principal: StaffPrincipal,
    case_id: int,
    body: PriorityBody,
) -> CaseDetail:
    """Change a case's priority (its deadline follows; unopened cases are routed again)."""
    await worklist.change_priority(
        session,
        RoutingContext.of(runtime),
        principal,
        case_id,
        body.priority,
        body.reason,
        utcnow(),
    )
    return await _detail(session, principal, case_id)


@router.get("/api/cases/{case_id}/routing", response_model=list[RoutingDecisionRead])
async def routing_decisions(
    session: Session, principal: StaffPrincipal, case_id: int
) -> list[RoutingDecisionRead]:
    """Every routing decision for the case, newest first, with the engine's explanation."""
    return await worklist.decisions(session, principal, case_id)
