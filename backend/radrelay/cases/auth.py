"""The one rule for which cases and studies a caller may see. Everything that lists or opens a
case, and every read of images through DICOMweb, goes through ``scope_of``: the SQL that
applies it is ``cases.repository.visible_studies`` / ``visible_cases``."""

from __future__ import annotations

from dataclasses import dataclass

from radrelay.auth.schemas import Principal, Role


@dataclass(frozen=True)
class Scope:
    """``everything``: coordinators and admins. Otherwise the studies of ``hospital_ids`` (a
    technician's hospital), plus, for ``reader_id``, the studies of the cases assigned or
    offered to that radiologist and those cases' priors (the same patient's earlier studies).

    ``cosign_hospital_ids`` (with ``reader_id``): the hospitals where that radiologist may
    co-sign (``reporting.auth.cosign_hospitals``). It adds the studies of those hospitals' cases
    whose report waits for a co-signature by someone else, while it waits: images only
    (``visible_studies``), not the case, which the co-signer reaches through its report."""

    everything: bool = False
    hospital_ids: tuple[int, ...] = ()
    reader_id: int | None = None
    cosign_hospital_ids: tuple[int, ...] = ()

    def sees_event(self, event: dict[str, object]) -> bool:
        """Live events name their hospital, and the readers they concern in ``reader_ids``;
        ``staff_only`` ones (SLA alerts, expert states) are not for the hospital."""
        if self.everything:
            return True
        if not event.get("staff_only") and event.get("hospital_id") in self.hospital_ids:
            return True
        readers = event.get("reader_ids")
        return (
            self.reader_id is not None and isinstance(readers, list) and (self.reader_id in readers)
        )


def scope_of(principal: Principal, *, cosign_hospital_ids: tuple[int, ...] = ()) -> Scope:
    """``cosign_hospital_ids``: for a radiologist, where they may co-sign, when the caller
    reads images (``reporting.service.ReportService.image_scope`` looks it up)."""
    if principal.sees_all_hospitals:
        return Scope(everything=True)
    if principal.role == Role.tech and principal.hospital_id is not None:
        return Scope(hospital_ids=(principal.hospital_id,))
    if principal.role == Role.radiologist:
        return Scope(reader_id=principal.user_id, cosign_hospital_ids=cosign_hospital_ids)
    return Scope()


def can_send_for(principal: Principal, hospital_id: int) -> bool:
    """Sending studies: a technician for their hospital; an admin or coordinator for any."""
    if principal.role == Role.tech:
        return principal.hospital_id == hospital_id
    return principal.sees_all_hospitals
