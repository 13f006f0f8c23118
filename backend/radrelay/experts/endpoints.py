"""Experts: profiles (admin), the roster with load (coordinators), self-service (readers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from radrelay.auth.dependencies import AdminPrincipal, CurrentPrincipal, Session, require
from radrelay.auth.schemas import Principal, Role
from radrelay.experts.schemas import (
    CapsUpdate,
    ExpertRead,
    ExpertState,
    ExpertUpdate,
    StateUpdate,
    Subspecialty,
    WindowsUpdate,
)
from radrelay.experts.service import experts

router = APIRouter(prefix="/api/experts", tags=["experts"])

StaffPrincipal = Annotated[Principal, Depends(require(Role.coordinator, Role.admin))]
ReaderPrincipal = Annotated[Principal, Depends(require(Role.radiologist))]


@router.get("", response_model=list[ExpertRead])
async def list_experts(
    session: Session,
    principal: StaffPrincipal,
    state: ExpertState | None = None,
    subspecialty: Subspecialty | None = None,
    hospital_code: str | None = None,
) -> list[ExpertRead]:
    """The roster: every active expert's profile, availability and current load (cases
    assigned or being read). ``hospital_code``: credentialed there, not expired."""
    return await experts.listing(
        session, state=state, subspecialty=subspecialty, hospital_code=hospital_code
    )


# The /me routes come before /{user_id}, which would otherwise catch "me".


@router.get("/me", response_model=ExpertRead)
async def my_profile(session: Session, principal: ReaderPrincipal) -> ExpertRead:
    return await experts.read_own(session, principal)


@router.put("/me/state", response_model=ExpertRead)
async def set_my_state(
    session: Session, principal: ReaderPrincipal, body: StateUpdate
) -> ExpertRead:
    """online: routing may give you cases; away: briefly gone (stat work may still come,
    as the policy says); offline: none."""
    await experts.set_state(session, principal, principal.user_id, body.state)
    return await experts.read_own(session, principal)


@router.put("/me/availability", response_model=ExpertRead)
async def set_my_availability(
    session: Session, principal: ReaderPrincipal, body: WindowsUpdate
) -> ExpertRead:
    """Replace your one-off windows (at most 24 h each, starting within 60 days); windows
    already over are dropped. Weekly shifts are set by an admin."""
    await experts.set_windows(session, principal, body.windows)
    return await experts.read_own(session, principal)


@router.patch("/me", response_model=ExpertRead)
async def set_my_caps(session: Session, principal: ReaderPrincipal, body: CapsUpdate) -> ExpertRead:
    """Your caps on open cases and daily work units; null clears one (the policy's apply)."""
    await experts.set_caps(session, principal, body)
    return await experts.read_own(session, principal)


@router.get("/{user_id}", response_model=ExpertRead)
async def get_expert(session: Session, principal: CurrentPrincipal, user_id: int) -> ExpertRead:
    """Coordinators and admins read any profile; a radiologist their own."""
    return await experts.read(session, principal, user_id)


@router.put(
    "/{user_id}",
    response_model=ExpertRead,
    responses={201: {"description": "Created", "model": ExpertRead}},
)
async def put_expert(
    session: Session,
    principal: AdminPrincipal,
    user_id: int,
    body: ExpertUpdate,
    response: Response,
) -> ExpertRead:
    """Create (201) or replace (200) an active radiologist's expert profile. Every field and
    list is replaced; the expert's state and one-off windows are kept."""
    _, created = await experts.put_profile(session, principal, user_id, body)
    if created:
        response.status_code = 201
    return await experts.read(session, principal, user_id)
