"""Who may see and do what with a report. The case's scope rule (``cases.auth.scope_of``) comes
first; reports add two grants a case does not give: the radiologists who signed a version keep
seeing it, and while a junior's preliminary waits for its co-signature every senior who could
co-sign it (final-qualified, credentialed for the hospital) sees it, and may open its images
(``Scope.cosign_hospital_ids``). ``cosign_hospitals`` and ``may_cosign`` are the one co-sign
eligibility rule every one of those uses."""

from __future__ import annotations

from enum import StrEnum

from radrelay.auth.schemas import Principal, Role
from radrelay.experts.schemas import SigningProfile
from radrelay.routing.schemas import Qualification


class Access(StrEnum):
    staff = "staff"  # coordinators and admins: everything
    reader = "reader"  # holds the case, or signed a version: the draft and every version
    cosigner = "cosigner"  # may co-sign the waiting preliminary: the report, no draft edits
    hospital = "hospital"  # the sending hospital: released versions only


def cosign_hospitals(profile: SigningProfile | None) -> tuple[int, ...]:
    """The hospitals whose preliminaries the signer may co-sign (other authors' ones: see
    ``may_cosign``). ``profile``: from ``experts.signing_profile``, None unless an active
    radiologist with an expert profile; final-qualified readers only, where credentialed now."""
    if profile is None or profile.qualification != Qualification.final:
        return ()
    return profile.hospital_ids


def may_cosign(profile: SigningProfile | None, hospital_id: int, author_id: int) -> bool:
    return (
        profile is not None
        and hospital_id in cosign_hospitals(profile)
        and profile.user_id != author_id
    )


def report_access(
    principal: Principal,
    *,
    case_visible: bool,
    hospital_id: int,
    signed_it: bool,
    awaiting_cosign: bool,
    senior_for: tuple[int, ...],
) -> Access | None:
    """``case_visible``: the case passes the caller's scope; ``senior_for``: the hospitals the
    caller may co-sign for (``cosign_hospitals``). None: as if the report did not exist."""
    if principal.sees_all_hospitals:
        return Access.staff
    if principal.role == Role.tech:
        return Access.hospital if case_visible else None
    if principal.role != Role.radiologist:
        return None
    if case_visible or signed_it:
        return Access.reader
    if awaiting_cosign and hospital_id in senior_for:
        return Access.cosigner
    return None
