"""A signed report version as a FHIR R4 DiagnosticReport, for the webhook.

The mapping (FHIR R4 4.0.1, DiagnosticReport; the table is in docs/delivery.md):

- ``identifier``: the report (the same for all its versions, so a receiver finds the version an
  amendment replaces) and this version, both in systems under our public URL;
- ``basedOn``: the order, by the hospital's accession number (identifier type ACSN, v2-0203);
- ``status``: ``preliminary``, ``final`` or ``amended`` (DiagnosticReportStatus);
- ``category``: RAD (v2-0074 Diagnostic Service Section ID);
- ``code``: LOINC 18748-4 "Diagnostic imaging study", the code of the DICOM document title too;
- ``subject``: a contained Patient with the hospital's patient ID and the name as sent, in its
  alphabetic and ideographic forms (extension iso21090-EN-representation ABC / IDE);
- ``effectiveDateTime``: the study's date and time (China Standard Time, as DICOM has them);
- ``issued``: the last author or co-signer signature; ``performer``: the reading center and the
  signers; ``resultsInterpreter``: the signers;
- ``imagingStudy``: a logical reference by Study Instance UID (system ``urn:dicom:uid``, value
  ``urn:oid:<uid>``), as FHIR ImagingStudy.identifier carries it;
- ``media``: per key image, ``comment`` its caption and ``link`` a contained Media resource
  (``#key-image-<n>``): status completed, type image, ``partOf`` the ImagingStudy (logical, by
  Study Instance UID), ``identifier`` the SOP Instance UID, ``subject`` the patient, and
  ``content`` the JPEG of that frame from our WADO-RS rendered resource
  (``<base>/dicomweb/studies/../series/../instances/../frames/<n>/rendered``), which the
  hospital fetches with its own credentials; ``content.title`` the caption. Contained, since
  the webhook posts one resource and these have no identity apart from the report;
- ``conclusion``: the impression's text; ``conclusionCode``: its coded entries;
- ``presentedForm``: the signed PDF; ``hash`` is the base64 SHA-1 of the bytes, as
  Attachment.hash defines it (integrity, not a signature: the PDF carries its PAdES signature).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, time
from typing import Any

from radrelay.reporting.dicom import CHINA_STANDARD_TIME
from radrelay.reporting.document import (
    Code,
    KeyImage,
    Language,
    Meaning,
    ReportDocument,
    ReportStatus,
    Signature,
)

__all__ = ["DICOM_UID_SYSTEM", "LOINC", "diagnostic_report", "identifier_systems"]

LOINC = "http://loinc.org"
DICOM_UID_SYSTEM = "urn:dicom:uid"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
DIAGNOSTIC_IMAGING_STUDY = "18748-4"

# DICOM coding scheme designators (PS3.16 Table 8-1) -> FHIR code systems.
_SYSTEMS = {
    "LN": LOINC,
    "SCT": "http://snomed.info/sct",
    "SRT": "http://snomed.info/sct",
    "RADLEX": "http://radlex.org",
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "UCUM": "http://unitsofmeasure.org",
}

_STATUS = {
    ReportStatus.preliminary: "preliminary",
    ReportStatus.final: "final",
    ReportStatus.amended: "amended",
}

_GENDER = {"M": "male", "F": "female", "O": "other"}


def identifier_systems(base_url: str) -> dict[str, str]:
    """Our identifier systems: URIs under the platform's public URL, stable for good."""
    base = base_url.rstrip("/")
    return {
        "report": f"{base}/fhir/sid/report",
        "report_version": f"{base}/fhir/sid/report-version",
        "local_codes": f"{base}/fhir/CodeSystem/local",
    }


