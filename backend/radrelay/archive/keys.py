"""Identities derived from a header: the patient's key within a hospital and the storage key of
an object. No database here, so worker processes can import it cheaply."""

from __future__ import annotations

import hashlib

from radrelay.kit.dicom import Header


def patient_key(h: Header) -> str:
    if h.patient_id:
        return f"{h.issuer_of_patient_id}|{h.patient_id}"
    # No PatientID: identify by demographics so anonymous patients do not all merge into one.
    digest = hashlib.sha256(f"{h.patient_name}|{h.birth_date}|{h.sex}".encode()).hexdigest()
    return f"~{digest[:40]}"


def storage_key(hospital_id: int, h: Header, sha256: str) -> str:
    # The digest in the name keeps two different objects under one SOP Instance UID apart.
    return (
        f"h{hospital_id}/{h.study_instance_uid}/{h.series_instance_uid}/"
        f"{h.sop_instance_uid}.{sha256[:16]}.dcm"
    )


def name_search(patient_name: str) -> str:
    """A person name as QIDO matches it: lower case, each group (alphabetic, ideographic,
    phonetic) between ``=`` marks, so that one LIKE finds a name by any of its groups
    (``%=zhang^wei=%``, ``%=张*``) instead of several per row."""
    return "=" + patient_name.lower() + "="
