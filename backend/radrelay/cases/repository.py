"""SQL for cases and their timelines."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    false,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from radrelay.cases.auth import Scope
from radrelay.kit.db import insert_ignoring_conflicts, utcnow
from radrelay.models import (
    Case,
    CaseAssignment,
    CaseEvent,
    Hospital,
    Patient,
    Report,
    Study,
    User,
)

# The case, its study and patient, the hospital's code, and the name of the reader holding it.
CaseRow = tuple[Case, Study, Patient, str, str | None]

_Reader = aliased(User)
READER_NAME = func.coalesce(func.nullif(_Reader.display_name, ""), _Reader.username)


def _moment(study: Any) -> ColumnElement[str]:
    # StudyDate then StudyTime (DA and TM sort as text), so earlier studies sort first.
    return study.study_date + study.study_time  # type: ignore[no-any-return]


def prior_of(candidate: Any, current: Any) -> ColumnElement[bool]:
    """``candidate`` is a prior of ``current``: the same patient (patients are per hospital),
    another study, done before it."""
    return and_(
        candidate.patient_pk == current.patient_pk,
        candidate.id != current.id,
        _moment(candidate) < _moment(current),
    )


def _holds(reader_id: int) -> tuple[Any, ColumnElement[bool]]:
    """A fresh alias of the assignments and the condition that it is a live hold of the reader
    (aliases keep the subqueries below from correlating with the caller's own tables)."""
    held = aliased(CaseAssignment)
    return held, and_(held.user_id == reader_id, held.active.is_(True))


def visible_cases(scope: Scope) -> ColumnElement[bool]:
    """SQL for ``Scope`` over cases: a reader sees the cases they hold, not their priors'."""
    if scope.everything:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if scope.hospital_ids:
        conditions.append(Case.hospital_id.in_(scope.hospital_ids))
    if scope.reader_id is not None:
        held, live = _holds(scope.reader_id)
        conditions.append(select(held.id).where(live, held.case_id == Case.id).exists())
    return or_(*conditions) if conditions else false()


def visible_studies(scope: Scope, study: Any = Study) -> ColumnElement[bool]:
    """SQL for ``Scope`` over studies (``study``: the Study entity or an alias of it)."""
    if scope.everything:
        return true()
    conditions: list[ColumnElement[bool]] = []
    if scope.hospital_ids:
        conditions.append(study.hospital_id.in_(scope.hospital_ids))
    if scope.reader_id is not None:
        held, live = _holds(scope.reader_id)
        case, current = aliased(Case), aliased(Study)
        conditions.append(
            select(held.id)
            .join(case, case.id == held.case_id)
            .join(current, current.id == case.study_pk)
            .where(live, or_(current.id == study.id, prior_of(study, current)))
            .exists()
        )
    if scope.reader_id is not None and scope.cosign_hospital_ids:
        # Not correlated with the row: the few studies waiting for this senior, found once.
        case, report = aliased(Case), aliased(Report)
        conditions.append(
            study.id.in_(
                select(case.study_pk)
                .join(report, report.case_id == case.id)
                .where(
                    report.awaiting_cosign.is_(True),
                    report.author_id != scope.reader_id,
                    case.hospital_id.in_(scope.cosign_hospital_ids),
                )
            )
        )
    return or_(*conditions) if conditions else false()


_BY_STUDY = select(Case.id).where(Case.study_pk == bindparam("study_pk"))


class CaseRepository:
    async def create_if_absent(
        self, session: AsyncSession, values: dict[str, Any]
    ) -> tuple[int, bool]:
        create = insert_ignoring_conflicts(session, Case.__table__, ["study_pk"], returning_id=True)
        inserted = await session.scalar(create, values)
        if inserted is not None:
            return int(inserted), True
        found = await session.scalar(_BY_STUDY, {"study_pk": values["study_pk"]})
        return int(found), False  # type: ignore[arg-type]

    async def get(self, session: AsyncSession, case_id: int) -> Case | None:
        return await session.get(Case, case_id)

    async def by_study(self, session: AsyncSession, study_pk: int) -> Case | None:
        return await session.scalar(select(Case).where(Case.study_pk == study_pk))

    def joined(self) -> Select[Case, Study, Patient, str, str | None]:
        """Cases with what ``CaseRow`` holds (the worklist selects through this too)."""
        return (
            select(Case, Study, Patient, Hospital.code, READER_NAME)
            .join(Study, Study.id == Case.study_pk)
            .join(Patient, Patient.id == Case.patient_pk)
            .join(Hospital, Hospital.id == Case.hospital_id)
            .outerjoin(_Reader, _Reader.id == Case.reader_id)
        )

    async def row(self, session: AsyncSession, case_id: int, scope: Scope) -> CaseRow | None:
        result = (
            await session.execute(self.joined().where(Case.id == case_id, visible_cases(scope)))
        ).first()
        return tuple(result) if result else None  # type: ignore[return-value]

    async def page(
        self,
        session: AsyncSession,
        *,
        scope: Scope,
        statuses: Sequence[str],
        priorities: Sequence[str],
        limit: int,
        offset: int,
    ) -> tuple[list[CaseRow], int]:
        where = [visible_cases(scope)]
        if statuses:
            where.append(Case.status.in_(statuses))
        if priorities:
            where.append(Case.priority.in_(priorities))
        total = await session.scalar(select(func.count()).select_from(Case).where(*where))
        rows = (
            await session.execute(
                self.joined()
                .where(*where)
                .order_by(Case.received_at.desc(), Case.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [tuple(r) for r in rows], int(total or 0)  # type: ignore[misc]

    async def report_id(self, session: AsyncSession, case_id: int) -> int | None:
        """The id of the case's report, if one was started (at most one: ``reports.case_id``
        is unique)."""
        found: int | None = await session.scalar(select(Report.id).where(Report.case_id == case_id))
        return found

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

    async def priors(self, session: AsyncSession, study_pk: int) -> list[tuple[Study, int | None]]:
        """Earlier studies of the study's patient, newest first, with their case id if any."""
        current = aliased(Study)
        rows = await session.execute(
            select(Study, Case.id)
            .select_from(current)
            .join(Study, prior_of(Study, current))
            .outerjoin(Case, Case.study_pk == Study.id)
            .where(current.id == study_pk)
            .order_by(_moment(Study).desc(), Study.id.desc())
        )
        return [(study, case_id) for study, case_id in rows]

    async def reader(self, session: AsyncSession, user_id: int) -> User | None:
        user = await session.get(User, user_id)
        return user if user is not None and user.role == "radiologist" and user.active else None

    async def end_assignments(
        self, session: AsyncSession, case_id: int, kind: str, user_id: int | None = None
    ) -> list[int]:
        """End the active holds of ``kind`` on the case (of one user, if given); the user ids
        that lost theirs."""
        where = [
            CaseAssignment.case_id == case_id,
            CaseAssignment.kind == kind,
            CaseAssignment.active.is_(True),
        ]
        if user_id is not None:
            where.append(CaseAssignment.user_id == user_id)
        result = await session.execute(
            update(CaseAssignment)
            .where(*where)
            .values(active=False, ended_at=utcnow())
            .returning(CaseAssignment.user_id)
            .execution_options(synchronize_session=False)
        )
        return [int(u) for u in result.scalars()]

    async def active_offers(self, session: AsyncSession, case_id: int) -> set[int]:
        rows = await session.scalars(
            select(CaseAssignment.user_id).where(
                CaseAssignment.case_id == case_id,
                CaseAssignment.kind == "offered",
                CaseAssignment.active.is_(True),
            )
        )
        return {int(u) for u in rows}

    async def update_if(
        self,
        session: AsyncSession,
        case_id: int,
        *,
        expect: dict[str, Any],
        values: dict[str, Any],
        extra_where: Sequence[ColumnElement[bool]] = (),
    ) -> bool:
        """Change the case only if its columns still hold ``expect``: one conditional UPDATE,
        so of two processes acting on what they read, the one that read a stale row loses."""
        where = [Case.id == case_id, *extra_where]
        for name, value in expect.items():
            column = getattr(Case, name)
            where.append(column.is_(None) if value is None else column == value)
        result = await session.execute(
            update(Case)
            .where(*where)
            .values(**values)
            .returning(Case.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def add_assignment(self, session: AsyncSession, values: dict[str, Any]) -> None:
        session.add(CaseAssignment(**values))
        await session.flush()

    async def retry_waiting_now(self, session: AsyncSession, hospital_ids: Sequence[int]) -> None:
        """The hospitals' cases nobody could take are routed again at the SLA watch's next
        pass."""
        if not hospital_ids:
            return
        await session.execute(
            update(Case)
            .where(
                Case.status == "ready",
                Case.route_retry_at.is_not(None),
                Case.hospital_id.in_(hospital_ids),
            )
            .values(route_retry_at=None)
            .execution_options(synchronize_session=False)
        )

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
