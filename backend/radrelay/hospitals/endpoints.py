"""Hospitals and their DICOM identities. Admins manage them; a technician sees their own."""

from __future__ import annotations

from fastapi import APIRouter

from radrelay.audit.service import audit
from radrelay.auth.dependencies import AdminPrincipal, CurrentPrincipal, Session
from radrelay.auth.schemas import Role
from radrelay.errors import Forbidden, NotFound
from radrelay.hospitals.schemas import AETitleIn, AETitleRead, HospitalCreate, HospitalRead
from radrelay.hospitals.service import hospitals
from radrelay.models import Hospital

router = APIRouter(prefix="/api/hospitals", tags=["hospitals"])


def _read(h: Hospital) -> HospitalRead:
    return HospitalRead(
        id=h.id,
        code=h.code,
        name=h.name,
        active=h.active,
        ae_titles=[
            AETitleRead(id=a.id, ae_title=a.ae_title, source_addresses=a.source_addresses)
            for a in sorted(h.ae_titles, key=lambda a: a.ae_title)
        ],
    )


@router.get("", response_model=list[HospitalRead])
async def list_hospitals(session: Session, principal: CurrentPrincipal) -> list[HospitalRead]:
    """Every hospital for coordinators and admins; a technician's own hospital for a technician."""
    if principal.sees_all_hospitals:
        return [_read(h) for h in await hospitals.all(session)]
    if principal.role == Role.tech and principal.hospital_id is not None:
        return [_read(await hospitals.get(session, principal.hospital_id))]
    raise Forbidden("Radiologists do not manage hospitals.")


@router.post("", response_model=HospitalRead, status_code=201)
async def create_hospital(
    session: Session, principal: AdminPrincipal, body: HospitalCreate
) -> HospitalRead:
    """Create a hospital, or update the one with this code (idempotent); AE titles are added."""
    hospital, created = await hospitals.create_or_update(session, body)
    audit.record(
        session,
        principal,
        "hospital.create" if created else "hospital.update",
        object_type="hospital",
        object_id=hospital.id,
        hospital_id=hospital.id,
    )
    return _read(hospital)


@router.get("/{code}", response_model=HospitalRead)
async def get_hospital(session: Session, principal: CurrentPrincipal, code: str) -> HospitalRead:
    hospital = await hospitals.get_by_code(session, code)
    if not principal.sees_all_hospitals and principal.hospital_id != hospital.id:
        raise NotFound(f"No hospital with code {code!r}.")
    return _read(hospital)


@router.post("/{code}/ae-titles", response_model=HospitalRead, status_code=201)
async def add_ae_title(
    session: Session, principal: AdminPrincipal, code: str, body: AETitleIn
) -> HospitalRead:
    """Register a calling AE title (and optionally the addresses it may call from)."""
    hospital = await hospitals.get_by_code(session, code)
    await hospitals.add_ae_title(session, hospital, body)
    audit.record(
        session,
        principal,
        "hospital.ae_title_add",
        object_type="hospital",
        object_id=hospital.id,
        hospital_id=hospital.id,
        detail={"ae_title": body.ae_title},
    )
    return _read(hospital)


@router.delete("/{code}/ae-titles/{ae_title}", status_code=204)
async def remove_ae_title(
    session: Session, principal: AdminPrincipal, code: str, ae_title: str
) -> None:
    hospital = await hospitals.get_by_code(session, code)
    await hospitals.remove_ae_title(session, hospital, ae_title)
    audit.record(
        session,
        principal,
        "hospital.ae_title_remove",
        object_type="hospital",
        object_id=hospital.id,
        hospital_id=hospital.id,
        detail={"ae_title": ae_title},
    )
