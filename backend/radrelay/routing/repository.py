"""SQL behind routing: the facts of a case, the load of the readers who may take it, and the
stored decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.cases.schemas import HELD_STATUSES
from radrelay.models import Case, CaseEvent, Expert, Hospital, RoutingDecision, Series, Study

_HELD = [s.value for s in HELD_STATUSES]


@dataclass(frozen=True, slots=True)
class Load:
    open_cases: int = 0
    open_units: float = 0.0
    units_today: float = 0.0


class RoutingRepository:
    async def case_row(self, session: AsyncSession, case_id: int) -> tuple[Case, Study, str] | None:
        row = (
            await session.execute(
                select(Case, Study, Hospital.code)
                .join(Study, Study.id == Case.study_pk)
                .join(Hospital, Hospital.id == Case.hospital_id)
                .where(Case.id == case_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        return (row[0], row[1], row[2]) if row else None

    async def series_facts(self, session: AsyncSession, study_pk: int) -> list[tuple[str, str]]:
        """(SeriesDescription, BodyPartExamined) of the study's series."""
        rows = await session.execute(
            select(Series.series_description, Series.body_part_examined).where(
                Series.study_pk == study_pk
            )
        )
        return [(d or "", b or "") for d, b in rows]

    async def excluded_readers(self, session: AsyncSession, case_id: int) -> frozenset[int]:
        """Readers who released or declined the case: routing does not give it back to them."""
        details = await session.scalars(
            select(CaseEvent.detail).where(
                CaseEvent.case_id == case_id, CaseEvent.kind.in_(("released", "declined"))
            )
        )
        return frozenset(int(d["reader_id"]) for d in details if d and d.get("reader_id"))

    async def load(
        self, session: AsyncSession, reader_ids: Sequence[int], day_start: datetime
    ) -> dict[int, Load]:
        """Open cases and units each reader holds, and the units given to them since
        ``day_start``, in one grouped query."""
        if not reader_ids:
            return {}
        held = Case.status.in_(_HELD)
        today = Case.assigned_at >= day_start
        units = func.coalesce(Case.work_units, 0.0)
        rows = await session.execute(
            select(
                Case.reader_id,
                func.sum(sql_case((held, 1), else_=0)),
                func.sum(sql_case((held, units), else_=0.0)),
                func.sum(sql_case((today, units), else_=0.0)),
            )
            .where(Case.reader_id.in_(reader_ids), held | today)
            .group_by(Case.reader_id)
        )
        return {
            int(reader): Load(int(n or 0), float(units or 0.0), float(day or 0.0))
            for reader, n, units, day in rows
        }

    async def states(self, session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str]:
        """The experts' online / away / offline state now."""
        if not user_ids:
            return {}
        rows = await session.execute(
            select(Expert.user_id, Expert.state).where(Expert.user_id.in_(user_ids))
        )
        return {int(u): str(s) for u, s in rows}

    async def familiarity(
        self, session: AsyncSession, hospital_id: int, since: datetime
    ) -> dict[int, int]:
        """How many of the hospital's cases each reader was given since ``since``."""
        rows = await session.execute(
            select(Case.reader_id, func.count())
            .where(
                Case.hospital_id == hospital_id,
                Case.received_at >= since,
                Case.reader_id.is_not(None),
            )
            .group_by(Case.reader_id)
        )
        return {int(reader): int(n) for reader, n in rows if reader is not None}

    async def same_patient_readers(
        self, session: AsyncSession, patient_pk: int, case_id: int
    ) -> set[int]:
        """Readers holding another open case of the patient."""
        rows = await session.scalars(
            select(Case.reader_id).where(
                Case.patient_pk == patient_pk,
                Case.id != case_id,
                Case.status.in_(_HELD),
                Case.reader_id.is_not(None),
            )
        )
        return {int(r) for r in rows if r is not None}

    async def save_decision(self, session: AsyncSession, values: dict[str, Any]) -> None:
        session.add(RoutingDecision(**values))

    async def decisions(self, session: AsyncSession, case_id: int) -> list[RoutingDecision]:
        return list(
            await session.scalars(
                select(RoutingDecision)
                .where(RoutingDecision.case_id == case_id)
                .order_by(RoutingDecision.decided_at.desc(), RoutingDecision.id.desc())
            )
        )

    async def to_route(
        self,
        session: AsyncSession,
        *,
        statuses: Sequence[str],
        ready_before: datetime,
        now: datetime,
        limit: int,
    ) -> list[int]:
        """Cases waiting for a reader (nobody was eligible, or their first routing was lost)
        whose retry is due."""
        return list(
            await session.scalars(
                select(Case.id)
                .where(
                    Case.status.in_(statuses),
                    Case.ready_at <= ready_before,
                    or_(Case.route_retry_at.is_(None), Case.route_retry_at <= now),
                )
                .order_by(Case.deadline.is_(None).desc(), Case.deadline, Case.id)
                .limit(limit)
            )
        )


repository = RoutingRepository()
