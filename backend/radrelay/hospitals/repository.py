"""SQL for hospitals and their AE titles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from radrelay.models import Hospital, HospitalAETitle


class HospitalRepository:
    async def by_code(self, session: AsyncSession, code: str) -> Hospital | None:
        return await session.scalar(
            select(Hospital).where(Hospital.code == code).options(selectinload(Hospital.ae_titles))
        )

    async def by_id(self, session: AsyncSession, hospital_id: int) -> Hospital | None:
        return await session.scalar(
            select(Hospital)
            .where(Hospital.id == hospital_id)
            .options(selectinload(Hospital.ae_titles))
        )

    async def all(self, session: AsyncSession) -> list[Hospital]:
        return list(
            await session.scalars(
                select(Hospital).options(selectinload(Hospital.ae_titles)).order_by(Hospital.code)
            )
        )

    async def ae_title(self, session: AsyncSession, ae_title: str) -> HospitalAETitle | None:
        return await session.scalar(
            select(HospitalAETitle).where(HospitalAETitle.ae_title == ae_title)
        )


repository = HospitalRepository()
