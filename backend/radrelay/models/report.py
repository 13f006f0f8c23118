"""Reports: one per case, its autosaved drafts, its signed versions (immutable, each a stored
PDF), their signatures, and the critical findings flagged on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from radrelay.kit.db import utcnow
from radrelay.models.base import Base, BigId, IdMixin


class Report(IdMixin, Base):
    """The working state of a case's report: the draft being written (versioned by
    ``draft_revision``: an autosave names the revision it edited, so a stale tab cannot
    overwrite newer text) and where its lifecycle stands."""

    __tablename__ = "reports"

    case_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("cases.id", ondelete="RESTRICT"), unique=True
    )
    template_id: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[int]
    # radrelay.reporting.document.Language
    language: Mapped[str] = mapped_column(String(16))
    # draft | preliminary | final | amended (radrelay.reporting.schemas.ReportState)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    author_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    # {"entries": {field id: value}, "texts": {section key: narrative}}
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    draft_revision: Mapped[int] = mapped_column(default=0)
    # [{study_instance_uid, series_instance_uid, sop_instance_uid, frame, caption}]
    key_images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    critical: Mapped[bool] = mapped_column(default=False)
    # A preliminary signed by a reader qualified for preliminary reports only: a senior's
    # co-signature makes it final.
    awaiting_cosign: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReportDraft(IdMixin, Base):
    """Every autosave, kept: the draft's history, which the report's audit answers with."""

    __tablename__ = "report_drafts"
    __table_args__ = (UniqueConstraint("report_id", "revision"),)

    report_id: Mapped[int] = mapped_column(BigId, ForeignKey("reports.id", ondelete="CASCADE"))
    revision: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_by: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReportVersion(IdMixin, Base):
    """A signed version: never changed once written, except for being marked superseded by the
    next one. ``document`` is the ``ReportDocument`` it shows (JSON, images by reference);
    the signed PDF lies in storage under ``storage_key``, byte for byte as signed."""

    __tablename__ = "report_versions"
    __table_args__ = (UniqueConstraint("report_id", "version"),)

    report_id: Mapped[int] = mapped_column(BigId, ForeignKey("reports.id", ondelete="RESTRICT"))
    version: Mapped[int]
    # radrelay.reporting.document.ReportStatus: preliminary | final | amended
    status: Mapped[str] = mapped_column(String(16))
    # The sending hospital may see it: final and amended versions, and a preliminary released
    # early (STAT); not a junior's preliminary waiting for its co-signature.
    released: Mapped[bool] = mapped_column(default=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    storage_key: Mapped[str] = mapped_column(String(300))
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    superseded_at: Mapped[datetime | None]
    superseded_by: Mapped[int | None]  # the version number that replaced it
    amendment_reason: Mapped[str] = mapped_column(Text, default="")


class ReportSignature(IdMixin, Base):
    """One signature on a version (21 CFR 11.50: printed name, time, meaning). A co-signed
    version carries its author's signature too, since its PDF does."""

    __tablename__ = "report_signatures"
    __table_args__ = (Index("ix_report_signatures_user_id", "user_id"),)

    version_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("report_versions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    # radrelay.reporting.document.Meaning: author | cosigner | addendum
    meaning: Mapped[str] = mapped_column(String(16))
    printed_name: Mapped[str] = mapped_column(String(200))
    qualification: Mapped[str] = mapped_column(String(200))
    signed_at: Mapped[datetime]
    # The PDF signature field (signing.signature_field)
    field: Mapped[str] = mapped_column(String(64))


class CriticalFinding(IdMixin, Base):
    """A critical result flagged by the reader, and the record of its communication to the
    hospital (who was told, when, how), due within a countdown."""

    __tablename__ = "critical_findings"
    __table_args__ = (
        Index("ix_critical_findings_status_due_at", "status", "due_at"),
        Index("ix_critical_findings_report_id", "report_id"),
    )

    report_id: Mapped[int] = mapped_column(BigId, ForeignKey("reports.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text)
    flagged_by: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    flagged_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    # open | done
    status: Mapped[str] = mapped_column(String(8), default="open")
    communicated_at: Mapped[datetime | None]
    communicated_to: Mapped[str] = mapped_column(String(200), default="")
    # phone | in_person | message | other
    method: Mapped[str] = mapped_column(String(16), default="")
    recorded_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    # When the overdue alert went out (once).
    alerted_at: Mapped[datetime | None]
