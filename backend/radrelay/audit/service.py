"""The audit trail: every access to patient data, every security event.

``record`` adds the event to the caller's unit of work, so it commits (or not) with what it
describes. ``record_now`` commits on its own, for events that must survive a failed request: a
refused login, a denied access.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.auth.schemas import Principal
from radrelay.kit.db import Database
from radrelay.models import AuditEvent


def _event(
    principal: Principal | None,
    action: str,
    *,
    object_type: str = "",
    object_id: str | int = "",
    hospital_id: int | None = None,
    outcome: str = "success",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        actor_id=principal.user_id if principal else None,
        actor_role=principal.role.value if principal else "",
        hospital_id=hospital_id
        if hospital_id is not None
        else (principal and principal.hospital_id),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        ip=ip or (principal.ip if principal else ""),
        outcome=outcome,
        detail=detail or {},
    )


class AuditService:
    def record(
        self, session: AsyncSession, principal: Principal | None, action: str, **kw: Any
    ) -> None:
        session.add(_event(principal, action, **kw))

    async def record_now(
        self, db: Database, principal: Principal | None, action: str, **kw: Any
    ) -> None:
        async with db.unit_of_work() as session:
            session.add(_event(principal, action, **kw))


audit = AuditService()
