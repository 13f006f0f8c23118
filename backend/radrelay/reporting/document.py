"""A report as the renderers see it: everything the PDF and the DICOM forms show, resolved and
labelled, with no database behind it.

The reporting service builds one ``ReportDocument`` per signed version from the case, the
template and the reader's entries; ``pdf.render`` lays it out, ``signing`` signs the PDF, and
``dicom`` wraps the signed PDF (Encapsulated PDF) and the structured content (SR, TID 2000) for
the sending hospital's PACS. Being plain frozen data, a document can be built in a test by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ReportStatus(StrEnum):
    preliminary = "preliminary"  # signed by a reader who may not sign final, or released early
    final = "final"
    amended = "amended"  # a corrected final: supersedes the version before it


class Language(StrEnum):
    zh = "zh-CN"
    en = "en"
    bilingual = "bilingual"  # zh-CN first, English beside or below


class Meaning(StrEnum):
    """What a signature means (21 CFR 11.50: the meaning is shown with the signature)."""

    author = "author"
    cosigner = "cosigner"  # a senior co-signs a junior's preliminary report
    addendum = "addendum"


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept: ``scheme`` is the DICOM coding scheme designator (RADLEX, SCT, LN)."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Text:
    """A label in both languages; ``zh`` may be empty when a template has only English."""

    en: str
    zh: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """One filled field, already formatted for display (``"12 mm"``, ``"右肺上叶"``).

    ``code`` is set for coded answers (single or multiple choice: one Entry per chosen
    option), ``number``/``unit`` for numeric and measurement fields (unit as UCUM, e.g. "mm")."""

    label: Text
    display: str
    code: Code | None = None
    number: float | None = None
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """``key`` is one of clinical_information, technique, comparison, findings, impression,
    recommendations (or a template's own); ``code`` its LOINC section code when known
    (findings 59776-5, impression 19005-8 ...). ``text`` is the section's narrative."""

    key: str
    title: Text
    entries: tuple[Entry, ...] = ()
    text: str = ""
    code: Code | None = None


@dataclass(frozen=True, slots=True)
class KeyImage:
    """A frame the reader marked, rendered as JPEG for the PDF, and where it came from."""

    jpeg: bytes
    caption: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    frame: int = 1


@dataclass(frozen=True, slots=True)
class Signature:
    """Printed name, qualification, time and meaning, as shown under the report."""

    name: str
    qualification: str  # e.g. "主治医师 Attending radiologist"
    meaning: Meaning
    signed_at: datetime


@dataclass(frozen=True, slots=True)
class Addendum:
    text: str
    reason: str
    signature: Signature


@dataclass(frozen=True, slots=True)
class Party:
    """A hospital or the reading center: the letterhead."""

    name: str
    code: str = ""
    address: str = ""
    logo_png: bytes | None = None


@dataclass(frozen=True, slots=True)
class Patient:
    """Two identifiers at least (name and the hospital's patient ID), as sent by the hospital."""

    name: str  # as the DICOM PN value: "Zhang^Wei=张^伟"
    patient_id: str
    issuer_of_patient_id: str = ""
    birth_date: str = ""  # DICOM DA, YYYYMMDD, may be empty
    sex: str = ""  # M, F, O or empty


@dataclass(frozen=True, slots=True)
class Exam:
    study_instance_uid: str
    accession_number: str
    study_date: str  # DA
    study_time: str  # TM
    modality: str
    description: str
    referring_physician: str = ""
    clinical_question: str = ""
    priority: str = "routine"
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReportDocument:
    report_id: int
    version: int  # 1, 2 ... each signed version is a new, immutable document
    status: ReportStatus
    language: Language
    center: Party
    hospital: Party
    patient: Patient
    exam: Exam
    sections: tuple[Section, ...]
    template_id: str
    template_version: int
    signatures: tuple[Signature, ...]
    key_images: tuple[KeyImage, ...] = ()
    addenda: tuple[Addendum, ...] = ()
    critical: bool = False  # a critical finding was flagged and communicated
    supersedes_version: int | None = None  # set on an amended report
    amendment_reason: str = ""
    created_at: datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def section(self, key: str) -> Section | None:
        for s in self.sections:
            if s.key == key:
                return s
        return None


# --- as stored: a signed version keeps its document as JSON --------------------------------


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, bytes):
        return None  # images and logos stay where they came from (storage, the archive)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(doc: ReportDocument) -> dict[str, object]:
    """The document as JSON for a version row: every field but the image bytes (key images
    keep where they came from, so they can be rendered again)."""
    out = _plain(asdict(doc))
    assert isinstance(out, dict)
    return out


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _text(data: dict[str, Any]) -> Text:
    return Text(en=data["en"], zh=data.get("zh", ""))


