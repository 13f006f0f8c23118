"""The report lifecycle, wired to cases.

- A reader holding a case (``reading``) **creates** its report from a template and
  **autosaves** the draft; every autosave is kept (``report_drafts``) and names the revision it
  edited, so a stale editor gets 409 instead of overwriting newer text.
- **Signing** (username and password typed again, checked by ``AuthService.confirm_signer``
  before the request's session opens) validates the entries, builds the ``ReportDocument``,
  renders and signs the PDF with the reader's key, stores the signed bytes unchanged with their
  SHA-256, and records an immutable version with its signature. A reader qualified for final
  reports signs ``final`` (or ``preliminary``, releasing a STAT case early); a reader qualified
  for preliminary reports only signs a ``preliminary`` that waits for a senior's
  **co-signature**, which is added to the same PDF as an incremental signature and makes the
  next version ``final``.
- An **amendment** signs the corrected draft as a new ``amended`` version; an **addendum**
  signs a new version with the text appended. Earlier versions stay, marked superseded, and
  remain downloadable.
- The case follows: ``preliminary``/``final``/``amended`` with ``preliminary_at``/``final_at``
  (the turnaround milestones), a live ``report.signed`` event, and the audit trail.
- **Critical findings** flagged by the reader carry a countdown for the record of their
  communication to the hospital; ``critical_watch`` alerts coordinators once when overdue.

Rendering and signing are CPU work and run in a worker thread; the unit of work commits the
rows after the bytes are safe in storage (an orphan file, if the commit fails, names no row).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.archive.offload import offload_soon
from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal, Role
from radrelay.cases.auth import Scope, scope_of
from radrelay.cases.repository import CaseRow
from radrelay.cases.repository import repository as cases_repository
from radrelay.cases.schemas import CaseStatus
from radrelay.cases.service import cases
from radrelay.delivery.service import deliveries as delivery_service
from radrelay.dicomweb import pixels
from radrelay.dicomweb.repository import repository as dicomweb_repository
from radrelay.errors import BadRequest, Conflict, Forbidden, NotFound
from radrelay.experts.schemas import SigningProfile
from radrelay.experts.service import experts
from radrelay.hospitals.service import hospitals
from radrelay.kit import events
from radrelay.kit.runtime import Runtime
from radrelay.models import CriticalFinding, Report, ReportDraft, ReportSignature, ReportVersion
from radrelay.reporting import document as doc_model
from radrelay.reporting import pdf, signing
from radrelay.reporting.auth import Access, cosign_hospitals, may_cosign, report_access
from radrelay.reporting.document import (
    Addendum,
    Exam,
    KeyImage,
    Language,
    Meaning,
    Party,
    Patient,
    ReportDocument,
    ReportStatus,
    Signature,
)
from radrelay.reporting.pki import CertificateAuthority
from radrelay.reporting.repository import repository
from radrelay.reporting.schemas import (
    AddendumBody,
    AmendBody,
    CommunicationBody,
    CosignItem,
    CriticalCreate,
    CriticalRead,
    CriticalStatus,
    DraftRead,
    DraftUpdate,
    KeyImageRef,
    ReportCreate,
    ReportRead,
    ReportState,
    SignatureCheckRead,
    SignatureRead,
    SignBody,
    TemplateChange,
    VerifyRead,
    VersionRead,
)
from radrelay.reporting.templates import (
    Template,
    TemplateSet,
    default_values,
    load_templates,
    to_sections,
    validate_entries,
)
from radrelay.routing.schemas import Qualification

log = logging.getLogger(__name__)

# What the signature table prints as the signer's qualification. Expert profiles say only what
# a reader may sign; in Chinese departments final signing goes with the attending grade.
QUALIFICATION_LABELS = {
    Qualification.final: "主治医师 Attending radiologist",
    Qualification.preliminary: "住院医师 Resident radiologist",
}
KEY_IMAGE_VIEWPORT = (768, 768)
_UNKNOWN_FIELD = "no such field in the template"


class ReportingContext:
    """What reporting keeps for the life of a process: the templates (checked at start) and
    the platform CA, opened on first use."""

    def __init__(self, runtime: Runtime, templates: TemplateSet):
        self.runtime = runtime
        self.settings = runtime.settings
        self.templates = templates
        self._ca: CertificateAuthority | None = None
        self.font = (
            pdf.EmbeddedFont(self.settings.report_font) if self.settings.report_font else None
        )

    @classmethod
    def of(cls, runtime: Runtime) -> ReportingContext:
        ctx: ReportingContext | None = runtime.local.get("reporting.context")
        if ctx is None:
            templates = load_templates(runtime.settings.templates_dir)
            ctx = runtime.local["reporting.context"] = cls(runtime, templates)
        return ctx

    async def ca(self) -> CertificateAuthority:
        if self._ca is None:
            # Key derivation and, on a fresh data dir, key generation: off the event loop.
            self._ca = await asyncio.to_thread(
                CertificateAuthority.open_or_create,
                self.settings.ca_dir,
                self.settings.resolved_ca_passphrase(),
            )
        return self._ca

    def template(self, template_id: str) -> Template:
        try:
            return self.templates.get(template_id)
        except KeyError:
            raise BadRequest(f"No report template {template_id!r}.") from None


def _content(report: Report) -> tuple[dict[str, Any], dict[str, str]]:
    draft = report.draft or {}
    return dict(draft.get("entries") or {}), dict(draft.get("texts") or {})


def _shape_problems(
    template: Template, entries: dict[str, Any], texts: dict[str, str]
) -> list[dict[str, str]]:
    """What makes a draft unusable whatever its state: fields and sections the template does
    not have. Empty, incomplete or out-of-range values are a draft's right until signing."""
    problems = [
        {"field": p.field, "problem": p.message}
        for p in validate_entries(template, entries)
        if p.message == _UNKNOWN_FIELD
    ]
    keys = {s.key for s in template.sections}
    problems += [
        {"field": k, "problem": "no such section in the template"} for k in texts if k not in keys
    ]
    return problems


def _signature_read(s: ReportSignature) -> SignatureRead:
    return SignatureRead(
        user_id=s.user_id,
        meaning=Meaning(s.meaning),
        printed_name=s.printed_name,
        qualification=s.qualification,
        signed_at=s.signed_at,
        field=s.field,
    )


