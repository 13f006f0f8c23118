"""Hospitals (tenants) and the DICOM identities they send from."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.errors import Conflict, NotFound
from radrelay.hospitals.repository import repository
from radrelay.hospitals.schemas import AETitleIn, HospitalCreate
from radrelay.models import Hospital, HospitalAETitle


@dataclass(frozen=True)
class CallingAE:
    """The hospital a DICOM association speaks for."""

    hospital_id: int
    hospital_code: str
    ae_title: str


class HospitalService:
    async def get_by_code(self, session: AsyncSession, code: str) -> Hospital:
        hospital = await repository.by_code(session, code)
        if hospital is None:
            raise NotFound(f"No hospital with code {code!r}.")
        return hospital

    async def get(self, session: AsyncSession, hospital_id: int) -> Hospital:
        hospital = await repository.by_id(session, hospital_id)
        if hospital is None:
            raise NotFound(f"No hospital {hospital_id}.")
        return hospital

    async def all(self, session: AsyncSession) -> list[Hospital]:
        return await repository.all(session)

    async def create_or_update(
        self, session: AsyncSession, data: HospitalCreate
    ) -> tuple[Hospital, bool]:
        """Idempotent on the code: the name is updated and the given AE titles are added (titles
        already registered to this hospital are updated, never removed). Returns (hospital,
        created)."""
        hospital = await repository.by_code(session, data.code)
        created = hospital is None
        if hospital is None:
            hospital = Hospital(code=data.code, name=data.name, ae_titles=[])
            session.add(hospital)
            await session.flush()
        hospital.name = data.name
        for ae in data.ae_titles:
            await self.add_ae_title(session, hospital, ae)
        await session.flush()
        return hospital, created

    async def add_ae_title(
        self, session: AsyncSession, hospital: Hospital, data: AETitleIn
    ) -> HospitalAETitle:
        existing = await repository.ae_title(session, data.ae_title)
        if existing is not None and existing.hospital_id != hospital.id:
            raise Conflict(
                f"AE title {data.ae_title!r} is already registered to another hospital; "
                "each calling AE title must identify one hospital."
            )
        if existing is None:
            existing = HospitalAETitle(hospital_id=hospital.id, ae_title=data.ae_title)
            session.add(existing)
            hospital.ae_titles.append(existing)
        existing.source_addresses = list(data.source_addresses)
        await session.flush()
        return existing

    async def remove_ae_title(
        self, session: AsyncSession, hospital: Hospital, ae_title: str
    ) -> None:
        existing = await repository.ae_title(session, ae_title)
        if existing is None or existing.hospital_id != hospital.id:
            raise NotFound(f"Hospital {hospital.code!r} has no AE title {ae_title!r}.")
        await session.delete(existing)

    async def resolve_calling_ae(
        self, session: AsyncSession, ae_title: str, address: str
    ) -> CallingAE | None:
        """The hospital behind a calling AE title and source address, or None if unknown."""
        row = await repository.ae_title(session, ae_title.strip())
        if row is None or not _address_allowed(address, row.source_addresses):
            return None
        hospital = await repository.by_id(session, row.hospital_id)
        if hospital is None or not hospital.active:
            return None
        return CallingAE(hospital.id, hospital.code, row.ae_title)


def _address_allowed(address: str, allowed: Sequence[str]) -> bool:
    if not allowed:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(net, strict=False) for net in allowed)


hospitals = HospitalService()
