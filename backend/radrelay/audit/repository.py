"""SQL for reading the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.models import AuditEvent


class AuditRepository:
    async def page(
        self,
        session: AsyncSession,
        *,
        actions: Sequence[str],
        hospital_id: int | None,
        actor_id: int | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> list[AuditEvent]:
        where: list[ColumnElement[bool]] = []
        if actions:
            where.append(AuditEvent.action.in_(actions))
        if hospital_id is not None:
            where.append(AuditEvent.hospital_id == hospital_id)
        if actor_id is not None:
            where.append(AuditEvent.actor_id == actor_id)
        if since is not None:
            where.append(AuditEvent.at >= since)
        rows = await session.scalars(
            select(AuditEvent)
            .where(*where)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows)


repository = AuditRepository()
