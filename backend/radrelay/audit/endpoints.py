"""``GET /api/audit``: who read or changed what, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from radrelay.audit.repository import repository
from radrelay.audit.schemas import AuditEventRead, AuditPage
from radrelay.auth.dependencies import AdminPrincipal, Session

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def list_audit_events(
    session: Session,
    principal: AdminPrincipal,
    action: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    hospital_id: int | None = None,
    actor_id: int | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    """Newest first. Entries never name patients: objects are given by their ids."""
    rows = await repository.page(
        session,
        actions=action,
        hospital_id=hospital_id,
        actor_id=actor_id,
        since=since,
        limit=limit,
        offset=offset,
    )
    return AuditPage(
        items=[AuditEventRead.model_validate(r, from_attributes=True) for r in rows],
        limit=limit,
        offset=offset,
    )
