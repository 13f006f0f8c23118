"""The image index: patients, studies, series and instances as the hospital sent them.

Identifiers are kept exactly as received (PatientID, IssuerOfPatientID, AccessionNumber: IHE
import reconciliation); the center's own identity for a case is the case row, not these.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin


class Patient(IdMixin, Base):
    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("hospital_id", "patient_key"),)

    hospital_id: Mapped[int] = mapped_column(BigId, ForeignKey("hospitals.id", ondelete="RESTRICT"))
    # Identity within the hospital: issuer + PatientID, or a digest of the demographics when the
    # sender left PatientID empty (so empty IDs do not merge every anonymous patient into one).
    patient_key: Mapped[str] = mapped_column(String(200))
    patient_id: Mapped[str] = mapped_column(String(64), default="")
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(400), default="")
    # archive.keys.name_search(patient_name): what QIDO PatientName matching reads.
    name_search: Mapped[str] = mapped_column(String(402), default="")
    birth_date: Mapped[str] = mapped_column(String(8), default="")
    sex: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Study(IdMixin, Base):
    __tablename__ = "studies"
    __table_args__ = (
        UniqueConstraint("hospital_id", "study_instance_uid"),
        Index("ix_studies_patient_pk_study_date", "patient_pk", "study_date"),
        # QIDO lists newest first: walked in this order, a search stops at its limit instead
        # of sorting every match. No (hospital_id, date) index on purpose: planners took it
        # for a technician's name search and looked up the patient of every study of the
        # hospital (17 ms) instead of finding the few patients first (2 ms).
        Index("ix_studies_study_date_study_time", "study_date", "study_time"),
    )

    hospital_id: Mapped[int] = mapped_column(BigId, ForeignKey("hospitals.id", ondelete="RESTRICT"))
    patient_pk: Mapped[int] = mapped_column(BigId, ForeignKey("patients.id", ondelete="RESTRICT"))
    study_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    study_date: Mapped[str] = mapped_column(String(8), default="")
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(64), default="", index=True)
    issuer_of_accession_number: Mapped[str] = mapped_column(String(64), default="")
    study_id: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(200), default="")
    referring_physician_name: Mapped[str] = mapped_column(String(400), default="")
    modalities_in_study: Mapped[str] = mapped_column(String(200), default="")
    number_of_series: Mapped[int] = mapped_column(default=0)
    number_of_instances: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Series(IdMixin, Base):
    __tablename__ = "series"
    __table_args__ = (UniqueConstraint("study_pk", "series_instance_uid"),)

    study_pk: Mapped[int] = mapped_column(BigId, ForeignKey("studies.id", ondelete="CASCADE"))
    series_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None]
    series_description: Mapped[str] = mapped_column(String(200), default="")
    body_part_examined: Mapped[str] = mapped_column(String(64), default="")
    number_of_instances: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Instance(IdMixin, Base):
    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("series_pk", "sop_instance_uid", "sha256"),
        Index("ix_instances_study_pk_sop_instance_uid", "study_pk", "sop_instance_uid"),
    )

    study_pk: Mapped[int] = mapped_column(BigId, ForeignKey("studies.id", ondelete="CASCADE"))
    series_pk: Mapped[int] = mapped_column(BigId, ForeignKey("series.id", ondelete="CASCADE"))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    instance_number: Mapped[int | None]
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int | None]
    columns: Mapped[int | None]
    number_of_frames: Mapped[int | None]
    size_bytes: Mapped[int]
    # Digest of the data set as received (after the file meta header): equal digests under one
    # SOP Instance UID are a harmless resend; different ones are a conflict, and both are kept.
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(400))
    source: Mapped[str] = mapped_column(String(16))
    conflict: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class InstanceMetadata(Base):
    """What WADO-RS serves without opening the file again: the data set as DICOM JSON and
    where the pixel data of each frame lies in the stored file.

    Computed away from the receive path (pydicom's JSON conversion costs a few milliseconds
    per object, more than the rest of ingest): by the ``index_study`` job when a case becomes
    ready, or on the first read of an object that arrived later.
    """

    __tablename__ = "instance_metadata"

    instance_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    # DICOM JSON (PS3.18 F.2) of the data set, file meta excluded. BulkDataURI values are
    # relative to the instance's URL ("bulkdata/<n>"): the base is added per request.
    document: Mapped[str] = mapped_column(Text)
    bits_allocated: Mapped[int | None]
    # Native pixel data: file offset of the value and the size of one frame. Encapsulated:
    # per frame, its fragments as [offset, length] pairs in the file; None when the frames
    # cannot be told apart without decoding (several fragments per frame and no offset table).
    pixel_offset: Mapped[int | None] = mapped_column(BigInteger)
    frame_length: Mapped[int | None] = mapped_column(BigInteger)
    frames: Mapped[list[list[list[int]]] | None] = mapped_column(JSON)
