"""SQL for worklists, claims and the SLA watch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.cases.repository import CaseRow
from radrelay.cases.repository import repository as cases
from radrelay.cases.schemas import HELD_STATUSES, OPEN_STATUSES
from radrelay.models import Case, CaseAssignment

_HELD = [s.value for s in HELD_STATUSES]
_OPEN = [s.value for s in OPEN_STATUSES]
# Priority, then deadline: the order every worklist uses.
PRIORITY_RANK = sql_case({"stat": 0, "urgent": 1}, value=Case.priority, else_=2)


def offer_of(reader_id: int) -> ColumnElement[bool]:
    """The case is offered to the reader now."""
    return (
        select(CaseAssignment.id)
        .where(
            CaseAssignment.case_id == Case.id,
            CaseAssignment.user_id == reader_id,
            CaseAssignment.kind == "offered",
            CaseAssignment.active.is_(True),
        )
        .exists()
    )


@dataclass(frozen=True)
class BoardFilter:
    statuses: Sequence[str] = ()
    hospital_ids: Sequence[int] = ()
    subspecialties: Sequence[str] = ()
    priorities: Sequence[str] = ()
    sla_states: Sequence[str] = ()
    reader_id: int | None = None


class WorklistRepository:
    async def held(self, session: AsyncSession, reader_id: int) -> list[CaseRow]:
        rows = await session.execute(
            cases.joined()
            .where(Case.reader_id == reader_id, Case.status.in_(_HELD))
            .order_by(PRIORITY_RANK, Case.deadline, Case.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    async def offers(
        self, session: AsyncSession, reader_id: int, limit: int
    ) -> tuple[list[CaseRow], int]:
        """The top ``limit`` cases offered to the reader, and how many are offered in all."""
        where = [Case.status == "offered", offer_of(reader_id)]
        total = await session.scalar(select(func.count()).select_from(Case).where(*where))
        rows = await session.execute(
            cases.joined()
            .where(*where)
            .order_by(PRIORITY_RANK, Case.deadline, Case.id)
            .limit(limit)
        )
        return [tuple(r) for r in rows], int(total or 0)  # type: ignore[misc]

    async def top_offer_ids(self, session: AsyncSession, reader_id: int, limit: int) -> list[int]:
        return list(
            await session.scalars(
                select(Case.id)
                .where(Case.status == "offered", offer_of(reader_id))
                .order_by(PRIORITY_RANK, Case.deadline, Case.id)
                .limit(limit)
            )
        )

    async def board(
        self, session: AsyncSession, f: BoardFilter, limit: int, offset: int
    ) -> tuple[list[CaseRow], int]:
        # Always the open statuses (the partial index's own condition), then any narrower ones.
        where: list[ColumnElement[bool]] = [Case.status.in_(_OPEN)]
        if f.statuses:
            where.append(Case.status.in_(f.statuses))
        if f.hospital_ids:
            where.append(Case.hospital_id.in_(f.hospital_ids))
        if f.subspecialties:
            where.append(Case.subspecialty.in_(f.subspecialties))
        if f.priorities:
            where.append(Case.priority.in_(f.priorities))
        if f.sla_states:
            where.append(Case.sla_state.in_(f.sla_states))
        if f.reader_id is not None:
            where.append(Case.reader_id == f.reader_id)
        total = await session.scalar(select(func.count()).select_from(Case).where(*where))
        # Most urgent first: the nearest deadline (unrouted cases, without one yet, last:
        # routing gives them one within seconds), the order of ix_cases_open_deadline. The
        # page's ids first, from the cases alone, then their rows: joined in one query, the
        # planner joins every matching case before sorting (2,600 rows for a page of 100).
        order = (Case.deadline.asc().nulls_last(), Case.id)
        page = select(Case.id).where(*where).order_by(*order).limit(limit).offset(offset)
        ids = list(await session.scalars(page))
        rows = await session.execute(cases.joined().where(Case.id.in_(ids)).order_by(*order))
        return [tuple(r) for r in rows], int(total or 0)  # type: ignore[misc]

    async def expired_leases(self, session: AsyncSession, now: datetime, limit: int) -> list[int]:
        return list(
            await session.scalars(
                select(Case.id)
                .where(Case.status == "reading", Case.lease_expires_at < now)
                .order_by(Case.lease_expires_at)
                .limit(limit)
            )
        )

    async def sla_due(self, session: AsyncSession, now: datetime, limit: int) -> list[int]:
        """Open, unpaused cases whose next SLA threshold has come."""
        return list(
            await session.scalars(
                select(Case.id)
                .where(Case.sla_next_at <= now, Case.status.in_(_OPEN), Case.status != "paused")
                .order_by(Case.sla_next_at)
                .limit(limit)
            )
        )

    async def held_by(
        self, session: AsyncSession, reader_id: int, statuses: Sequence[str]
    ) -> list[int]:
        return list(
            await session.scalars(
                select(Case.id).where(Case.reader_id == reader_id, Case.status.in_(statuses))
            )
        )

    async def offered_to(self, session: AsyncSession, reader_id: int) -> list[int]:
        return list(
            await session.scalars(
                select(CaseAssignment.case_id).where(
                    CaseAssignment.user_id == reader_id,
                    CaseAssignment.kind == "offered",
                    CaseAssignment.active.is_(True),
                )
            )
        )

    async def set_values(self, session: AsyncSession, case_id: int, values: dict[str, Any]) -> None:
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def fresh(self, session: AsyncSession, case_id: int) -> Case | None:
        return await session.scalar(
            select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
        )


repository = WorklistRepository()