def diagnostic_report(
    doc: ReportDocument,
    pdf: bytes,
    *,
    base_url: str,
    report_version_id: int,
    hospital_identifier_system: str,
    accession_system: str | None = None,
) -> dict[str, Any]:
    """``doc`` (one signed version) and its signed ``pdf`` as a DiagnosticReport resource.

    ``hospital_identifier_system`` is the identifier system of the hospital's patient IDs
    (the FHIR form of DICOM's Issuer of Patient ID); ``accession_system`` that of its accession
    numbers, when known. ``report_version_id`` is our id of the signed version: the version
    identifier, and the webhook's idempotency key."""
    systems = identifier_systems(base_url)
    signers = sorted(
        (s for s in doc.signatures if s.meaning in (Meaning.author, Meaning.cosigner)),
        key=lambda s: s.signed_at,
    )
    if not signers:
        raise ValueError(f"report {doc.report_id} v{doc.version} has no signature to deliver")
    issued = _instant(signers[-1].signed_at)
    language = "en" if doc.language is Language.en else "zh-CN"

    study = {
        "type": "ImagingStudy",
        "identifier": {
            "system": DICOM_UID_SYSTEM,
            "value": f"urn:oid:{doc.exam.study_instance_uid}",
        },
    }
    media = [_media(n, image, study, base_url) for n, image in enumerate(doc.key_images, 1)]
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "language": language,
        "contained": [_patient(doc, hospital_identifier_system), *media],
        "identifier": [
            {"use": "official", "system": systems["report"], "value": str(doc.report_id)},
            {
                "use": "secondary",
                "system": systems["report_version"],
                "value": str(report_version_id),
            },
        ],
        "status": _STATUS[doc.status],
        "category": [{"coding": [{"system": V2_0074, "code": "RAD", "display": "Radiology"}]}],
        "code": {
            "coding": [
                {
                    "system": LOINC,
                    "code": DIAGNOSTIC_IMAGING_STUDY,
                    "display": "Diagnostic imaging study",
                }
            ],
            "text": doc.exam.description or "Diagnostic imaging report",
        },
        "subject": {
            "reference": "#patient",
            "type": "Patient",
            "identifier": _patient_identifier(doc, hospital_identifier_system),
            "display": _display_name(doc.patient.name),
        },
        "issued": issued,
        "performer": [
            {"type": "Organization", "display": doc.center.name or doc.center.code},
            *(_practitioner(s) for s in signers),
        ],
        "resultsInterpreter": [_practitioner(s) for s in signers],
        "imagingStudy": [study],
        "presentedForm": [
            {
                "contentType": "application/pdf",
                "language": language,
                "data": base64.b64encode(pdf).decode("ascii"),
                "size": len(pdf),
                "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
                "title": _title(doc),
                "creation": issued,
            }
        ],
    }
    if media:
        resource["media"] = [
            {
                **({"comment": image.caption.strip()} if image.caption.strip() else {}),
                "link": {"reference": f"#{m['id']}", "type": "Media"},
            }
            for m, image in zip(media, doc.key_images, strict=True)
        ]
    if doc.exam.accession_number:
        accession: dict[str, Any] = {
            "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
            "value": doc.exam.accession_number,
        }
        if accession_system:
            accession["system"] = accession_system
        resource["basedOn"] = [{"type": "ServiceRequest", "identifier": accession}]
    if (effective := _effective(doc.exam.study_date, doc.exam.study_time)) is not None:
        resource["effectiveDateTime"] = effective
    impression = doc.section("impression") or doc.section("conclusion")
    if impression is not None:
        if impression.text.strip():
            resource["conclusion"] = impression.text.strip()
        coded = [e.code for e in impression.entries if e.code is not None]
        if coded:
            resource["conclusionCode"] = [_concept(c, systems["local_codes"]) for c in coded]
    return resource


def _patient_identifier(doc: ReportDocument, system: str) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
        "system": system,
        "value": doc.patient.patient_id,
    }


