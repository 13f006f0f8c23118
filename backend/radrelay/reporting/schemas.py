"""Reports as the API shows them, and what readers send to write, sign and correct them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from radrelay.reporting.document import Language, Meaning, ReportStatus
from radrelay.reporting.templates import Template

UID = Field(pattern=r"^[0-9]+(\.[0-9]+)*$", max_length=64)


class ReportState(StrEnum):
    """Where a report stands: ``draft`` until its first signature, then the status of its
    newest signed version."""

    draft = "draft"
    preliminary = "preliminary"
    final = "final"
    amended = "amended"


class KeyImageRef(BaseModel):
    """A frame the reader marked for the report."""

    study_instance_uid: str = UID
    series_instance_uid: str = UID
    sop_instance_uid: str = UID
    frame: int = Field(default=1, ge=1)
    caption: str = Field(default="", max_length=500)


class ReportCreate(BaseModel):
    template_id: str | None = Field(
        default=None, description="A template of reports_templates/; default: chosen for the study."
    )
    language: Language = Language.bilingual


class DraftUpdate(BaseModel):
    """An autosave. ``revision`` is the one the editor started from: a newer one saved
    elsewhere (another tab) makes this 409, with the current revision in the answer."""

    revision: int = Field(ge=0)
    entries: dict[str, Any] = Field(default_factory=dict, max_length=500)
    texts: dict[str, str] = Field(default_factory=dict, max_length=50)
    key_images: list[KeyImageRef] | None = Field(default=None, max_length=16)
    language: Language | None = None


class TemplateChange(BaseModel):
    revision: int = Field(ge=0)
    template_id: str


class TemplateSummary(BaseModel):
    id: str
    version: int
    title: dict[str, str] = Field(description="The title in each language: zh, en.")
    modalities: list[str]
    fallback: bool

    @classmethod
    def of(cls, template: Template) -> TemplateSummary:
        return cls(
            id=template.id,
            version=template.version,
            title={"zh": template.title.zh, "en": template.title.en},
            modalities=list(template.applies_to.modalities),
            fallback=template.applies_to.fallback,
        )


class Credentials(BaseModel):
    """Both components of the signer's electronic signature, typed again for this signature.

    21 CFR 11.200(a)(1) asks for both the identification code and the password when signings
    are not part of one continuous session; we ask for both at every signature, the stricter
    reading, so a stolen token or an unattended signed-in screen alone cannot sign."""

    username: str = Field(
        min_length=1,
        max_length=256,
        description="The signer's username (user ID), typed again: it must be the signed-in "
        "user's, exactly as at sign-in.",
    )
    password: str = Field(min_length=1, max_length=256, description="The signer's password.")


class SignBody(Credentials):
    preliminary: bool = Field(
        default=False,
        description="A reader qualified for final reports releases a STAT case early as a "
        "preliminary report; they sign the final one later.",
    )


class AmendBody(Credentials):
    reason: str = Field(min_length=1, max_length=2000)


class AddendumBody(Credentials):
    text: str = Field(min_length=1, max_length=8000)
    reason: str = Field(min_length=1, max_length=2000)


class SignatureRead(BaseModel):
    user_id: int
    meaning: Meaning
    printed_name: str
    qualification: str
    signed_at: datetime
    field: str = Field(description="The PDF signature field that holds it.")


class VersionRead(BaseModel):
    version: int
    status: ReportStatus
    released: bool = Field(description="The sending hospital sees it.")
    created_at: datetime
    superseded_at: datetime | None
    superseded_by: int | None
    amendment_reason: str
    pdf_sha256: str
    size: int
    signatures: list[SignatureRead]
    document: dict[str, Any] | None = Field(
        default=None, description="What the version shows (ReportDocument as JSON)."
    )


class DraftRead(BaseModel):
    revision: int
    entries: dict[str, Any]
    texts: dict[str, str]
    key_images: list[KeyImageRef]
    missing: list[str] = Field(
        description="What signing would refuse now: required fields and sections left empty, "
        "values out of range."
    )


class ReportRead(BaseModel):
    id: int
    case_id: int
    hospital_id: int
    status: ReportState
    template_id: str
    template_version: int
    template_title: str
    language: Language
    author_id: int
    awaiting_cosign: bool
    critical: bool
    created_at: datetime
    updated_at: datetime
    draft: DraftRead | None = Field(description="For its readers only, not for the hospital.")
    versions: list[VersionRead] = Field(description="Signed versions the caller may see.")


class SignatureCheckRead(BaseModel):
    field: str
    signer: str
    signed_at: datetime | None
    level: str
    intact: bool
    trusted: bool
    valid: bool
    problems: list[str]


class VerifyRead(BaseModel):
    """The stored PDF of a version checked: its signatures (PAdES) and its hash against the one
    recorded when it was signed."""

    version: int
    sha256: str
    recorded_sha256: str
    intact: bool
    valid: bool
    trusted: bool
    signer: str
    signed_at: datetime | None
    problems: list[str]
    signatures: list[SignatureCheckRead]


class CosignItem(BaseModel):
    report_id: int
    case_id: int
    hospital_id: int
    priority: str
    study_description: str
    author_id: int
    author_name: str
    version: int
    signed_at: datetime


class CriticalCreate(BaseModel):
    description: str = Field(min_length=1, max_length=4000)


class Method(StrEnum):
    phone = "phone"
    in_person = "in_person"
    message = "message"
    other = "other"


class CommunicationBody(BaseModel):
    communicated_to: str = Field(
        min_length=1, max_length=200, description="Who at the hospital was told (name, role)."
    )
    method: Method
    at: AwareDatetime | None = Field(default=None, description="When; default now.")


class CriticalStatus(StrEnum):
    open = "open"
    done = "done"


class CriticalRead(BaseModel):
    id: int
    report_id: int
    case_id: int
    hospital_id: int
    description: str
    flagged_by: int
    flagged_at: datetime
    due_at: datetime
    status: CriticalStatus
    seconds_left: float | None = Field(description="Until due (negative: overdue); null: done.")
    communicated_at: datetime | None
    communicated_to: str
    method: str
    recorded_by: int | None
