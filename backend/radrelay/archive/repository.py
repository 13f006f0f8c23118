"""SQL for the image index. Creation goes through INSERT ... ON CONFLICT DO NOTHING so that
several receivers creating the same patient, study or series at once all end up with one row."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.kit.db import insert_ignoring_conflicts
from radrelay.models import Instance, Series, Study

_instances = cast(Table, Instance.__table__)
_studies = cast(Table, Study.__table__)


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

    async def digests_for_sops(
        self, session: AsyncSession, study_pk: int, sop_uids: set[str]
    ) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        uids = sorted(sop_uids)
        # Bounded IN lists: SQLite allows a limited number of bound parameters per statement.
        for start in range(0, len(uids), 500):
            rows = await session.execute(
                select(_instances.c.sop_instance_uid, _instances.c.sha256).where(
                    _instances.c.study_pk == study_pk,
                    _instances.c.sop_instance_uid.in_(uids[start : start + 500]),
                )
            )
            for sop_uid, sha in rows:
                found.setdefault(sop_uid, set()).add(sha)
        return found

    async def insert_instances(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        await session.execute(insert(_instances), rows)

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

    async def lock_study(self, session: AsyncSession, study_pk: int) -> None:
        await session.execute(
            select(_studies.c.id).where(_studies.c.id == study_pk).with_for_update()
        )

    async def study(self, session: AsyncSession, study_pk: int) -> Study | None:
        return await session.get(Study, study_pk)


repository = ArchiveRepository()
