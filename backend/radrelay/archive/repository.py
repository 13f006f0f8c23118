"""SQL for the image index. Creation goes through INSERT ... ON CONFLICT DO NOTHING so that
several receivers creating the same patient, study or series at once all end up with one row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.kit.db import insert_ignoring_conflicts
from radrelay.models import Instance, Patient, Series, Study

_instances = Instance.__table__


_instances = Instance.__table__


class ArchiveRepository:
    async def get_or_create(
        self,
        session: AsyncSession,
        model: Any,
        key: dict[str, Any],
        values: dict[str, Any],
    ) -> tuple[int, bool]:
        """(id, created) of the row identified by the unique ``key`` columns."""
        query = select(model.id).where(*(getattr(model, k) == v for k, v in key.items()))
        found = await session.scalar(query)
        if found is not None:
            return int(found), False
        stmt = insert_ignoring_conflicts(session, model.__table__, {**key, **values}, list(key))
        inserted = await session.scalar(stmt.returning(model.__table__.c.id))
        if inserted is not None:
            return int(inserted), True
        return int(await session.scalar(query)), False  # type: ignore[arg-type]

    # The per-instance statements below use Core on the tables rather than the ORM: they run
    # for every received object, and the ORM's bookkeeping costs more than the statement.

    async def digests_for_sop(
        self, session: AsyncSession, study_pk: int, sop_uid: str
    ) -> list[str]:
        rows = await session.scalars(
            select(_instances.c.sha256).where(
                _instances.c.study_pk == study_pk, _instances.c.sop_instance_uid == sop_uid
            )
        )
        return list(rows)

    async def insert_instance(self, session: AsyncSession, values: dict[str, Any]) -> None:
        await session.execute(insert(_instances).values(**values))

    async def add_counts(
        self,
        session: AsyncSession,
        table: Any,
        pk: int,
        *,
        set_values: dict[str, Any] | None = None,
        **increments: int,
    ) -> None:
        values: dict[str, Any] = {name: table.c[name] + n for name, n in increments.items() if n}
        values.update(set_values or {})
        if values:
            await session.execute(update(table).where(table.c.id == pk).values(**values))

    async def recount_study(
        self, session: AsyncSession, study_pk: int
    ) -> tuple[int, int, list[str]]:
        """(series, instances, modalities) counted from the rows, for the study summary."""
        series = (
            await session.execute(
                select(Series.id, Series.modality).where(Series.study_pk == study_pk)
            )
        ).all()
        instances = await session.scalar(
            select(func.count()).select_from(Instance).where(Instance.study_pk == study_pk)
        )
        modalities = sorted({m for _, m in series if m})
        return len(series), int(instances or 0), modalities

    async def study(self, session: AsyncSession, study_pk: int) -> Study | None:
        return await session.get(Study, study_pk)

    async def patient(self, session: AsyncSession, patient_pk: int) -> Patient | None:
        return await session.get(Patient, patient_pk)


repository = ArchiveRepository()
