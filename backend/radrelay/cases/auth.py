"""The one rule for which cases a caller may see. Everything that lists or opens a case, and
every later read of its images, goes through ``visible_hospitals``/``can_see``."""

from __future__ import annotations

from radrelay.auth.schemas import Principal, Role


def visible_hospitals(principal: Principal) -> list[int] | None:
    """Hospital ids whose cases the caller may see; ``None`` means all of them."""
    if principal.sees_all_hospitals:
        return None
    if principal.role == Role.tech and principal.hospital_id is not None:
        return [principal.hospital_id]
    # Radiologists see the cases assigned or offered to them, which comes with routing (issue 4);
    # until a case is routed to them they see none.
    return []


def can_see(principal: Principal, hospital_id: int) -> bool:
    hospitals = visible_hospitals(principal)
    return hospitals is None or hospital_id in hospitals


def can_send_for(principal: Principal, hospital_id: int) -> bool:
    """Sending studies: a technician for their hospital; an admin or coordinator for any."""
    if principal.role == Role.tech:
        return principal.hospital_id == hospital_id
    return principal.sees_all_hospitals
