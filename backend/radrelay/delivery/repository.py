"""SQL for delivery endpoints and deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.models import (
    Case,
    Delivery,
    DeliveryEndpoint,
    Instance,
    Report,
    ReportVersion,
)

# Status rows carry what a coordinator reads without another query: endpoint name, version.
DeliveryRow = tuple[Delivery, str, int, str]


class DeliveryRepository:
    # --- endpoints ---------------------------------------------------------------------------

    async def endpoints(self, session: AsyncSession, hospital_id: int) -> list[DeliveryEndpoint]:
        return list(
            await session.scalars(
                select(DeliveryEndpoint)
                .where(DeliveryEndpoint.hospital_id == hospital_id)
                .order_by(DeliveryEndpoint.id)
            )
        )

    async def active_endpoints(
        self, session: AsyncSession, hospital_id: int
    ) -> list[DeliveryEndpoint]:
        return [e for e in await self.endpoints(session, hospital_id) if e.active]

    async def endpoint(self, session: AsyncSession, endpoint_id: int) -> DeliveryEndpoint | None:
        return await session.get(DeliveryEndpoint, endpoint_id)

    async def has_deliveries(self, session: AsyncSession, endpoint_id: int) -> bool:
        found = await session.scalar(
            select(Delivery.id).where(Delivery.endpoint_id == endpoint_id).limit(1)
        )
        return found is not None

    # --- deliveries --------------------------------------------------------------------------

    async def get(self, session: AsyncSession, delivery_id: int) -> Delivery | None:
        return await session.get(Delivery, delivery_id, populate_existing=True)

    async def case_of_version(self, session: AsyncSession, version_id: int) -> int | None:
        return await session.scalar(
            select(Report.case_id)
            .join(ReportVersion, ReportVersion.report_id == Report.id)
            .where(ReportVersion.id == version_id)
        )

    def _rows(self) -> Any:
        return (
            select(Delivery, DeliveryEndpoint.name, ReportVersion.version, ReportVersion.status)
            .join(DeliveryEndpoint, DeliveryEndpoint.id == Delivery.endpoint_id)
            .join(ReportVersion, ReportVersion.id == Delivery.report_version_id)
        )

    async def for_case(self, session: AsyncSession, case_id: int) -> list[DeliveryRow]:
        result = await session.execute(
            self._rows().where(Delivery.case_id == case_id).order_by(Delivery.id)
        )
        return [tuple(r) for r in result]  # type: ignore[misc]

    async def by_status(
        self, session: AsyncSession, statuses: Sequence[str], limit: int, offset: int
    ) -> list[DeliveryRow]:
        stmt = self._rows()
        if statuses:
            stmt = stmt.where(Delivery.status.in_(statuses))
        result = await session.execute(
            stmt.order_by(Delivery.updated_at.desc(), Delivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [tuple(r) for r in result]  # type: ignore[misc]

    async def row(self, session: AsyncSession, delivery_id: int) -> DeliveryRow | None:
        result = (await session.execute(self._rows().where(Delivery.id == delivery_id))).first()
        return tuple(result) if result else None  # type: ignore[return-value]

    async def claim(self, session: AsyncSession, delivery_id: int, now: datetime) -> bool:
        """Take a pending delivery for one attempt: one conditional UPDATE, so of two workers
        running the same job only one sends."""
        result = await session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.status == "pending")
            .values(status="sending", attempts=Delivery.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def due(self, session: AsyncSession, now: datetime, limit: int) -> list[Delivery]:
        return list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
            )
        )

    async def keep_claim(
        self, session: AsyncSession, delivery_id: int, attempts: int, now: datetime
    ) -> bool:
        """Renew one attempt's claim; False when the attempt is no longer the one sending."""
        result = await session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == "sending",
                Delivery.attempts == attempts,
            )
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release_stale(self, session: AsyncSession, before: datetime, now: datetime) -> int:
        result = await session.execute(
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.updated_at < before)
            .values(status="pending", next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def source_instance_key(self, session: AsyncSession, case_id: int) -> str | None:
        """The stored file of one image of the case's study: the header the DICOM forms copy
        patient and study attributes from."""
        return await session.scalar(
            select(Instance.storage_key)
            .join(Case, Case.study_pk == Instance.study_pk)
            .where(Case.id == case_id, Instance.conflict.is_(False))
            .order_by(Instance.id)
            .limit(1)
        )


repository = DeliveryRepository()
