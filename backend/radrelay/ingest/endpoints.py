"""Browser upload: ``POST /api/uploads`` (multipart/form-data).

Fields: ``files`` (any number: .dcm files, a folder's files, .zip archives with or without a
DICOMDIR), ``hospital`` (code; only for coordinators and admins, a technician always sends for
their own hospital), ``priority``, ``clinical_question``, ``clinical_history``, ``requested_exam``,
``requested_subspecialty`` and ``complete`` (default true: the study is whole and its case is
ready at once; false when a client sends one study in several requests).
"""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from radrelay.auth.dependencies import CurrentPrincipal, RuntimeDep
from radrelay.auth.schemas import Role
from radrelay.cases.schemas import ClinicalInfo, Source
from radrelay.cases.service import cases
from radrelay.errors import BadRequest, Forbidden
from radrelay.ingest import zipfiles
from radrelay.ingest.auth import sending_hospital
from radrelay.ingest.prepare import Received
from radrelay.ingest.schemas import FileOutcome, Outcome, UploadResponse
from radrelay.ingest.service import Origin, ingest, stored_per_study
from radrelay.kit.multipart import ReceivedBody, receive_multipart
from radrelay.kit.runtime import Runtime

router = APIRouter(prefix="/api", tags=["ingest"])

_CASE_FIELDS = (
    "priority",
    "clinical_question",
    "clinical_history",
    "requested_exam",
    "requested_subspecialty",
)


def _is_zip(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(132)
    if head[128:132] == b"DICM":
        return False
    return head[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path)


def _fields(body: ReceivedBody) -> tuple[dict[str, str], list[tuple[str, Path]]]:
    fields: dict[str, str] = {}
    files: list[tuple[str, Path]] = []
    for i, part in enumerate(body.parts):
        # A part of the 'files' field is a file even when the client gave it no file name.
        if part.filename is not None or part.field_name == "files":
            files.append((part.filename or f"file-{i + 1}", part.path))
        elif part.field_name:
            fields[part.field_name] = part.text().strip()
    return fields, files


def _clinical_info(fields: dict[str, str]) -> ClinicalInfo:
    given = {k: fields[k] for k in _CASE_FIELDS if fields.get(k)}
    try:
        return ClinicalInfo.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise BadRequest(f"The case fields are not valid: {problems}") from exc


@router.post("/uploads", response_model=UploadResponse)
async def upload(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Send a study from the browser. The answer lists each file's outcome; valid files are
    stored even when others fail. 400 when nothing could be stored."""
    if principal.role == Role.radiologist:
        raise Forbidden("Radiologists read studies; sending them is for hospital staff.")
    settings = runtime.settings
    await ingest.require_queue(runtime)
    body = await receive_multipart(
        request,
        settings.tmp_dir,
        allowed=("multipart/form-data",),
        max_total=settings.max_upload_bytes,
    )
    try:
        fields, files = _fields(body)
        info = _clinical_info(fields)
        complete = fields.get("complete", "true").lower() not in ("false", "0", "no")
        hospital_id = await sending_hospital(runtime, principal, fields.get("hospital"))
        if not files:
            raise BadRequest("No files in the upload: send them in the 'files' field.")

        received, refused = await _unpack(runtime, body, files)
        prepared = await ingest.prepare_all(runtime, hospital_id, received)
        origin = Origin(Source.upload, hospital_id, principal)
        async with runtime.uow() as session:
            # Without case fields, known studies keep using the id cache.
            given = info if info.given() else None
            outcomes = await ingest.store(runtime, session, origin, prepared, info=given)
            case_ids = sorted({o.case_id for o in outcomes if o.case_id is not None})
            if complete and case_ids:
                await cases.mark_ready(session, case_ids, reason="upload_complete")
            ingest.audit_receipt(
                session, principal, hospital_id, stored_per_study(outcomes), source="upload"
            )
        outcomes = refused + outcomes
    finally:
        body.cleanup()
    result = _summary(outcomes, case_ids)
    if result.stored + result.duplicates + result.conflicts == 0:
        raise BadRequest(
            "Nothing in the upload could be stored.", detail=result.model_dump(mode="json")
        )
    return JSONResponse(result.model_dump(mode="json"), status_code=200)


async def _unpack(
    runtime: Runtime, body: ReceivedBody, files: list[tuple[str, Path]]
) -> tuple[list[Received], list[FileOutcome]]:
    """Zip archives become their members; other files are taken as they are."""
    settings = runtime.settings
    limits = zipfiles.ZipLimits(
        max_members=settings.max_zip_members,
        max_member_bytes=settings.max_instance_bytes,
        max_total_bytes=settings.max_upload_bytes,
        max_ratio=settings.max_zip_ratio,
    )
    received: list[Received] = []
    refused: list[FileOutcome] = []
    for name, path in files:
        if zipfiles.is_dicomdir(name):
            refused.append(
                FileOutcome(name=name, outcome=Outcome.skipped, message=zipfiles.DICOMDIR_SKIPPED)
            )
            continue
        if _is_zip(path):
            members, outcomes = await asyncio.to_thread(
                zipfiles.extract, name, path, settings.tmp_dir, limits
            )
            body.extra_files.extend(m.path for m in members)
            received.extend(Received(m.name, m.path) for m in members)
            refused.extend(outcomes)
        else:
            received.append(Received(name, path))
    return received, refused


def _summary(outcomes: list[FileOutcome], case_ids: list[int]) -> UploadResponse:
    def count(o: Outcome) -> int:
        return sum(1 for x in outcomes if x.outcome == o)

    return UploadResponse(
        stored=count(Outcome.stored),
        duplicates=count(Outcome.duplicate),
        conflicts=count(Outcome.conflict),
        failed=count(Outcome.failed),
        skipped=count(Outcome.skipped),
        case_ids=case_ids,
        files=outcomes,
    )
