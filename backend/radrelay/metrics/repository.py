"""SQL for turnaround: the milestones of the cases received in a range, and the open-case
counts a Prometheus scrape reports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.cases.auth import Scope
from radrelay.cases.repository import visible_cases
from radrelay.metrics.schemas import CaseTimes, TurnaroundFilters
from radrelay.models import Case, Hospital, Study, User
from radrelay.routing.engine import primary_modality


def _subspecialty() -> ColumnElement[str | None]:
    # What routing classified the case as; before routing, what the sender asked for.
    return func.coalesce(Case.subspecialty, Case.requested_subspecialty)


class MetricsRepository:
    async def case_times(
        self,
        session: AsyncSession,
        *,
        scope: Scope,
        since: datetime,
        until: datetime,
        filters: TurnaroundFilters,
        limit: int,
    ) -> list[CaseTimes]:
        """Cases received in [since, until) that ``scope`` sees, at most ``limit``: only the
        columns the report uses, no patient data."""
        where = [visible_cases(scope), Case.received_at >= since, Case.received_at < until]
        if filters.hospital_id is not None:
            where.append(Case.hospital_id == filters.hospital_id)
        if filters.priority is not None:
            where.append(Case.priority == filters.priority.value)
        if filters.subspecialty is not None:
            where.append(_subspecialty() == filters.subspecialty.value)
        rows = await session.execute(
            select(
                Case.received_at,
                Case.assigned_at,
                Case.opened_at,
                Case.preliminary_at,
                Case.final_at,
                Case.deadline,
                Case.hospital_id,
                Hospital.code,
                _subspecialty(),
                Case.priority,
                Study.modalities_in_study,
                Case.reader_id,
                func.coalesce(func.nullif(User.display_name, ""), User.username),
            )
            .join(Hospital, Hospital.id == Case.hospital_id)
            .join(Study, Study.id == Case.study_pk)
            .outerjoin(User, User.id == Case.reader_id)
            .where(*where)
            .limit(limit)
        )
        return [
            CaseTimes(
                received_at=r[0],
                assigned_at=r[1],
                opened_at=r[2],
                preliminary_at=r[3],
                final_at=r[4],
                deadline=r[5],
                hospital_id=r[6],
                hospital_code=r[7],
                subspecialty=r[8],
                priority=r[9],
                modality=primary_modality(r[10].split("\\")),
                reader_id=r[11],
                reader_name=r[12],
            )
            for r in rows
        ]

    async def open_cases(self, session: AsyncSession) -> list[tuple[str, str, int]]:
        """(status, priority, count) of the cases without a final report."""
        rows = await session.execute(
            select(Case.status, Case.priority, func.count())
            .where(Case.final_at.is_(None))
            .group_by(Case.status, Case.priority)
        )
        return [(status, priority, int(n)) for status, priority, n in rows]

    async def open_past_deadline(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[str, int]]:
        """(priority, count) of the cases without a final report whose deadline has passed."""
        rows = await session.execute(
            select(Case.priority, func.count())
            .where(Case.final_at.is_(None), Case.deadline < now)
            .group_by(Case.priority)
        )
        return [(priority, int(n)) for priority, n in rows]


repository = MetricsRepository()
