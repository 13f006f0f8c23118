"""Reports: write, sign, co-sign, amend, add to, download and verify; critical findings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from radrelay.auth.dependencies import CurrentPrincipal, RuntimeDep, Session, require
from radrelay.auth.schemas import Principal, Role
from radrelay.auth.service import auth_service
from radrelay.errors import NotFound
from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime
from radrelay.reporting.schemas import (
    AddendumBody,
    AmendBody,
    CommunicationBody,
    CosignItem,
    Credentials,
    CriticalCreate,
    CriticalRead,
    CriticalStatus,
    DraftRead,
    DraftUpdate,
    ReportCreate,
    ReportRead,
    SignBody,
    TemplateChange,
    TemplateSummary,
    VerifyRead,
    VersionRead,
)
from radrelay.reporting.service import ReportingContext, reports

router = APIRouter(tags=["reports"])

# Templates hold no patient data, but only the people who write or oversee reports need them.
_TemplateReader = Annotated[
    Principal, Depends(require(Role.radiologist, Role.coordinator, Role.admin))
]


@router.get("/api/templates", response_model=list[TemplateSummary])
async def list_templates(
    runtime: RuntimeDep,
    _principal: _TemplateReader,
    modality: Annotated[
        str | None,
        Query(max_length=16, description="Only those a report of this modality may use."),
    ] = None,
) -> list[TemplateSummary]:
    """The active report templates, or those offered for a modality (its own, its fallback,
    then the generic one), in that order."""
    templates = ReportingContext.of(runtime).templates
    chosen = templates.offered(modality) if modality else templates.active()
    return [TemplateSummary.of(t) for t in chosen]


@router.get("/api/templates/{template_id}")
async def get_template(
    runtime: RuntimeDep, _principal: _TemplateReader, template_id: str
) -> dict[str, Any]:
    """A template whole: sections, fields with their types, ranges, units, options, defaults
    and normal texts, as the report editor builds its form from them."""
    try:
        template = ReportingContext.of(runtime).templates.get(template_id)
    except KeyError:
        raise NotFound(f"There is no report template {template_id!r}.") from None
    return template.model_dump(mode="json", exclude_none=True)


async def _credentials(
    runtime: Runtime, principal: Principal, body: Credentials, purpose: str
) -> None:
    # Before the request's session runs any query (see AuthService.confirm_signer).
    await auth_service.confirm_signer(
        runtime.db, runtime.settings, principal, body.username, body.password, purpose
    )


@router.post("/api/cases/{case_id}/report", response_model=ReportRead, status_code=201)
async def create_report(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    case_id: int,
    body: ReportCreate | None = None,
) -> ReportRead:
    """Start the case's report (the reader holding it): the template chosen for the study, or
    the one given, with its starting values."""
    return await reports.create(
        session, ReportingContext.of(runtime), principal, case_id, body or ReportCreate(), utcnow()
    )


@router.get("/api/cases/{case_id}/report", response_model=ReportRead)
async def case_report(
    session: Session, runtime: RuntimeDep, principal: CurrentPrincipal, case_id: int
) -> ReportRead:
    """The case's report: its readers see the draft and every version, the sending hospital
    the released versions (final, amended, a STAT preliminary)."""
    return await reports.for_case(
        session, ReportingContext.of(runtime), principal, case_id, utcnow()
    )


@router.get("/api/reports/cosign-queue", response_model=list[CosignItem])
async def cosign_queue(session: Session, principal: CurrentPrincipal) -> list[CosignItem]:
    """Preliminary reports waiting for a senior's co-signature, oldest first: for readers
    qualified for final reports, those of the hospitals they are credentialed for."""
    return await reports.cosign_queue(session, principal, utcnow())


@router.get("/api/reports/{report_id}", response_model=ReportRead)
async def get_report(
    session: Session, runtime: RuntimeDep, principal: CurrentPrincipal, report_id: int
) -> ReportRead:
    return await reports.read(session, ReportingContext.of(runtime), principal, report_id, utcnow())


@router.put("/api/reports/{report_id}/draft", response_model=DraftRead)
async def save_draft(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: DraftUpdate,
) -> DraftRead:
    """Autosave. Incomplete drafts are fine; unknown fields are not. 409 when the draft was
    saved from elsewhere since ``revision``."""
    return await reports.save_draft(
        session, ReportingContext.of(runtime), principal, report_id, body, utcnow()
    )


@router.put("/api/reports/{report_id}/template", response_model=ReportRead)
async def change_template(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: TemplateChange,
) -> ReportRead:
    return await reports.change_template(
        session, ReportingContext.of(runtime), principal, report_id, body, utcnow()
    )


@router.post("/api/reports/{report_id}/sign", response_model=ReportRead)
async def sign_report(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: SignBody,
) -> ReportRead:
    """Sign the draft with one's username and password typed again: final, or preliminary
    when one's qualification allows only that (a senior then co-signs) or for an early STAT
    release. 400 lists what is missing; 403 when the username or the password is wrong (the
    answer does not say which); 422 when either is left out."""
    await _credentials(runtime, principal, body, "report.sign")
    return await reports.sign(
        session, ReportingContext.of(runtime), principal, report_id, body, utcnow()
    )


@router.post("/api/reports/{report_id}/cosign", response_model=ReportRead)
async def cosign_report(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: Credentials,
) -> ReportRead:
    """A senior co-signs a junior's preliminary report, which becomes final (username and
    password again, as for signing)."""
    await _credentials(runtime, principal, body, "report.cosign")
    return await reports.cosign(
        session, ReportingContext.of(runtime), principal, report_id, utcnow()
    )


@router.post("/api/reports/{report_id}/amend", response_model=ReportRead)
async def amend_report(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: AmendBody,
) -> ReportRead:
    """Sign the corrected draft as an amended version (username and password again); the
    previous one is superseded."""
    await _credentials(runtime, principal, body, "report.amend")
    return await reports.amend(
        session, ReportingContext.of(runtime), principal, report_id, body, utcnow()
    )


@router.post("/api/reports/{report_id}/addenda", response_model=ReportRead, status_code=201)
async def add_addendum(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: AddendumBody,
) -> ReportRead:
    """Append a signed addendum with its reason, as a new version (username and password
    again)."""
    await _credentials(runtime, principal, body, "report.addendum")
    return await reports.add_addendum(
        session, ReportingContext.of(runtime), principal, report_id, body, utcnow()
    )


@router.get("/api/reports/{report_id}/versions", response_model=list[VersionRead])
async def list_versions(
    session: Session, principal: CurrentPrincipal, report_id: int
) -> list[VersionRead]:
    """Every signed version the caller may see, oldest first, with what each shows."""
    return await reports.versions(session, principal, report_id, utcnow())


@router.get(
    "/api/reports/{report_id}/versions/{number}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def version_pdf(
    request: Request,
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    number: int,
) -> Response:
    """The signed PDF exactly as stored; its ETag is the SHA-256 recorded at signing."""
    data, digest, filename = await reports.pdf(
        session, ReportingContext.of(runtime), principal, report_id, number, utcnow()
    )
    headers = {
        "ETag": f'"{digest}"',
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-cache",
    }
    return Response(data, media_type="application/pdf", headers=headers)


@router.get(
    "/api/reports/{report_id}/preview",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
async def preview_report(
    session: Session, runtime: RuntimeDep, principal: CurrentPrincipal, report_id: int
) -> Response:
    """The saved draft as the PDF signing it would make, marked DRAFT on every page and not
    signed: for the draft's readers, never the hospital. 409 when no draft is being written."""
    data, filename = await reports.preview(
        session, ReportingContext.of(runtime), principal, report_id, utcnow()
    )
    headers = {
        "Content-Disposition": f'inline; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    return Response(data, media_type="application/pdf", headers=headers)


@router.get("/api/reports/{report_id}/verify", response_model=VerifyRead)
async def verify_report(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    version: Annotated[int | None, Query(ge=1, description="Default: the newest.")] = None,
) -> VerifyRead:
    """Check a version's stored PDF: intact, valid, trusted, who signed and when."""
    return await reports.verify(
        session, ReportingContext.of(runtime), principal, report_id, version, utcnow()
    )


@router.post("/api/reports/{report_id}/critical", response_model=CriticalRead, status_code=201)
async def flag_critical(
    session: Session,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    report_id: int,
    body: CriticalCreate,
) -> CriticalRead:
    """Flag a critical result: its communication to the hospital is due within the countdown."""
    return await reports.flag_critical(
        session, ReportingContext.of(runtime), principal, report_id, body, utcnow()
    )


@router.post("/api/critical-findings/{finding_id}/communication", response_model=CriticalRead)
async def record_communication(
    session: Session, principal: CurrentPrincipal, finding_id: int, body: CommunicationBody
) -> CriticalRead:
    """Who at the hospital was told, when and how (the reader or a coordinator)."""
    return await reports.record_communication(session, principal, finding_id, body, utcnow())


@router.get("/api/critical-findings", response_model=list[CriticalRead])
async def list_criticals(
    session: Session, principal: CurrentPrincipal, status: CriticalStatus | None = None
) -> list[CriticalRead]:
    """Critical findings, soonest due first, with the time left: coordinators see all,
    radiologists theirs."""
    return await reports.criticals(session, principal, status, utcnow())
