"""Experts: the radiologists routing chooses from, with what they read, where they are
credentialed, and when they can read.

A radiologist user becomes an expert when a profile row exists; without one, routing never
chooses them (a coordinator may still assign them by hand).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin


class Expert(Base):
    __tablename__ = "experts"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # radrelay.routing.schemas.Employment: full_time (shifts) | part_time (declared windows)
    employment: Mapped[str] = mapped_column(String(16))
    # radrelay.routing.schemas.ExpertState: online | away | offline
    state: Mapped[str] = mapped_column(String(16), default="offline")
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # radrelay.routing.schemas.Qualification: final | preliminary
    qualification: Mapped[str] = mapped_column(String(16))
    # Personal caps (part-time readers set theirs); None: the policy's caps apply.
    cap_open_cases: Mapped[int | None]
    cap_daily_units: Mapped[float | None] = mapped_column(Float)
    # IANA zone the weekly shifts are written in.
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExpertSubspecialty(Base):
    __tablename__ = "expert_subspecialties"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experts.user_id", ondelete="CASCADE"), primary_key=True
    )
    # radrelay.cases.schemas.Subspecialty
    subspecialty: Mapped[str] = mapped_column(String(32), primary_key=True)
    # 1 (reads it) .. 3 (the center's reference reader for it)
    level: Mapped[int] = mapped_column(SmallInteger)


class ExpertCredential(Base):
    """Multi-site practice registration: the expert may read for this hospital until
    ``expires_at`` (None: no expiry)."""

    __tablename__ = "expert_credentials"
    __table_args__ = (Index("ix_expert_credentials_hospital_id", "hospital_id"),)

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("experts.user_id", ondelete="CASCADE"), primary_key=True
    )
    hospital_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("hospitals.id", ondelete="CASCADE"), primary_key=True
    )
    expires_at: Mapped[datetime | None]


class ExpertShift(IdMixin, Base):
    """A weekly recurring window in the expert's time zone (full-time shifts; a part-time
    reader's regular evenings). ``end_minute`` may pass midnight (up to 48 h from the start of
    the weekday) for night shifts."""

    __tablename__ = "expert_shifts"
    __table_args__ = (Index("ix_expert_shifts_user_id", "user_id"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("experts.user_id", ondelete="CASCADE"))
    # 0 = Monday (datetime.weekday())
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_minute: Mapped[int]
    end_minute: Mapped[int]


class ExpertWindow(IdMixin, Base):
    """A one-off availability window a (part-time) expert declared: [starts_at, ends_at)."""

    __tablename__ = "expert_windows"
    __table_args__ = (Index("ix_expert_windows_user_id_ends_at", "user_id", "ends_at"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("experts.user_id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
