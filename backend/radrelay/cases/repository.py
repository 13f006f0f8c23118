"""SQL for cases and their timelines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.kit.db import insert_ignoring_conflicts
from radrelay.models import Case, CaseEvent, Hospital, Patient, Study, User

CaseRow = tuple[Case, Study, Patient, str]


class CaseRepository:
    async def create_if_absent(
        self, session: AsyncSession, values: dict[str, Any]
    ) -> tuple[int, bool]:
        stmt = insert_ignoring_conflicts(session, Case.__table__, values, ["study_pk"])
        inserted = await session.scalar(stmt.returning(Case.__table__.c.id))
        if inserted is not None:
            return int(inserted), True
        found = await session.scalar(select(Case.id).where(Case.study_pk == values["study_pk"]))
        return int(found), False  # type: ignore[arg-type]

    async def get(self, session: AsyncSession, case_id: int) -> Case | None:
        return await session.get(Case, case_id)

    async def by_study(self, session: AsyncSession, study_pk: int) -> Case | None:
        return await session.scalar(select(Case).where(Case.study_pk == study_pk))

    def _joined(self) -> Select[Case, Study, Patient, str]:
        return (
            select(Case, Study, Patient, Hospital.code)
            .join(Study, Study.id == Case.study_pk)
            .join(Patient, Patient.id == Case.patient_pk)
            .join(Hospital, Hospital.id == Case.hospital_id)
        )

    async def row(self, session: AsyncSession, case_id: int) -> CaseRow | None:
        result = (await session.execute(self._joined().where(Case.id == case_id))).first()
        return tuple(result) if result else None  # type: ignore[return-value]

    async def page(
        self,
        session: AsyncSession,
        *,
        hospital_ids: Sequence[int] | None,
        statuses: Sequence[str],
        priorities: Sequence[str],
        limit: int,
        offset: int,
    ) -> tuple[list[CaseRow], int]:
        where = []
        if hospital_ids is not None:
            where.append(Case.hospital_id.in_(hospital_ids))
        if statuses:
            where.append(Case.status.in_(statuses))
        if priorities:
            where.append(Case.priority.in_(priorities))
        total = await session.scalar(select(func.count()).select_from(Case).where(*where))
        rows = (
            await session.execute(
                self._joined()
                .where(*where)
                .order_by(Case.received_at.desc(), Case.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [tuple(r) for r in rows], int(total or 0)  # type: ignore[misc]

    async def events(
        self, session: AsyncSession, case_id: int
    ) -> list[tuple[CaseEvent, str | None]]:
        rows = await session.execute(
            select(CaseEvent, func.coalesce(func.nullif(User.display_name, ""), User.username))
            .outerjoin(User, User.id == CaseEvent.actor_id)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.at, CaseEvent.id)
        )
        return [(event, name) for event, name in rows]

    async def stable_candidates(
        self, session: AsyncSession, cutoff: datetime, limit: int
    ) -> list[int]:
        return list(
            await session.scalars(
                select(Case.id)
                .where(Case.status == "receiving", Case.last_instance_at <= cutoff)
                .order_by(Case.last_instance_at)
                .limit(limit)
            )
        )

    async def transition(
        self,
        session: AsyncSession,
        case_ids: Sequence[int],
        *,
        from_status: str,
        to_values: dict[str, Any],
        extra_where: Sequence[Any] = (),
    ) -> list[tuple[int, int]]:
        """Conditional update: only rows still in ``from_status`` change, so of two processes
        racing to make the same transition exactly one wins.
        Returns (id, hospital_id) of the winners."""
        if not case_ids:
            return []
        result = await session.execute(
            update(Case)
            .where(Case.id.in_(case_ids), Case.status == from_status, *extra_where)
            .values(**to_values)
            .returning(Case.id, Case.hospital_id)
            .execution_options(synchronize_session=False)
        )
        return [(int(i), int(h)) for i, h in result.all()]


repository = CaseRepository()