def _version_read(
    v: ReportVersion, signatures: Sequence[ReportSignature], with_document: bool
) -> VersionRead:
    return VersionRead(
        version=v.version,
        status=ReportStatus(v.status),
        released=v.released,
        created_at=v.created_at,
        superseded_at=v.superseded_at,
        superseded_by=v.superseded_by,
        amendment_reason=v.amendment_reason,
        pdf_sha256=v.pdf_sha256,
        size=v.size,
        signatures=[_signature_read(s) for s in signatures],
        document=v.document if with_document else None,
    )


def _store(runtime: Runtime, key: str, data: bytes) -> None:
    tmp = runtime.settings.tmp_dir / f"report-{secrets.token_hex(8)}.pdf"
    tmp.write_bytes(data)
    try:
        runtime.storage.put_file(key, tmp)
    finally:
        tmp.unlink(missing_ok=True)


def _read(runtime: Runtime, key: str) -> bytes:
    with runtime.storage.open(key) as f:
        return f.read()


@dataclasses.dataclass
class _Loaded:
    report: Report
    row: CaseRow
    access: Access

    @property
    def case(self) -> Any:
        return self.row[0]


async def _keep_draft(
    session: AsyncSession,
    report_id: int,
    revision: int,
    content: dict[str, Any],
    key_images: Any,
    template_id: str,
    principal: Principal,
    now: datetime,
) -> None:
    """Keep one autosaved revision of the draft, with who saved it and when."""
    await repository.add(
        session,
        ReportDraft(
            report_id=report_id,
            revision=revision,
            content={**content, "key_images": key_images, "template_id": template_id},
            saved_by=principal.user_id,
            saved_at=now,
        ),
    )


