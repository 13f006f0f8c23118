"""Who may send studies, and for which hospital."""

from __future__ import annotations

from radrelay.auth.schemas import Principal, Role
from radrelay.cases import auth as case_auth
from radrelay.errors import BadRequest, Forbidden
from radrelay.hospitals.service import hospitals
from radrelay.kit.runtime import Runtime


async def sending_hospital(runtime: Runtime, principal: Principal, code: str | None) -> int:
    """The hospital a request sends for: a technician's own, or the one a coordinator or admin
    names by code."""
    if principal.role == Role.tech:
        assert principal.hospital_id is not None
        return principal.hospital_id
    if principal.role == Role.radiologist:
        raise Forbidden("Radiologists read studies; sending them is for hospital staff.")
    if not code:
        raise BadRequest(
            "Say which hospital the study comes from: the 'hospital' field (its code)."
        )
    async with runtime.db.unit_of_work() as session:
        hospital_id = (await hospitals.get_by_code(session, code)).id
    if not case_auth.can_send_for(principal, hospital_id):
        raise Forbidden("You can send studies only for your own hospital.")
    return hospital_id
