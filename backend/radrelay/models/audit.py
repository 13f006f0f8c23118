"""Who did what to which record, when, from where. Never patient names or IDs in here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action_object_id_at", "action", "object_id", "at"),
        Index("ix_audit_events_action_ip_at", "action", "ip", "at"),
        Index("ix_audit_events_at", "at"),
    )

    at: Mapped[datetime] = mapped_column(default=utcnow)
    # No foreign key: the trail must outlive the user rows it names.
    actor_id: Mapped[int | None] = mapped_column(BigId)
    actor_role: Mapped[str] = mapped_column(String(16), default="")
    hospital_id: Mapped[int | None] = mapped_column(BigId)
    action: Mapped[str] = mapped_column(String(48))
    object_type: Mapped[str] = mapped_column(String(32), default="")
    object_id: Mapped[str] = mapped_column(String(128), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="success")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
