"""People who sign in, and their refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.models.base import Base, BigId, IdMixin, TimestampMixin


class User(IdMixin, TimestampMixin, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    # tech | radiologist | coordinator | admin (radrelay.auth.schemas.Role)
    role: Mapped[str] = mapped_column(String(16))
    # Set for technicians only: the one hospital they work for.
    hospital_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("hospitals.id", ondelete="RESTRICT"), index=True
    )
    active: Mapped[bool] = mapped_column(default=True)


class RefreshToken(IdMixin, TimestampMixin, Base):
    """One use each: a refresh returns a new token of the same family and revokes this one.
    A revoked token presented again means it leaked, so its whole family is revoked."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # True when revoked by being exchanged for a newer token (not by sign-out or reuse), the
    # only case a short reuse grace applies to.
    rotated: Mapped[bool] = mapped_column(default=False)