def _patient(doc: ReportDocument, system: str) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [_patient_identifier(doc, system)],
    }
    if names := _names(doc.patient.name):
        patient["name"] = names
    if gender := _GENDER.get(doc.patient.sex.upper()):
        patient["gender"] = gender
    birth = doc.patient.birth_date
    if len(birth) == 8 and birth.isdigit():
        patient["birthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    return patient


def _names(pn: str) -> list[dict[str, Any]]:
    """A DICOM PN (``Family^Given^Middle^Prefix^Suffix``, up to three ``=`` groups: alphabetic,
    ideographic, phonetic; PS3.5 6.2.1) as HumanNames, each group marked with its
    representation."""
    out = []
    for group, representation in zip(pn.split("="), ("ABC", "IDE", "SYL"), strict=False):
        parts = group.split("^") + [""] * 5
        family, given, middle, prefix, suffix = (p.strip() for p in parts[:5])
        if not (family or given):
            continue
        name: dict[str, Any] = {
            "extension": [{"url": EN_REPRESENTATION, "valueCode": representation}],
            "use": "official",
            # Chinese names are written family first without a space; romanised ones with one.
            "text": family + given
            if representation == "IDE"
            else " ".join(p for p in (given, family) if p),
        }
        if family:
            name["family"] = family
        if given_names := [g for g in (given, middle) if g]:
            name["given"] = given_names
        if prefix:
            name["prefix"] = [prefix]
        if suffix:
            name["suffix"] = [suffix]
        out.append(name)
    return out


def _display_name(pn: str) -> str:
    names = _names(pn)
    return " / ".join(n["text"] for n in names) if names else pn


def _media(n: int, image: KeyImage, study: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A key image as a contained Media: the frame, rendered as JPEG by our WADO-RS."""
    url = (
        f"{base_url.rstrip('/')}/dicomweb/studies/{image.study_instance_uid}"
        f"/series/{image.series_instance_uid}/instances/{image.sop_instance_uid}"
        f"/frames/{image.frame}/rendered"
    )
    content: dict[str, Any] = {"contentType": "image/jpeg", "url": url}
    if caption := image.caption.strip():
        content["title"] = caption
    return {
        "resourceType": "Media",
        "id": f"key-image-{n}",
        "identifier": [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{image.sop_instance_uid}"}],
        "partOf": [study],
        "status": "completed",
        "type": {"coding": [{"system": MEDIA_TYPE, "code": "image", "display": "Image"}]},
        "subject": {"reference": "#patient", "type": "Patient"},
        "content": content,
    }


def _practitioner(signature: Signature) -> dict[str, Any]:
    return {"type": "Practitioner", "display": signature.name}


def _concept(code: Code, local_system: str) -> dict[str, Any]:
    system = _SYSTEMS.get(code.scheme.upper(), local_system)
    return {"coding": [{"system": system, "code": code.value, "display": code.meaning}]}


def _instant(moment: datetime) -> str:
    """A FHIR instant: to the second, with the offset; in China Standard Time."""
    local = (
        moment.replace(tzinfo=CHINA_STANDARD_TIME)
        if moment.tzinfo is None
        else moment.astimezone(CHINA_STANDARD_TIME)
    )
    return local.isoformat(timespec="seconds")


def _effective(study_date: str, study_time: str) -> str | None:
    """DICOM DA + TM (local time, PS3.5 6.2) as a FHIR dateTime; the date alone without a time,
    nothing without a valid date."""
    if len(study_date) != 8 or not study_date.isdigit():
        return None
    day = f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}"
    digits = study_time.split(".")[0].strip()
    if len(digits) < 2 or not digits.isdigit():
        return day
    hour, minute, second = int(digits[:2]), int(digits[2:4] or 0), int(digits[4:6] or 0)
    try:
        at = time(hour, minute, min(second, 59), tzinfo=CHINA_STANDARD_TIME)
    except ValueError:
        return day
    return f"{day}T{at.isoformat(timespec='seconds')}"


def _title(doc: ReportDocument) -> str:
    title = f"{doc.exam.description} report v{doc.version}".strip()
    if doc.status is ReportStatus.amended:
        title += " (amended)"
    return title
