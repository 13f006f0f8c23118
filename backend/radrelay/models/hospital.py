"""Hospitals are the tenants: every study, case and technician belongs to exactly one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from radrelay.models.base import Base, BigId, IdMixin, TimestampMixin


class Hospital(IdMixin, TimestampMixin, Base):
    __tablename__ = "hospitals"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)

    ae_titles: Mapped[list[HospitalAETitle]] = relationship(
        back_populates="hospital", lazy="raise", cascade="all, delete-orphan"
    )


class HospitalAETitle(IdMixin, TimestampMixin, Base):
    """A calling AE title a hospital's modalities or PACS use to push to us over DICOM.

    The title alone identifies the hospital (unique across hospitals); ``source_addresses``, when
    not empty, also pins the IP addresses or CIDR networks it may call from."""

    __tablename__ = "hospital_ae_titles"

    hospital_id: Mapped[int] = mapped_column(BigId, ForeignKey("hospitals.id", ondelete="CASCADE"))
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    source_addresses: Mapped[list[str]] = mapped_column(JSON, default=list)

    hospital: Mapped[Hospital] = relationship(back_populates="ae_titles", lazy="raise")


class DeliveryEndpoint(IdMixin, TimestampMixin, Base):
    """Where signed reports go back to: the hospital PACS (DICOM), a webhook (FHIR) or HL7."""

    __tablename__ = "delivery_endpoints"

    hospital_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("hospitals.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(default=True)
