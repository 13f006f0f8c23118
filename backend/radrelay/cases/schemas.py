"""Cases as the API shows them, and the clinical information a sender attaches."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator


class Priority(StrEnum):
    stat = "stat"
    urgent = "urgent"
    routine = "routine"


class CaseStatus(StrEnum):
    receiving = "receiving"  # instances still arriving
    ready = "ready"  # complete (stable, or the upload said so): waiting for a reader
    offered = "offered"  # in the pools of a few readers; the first to claim it reads it
    assigned = "assigned"  # given to one reader, not opened yet
    reading = "reading"  # claimed by its reader, under a lease renewed while they read
    paused = "paused"  # held by a coordinator (missing images, a call to the hospital ...)
    preliminary = "preliminary"  # a preliminary report is signed (reporting)
    final = "final"  # the final report is signed
    amended = "amended"  # a final report was corrected by a new signed version


# Cases a reader still has to read: what worklists, the SLA watch and load counts look at.
# models.case.OPEN_SQL repeats it for a partial index: change both (and add a migration).
# Signed cases are not open work: a preliminary leaves the worklists and the SLA watch (a
# junior's waits in the seniors' co-sign queue, GET /api/reports/cosign-queue, not in anyone's
# worklist), while the turnaround metrics still measure the case to its final_at.
OPEN_STATUSES = (
    CaseStatus.ready,
    CaseStatus.offered,
    CaseStatus.assigned,
    CaseStatus.reading,
    CaseStatus.paused,
)
# Cases that count against their reader's load (the reader holds them).
HELD_STATUSES = (CaseStatus.assigned, CaseStatus.reading)


class Subspecialty(StrEnum):
    neuro = "neuro"
    head_neck = "head_neck"
    chest = "chest"
    cardiac = "cardiac"
    abdominal = "abdominal"
    msk = "msk"
    breast = "breast"
    pediatric = "pediatric"
    genitourinary = "genitourinary"
    vascular = "vascular"
    nuclear = "nuclear"
    general = "general"


class Source(StrEnum):
    upload = "upload"
    stow = "stow"
    cstore = "cstore"


_TEXT_FIELDS = ("clinical_question", "clinical_history", "requested_exam")


class ClinicalInfo(BaseModel):
    """What the sending hospital tells the reader. Every field is optional on input; fields left
    out keep their current value; ``null`` clears a text or the requested subspecialty."""

    priority: Priority | None = None
    clinical_question: str | None = Field(default=None, max_length=4000)
    clinical_history: str | None = Field(default=None, max_length=8000)
    requested_exam: str | None = Field(default=None, max_length=200)
    requested_subspecialty: Subspecialty | None = None

    @model_validator(mode="after")
    def _priority_is_never_empty(self) -> ClinicalInfo:
        if "priority" in self.model_fields_set and self.priority is None:
            raise ValueError("priority cannot be empty: stat, urgent or routine")
        return self

    def given(self) -> dict[str, object]:
        """The fields the caller set, with cleared texts as empty strings."""
        out = self.model_dump(exclude_unset=True)
        for name in _TEXT_FIELDS:
            if name in out and out[name] is None:
                out[name] = ""
        return out


class CaseRead(BaseModel):
    id: int
    hospital_id: int
    hospital_code: str
    status: CaseStatus
    priority: Priority
    clinical_question: str
    clinical_history: str
    requested_exam: str
    requested_subspecialty: Subspecialty | None
    source: Source
    received_at: datetime
    last_instance_at: datetime
    ready_at: datetime | None
    late_instances: int
    flags: list[str]
    study_instance_uid: str
    accession_number: str
    study_date: str
    study_description: str
    modalities: list[str]
    number_of_series: int
    number_of_instances: int
    patient_name: str
    patient_id: str
    issuer_of_patient_id: str
    patient_birth_date: str
    patient_sex: str
    subspecialty: Subspecialty | None = Field(
        default=None, description="The subspecialty routing read the case as."
    )
    work_units: float | None = None
    deadline: datetime | None = Field(default=None, description="When the report is due (SLA).")
    sla_state: str = Field(default="ok", description="ok, warning or breached.")
    reader_id: int | None = Field(default=None, description="The reader who holds the case.")
    reader_name: str | None = None
    lease_expires_at: datetime | None = None
    routed_at: datetime | None = Field(default=None, description="First routed (null: not yet).")
    assigned_at: datetime | None = None
    opened_at: datetime | None = None


class CaseEventRead(BaseModel):
    at: datetime
    kind: str
    actor_id: int | None
    actor_name: str | None = Field(description="Display name of the user who acted, if any.")
    detail: dict[str, object]


class CaseDetail(CaseRead):
    events: list[CaseEventRead]
    report_id: int | None = Field(
        default=None,
        description="The case's report once a reader has started one (GET /api/reports/{id}); "
        "the hospital sees only its released versions.",
    )


class CasePage(BaseModel):
    items: list[CaseRead]
    total: int
    limit: int
    offset: int


class PriorRead(BaseModel):
    """An earlier study of the case's patient at the same hospital."""

    study_instance_uid: str
    study_date: str
    study_time: str
    study_description: str
    accession_number: str
    modalities: list[str]
    number_of_series: int
    number_of_instances: int
    case_id: int | None = Field(description="The prior's own case, when it was sent for reading.")


class AssignmentKind(StrEnum):
    assigned = "assigned"  # the reader's to read; one per case
    offered = "offered"  # in the reader's pool until someone claims the case


class AssignmentCreate(BaseModel):
    """A coordinator gives a case to a radiologist, or offers it to them."""

    reader_id: int = Field(description="User id of an active radiologist.")
    kind: AssignmentKind = AssignmentKind.assigned
    reason: str = Field(default="", max_length=1000)
