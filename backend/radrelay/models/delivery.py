"""Deliveries: one signed, released report version on its way to one of the hospital's
endpoints. A resend is another attempt on the same row, never a new row, so a version reaches
each endpoint once; an amended report is a new version and so gets rows of its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin


class Delivery(IdMixin, Base):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("report_version_id", "endpoint_id"),)

    report_version_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("report_versions.id", ondelete="RESTRICT")
    )
    # RESTRICT: a delivery's history outlives nothing it names; endpoints are deactivated,
    # not deleted, once they have deliveries.
    endpoint_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("delivery_endpoints.id", ondelete="RESTRICT"), index=True
    )
    hospital_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("hospitals.id", ondelete="RESTRICT"), index=True
    )
    case_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("cases.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    # pending | sending | sent | failed (radrelay.delivery.schemas.DeliveryStatus)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    # ``attempts`` when a coordinator last retried it by hand: the backoff counts from there,
    # so a retried delivery gets its full run of attempts again while ``attempts`` keeps the
    # history.
    retried_at_attempt: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_code: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
