"""SQL for reports, their drafts, versions, signatures and critical findings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.models import (
    Case,
    CriticalFinding,
    Report,
    ReportDraft,
    ReportSignature,
    ReportVersion,
    Study,
    User,
)

USER_NAME = func.coalesce(func.nullif(User.display_name, ""), User.username)


class ReportRepository:
    async def get(self, session: AsyncSession, report_id: int) -> Report | None:
        return await session.get(Report, report_id, populate_existing=True)

    async def for_case(self, session: AsyncSession, case_id: int) -> Report | None:
        return await session.scalar(select(Report).where(Report.case_id == case_id))

    async def add(self, session: AsyncSession, row: Any) -> None:
        session.add(row)
        await session.flush()

    async def save_draft(
        self, session: AsyncSession, report_id: int, expect_revision: int, values: dict[str, Any]
    ) -> int | None:
        """Bump the draft's revision if it is still ``expect_revision``: one conditional
        UPDATE, so of two saves from the same revision one wins. The new revision, or None."""
        result = await session.execute(
            update(Report)
            .where(Report.id == report_id, Report.draft_revision == expect_revision)
            .values(draft_revision=expect_revision + 1, **values)
            .returning(Report.draft_revision)
            .execution_options(synchronize_session=False)
        )
        found = result.scalar_one_or_none()
        return int(found) if found is not None else None

    async def claim_status(
        self, session: AsyncSession, report_id: int, expect: dict[str, Any], values: dict[str, Any]
    ) -> bool:
        """Change the report only if it still holds ``expect`` (status, revision ...): two
        signers acting on the same state cannot both make a version from it."""
        where = [Report.id == report_id]
        for name, value in expect.items():
            where.append(getattr(Report, name) == value)
        result = await session.execute(
            update(Report)
            .where(*where)
            .values(**values)
            .returning(Report.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None

    async def versions(self, session: AsyncSession, report_id: int) -> list[ReportVersion]:
        return list(
            await session.scalars(
                select(ReportVersion)
                .where(ReportVersion.report_id == report_id)
                .order_by(ReportVersion.version)
            )
        )

    async def version(
        self, session: AsyncSession, report_id: int, number: int
    ) -> ReportVersion | None:
        return await session.scalar(
            select(ReportVersion).where(
                ReportVersion.report_id == report_id, ReportVersion.version == number
            )
        )

    async def signatures(
        self, session: AsyncSession, version_ids: Sequence[int]
    ) -> dict[int, list[ReportSignature]]:
        out: dict[int, list[ReportSignature]] = defaultdict(list)
        if not version_ids:
            return out
        rows = await session.scalars(
            select(ReportSignature)
            .where(ReportSignature.version_id.in_(version_ids))
            .order_by(ReportSignature.signed_at, ReportSignature.id)
        )
        for row in rows:
            out[row.version_id].append(row)
        return out

    async def signed_by(self, session: AsyncSession, report_id: int, user_id: int) -> bool:
        found = await session.scalar(
            select(ReportSignature.id)
            .join(ReportVersion, ReportVersion.id == ReportSignature.version_id)
            .where(ReportVersion.report_id == report_id, ReportSignature.user_id == user_id)
            .limit(1)
        )
        return found is not None

    async def draft_saved_since(
        self, session: AsyncSession, report_id: int, since: datetime
    ) -> bool:
        """Whether an autosave came after ``since`` (the last signed version): a correction
        is being written."""
        found = await session.scalar(
            select(ReportDraft.id)
            .where(ReportDraft.report_id == report_id, ReportDraft.saved_at > since)
            .limit(1)
        )
        return found is not None

    async def supersede(
        self, session: AsyncSession, report_id: int, by: int, now: datetime
    ) -> None:
        await session.execute(
            update(ReportVersion)
            .where(
                ReportVersion.report_id == report_id,
                ReportVersion.version < by,
                ReportVersion.superseded_at.is_(None),
            )
            .values(superseded_at=now, superseded_by=by)
            .execution_options(synchronize_session=False)
        )

    async def cosign_queue(
        self, session: AsyncSession, hospital_ids: Sequence[int] | None, limit: int
    ) -> list[tuple[Report, Case, Study, str, ReportVersion]]:
        """Preliminaries waiting for a co-signature at these hospitals (None: all), oldest
        first."""
        where = [Report.awaiting_cosign.is_(True)]
        if hospital_ids is not None:
            where.append(Case.hospital_id.in_(hospital_ids))
        rows = await session.execute(
            select(Report, Case, Study, USER_NAME, ReportVersion)
            .join(Case, Case.id == Report.case_id)
            .join(Study, Study.id == Case.study_pk)
            .join(User, User.id == Report.author_id)
            .join(
                ReportVersion,
                (ReportVersion.report_id == Report.id) & ReportVersion.superseded_at.is_(None),
            )
            .where(*where)
            .order_by(ReportVersion.created_at, Report.id)
            .limit(limit)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]

    # --- critical findings ------------------------------------------------------------------

    async def critical(self, session: AsyncSession, finding_id: int) -> CriticalFinding | None:
        return await session.get(CriticalFinding, finding_id, populate_existing=True)

    async def criticals(
        self,
        session: AsyncSession,
        *,
        status: str | None,
        user_id: int | None,
        limit: int,
    ) -> list[tuple[CriticalFinding, int]]:
        """Findings with their case's hospital, soonest due first. ``user_id``: only those a
        radiologist flagged or that lie on reports they wrote."""
        query = select(CriticalFinding, Case.hospital_id).join(
            Case, Case.id == CriticalFinding.case_id
        )
        if status is not None:
            query = query.where(CriticalFinding.status == status)
        if user_id is not None:
            query = query.join(Report, Report.id == CriticalFinding.report_id).where(
                or_(CriticalFinding.flagged_by == user_id, Report.author_id == user_id)
            )
        rows = await session.execute(
            query.order_by(CriticalFinding.due_at, CriticalFinding.id).limit(limit)
        )
        return [(f, int(h)) for f, h in rows.all()]

    async def overdue(
        self, session: AsyncSession, now: datetime, limit: int
    ) -> list[tuple[int, int, int, int]]:
        """(finding, case, hospital, flagged_by) of open findings past due and not yet
        announced, each taken by one conditional UPDATE so two watchers announce it once."""
        result = await session.execute(
            update(CriticalFinding)
            .where(
                CriticalFinding.id.in_(
                    select(CriticalFinding.id)
                    .where(
                        CriticalFinding.status == "open",
                        CriticalFinding.due_at < now,
                        CriticalFinding.alerted_at.is_(None),
                    )
                    .limit(limit)
                ),
                CriticalFinding.alerted_at.is_(None),
            )
            .values(alerted_at=now)
            .returning(CriticalFinding.id, CriticalFinding.case_id, CriticalFinding.flagged_by)
            .execution_options(synchronize_session=False)
        )
        taken = result.all()
        if not taken:
            return []
        hospitals = dict(
            (
                await session.execute(
                    select(Case.id, Case.hospital_id).where(Case.id.in_([c for _, c, _ in taken]))
                )
            ).all()
        )
        return [(int(f), int(c), int(hospitals[c]), int(u)) for f, c, u in taken]


repository = ReportRepository()