def _code(data: dict[str, Any] | None) -> Code | None:
    return Code(data["value"], data["scheme"], data["meaning"]) if data else None


def _signature(data: dict[str, Any]) -> Signature:
    signed_at = _when(data["signed_at"])
    assert signed_at is not None
    return Signature(data["name"], data["qualification"], Meaning(data["meaning"]), signed_at)


def key_image_refs(data: dict[str, Any]) -> tuple[KeyImage, ...]:
    """The key images of a stored document as references only (no JPEG): where each frame is
    and its SOP Class UID, as the archive index gave it at signing. What the DICOM SR and FHIR
    forms need, and what a document carried forward (a co-signature) keeps."""
    return tuple(
        KeyImage(
            jpeg=b"",
            caption=k.get("caption", ""),
            study_instance_uid=k["study_instance_uid"],
            series_instance_uid=k["series_instance_uid"],
            sop_instance_uid=k["sop_instance_uid"],
            sop_class_uid=k["sop_class_uid"],
            frame=int(k.get("frame") or 1),
        )
        for k in data.get("key_images") or ()
    )


def addenda_of(data: dict[str, Any]) -> tuple[Addendum, ...]:
    """The addenda of a stored document, with their signatures."""
    return tuple(
        Addendum(a["text"], a["reason"], _signature(a["signature"])) for a in data["addenda"]
    )


def from_json(
    data: dict[str, Any],
    key_images: tuple[KeyImage, ...] = (),
    logos: dict[str, bytes] | None = None,
) -> ReportDocument:
    """A document back from ``to_json``, with its key images (rendered again by the caller,
    in the stored order) and the letterheads' logos given back."""
    logos = logos or {}

    def party(p: dict[str, Any], which: str) -> Party:
        return Party(p["name"], p.get("code", ""), p.get("address", ""), logos.get(which))

    return ReportDocument(
        report_id=data["report_id"],
        version=data["version"],
        status=ReportStatus(data["status"]),
        language=Language(data["language"]),
        center=party(data["center"], "center"),
        hospital=party(data["hospital"], "hospital"),
        patient=Patient(**data["patient"]),
        exam=Exam(**{**data["exam"], "received_at": _when(data["exam"].get("received_at"))}),
        sections=tuple(
            Section(
                key=s["key"],
                title=_text(s["title"]),
                entries=tuple(
                    Entry(
                        label=_text(e["label"]),
                        display=e["display"],
                        code=_code(e.get("code")),
                        number=e.get("number"),
                        unit=e.get("unit"),
                    )
                    for e in s["entries"]
                ),
                text=s.get("text", ""),
                code=_code(s.get("code")),
            )
            for s in data["sections"]
        ),
        template_id=data["template_id"],
        template_version=data["template_version"],
        signatures=tuple(_signature(s) for s in data["signatures"]),
        key_images=key_images,
        addenda=addenda_of(data),
        critical=data.get("critical", False),
        supersedes_version=data.get("supersedes_version"),
        amendment_reason=data.get("amendment_reason", ""),
        created_at=_when(data.get("created_at")),
        notes=tuple(data.get("notes", ())),
    )
