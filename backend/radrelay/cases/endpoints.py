"""Cases: the hospital's list, one case with its timeline, clinical information edits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from radrelay.auth.dependencies import CurrentPrincipal, Session
from radrelay.cases.schemas import (
    CaseDetail,
    CasePage,
    CaseStatus,
    ClinicalInfo,
    Priority,
    PriorRead,
)
from radrelay.cases.service import cases

router = APIRouter(prefix="/api/cases", tags=["cases"])


@router.get("", response_model=CasePage)
async def list_cases(
    session: Session,
    principal: CurrentPrincipal,
    status: Annotated[list[CaseStatus], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    priority: Annotated[list[Priority], Query()] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CasePage:
    """Cases the caller may see, newest first: a technician their hospital's, coordinators and
    admins all."""
    return await cases.page(
        session, principal, statuses=status, priorities=priority, limit=limit, offset=offset
    )


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(session: Session, principal: CurrentPrincipal, case_id: int) -> CaseDetail:
    return await cases.detail(session, principal, case_id)


@router.patch("/{case_id}", response_model=CaseDetail)
async def update_case(
    session: Session, principal: CurrentPrincipal, case_id: int, body: ClinicalInfo
) -> CaseDetail:
    """Change the priority or clinical information of one's own hospital's case."""
    return await cases.update_info(session, principal, case_id, body)


@router.get("/{case_id}/priors", response_model=list[PriorRead])
async def list_priors(
    session: Session, principal: CurrentPrincipal, case_id: int
) -> list[PriorRead]:
    """The patient's earlier studies at the same hospital, newest first; open them through
    DICOMweb with their Study Instance UID."""
    return await cases.priors(session, principal, case_id)
