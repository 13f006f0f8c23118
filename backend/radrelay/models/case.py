"""A case is one study sent for reading, with its clinical question, priority and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin


class Case(IdMixin, Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_last_instance_at", "status", "last_instance_at"),
        Index("ix_cases_hospital_id_received_at", "hospital_id", "received_at"),
    )

    hospital_id: Mapped[int] = mapped_column(BigId, ForeignKey("hospitals.id", ondelete="RESTRICT"))
    study_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("studies.id", ondelete="RESTRICT"), unique=True
    )
    patient_pk: Mapped[int] = mapped_column(BigId, ForeignKey("patients.id", ondelete="RESTRICT"))
    # radrelay.cases.schemas.CaseStatus
    status: Mapped[str] = mapped_column(String(16))
    # radrelay.cases.schemas.Priority
    priority: Mapped[str] = mapped_column(String(8))
    clinical_question: Mapped[str] = mapped_column(Text, default="")
    clinical_history: Mapped[str] = mapped_column(Text, default="")
    requested_exam: Mapped[str] = mapped_column(String(200), default="")
    requested_subspecialty: Mapped[str | None] = mapped_column(String(32))
    # How the first instance arrived: upload | stow | cstore
    source: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_instance_at: Mapped[datetime] = mapped_column(default=utcnow)
    ready_at: Mapped[datetime | None]
    late_instances: Mapped[int] = mapped_column(default=0)
    # Things a coordinator must look at, e.g. "sop_conflict": two different objects arrived
    # under one SOP Instance UID.
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CaseEvent(IdMixin, Base):
    """The case's timeline: received, ready, late instances, edits ... (turnaround intervals are
    measured from it)."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_id_at", "case_id", "at"),)

    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseAssignment(IdMixin, Base):
    """A reader's hold on a case: ``assigned`` (theirs to read) or ``offered`` (in their pool,
    theirs if they claim it). What a radiologist may see follows from the active rows.

    At most one active ``assigned`` row per case (partial unique index): two readers on one
    case is a database error, not a race someone has to notice.
    """

    __tablename__ = "case_assignments"
    __table_args__ = (
        Index("ix_case_assignments_user_id_active", "user_id", "active"),
        Index("ix_case_assignments_case_id", "case_id"),
        Index(
            "uq_case_assignments_one_reader",
            "case_id",
            unique=True,
            sqlite_where=text("active AND kind = 'assigned'"),
            postgresql_where=text("active AND kind = 'assigned'"),
        ),
    )

    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    # assigned | offered
    kind: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
