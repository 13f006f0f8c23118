"""DICOMweb STOW-RS: ``POST /dicomweb/studies[/{StudyInstanceUID}]`` (PS3.18 10.5).

The request is ``multipart/related; type="application/dicom"``, one DICOM object per part, with
or without the Part 10 header. The answer is the Store Instances Response Module (PS3.18 Table
10.5.3-3) as DICOM JSON: ReferencedSOPSequence for what was stored, FailedSOPSequence with a
FailureReason for what was not; 200 when all were stored, 202 when some were, 409 when none.
A coordinator or admin says which hospital sends with ``?hospital=CODE``; a technician always
sends for their own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydicom.dataset import Dataset

from radrelay.auth.dependencies import CurrentPrincipal, RuntimeDep
from radrelay.auth.schemas import Principal
from radrelay.cases.schemas import Source
from radrelay.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from radrelay.ingest.auth import sending_hospital
from radrelay.ingest.prepare import Prepared, Received
from radrelay.ingest.schemas import FileOutcome, Outcome
from radrelay.ingest.service import Origin, ingest, stored_per_study
from radrelay.kit import dicom
from radrelay.kit.multipart import Part, content_type_of, receive_multipart
from radrelay.kit.urls import dicomweb_base

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

DICOM_JSON = "application/dicom+json"


@router.post("/studies")
async def store_instances(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    hospital: Annotated[
        str | None, Query(description="Sending hospital's code (staff only).")
    ] = None,
) -> Response:
    """Store instances of any studies."""
    return await _store(request, runtime, principal, hospital, None)


@router.post("/studies/{study_uid}")
async def store_study_instances(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study_uid: str,
    hospital: Annotated[
        str | None, Query(description="Sending hospital's code (staff only).")
    ] = None,
) -> Response:
    """Store instances of one study; instances of any other study are refused (0xA900)."""
    return await _store(request, runtime, principal, hospital, study_uid)


async def _store(
    request: Request,
    runtime: RuntimeDep,
    principal: Principal,
    hospital_code: str | None,
    expected_study: str | None,
) -> Response:
    _check_accept(request)
    _check_content_type(request)
    hospital_id = await sending_hospital(runtime, principal, hospital_code)
    await ingest.require_queue(runtime)
    # Each part is prepared (inspected, stored) in a worker as soon as it has arrived, while
    # the rest of the body is still being received.
    slots: list[FileOutcome | asyncio.Future[Prepared | FileOutcome]] = []

    def start(part: Part) -> None:
        n = len(slots) + 1
        part_type = part.content_type or "application/dicom"
        problem = ""
        if part_type != "application/dicom":
            problem = f"part {n} is {part_type}, not application/dicom"
        elif part.size == 0:
            problem = f"part {n} is empty"
        if problem:
            slots.append(
                FileOutcome(
                    name=f"part {n}",
                    outcome=Outcome.failed,
                    status=dicom.CANNOT_UNDERSTAND,
                    message=problem,
                )
            )
        else:
            received = Received(f"part {n}", part.path)
            slots.append(ingest.prepare_soon(runtime, hospital_id, received, expected_study))

    body = None
    try:
        body = await receive_multipart(
            request,
            runtime.settings.tmp_dir,
            allowed=("multipart/related",),
            max_total=runtime.settings.max_upload_bytes,
            on_part=start,
        )
        if not body.parts:
            raise BadRequest("The request holds no parts.")
        # One outcome per part, in the order of the parts.
        prepared = [s if isinstance(s, FileOutcome) else await s for s in slots]
        async with runtime.uow() as session:
            outcomes = await ingest.store(
                runtime, session, Origin(Source.stow, hospital_id, principal), prepared
            )
            ingest.audit_receipt(
                session, principal, hospital_id, stored_per_study(outcomes), source="stow"
            )
    finally:
        # Workers may still read parts of a request that failed half-way: let them finish
        # before the files go.
        await asyncio.gather(
            *(s for s in slots if not isinstance(s, FileOutcome)), return_exceptions=True
        )
        if body is not None:
            body.cleanup()
    return _response(request, outcomes, expected_study)


def _check_content_type(request: Request) -> None:
    """Refuse what we do not store before reading the body: metadata and bulk data requests
    (type="application/dicom+json" or +xml) and anything not multipart/related."""
    ctype, params = content_type_of(request)
    if ctype != "multipart/related":
        raise UnsupportedMediaType(
            f'Content-Type must be multipart/related; type="application/dicom", not '
            f"{ctype or 'missing'}."
        )
    declared = params.get("type", "application/dicom").strip().lower()
    if declared != "application/dicom":
        raise UnsupportedMediaType(
            f'Only type="application/dicom" parts are accepted, not {declared!r} '
            "(metadata and bulk data requests are not supported)."
        )


def _check_accept(request: Request) -> None:
    accept = request.headers.get("accept", "")
    if not accept:
        return
    kinds = {a.split(";")[0].strip().lower() for a in accept.split(",")}
    if kinds & {DICOM_JSON, "application/json", "*/*", "application/*"}:
        return
    raise NotAcceptable(
        f"The store response is available as {DICOM_JSON}; the request accepts only {accept!r}.",
    )


def _response(
    request: Request, outcomes: list[FileOutcome], expected_study: str | None
) -> Response:
    base = dicomweb_base(request)
    response = Dataset()
    stored = [o for o in outcomes if o.outcome.ok]
    failed = [o for o in outcomes if not o.outcome.ok]
    studies = {o.study_instance_uid for o in stored} | (
        {expected_study} if expected_study else set()
    )
    if len(studies) == 1:
        response.RetrieveURL = f"{base}/studies/{next(iter(studies))}"
    if stored:
        response.ReferencedSOPSequence = [_ref(o, base) for o in stored]
    if failed:
        response.FailedSOPSequence = [_failure(o) for o in failed]
    status = 200 if not failed else (202 if stored else 409)
    # PS3.18 8.4.5: Warning headers carry human-readable reasons next to the coded ones.
    headers = [
        ("warning", f'299 radrelay "{o.name}: {_ascii(o.message)}"')
        for o in failed[:20]
        if o.message
    ]
    out = Response(json.dumps(response.to_json_dict()), status_code=status, media_type=DICOM_JSON)
    for name, value in headers:
        out.headers.append(name, value)
    return out


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode().replace('"', "'")[:300]


def _ref(o: FileOutcome, base: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = o.sop_class_uid
    item.ReferencedSOPInstanceUID = o.sop_instance_uid
    item.RetrieveURL = (
        f"{base}/studies/{o.study_instance_uid}/series/{o.series_instance_uid}"
        f"/instances/{o.sop_instance_uid}"
    )
    return item


def _failure(o: FileOutcome) -> Dataset:
    item = Dataset()
    # An object too broken to name itself is reported with empty UIDs, which PS3.18 allows.
    item.ReferencedSOPClassUID = o.sop_class_uid or ""
    item.ReferencedSOPInstanceUID = o.sop_instance_uid or ""
    item.FailureReason = o.status or dicom.PROCESSING_FAILURE
    return item