class ReportService:
    # --- access -------------------------------------------------------------------------------

    async def _load(
        self, session: AsyncSession, principal: Principal, report: Report | None, now: datetime
    ) -> _Loaded:
        if report is None:
            raise NotFound("No such report.")
        scoped = await cases_repository.row(session, report.case_id, scope_of(principal))
        row = scoped or await cases_repository.row(session, report.case_id, Scope(everything=True))
        assert row is not None
        signed = principal.role == Role.radiologist and await repository.signed_by(
            session, report.id, principal.user_id
        )
        senior: tuple[int, ...] = ()
        if principal.role == Role.radiologist and report.awaiting_cosign and not scoped:
            senior = cosign_hospitals(
                await experts.signing_profile(session, principal.user_id, now)
            )
        access = report_access(
            principal,
            case_visible=scoped is not None,
            hospital_id=row[0].hospital_id,
            signed_it=signed,
            awaiting_cosign=report.awaiting_cosign,
            senior_for=senior,
        )
        # Out of scope looks exactly like absent.
        if access is None:
            raise NotFound(f"No report {report.id}.")
        return _Loaded(report, row, access)

    async def _by_id(
        self, session: AsyncSession, principal: Principal, report_id: int, now: datetime
    ) -> _Loaded:
        return await self._load(session, principal, await repository.get(session, report_id), now)

    def _audit(
        self, session: AsyncSession, principal: Principal, action: str, found: _Loaded, **kw: Any
    ) -> None:
        audit.record(
            session,
            principal,
            action,
            object_type="report",
            object_id=found.report.id,
            hospital_id=found.case.hospital_id,
            detail={"case_id": found.case.id, **kw},
        )

    async def _signer(
        self, session: AsyncSession, principal: Principal, now: datetime
    ) -> SigningProfile:
        if principal.role != Role.radiologist:
            raise Forbidden("Only radiologists sign reports.")
        profile = await experts.signing_profile(session, principal.user_id, now)
        if profile is None:
            raise Forbidden("Signing needs an expert profile: ask an administrator for one.")
        return profile

    def _require_holder(self, found: _Loaded, principal: Principal) -> None:
        case = found.case
        if case.reader_id != principal.user_id or case.status != CaseStatus.reading.value:
            raise Conflict(
                f"Case {case.id} is not being read by you ({case.status}): claim it first."
            )

    # --- reading ------------------------------------------------------------------------------

    async def _read(
        self, session: AsyncSession, ctx: ReportingContext, found: _Loaded, *, documents: bool
    ) -> ReportRead:
        report = found.report
        versions = await repository.versions(session, report.id)
        hospital = found.access == Access.hospital
        if hospital:
            versions = [v for v in versions if v.released]
        signatures = await repository.signatures(session, [v.id for v in versions])
        draft = None
        if not hospital:
            entries, texts = _content(report)
            template = ctx.template(report.template_id)
            draft = DraftRead(
                revision=report.draft_revision,
                entries=entries,
                texts=texts,
                key_images=[KeyImageRef.model_validate(k) for k in report.key_images or []],
                missing=[str(p) for p in validate_entries(template, entries, texts)],
            )
        template = ctx.templates.get(report.template_id)
        # The hospital sees where the signed report stands, never the draft behind it.
        status = ReportState(report.status)
        if hospital and versions:
            status = ReportState(versions[-1].status)
        return ReportRead(
            id=report.id,
            case_id=report.case_id,
            hospital_id=found.case.hospital_id,
            status=status,
            template_id=report.template_id,
            template_version=report.template_version,
            template_title=template.title.shown(Language(report.language)),
            language=Language(report.language),
            author_id=report.author_id,
            awaiting_cosign=report.awaiting_cosign,
            critical=report.critical,
            created_at=report.created_at,
            updated_at=report.updated_at,
            draft=draft,
            versions=[_version_read(v, signatures[v.id], documents) for v in versions],
        )

    async def for_case(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        case_id: int,
        now: datetime,
    ) -> ReportRead:
        report = await repository.for_case(session, case_id)
        if report is None:
            raise NotFound(f"Case {case_id} has no report.")
        return await self.read(session, ctx, principal, report.id, now)

    async def read(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        now: datetime,
        *,
        documents: bool = False,
    ) -> ReportRead:
        found = await self._by_id(session, principal, report_id, now)
        out = await self._read(session, ctx, found, documents=documents)
        if found.access == Access.hospital and not out.versions:
            raise NotFound(f"No report {report_id}.")
        self._audit(session, principal, "report.read", found)
        return out

    # --- writing ------------------------------------------------------------------------------

    async def create(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        case_id: int,
        body: ReportCreate,
        now: datetime,
    ) -> ReportRead:
        if principal.role != Role.radiologist:
            raise Forbidden("Reports are written by the radiologist reading the case.")
        row = await cases_repository.row(session, case_id, scope_of(principal))
        if row is None:
            raise NotFound(f"No case {case_id}.")
        case, study = row[0], row[1]
        if await repository.for_case(session, case_id) is not None:
            raise Conflict(f"Case {case_id} already has a report: GET it.")
        if case.reader_id != principal.user_id or case.status != CaseStatus.reading.value:
            raise Conflict(f"Case {case_id} is not being read by you ({case.status}): claim it.")
        if body.template_id:
            template = ctx.template(body.template_id)
            reason = "chosen by the reader"
        else:
            modality = next(
                (m for m in study.modalities_in_study.split("\\") if m not in ("SR", "PR", "KO")),
                "",
            )
            choice = ctx.templates.choose(
                modality, "", study.study_description or case.requested_exam, case.subspecialty
            )
            template, reason = choice.template, choice.reason
        entries, texts = default_values(template, body.language)
        content = {"entries": entries, "texts": texts}
        report = Report(
            case_id=case_id,
            template_id=template.id,
            template_version=template.version,
            language=body.language.value,
            status=ReportState.draft.value,
            author_id=principal.user_id,
            draft=content,
            draft_revision=0,
            key_images=[],
            critical=False,
            awaiting_cosign=False,
            created_at=now,
            updated_at=now,
        )
        await repository.add(session, report)
        await _keep_draft(session, report.id, 0, content, [], template.id, principal, now)
        found = _Loaded(report, row, Access.reader)
        self._audit(session, principal, "report.create", found, template=template.id, why=reason)
        return await self._read(session, ctx, found, documents=False)

    async def _editable(
        self, session: AsyncSession, principal: Principal, report_id: int, now: datetime
    ) -> _Loaded:
        """The draft may change: a draft by the reader holding the case; after signing, by a
        radiologist who signed it (toward an amendment, or the final of an early release);
        never while a preliminary waits for its co-signature."""
        found = await self._by_id(session, principal, report_id, now)
        report = found.report
        if found.access != Access.reader:
            raise Forbidden("Only the report's readers edit it.")
        if report.awaiting_cosign:
            raise Conflict("The preliminary report waits for its co-signature; it cannot change.")
        if report.status == ReportState.draft.value:
            self._require_holder(found, principal)
        elif not await repository.signed_by(session, report.id, principal.user_id):
            raise Forbidden("Only a radiologist who signed this report edits it now.")
        return found

    async def save_draft(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        body: DraftUpdate,
        now: datetime,
    ) -> DraftRead:
        found = await self._editable(session, principal, report_id, now)
        report = found.report
        template = ctx.template(report.template_id)
        problems = _shape_problems(template, body.entries, body.texts)
        if problems:
            raise BadRequest(
                "The draft names fields or sections the template does not have.", detail=problems
            )
        key_images = (
            [k.model_dump() for k in body.key_images]
            if body.key_images is not None
            else list(report.key_images or [])
        )
        language = body.language.value if body.language else report.language
        content = {"entries": body.entries, "texts": body.texts}
        revision = await repository.save_draft(
            session,
            report.id,
            body.revision,
            {"draft": content, "key_images": key_images, "language": language, "updated_at": now},
        )
        if revision is None:
            raise Conflict(
                "The draft was saved elsewhere since: reload it before editing.",
                detail={"revision": report.draft_revision},
            )
        # Every autosave is kept with who saved it and when: that table is the draft's audit
        # (one audit row per keystroke pause would bury the trail).
        await _keep_draft(
            session, report.id, revision, content, key_images, template.id, principal, now
        )
        return DraftRead(
            revision=revision,
            entries=body.entries,
            texts=body.texts,
            key_images=[KeyImageRef.model_validate(k) for k in key_images],
            missing=[str(p) for p in validate_entries(template, body.entries, body.texts)],
        )

    async def change_template(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        body: TemplateChange,
        now: datetime,
    ) -> ReportRead:
        """Start again from another template; fields and section texts the new template also
        has are kept."""
        found = await self._editable(session, principal, report_id, now)
        report = found.report
        if report.status != ReportState.draft.value:
            raise Conflict("The template of a signed report cannot change.")
        template = ctx.template(body.template_id)
        old_entries, old_texts = _content(report)
        entries, texts = default_values(template, Language(report.language))
        entries.update({k: v for k, v in old_entries.items() if template.field(k) is not None})
        keys = {s.key for s in template.sections}
        texts.update({k: v for k, v in old_texts.items() if k in keys})
        content = {"entries": entries, "texts": texts}
        revision = await repository.save_draft(
            session,
            report.id,
            body.revision,
            {
                "draft": content,
                "template_id": template.id,
                "template_version": template.version,
                "updated_at": now,
            },
        )
        if revision is None:
            raise Conflict(
                "The draft was saved elsewhere since: reload it before changing the template.",
                detail={"revision": report.draft_revision},
            )
        await _keep_draft(
            session, report.id, revision, content, report.key_images, template.id, principal, now
        )
        self._audit(session, principal, "report.template", found, template=template.id)
        found.report = await repository.get(session, report.id)  # type: ignore[assignment]
        return await self._read(session, ctx, found, documents=False)

    # --- the document and its PDF ---------------------------------------------------------

    async def _key_images(
        self, session: AsyncSession, ctx: ReportingContext, hospital_id: int, refs: list[Any]
    ) -> tuple[KeyImage, ...]:
        """The marked frames rendered as JPEG. Only the case's hospital's images: a key image
        is of the study or of its priors, never of another hospital's patient."""
        if not refs:
            return ()
        scope = Scope(hospital_ids=(hospital_id,))
        wanted: list[tuple[KeyImageRef, Path, str]] = []
        for raw in refs:
            ref = KeyImageRef.model_validate(raw)
            found = await dicomweb_repository.locate(
                session,
                scope,
                ref.study_instance_uid,
                ref.series_instance_uid,
                ref.sop_instance_uid,
            )
            if not found:
                raise BadRequest(f"Key image {ref.sop_instance_uid} is not in the case's images.")
            # A local copy, downloaded first when only object storage has it.
            path = await asyncio.to_thread(ctx.runtime.storage.fetch, found[0].storage_key)
            wanted.append((ref, path, found[0].sop_class_uid))
        params = pixels.RenderParams(quality=88, viewport=KEY_IMAGE_VIEWPORT)

        def render() -> tuple[KeyImage, ...]:
            out = []
            for ref, path, sop_class in wanted:
                try:
                    jpeg = pixels.render(path, ref.frame, params)
                except pixels.PixelError as exc:
                    raise BadRequest(f"Key image {ref.sop_instance_uid}: {exc.message}") from None
                out.append(
                    KeyImage(
                        jpeg=jpeg,
                        caption=ref.caption,
                        study_instance_uid=ref.study_instance_uid,
                        series_instance_uid=ref.series_instance_uid,
                        sop_instance_uid=ref.sop_instance_uid,
                        sop_class_uid=sop_class,
                        frame=ref.frame,
                    )
                )
            return tuple(out)

        return await asyncio.to_thread(render)

    async def _document(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        found: _Loaded,
        *,
        version: int,
        status: ReportStatus,
        signatures: tuple[Signature, ...],
        now: datetime,
        supersedes: int | None = None,
        amendment_reason: str = "",
        draft: bool = False,
    ) -> ReportDocument:
        """The document of a version signed from the current draft. ``draft``: for its preview,
        where the draft may be incomplete: values signing would refuse are left out and each
        problem is listed in the document's notes."""
        report = found.report
        case, study, patient = found.row[0], found.row[1], found.row[2]
        template = ctx.template(report.template_id)
        language = Language(report.language)
        entries, texts = _content(report)
        problems = validate_entries(template, entries, texts)
        notes: tuple[str, ...] = ()
        if problems and draft:
            wrong = {p.field for p in problems if p.message != "required"}
            entries = {k: v for k, v in entries.items() if k not in wrong}
            notes = tuple(f"未完成 Not complete: {p}" for p in problems)
        elif problems:
            raise BadRequest(
                "The report is not complete: "
                + "; ".join(str(p) for p in problems[:10])
                + ("" if len(problems) <= 10 else f" (and {len(problems) - 10} more)"),
                detail=[{"field": p.field, "problem": p.message} for p in problems],
            )
        hospital = await hospitals.get(session, case.hospital_id)
        modality = next((m for m in study.modalities_in_study.split("\\") if m), "")
        return ReportDocument(
            report_id=report.id,
            version=version,
            status=status,
            language=language,
            center=Party(ctx.settings.center_name),
            hospital=Party(hospital.name, hospital.code),
            patient=Patient(
                name=patient.patient_name,
                patient_id=patient.patient_id,
                issuer_of_patient_id=patient.issuer_of_patient_id,
                birth_date=patient.birth_date,
                sex=patient.sex,
            ),
            exam=Exam(
                study_instance_uid=study.study_instance_uid,
                accession_number=study.accession_number,
                study_date=study.study_date,
                study_time=study.study_time,
                modality=modality,
                description=study.study_description or case.requested_exam,
                referring_physician=study.referring_physician_name,
                clinical_question=case.clinical_question,
                priority=case.priority,
                received_at=case.received_at,
            ),
            sections=to_sections(template, entries, texts, language, partial=draft),
            template_id=template.id,
            template_version=template.version,
            signatures=signatures,
            key_images=await self._key_images(
                session, ctx, case.hospital_id, list(report.key_images or [])
            ),
            critical=report.critical,
            supersedes_version=supersedes,
            amendment_reason=amendment_reason,
            created_at=now,
            notes=notes,
        )

    async def _sign_pdf(
        self,
        ctx: ReportingContext,
        profile: SigningProfile,
        meaning: Meaning,
        version: int,
        *,
        doc: ReportDocument | None = None,
        base: bytes | None = None,
        stamp: str | None = None,
    ) -> bytes:
        """``doc`` rendered and signed, or ``base`` (a signed PDF) signed once more; ``stamp``
        makes the signature visible, in the band a preliminary keeps for it on page 1."""
        ca = await ctx.ca()
        settings = ctx.settings
        title = QUALIFICATION_LABELS[profile.qualification]

        def work() -> bytes:
            unsigned = base
            if unsigned is None:
                assert doc is not None
                unsigned = pdf.render(doc, timezone=settings.timezone, font=ctx.font)
            return signing.sign(
                unsigned,
                ca.signer(profile.user_id, profile.name, title=title),
                reason=meaning.value,
                location=settings.center_name,
                name=profile.name,
                field=signing.signature_field(version, meaning.value),
                stamp=stamp,
                box=pdf.COSIGN_STAMP_BOX if stamp is not None else None,
                stamp_font=ctx.font.path if ctx.font else None,
            )

        return await asyncio.to_thread(work)

    async def _sign_and_record(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        found: _Loaded,
        profile: SigningProfile,
        signature: Signature,
        doc: ReportDocument,
        *,
        released: bool,
        now: datetime,
    ) -> ReportVersion:
        """Render ``doc``, sign it as ``signature`` says (its meaning names the PDF field) and
        record it as the next version: a signing by one person, as sign, amend and addenda do."""
        data = await self._sign_pdf(ctx, profile, signature.meaning, doc.version, doc=doc)
        return await self._record_version(
            session,
            ctx,
            principal,
            found,
            doc=doc,
            data=data,
            released=released,
            signatures=[(principal.user_id, signature, _field(doc.version, signature))],
            now=now,
        )

    async def _record_version(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        found: _Loaded,
        *,
        doc: ReportDocument,
        data: bytes,
        released: bool,
        signatures: Sequence[tuple[int, Signature, str]],
        now: datetime,
    ) -> ReportVersion:
        """Store the signed bytes unchanged, then the version and signature rows; earlier
        versions are marked superseded."""
        report, case = found.report, found.case
        digest = signing.sha256_hex(data)
        key = f"h{case.hospital_id}/reports/{report.id}/v{doc.version}-{digest[:16]}.pdf"
        await asyncio.to_thread(_store, ctx.runtime, key, data)
        offload_soon(ctx.runtime, session, case.hospital_id, digest)
        await repository.supersede(session, report.id, doc.version, now)
        version = ReportVersion(
            report_id=report.id,
            version=doc.version,
            status=doc.status.value,
            released=released,
            document=doc_model.to_json(doc),
            storage_key=key,
            pdf_sha256=digest,
            size=len(data),
            created_at=now,
            amendment_reason=doc.amendment_reason,
        )
        await repository.add(session, version)
        for user_id, sig, field in signatures:
            session.add(
                ReportSignature(
                    version_id=version.id,
                    user_id=user_id,
                    meaning=sig.meaning.value,
                    printed_name=sig.name,
                    qualification=sig.qualification,
                    signed_at=sig.signed_at,
                    field=field,
                )
            )
        await session.flush()
        if released:
            # Every version the hospital may see goes back to it: an amendment is delivered
            # again, as a new version.
            await delivery_service.schedule(
                session, version.id, case.hospital_id, now=now, case_id=case.id
            )
        return version

    def _announce(
        self,
        session: AsyncSession,
        found: _Loaded,
        version: ReportVersion,
        readers: Sequence[int],
    ) -> None:
        event: dict[str, Any] = {
            "type": "report.signed",
            "case_id": found.case.id,
            "hospital_id": found.case.hospital_id,
            "report_id": found.report.id,
            "version": version.version,
            "status": version.status,
            "reader_ids": sorted(set(readers)),
        }
        if not version.released:
            event["staff_only"] = True
        events.publish(session, event)

    async def _next_version(self, session: AsyncSession, report_id: int) -> tuple[int, Any]:
        versions = await repository.versions(session, report_id)
        return (versions[-1].version + 1 if versions else 1), (versions[-1] if versions else None)

    # --- signing ------------------------------------------------------------------------------

    async def sign(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        body: SignBody,
        now: datetime,
    ) -> ReportRead:
        """The author signs the draft: final, or preliminary (a junior's, waiting for a
        co-signature; or a senior's early release of a STAT case)."""
        profile = await self._signer(session, principal, now)
        found = await self._by_id(session, principal, report_id, now)
        report, case = found.report, found.case
        if found.access != Access.reader:
            raise Forbidden("Only the reader of the case signs its report.")
        senior = profile.qualification == Qualification.final
        if report.status == ReportState.draft.value:
            self._require_holder(found, principal)
            from_statuses = [CaseStatus.reading]
        elif (
            report.status == ReportState.preliminary.value
            and not report.awaiting_cosign
            and report.author_id == principal.user_id
            and senior
        ):
            from_statuses = [CaseStatus.preliminary]  # the final after an early release
        else:
            raise Conflict(f"The report is {report.status}: amend it, or add an addendum.")
        if body.preliminary and not senior:
            body = body.model_copy(update={"preliminary": False})
        if body.preliminary:
            if case.priority != "stat":
                raise BadRequest("Only a STAT case is released early as a preliminary report.")
            if report.status != ReportState.draft.value:
                raise Conflict("The early release is signed already: sign the final report.")
        status = ReportStatus.final if senior and not body.preliminary else ReportStatus.preliminary
        number, previous = await self._next_version(session, report.id)
        signature = Signature(
            profile.name, QUALIFICATION_LABELS[profile.qualification], Meaning.author, now
        )
        doc = await self._document(
            session, ctx, found, version=number, status=status, signatures=(signature,), now=now
        )
        awaiting = not senior
        if not await repository.claim_status(
            session,
            report.id,
            {"status": report.status, "draft_revision": report.draft_revision},
            {
                "status": status.value,
                "awaiting_cosign": awaiting,
                "author_id": principal.user_id,
                "updated_at": now,
            },
        ):
            raise Conflict("The report changed while you signed it: look again.")
        version = await self._sign_and_record(
            session, ctx, principal, found, profile, signature, doc, released=not awaiting, now=now
        )
        await cases.mark_reported(
            session,
            case.id,
            status=CaseStatus(status.value),
            from_statuses=from_statuses,
            principal=principal,
            now=now,
            report_id=report.id,
            version=number,
        )
        readers = [principal.user_id]
        if awaiting:
            readers += await experts.senior_ids(session, case.hospital_id, now)
        self._announce(session, found, version, readers)
        self._audit(
            session,
            principal,
            "report.sign",
            found,
            version=number,
            status=status.value,
            meaning=Meaning.author.value,
            sha256=version.pdf_sha256,
            supersedes=previous.version if previous else None,
        )
        return await self._reload(session, ctx, principal, report.id, now)

    async def _reload(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        now: datetime,
    ) -> ReportRead:
        await session.flush()
        session.expire_all()
        found = await self._by_id(session, principal, report_id, now)
        return await self._read(session, ctx, found, documents=False)

    async def cosign(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        now: datetime,
    ) -> ReportRead:
        """A senior co-signs a junior's preliminary: their signature is added to the signed
        PDF (an incremental update, so the author's signature still verifies), which becomes
        the final version."""
        profile = await self._signer(session, principal, now)
        found = await self._by_id(session, principal, report_id, now)
        report, case = found.report, found.case
        if not report.awaiting_cosign:
            raise Conflict("The report is not waiting for a co-signature.")
        if not may_cosign(profile, case.hospital_id, report.author_id):
            if profile.qualification != Qualification.final:
                raise Forbidden("A co-signature needs a reader qualified for final reports.")
            if report.author_id == principal.user_id:
                raise Forbidden("The author cannot co-sign their own report.")
            raise Forbidden("You are not credentialed for this hospital.")
        number, previous = await self._next_version(session, report.id)
        assert previous is not None
        base = await asyncio.to_thread(_read, ctx.runtime, previous.storage_key)
        if signing.sha256_hex(base) != previous.pdf_sha256:
            raise Conflict("The stored preliminary PDF does not match its record; not co-signed.")
        earlier = (await repository.signatures(session, [previous.id]))[previous.id]
        signature = Signature(
            profile.name, QUALIFICATION_LABELS[profile.qualification], Meaning.cosigner, now
        )
        # The co-signed file is the preliminary's; its document keeps the key images' references.
        prior = doc_model.from_json(previous.document, doc_model.key_image_refs(previous.document))
        doc = dataclasses.replace(
            prior,
            version=number,
            status=ReportStatus.final,
            signatures=(*prior.signatures, signature),
            created_at=now,
        )
        if not await repository.claim_status(
            session,
            report.id,
            {"status": report.status, "awaiting_cosign": True},
            {"status": ReportState.final.value, "awaiting_cosign": False, "updated_at": now},
        ):
            raise Conflict("The report changed while you co-signed it: look again.")
        data = await self._sign_pdf(
            ctx,
            profile,
            Meaning.cosigner,
            number,
            base=base,
            stamp=cosign_stamp(
                signature,
                ctx.settings.timezone,
                chinese=signing.stamp_font_available(ctx.font.path if ctx.font else None),
            ),
        )
        version = await self._record_version(
            session,
            ctx,
            principal,
            found,
            doc=doc,
            data=data,
            released=True,
            signatures=[
                *((s.user_id, _signature_of(s), s.field) for s in earlier),
                (principal.user_id, signature, _field(number, signature)),
            ],
            now=now,
        )
        await cases.mark_reported(
            session,
            case.id,
            status=CaseStatus.final,
            from_statuses=[CaseStatus.preliminary],
            principal=principal,
            now=now,
            report_id=report.id,
            version=number,
        )
        self._announce(session, found, version, [principal.user_id, report.author_id])
        self._audit(
            session,
            principal,
            "report.cosign",
            found,
            version=number,
            meaning=Meaning.cosigner.value,
            sha256=version.pdf_sha256,
        )
        return await self._reload(session, ctx, principal, report.id, now)

    async def amend(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        body: AmendBody,
        now: datetime,
    ) -> ReportRead:
        """A correction of a final report: the draft as edited since, signed as a new
        ``amended`` version by a final-qualified radiologist who signed the report."""
        profile = await self._signer(session, principal, now)
        found = await self._by_id(session, principal, report_id, now)
        report, case = found.report, found.case
        if report.status not in (ReportState.final.value, ReportState.amended.value):
            raise Conflict(f"Only a final report is amended; this one is {report.status}.")
        if profile.qualification != Qualification.final:
            raise Forbidden("Amending needs a reader qualified for final reports.")
        if not await repository.signed_by(session, report.id, principal.user_id):
            raise Forbidden("Only a radiologist who signed this report amends it.")
        number, previous = await self._next_version(session, report.id)
        signature = Signature(
            profile.name, QUALIFICATION_LABELS[profile.qualification], Meaning.author, now
        )
        doc = await self._document(
            session,
            ctx,
            found,
            version=number,
            status=ReportStatus.amended,
            signatures=(signature,),
            now=now,
            supersedes=previous.version if previous else None,
            amendment_reason=body.reason,
        )
        if previous is not None:
            # The draft holds the findings, not the addenda signed since: they carry over.
            doc = dataclasses.replace(doc, addenda=doc_model.addenda_of(previous.document))
        if not await repository.claim_status(
            session,
            report.id,
            {"status": report.status, "draft_revision": report.draft_revision},
            {"status": ReportState.amended.value, "updated_at": now},
        ):
            raise Conflict("The report changed while you amended it: look again.")
        version = await self._sign_and_record(
            session, ctx, principal, found, profile, signature, doc, released=True, now=now
        )
        await cases.mark_reported(
            session,
            case.id,
            status=CaseStatus.amended,
            from_statuses=[CaseStatus.final, CaseStatus.amended],
            principal=principal,
            now=now,
            report_id=report.id,
            version=number,
            reason=body.reason,
        )
        self._announce(session, found, version, [principal.user_id])
        self._audit(
            session,
            principal,
            "report.amend",
            found,
            version=number,
            reason=body.reason,
            sha256=version.pdf_sha256,
        )
        return await self._reload(session, ctx, principal, report.id, now)

    async def add_addendum(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        body: AddendumBody,
        now: datetime,
    ) -> ReportRead:
        """Append-only: the current version's document with one more addendum, rendered and
        signed by its writer (meaning ``addendum``) as the next version."""
        profile = await self._signer(session, principal, now)
        found = await self._by_id(session, principal, report_id, now)
        report = found.report
        if report.status not in (ReportState.final.value, ReportState.amended.value):
            raise Conflict(f"Addenda follow a final report; this one is {report.status}.")
        if not await repository.signed_by(session, report.id, principal.user_id):
            raise Forbidden("Only a radiologist who signed this report adds to it.")
        number, previous = await self._next_version(session, report.id)
        assert previous is not None
        signature = Signature(
            profile.name, QUALIFICATION_LABELS[profile.qualification], Meaning.addendum, now
        )
        refs = [
            {
                "study_instance_uid": k["study_instance_uid"],
                "series_instance_uid": k["series_instance_uid"],
                "sop_instance_uid": k["sop_instance_uid"],
                "frame": k["frame"],
                "caption": k["caption"],
            }
            for k in previous.document.get("key_images", [])
        ]
        images = await self._key_images(session, ctx, found.case.hospital_id, refs)
        prior = doc_model.from_json(previous.document, images)
        doc = dataclasses.replace(
            prior,
            version=number,
            addenda=(*prior.addenda, Addendum(body.text, body.reason, signature)),
            created_at=now,
        )
        if not await repository.claim_status(
            session, report.id, {"status": report.status}, {"updated_at": now}
        ):
            raise Conflict("The report changed meanwhile: look again.")
        version = await self._sign_and_record(
            session, ctx, principal, found, profile, signature, doc, released=True, now=now
        )
        self._announce(session, found, version, [principal.user_id])
        self._audit(
            session,
            principal,
            "report.addendum",
            found,
            version=number,
            reason=body.reason,
            sha256=version.pdf_sha256,
        )
        return await self._reload(session, ctx, principal, report.id, now)

    async def image_scope(
        self, session: AsyncSession, principal: Principal, now: datetime
    ) -> Scope:
        """The caller's scope for reading images: the case scope (``scope_of``) and, for a
        radiologist who may co-sign, the studies whose preliminary waits for them while it
        waits (``Scope.cosign_hospital_ids``). No query for anyone but radiologists."""
        if principal.role != Role.radiologist:
            return scope_of(principal)
        profile = await experts.signing_profile(session, principal.user_id, now)
        return scope_of(principal, cosign_hospital_ids=cosign_hospitals(profile))

    # --- versions, PDFs, verification ---------------------------------------------------------

    async def preview(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        now: datetime,
    ) -> tuple[bytes, str]:
        """The saved draft rendered as the PDF its signing would make (``_document``, the same
        layout and font), marked as a draft on every page and not signed; and a file name.

        Who may read the draft may preview it: its readers and coordinators; a senior who may
        only co-sign, and the hospital, never see a draft. What signing would make: the next
        version, with the status signing would give it (a junior's preliminary, final, or an
        amendment superseding the current version) and no signature yet. 409 when nothing
        is being written: a preliminary waiting for its co-signature, or a signed report whose
        draft has not been edited since its last version."""
        found = await self._by_id(session, principal, report_id, now)
        if found.access == Access.hospital:
            raise NotFound(f"No report {report_id}.")
        if found.access == Access.cosigner:
            raise Forbidden("A co-signer reads the signed preliminary, not a draft.")
        report = found.report
        number, previous = await self._next_version(session, report_id)
        supersedes = None
        if report.awaiting_cosign:
            raise Conflict("The preliminary report waits for its co-signature: there is no draft.")
        if report.status == ReportState.draft.value:
            senior = await self._final_qualified(session, report.author_id, now)
            status = ReportStatus.final if senior else ReportStatus.preliminary
        elif report.status == ReportState.preliminary.value:
            status = ReportStatus.final  # the final that follows an early STAT release
        else:
            assert previous is not None
            edited = await repository.draft_saved_since(session, report.id, previous.created_at)
            if not edited:
                raise Conflict(
                    f"Report {report_id} is signed and its draft is unchanged since: "
                    "edit it toward an amendment, or download the signed version."
                )
            status, supersedes = ReportStatus.amended, previous.version
        doc = await self._document(
            session,
            ctx,
            found,
            version=number,
            status=status,
            signatures=(),
            now=now,
            supersedes=supersedes,
            amendment_reason="",
            draft=True,
        )
        self._audit(session, principal, "report.preview", found, revision=report.draft_revision)
        data = await asyncio.to_thread(
            pdf.render, doc, timezone=ctx.settings.timezone, font=ctx.font, draft=True
        )
        accession = found.row[1].accession_number or f"case{found.case.id}"
        return data, f"report-{accession}-draft-r{report.draft_revision}.pdf"

    async def _final_qualified(self, session: AsyncSession, user_id: int, now: datetime) -> bool:
        profile = await experts.signing_profile(session, user_id, now)
        return profile is not None and profile.qualification == Qualification.final

    async def _visible_version(
        self,
        session: AsyncSession,
        principal: Principal,
        report_id: int,
        number: int | None,
        now: datetime,
    ) -> tuple[_Loaded, ReportVersion]:
        found = await self._by_id(session, principal, report_id, now)
        versions = await repository.versions(session, report_id)
        if found.access == Access.hospital:
            versions = [v for v in versions if v.released]
        if number is not None:
            versions = [v for v in versions if v.version == number]
        if not versions:
            raise NotFound(
                f"No signed version {number or ''} of report {report_id}.".replace("  ", " ")
            )
        return found, versions[-1]

    async def versions(
        self,
        session: AsyncSession,
        principal: Principal,
        report_id: int,
        now: datetime,
    ) -> list[VersionRead]:
        found = await self._by_id(session, principal, report_id, now)
        versions = await repository.versions(session, report_id)
        if found.access == Access.hospital:
            versions = [v for v in versions if v.released]
            if not versions:
                raise NotFound(f"No report {report_id}.")
        signatures = await repository.signatures(session, [v.id for v in versions])
        self._audit(session, principal, "report.versions", found)
        return [_version_read(v, signatures[v.id], True) for v in versions]

    async def pdf(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        number: int,
        now: datetime,
    ) -> tuple[bytes, str, str]:
        """The stored bytes of a version exactly as signed, their recorded SHA-256 and a file
        name."""
        found, version = await self._visible_version(session, principal, report_id, number, now)
        self._audit(session, principal, "report.pdf", found, version=number)
        data = await asyncio.to_thread(_read, ctx.runtime, version.storage_key)
        accession = found.row[1].accession_number or f"case{found.case.id}"
        return data, version.pdf_sha256, f"report-{accession}-v{number}.pdf"

    async def verify(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        number: int | None,
        now: datetime,
    ) -> VerifyRead:
        found, version = await self._visible_version(session, principal, report_id, number, now)
        self._audit(session, principal, "report.verify", found, version=version.version)
        ca = await ctx.ca()
        data = await asyncio.to_thread(_read, ctx.runtime, version.storage_key)
        result = await asyncio.to_thread(signing.verify, data, ca.trust_roots())
        # A file swapped for another validly signed one passes the PDF checks: the hash
        # recorded at signing time is what ties the file to this version.
        matches = result.sha256 == version.pdf_sha256
        problems = list(result.problems)
        if not matches:
            problems.append("the stored file is not the one recorded when it was signed")
        return VerifyRead(
            version=version.version,
            sha256=result.sha256,
            recorded_sha256=version.pdf_sha256,
            intact=result.intact and matches,
            valid=result.valid and matches,
            trusted=result.trusted,
            signer=result.signer,
            signed_at=result.signed_at,
            problems=problems,
            signatures=[
                SignatureCheckRead(
                    field=c.field,
                    signer=c.signer,
                    signed_at=c.signed_at,
                    level=c.level,
                    intact=c.intact,
                    trusted=c.trusted,
                    valid=c.valid,
                    problems=list(c.problems),
                )
                for c in result.signatures
            ],
        )

    async def cosign_queue(
        self, session: AsyncSession, principal: Principal, now: datetime, limit: int = 200
    ) -> list[CosignItem]:
        """Preliminaries waiting for a co-signature that the caller may co-sign (a senior:
        where credentialed; coordinators: all of them)."""
        if principal.sees_all_hospitals:
            hospital_ids: Sequence[int] | None = None
        else:
            profile = await self._signer(session, principal, now)
            if profile.qualification != Qualification.final:
                raise Forbidden("The co-sign queue is for readers qualified for final reports.")
            hospital_ids = cosign_hospitals(profile)
        rows = await repository.cosign_queue(session, hospital_ids, limit)
        if principal.role == Role.radiologist:
            rows = [r for r in rows if r[0].author_id != principal.user_id]
        audit.record(
            session,
            principal,
            "report.cosign_queue",
            object_type="report",
            detail={"count": len(rows), "report_ids": [r[0].id for r in rows][:200]},
        )
        return [
            CosignItem(
                report_id=report.id,
                case_id=case.id,
                hospital_id=case.hospital_id,
                priority=case.priority,
                study_description=study.study_description,
                author_id=report.author_id,
                author_name=author,
                version=version.version,
                signed_at=version.created_at,
            )
            for report, case, study, author, version in rows
        ]

    # --- critical findings --------------------------------------------------------------------

    def _critical_read(self, f: CriticalFinding, hospital_id: int, now: datetime) -> CriticalRead:
        return CriticalRead(
            id=f.id,
            report_id=f.report_id,
            case_id=f.case_id,
            hospital_id=hospital_id,
            description=f.description,
            flagged_by=f.flagged_by,
            flagged_at=f.flagged_at,
            due_at=f.due_at,
            status=CriticalStatus(f.status),
            seconds_left=None if f.status == "done" else (f.due_at - now).total_seconds(),
            communicated_at=f.communicated_at,
            communicated_to=f.communicated_to,
            method=f.method,
            recorded_by=f.recorded_by,
        )

    async def flag_critical(
        self,
        session: AsyncSession,
        ctx: ReportingContext,
        principal: Principal,
        report_id: int,
        body: CriticalCreate,
        now: datetime,
    ) -> CriticalRead:
        found = await self._by_id(session, principal, report_id, now)
        if found.access != Access.reader:
            raise Forbidden("The report's reader flags its critical findings.")
        finding = CriticalFinding(
            report_id=found.report.id,
            case_id=found.case.id,
            description=body.description,
            flagged_by=principal.user_id,
            flagged_at=now,
            due_at=now + timedelta(minutes=ctx.settings.critical_result_minutes),
            status=CriticalStatus.open.value,
            communicated_to="",
            method="",
        )
        await repository.add(session, finding)
        await repository.claim_status(session, found.report.id, {}, {"critical": True})
        cases.note(
            session, found.case.id, "critical_flagged", principal, now, finding_id=finding.id
        )
        events.publish(
            session,
            {
                "type": "critical.flagged",
                "case_id": found.case.id,
                "hospital_id": found.case.hospital_id,
                "finding_id": finding.id,
                "staff_only": True,
                "reader_ids": [principal.user_id],
            },
        )
        self._audit(session, principal, "critical.flag", found, finding_id=finding.id)
        return self._critical_read(finding, found.case.hospital_id, now)

    async def record_communication(
        self,
        session: AsyncSession,
        principal: Principal,
        finding_id: int,
        body: CommunicationBody,
        now: datetime,
    ) -> CriticalRead:
        finding = await repository.critical(session, finding_id)
        if finding is None:
            raise NotFound(f"No critical finding {finding_id}.")
        found = await self._load(
            session, principal, await repository.get(session, finding.report_id), now
        )
        if found.access not in (Access.reader, Access.staff):
            raise NotFound(f"No critical finding {finding_id}.")
        if finding.status == CriticalStatus.done.value:
            raise Conflict("This critical finding's communication is recorded already.")
        at = body.at or now
        if at > now + timedelta(minutes=1):
            raise BadRequest("The communication cannot be in the future.")
        finding.status = CriticalStatus.done.value
        finding.communicated_at = at
        finding.communicated_to = body.communicated_to
        finding.method = body.method.value
        finding.recorded_by = principal.user_id
        await session.flush()
        cases.note(
            session,
            found.case.id,
            "critical_communicated",
            principal,
            now,
            finding_id=finding.id,
            method=body.method.value,
        )
        events.publish(
            session,
            {
                "type": "critical.communicated",
                "case_id": found.case.id,
                "hospital_id": found.case.hospital_id,
                "finding_id": finding.id,
                "staff_only": True,
                "reader_ids": [finding.flagged_by],
            },
        )
        self._audit(
            session,
            principal,
            "critical.communication",
            found,
            finding_id=finding.id,
            communicated_to=body.communicated_to,
            method=body.method.value,
            at=at.isoformat(),
        )
        return self._critical_read(finding, found.case.hospital_id, now)

    async def criticals(
        self,
        session: AsyncSession,
        principal: Principal,
        status: CriticalStatus | None,
        now: datetime,
        limit: int = 500,
    ) -> list[CriticalRead]:
        """Coordinators: every finding; a radiologist: those they flagged or that lie on their
        reports."""
        if principal.sees_all_hospitals:
            user_id = None
        elif principal.role == Role.radiologist:
            user_id = principal.user_id
        else:
            raise Forbidden("Critical findings are followed by readers and coordinators.")
        rows = await repository.criticals(
            session, status=status.value if status else None, user_id=user_id, limit=limit
        )
        audit.record(
            session,
            principal,
            "critical.list",
            object_type="critical_finding",
            detail={"count": len(rows)},
        )
        return [self._critical_read(f, h, now) for f, h in rows]

    async def critical_watch(self, session: AsyncSession, now: datetime) -> int:
        """Announce, once each, the open findings whose communication is overdue."""
        overdue = await repository.overdue(session, now, 200)
        for finding_id, case_id, hospital_id, flagged_by in overdue:
            cases.note(session, case_id, "critical_overdue", None, now, finding_id=finding_id)
            events.publish(
                session,
                {
                    "type": "critical.overdue",
                    "case_id": case_id,
                    "hospital_id": hospital_id,
                    "finding_id": finding_id,
                    "staff_only": True,
                    "reader_ids": [flagged_by],
                },
            )
        return len(overdue)


def _signature_of(row: ReportSignature) -> Signature:
    return Signature(row.printed_name, row.qualification, Meaning(row.meaning), row.signed_at)


def _field(version: int, sig: Signature) -> str:
    return signing.signature_field(version, sig.meaning.value)


reports = ReportService()


def cosign_stamp(signature: Signature, timezone: str, *, chinese: bool = True) -> str:
    """The co-signer's visible stamp on page 1 of the final PDF: the preliminary's pages still
    say 初步报告 PRELIMINARY, and this says that the report is now final and by whom. English
    only when no CJK font file is available to draw it (see ``signing.stamp_font_available``)."""
    moment = signature.signed_at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    when = moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %z")
    when = f"{when[:-2]}:{when[-2:]}"  # +08:00, as the report's own times are shown
    if chinese:
        return (
            f"正式报告 FINAL REPORT\n审核医师 Co-signed by {signature.name}, "
            f"{signature.qualification}, {when}"
        )
    name = signature.name.encode("latin-1", "ignore").decode().strip() or "co-signer"
    qualification = signature.qualification.encode("latin-1", "ignore").decode().strip()
    return f"FINAL REPORT\nCo-signed by {name}, {qualification}, {when}"
