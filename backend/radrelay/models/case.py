"""A case is one study sent for reading, with its clinical question, priority and history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin

# radrelay.cases.schemas.OPEN_STATUSES, as SQL for the partial index below.
OPEN_SQL = "status IN ('ready', 'offered', 'assigned', 'reading', 'paused')"


class Case(IdMixin, Base):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_status_last_instance_at", "status", "last_instance_at"),
        Index("ix_cases_hospital_id_received_at", "hospital_id", "received_at"),
        # A reader's worklist and open load; the coordinator's board by deadline; the SLA watch.
        Index("ix_cases_reader_id_status", "reader_id", "status"),
        # The open cases by deadline (the coordinators' board reads the first page of it).
        Index(
            "ix_cases_open_deadline",
            "deadline",
            "id",
            sqlite_where=text(OPEN_SQL),
            postgresql_where=text(OPEN_SQL),
        ),
        Index("ix_cases_sla_next_at", "sla_next_at"),
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

    # --- routing (radrelay.routing, radrelay.worklist) ---------------------------------------
    # What the rules decided when the case was first routed (kept across re-routing).
    subspecialty: Mapped[str | None] = mapped_column(String(32))
    work_units: Mapped[float | None] = mapped_column(Float)
    sla_target_minutes: Mapped[int | None]
    deadline: Mapped[datetime | None]
    escalation_step: Mapped[int] = mapped_column(default=0)
    # radrelay.routing.schemas.SlaState, as the SLA watch last saw it; warnings_sent counts the
    # warning thresholds already announced, sla_next_at is when the watch must look again.
    sla_state: Mapped[str] = mapped_column(String(16), default="ok")
    warnings_sent: Mapped[int] = mapped_column(default=0)
    sla_next_at: Mapped[datetime | None]
    # When the SLA watch tries again to route a case nobody could take (a retry is a whole
    # routing, so a backlog of such cases is tried now and then, not on every pass); None: at
    # once, as after a reader comes online.
    route_retry_at: Mapped[datetime | None]
    # The one reader who holds the case (assigned, or reading under a lease), the same as the
    # active ``assigned`` row of case_assignments: kept on the case so that a claim is one
    # conditional UPDATE of one row, which is what makes two holders impossible.
    reader_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    lease_expires_at: Mapped[datetime | None]
    paused_reason: Mapped[str] = mapped_column(Text, default="")
    # Turnaround milestones: first routing, first assignment to a reader, first opened (claimed)
    # by one; the report milestones are set by reporting.
    routed_at: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    preliminary_at: Mapped[datetime | None]
    final_at: Mapped[datetime | None]


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


class RoutingDecision(IdMixin, Base):
    """One run of the routing engine for a case, with its explanation (``Decision.to_json``,
    compact), kept so coordinators can see why a case went where it went."""

    __tablename__ = "routing_decisions"
    __table_args__ = (Index("ix_routing_decisions_case_id_decided_at", "case_id", "decided_at"),)

    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    # ready | escalation | released | lease_expired | expert_offline | resumed | priority | retry
    trigger: Mapped[str] = mapped_column(String(32))
    # radrelay.routing.schemas.Mode: push | pool | none
    mode: Mapped[str] = mapped_column(String(8))
    assignee_id: Mapped[int | None] = mapped_column(BigId)
    escalation_step: Mapped[int] = mapped_column(default=0)
    # False when the case changed hands while the decision was computed (it was dropped).
    applied: Mapped[bool] = mapped_column(default=True)
    decision: Mapped[dict[str, Any]] = mapped_column(JSON)
