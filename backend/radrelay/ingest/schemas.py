"""What a sender is told about each object it sent."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from radrelay.kit.dicom import Header


class Outcome(StrEnum):
    stored = "stored"
    duplicate = "duplicate"  # the identical object was already stored: success, nothing added
    conflict = "conflict"  # a different object under a known SOP Instance UID: stored, flagged
    failed = "failed"
    skipped = "skipped"  # not an object to store (a DICOMDIR index, a folder entry)

    @property
    def ok(self) -> bool:
        return self in (Outcome.stored, Outcome.duplicate, Outcome.conflict)


class FileOutcome(BaseModel):
    name: str = Field(description="The file name (path inside a zip), or the part number.")
    outcome: Outcome
    message: str = ""
    status: int = Field(default=0, description="DICOM status: 0 success, else the failure code.")
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    case_id: int | None = None

    @classmethod
    def of(
        cls,
        name: str,
        h: Header,
        outcome: Outcome,
        status: int,
        message: str,
        case_id: int | None = None,
    ) -> FileOutcome:
        return cls(
            name=name,
            outcome=outcome,
            status=status,
            message=message,
            sop_class_uid=h.sop_class_uid,
            sop_instance_uid=h.sop_instance_uid,
            study_instance_uid=h.study_instance_uid,
            series_instance_uid=h.series_instance_uid,
            case_id=case_id,
        )


class UploadResponse(BaseModel):
    stored: int
    duplicates: int
    conflicts: int
    failed: int
    skipped: int
    case_ids: list[int]
    files: list[FileOutcome]
