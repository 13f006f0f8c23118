"""Cases as the API shows them, and the clinical information a sender attaches."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Priority(StrEnum):
    stat = "stat"
    urgent = "urgent"
    routine = "routine"


class CaseStatus(StrEnum):
    receiving = "receiving"  # instances still arriving
    ready = "ready"  # complete (stable, or the upload said so): waiting for routing


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


class ClinicalInfo(BaseModel):
    """What the sending hospital tells the reader. Every field is optional on input; fields left
    out keep their current value."""

    priority: Priority | None = None
    clinical_question: str | None = Field(default=None, max_length=4000)
    clinical_history: str | None = Field(default=None, max_length=8000)
    requested_exam: str | None = Field(default=None, max_length=200)
    requested_subspecialty: Subspecialty | None = None

    def given(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


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


class CaseEventRead(BaseModel):
    at: datetime
    kind: str
    actor_id: int | None
    detail: dict[str, object]


class CaseDetail(CaseRead):
    events: list[CaseEventRead]


class CasePage(BaseModel):
    items: list[CaseRead]
    total: int
    limit: int
    offset: int
