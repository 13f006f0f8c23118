"""DICOMweb read side at ``/dicomweb`` (PS3.18): QIDO-RS search, WADO-RS retrieve, metadata,
frames, bulk data, rendered images and thumbnails; WADO-URI at ``/wado`` for older clients.

Every route authenticates with the Bearer token and reads through the scope rule, so a study
the caller may not see answers 404 exactly like one that does not exist. Database sessions are
opened around the queries only, never around streaming a response. Stored objects never change,
so responses carry a strong ETag and answer If-None-Match with 304.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydicom.uid import UID

from radrelay.auth.dependencies import CurrentPrincipal, RuntimeDep, principal_of
from radrelay.auth.schemas import Principal
from radrelay.dicomweb import media, pixels, qido
from radrelay.dicomweb.metadata import BULK_PREFIX, bulk_value, stored_frame
from radrelay.dicomweb.repository import Located
from radrelay.dicomweb.service import dicomweb, etag, json_body, read_range
from radrelay.errors import AppError, BadRequest, NotAcceptable, NotFound
from radrelay.kit.runtime import Runtime
from radrelay.kit.urls import dicomweb_base

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])
wado_uri_router = APIRouter(tags=["dicomweb"])

DICOM_JSON = "application/dicom+json"
# Whole studies and series can grow (late instances): revalidate. One instance never changes.
_REVALIDATE = "private, no-cache"
_IMMUTABLE = "private, max-age=31536000, immutable"


def _base(request: Request) -> str:
    return dicomweb_base(request)


def _unchanged(request: Request, tag: str, cache: str) -> Response | None:
    """304 when the client already holds this representation (RFC 9110 13.1.2)."""
    given = request.headers.get("if-none-match", "")
    tags = {t.strip().removeprefix("W/") for t in given.split(",") if t.strip()}
    if tag in tags or "*" in tags:
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": cache})
    return None


def _pixel_error(exc: pixels.PixelError) -> AppError:
    kind = {404: NotFound, 406: NotAcceptable}.get(exc.status, BadRequest)
    return kind(str(exc))


async def _in_thread(fn: Any, *args: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args)
    except pixels.PixelError as exc:
        raise _pixel_error(exc) from None


# --- QIDO-RS ------------------------------------------------------------------------------


def _check_json_accept(request: Request) -> None:
    ranges = media.parse_accept(request.headers.get("accept"))
    ok = {DICOM_JSON, "application/json", "*/*", "application/*"}
    if not any(r.media_type in ok and not r.multipart for r in ranges):
        raise NotAcceptable(f"Search results are sent as {DICOM_JSON}.")


async def _search(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    level: qido.Level,
    fixed: Sequence[tuple[str, str]] = (),
) -> Response:
    _check_json_accept(request)
    scoped = [k for k, _ in fixed]
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in scoped]
    query = qido.parse(level, [*params, *fixed], scoped)
    async with runtime.db.reading() as session:
        if fixed:
            # Searching inside a study names it: one out of scope is 404, like a retrieve.
            await dicomweb.check_study(session, principal, dict(fixed)["StudyInstanceUID"])
        results, more = await dicomweb.search(session, principal, query, _base(request), scoped)
    dicomweb.audit_search(runtime, principal, len(results))
    warnings = [f"{k} is not supported for matching and was ignored" for k in query.ignored]
    if more:
        warnings.append(f"more results match: ask again with offset={query.offset + query.limit}")
    response = Response(json_body(results), media_type=DICOM_JSON)
    for text in warnings:
        response.headers.append("warning", f'299 radrelay "{text}"')
    return response


@router.get("/studies", summary="Search for studies (QIDO-RS)")
async def search_studies(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal
) -> Response:
    """Matching keys as query parameters (keyword or tag), ``includefield``, ``limit``,
    ``offset``, ``fuzzymatching``."""
    return await _search(request, runtime, principal, qido.Level.study)


@router.get("/series", summary="Search for series of all studies (QIDO-RS)")
async def search_all_series(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal
) -> Response:
    return await _search(request, runtime, principal, qido.Level.series)


@router.get("/instances", summary="Search for instances of all studies (QIDO-RS)")
async def search_all_instances(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal
) -> Response:
    return await _search(request, runtime, principal, qido.Level.instance)


@router.get("/studies/{study}/series", summary="Search for series of a study (QIDO-RS)")
async def search_series(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str
) -> Response:
    return await _search(
        request, runtime, principal, qido.Level.series, [("StudyInstanceUID", study)]
    )


@router.get("/studies/{study}/instances", summary="Search for instances of a study (QIDO-RS)")
async def search_study_instances(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str
) -> Response:
    return await _search(
        request, runtime, principal, qido.Level.instance, [("StudyInstanceUID", study)]
    )


@router.get(
    "/studies/{study}/series/{series}/instances",
    summary="Search for instances of a series (QIDO-RS)",
)
async def search_instances(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str, series: str
) -> Response:
    fixed = [("StudyInstanceUID", study), ("SeriesInstanceUID", series)]
    return await _search(request, runtime, principal, qido.Level.instance, fixed)


# --- WADO-RS: objects ---------------------------------------------------------------------


async def _locate(
    runtime: Runtime,
    principal: Principal,
    study: str,
    series: str | None = None,
    sop: str | None = None,
    *,
    with_document: bool = False,
) -> list[Located]:
    """The objects of the URL; ``with_document``: with their metadata, computed first where
    missing. (Single instances for frames and rendering: ``dicomweb.instance``.)"""
    async with runtime.db.reading() as session:
        objs = await dicomweb.locate(
            session, principal, study, series, sop, with_document=with_document
        )
    if with_document and not all(o.described for o in objs):
        objs = await dicomweb.complete(runtime, objs)
    return objs


async def _retrieve(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> Response:
    ranges = media.parse_accept(request.headers.get("accept"))
    objs = await _locate(runtime, principal, study, series, sop)
    single = [r for r in ranges if not r.multipart and r.media_type == media.DICOM]
    if sop is not None and single and ranges[0] in single:
        return await _single_file(request, runtime, principal, objs[0], ranges)
    syntaxes = [media.object_syntax(ranges, o.transfer_syntax_uid) for o in objs]
    cache = _IMMUTABLE if sop else _REVALIDATE
    tag = etag(objs, "dicom", syntaxes)
    if (unchanged := _unchanged(request, tag, cache)) is not None:
        return unchanged
    dicomweb.audit(runtime, principal, "dicomweb.retrieve", objs)
    await dicomweb.check_stored(runtime, objs)
    body = media.Multipart(media.DICOM)

    async def parts() -> AsyncIterator[tuple[str, bytes | AsyncIterator[bytes]]]:
        for obj, syntax in zip(objs, syntaxes, strict=True):
            content_type = f"{media.DICOM}; transfer-syntax={syntax}"
            if syntax == obj.transfer_syntax_uid:
                # As stored: from the local file, or streamed from object storage.
                yield content_type, dicomweb.object_chunks(runtime, obj)
            else:
                path = await dicomweb.path_of(runtime, obj)
                yield content_type, await _in_thread(pixels.transcode, path, syntax)

    return StreamingResponse(
        body.join(parts()),
        media_type=body.content_type,
        headers={"ETag": tag, "Cache-Control": cache},
    )


async def _single_file(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    obj: Located,
    ranges: list[media.MediaRange],
) -> Response:
    """``Accept: application/dicom``: the one object as a file, with Range support."""
    syntax = media.object_syntax(ranges, obj.transfer_syntax_uid)
    tag = etag([obj], "file", syntax)
    if (unchanged := _unchanged(request, tag, _IMMUTABLE)) is not None:
        return unchanged
    dicomweb.audit(runtime, principal, "dicomweb.retrieve", [obj])
    path = await dicomweb.path_of(runtime, obj)
    headers = {"ETag": tag, "Cache-Control": _IMMUTABLE}
    if syntax != obj.transfer_syntax_uid:
        data = await _in_thread(pixels.transcode, path, syntax)
        return Response(data, media_type=media.DICOM, headers=headers)
    response = FileResponse(path, media_type=media.DICOM, headers=headers)
    response.headers["etag"] = tag  # FileResponse would make a weak one of its own
    return response


@router.get("/studies/{study}", summary="Retrieve a study (WADO-RS)")
async def retrieve_study(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str
) -> Response:
    return await _retrieve(request, runtime, principal, study)


@router.get("/studies/{study}/series/{series}", summary="Retrieve a series (WADO-RS)")
async def retrieve_series(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str, series: str
) -> Response:
    return await _retrieve(request, runtime, principal, study, series)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}", summary="Retrieve an instance (WADO-RS)"
)
async def retrieve_instance(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study: str,
    series: str,
    sop: str,
) -> Response:
    return await _retrieve(request, runtime, principal, study, series, sop)


# --- WADO-RS: metadata --------------------------------------------------------------------


async def _metadata(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    study: str,
    series: str | None = None,
    sop: str | None = None,
) -> Response:
    _check_json_accept(request)
    objs = await _locate(runtime, principal, study, series, sop, with_document=True)
    base = _base(request)
    cache = _IMMUTABLE if sop else _REVALIDATE
    tag = etag(objs, "metadata", base)
    if (unchanged := _unchanged(request, tag, cache)) is not None:
        return unchanged
    dicomweb.audit(runtime, principal, "dicomweb.metadata", objs)
    return Response(
        dicomweb.metadata_json(objs, base),
        media_type=DICOM_JSON,
        headers={"ETag": tag, "Cache-Control": cache},
    )


@router.get("/studies/{study}/metadata", summary="Metadata of a study (WADO-RS)")
async def study_metadata(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str
) -> Response:
    return await _metadata(request, runtime, principal, study)


@router.get("/studies/{study}/series/{series}/metadata", summary="Metadata of a series (WADO-RS)")
async def series_metadata(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str, series: str
) -> Response:
    return await _metadata(request, runtime, principal, study, series)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/metadata",
    summary="Metadata of an instance (WADO-RS)",
)
async def instance_metadata(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study: str,
    series: str,
    sop: str,
) -> Response:
    return await _metadata(request, runtime, principal, study, series, sop)


# --- WADO-RS: frames and bulk data --------------------------------------------------------


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise BadRequest(
            f"Frame numbers are a comma-separated list like 1,3,5, not {text!r}."
        ) from None
    if not numbers or min(numbers) < 1:
        raise BadRequest(f"Frame numbers start at 1: {text!r}.")
    if len(numbers) > 10_000:
        raise BadRequest("Ask for at most 10000 frames at a time.")
    return numbers


def _check_frames(obj: Located, numbers: Sequence[int]) -> None:
    if not obj.rows:
        raise NotFound("The instance has no image (no pixel data).")
    count = max(obj.number_of_frames or 1, 1)
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise NotFound(f"The instance has {count} frame(s); there is no frame {beyond[0]}.")


def _frame_bytes(path: Path, obj: Located, number: int, raw: bool) -> bytes:
    """One frame, in a worker thread: as stored (``raw``), or decoded to native little endian."""
    if raw and obj.pixel_offset is not None and obj.frame_length:
        return read_range(
            path, obj.pixel_offset + (number - 1) * obj.frame_length, obj.frame_length
        )
    if raw and obj.frames is not None:
        return b"".join(read_range(path, offset, n) for offset, n in obj.frames[number - 1])
    if raw and UID(obj.transfer_syntax_uid).is_compressed:
        return stored_frame(path, number)
    return pixels.native_frame(path, number)


async def _frames_response(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    obj: Located,
    numbers: Sequence[int],
    action: str,
) -> Response:
    ranges = media.parse_accept(request.headers.get("accept"))
    big_endian = not UID(obj.transfer_syntax_uid).is_little_endian
    form = media.frame_form(ranges, obj.transfer_syntax_uid, big_endian=big_endian)
    tag = etag([obj], "frames", list(numbers), form)
    if (unchanged := _unchanged(request, tag, _IMMUTABLE)) is not None:
        return unchanged
    path = await dicomweb.path_of(runtime, obj)
    dicomweb.audit(runtime, principal, action, [obj])
    body = media.Multipart(form.content_type.split(";")[0])
    headers = {"ETag": tag, "Cache-Control": _IMMUTABLE}
    if len(numbers) == 1:
        # The common case, one frame per request as viewers ask. Stored bytes at a known
        # offset are read right here: a page-cache read of one frame costs less than a thread
        # hop. Anything to decode or parse goes to a thread.
        at_offset = obj.frames is not None or (
            obj.pixel_offset is not None and bool(obj.frame_length)
        )
        if form.raw and at_offset:
            data = _frame_bytes(path, obj, numbers[0], raw=True)
        else:
            data = await _in_thread(_frame_bytes, path, obj, numbers[0], form.raw)
        payload = body.head(form.content_type) + data + body.tail()
        return Response(payload, media_type=body.content_type, headers=headers)

    async def parts() -> AsyncIterator[tuple[str, bytes | AsyncIterator[bytes]]]:
        for n in numbers:
            yield form.content_type, await _in_thread(_frame_bytes, path, obj, n, form.raw)

    return StreamingResponse(body.join(parts()), media_type=body.content_type, headers=headers)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}",
    summary="Frames of an instance (WADO-RS)",
    # The hottest route (a viewer asks for every frame of a series one by one): the caller is
    # read from the token here rather than through FastAPI's dependency solving, which cost
    # a fifth of the request. The security scheme is the same as the other routes'.
    openapi_extra={"security": [{"OAuth2PasswordBearer": []}]},
)
async def retrieve_frames(
    request: Request, study: str, series: str, sop: str, frames: str
) -> Response:
    """Uncompressed (``type="application/octet-stream"``), or as stored when the Accept header
    allows it (``transfer-syntax=*``, or the stored syntax's image media type)."""
    runtime: Runtime = request.app.state.runtime
    principal = principal_of(request)
    numbers = _frame_numbers(frames)
    obj = await dicomweb.instance(runtime, principal, study, series, sop)
    _check_frames(obj, numbers)
    return await _frames_response(request, runtime, principal, obj, numbers, "dicomweb.frames")


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/bulkdata/{position}",
    summary="Bulk data of an instance (WADO-RS)",
)
async def retrieve_bulkdata(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study: str,
    series: str,
    sop: str,
    position: int,
) -> Response:
    """The values the metadata gives as BulkDataURI. Pixel Data comes as its frames."""
    obj = (await _locate(runtime, principal, study, series, sop, with_document=True))[0]
    assert obj.document is not None
    if f'"BulkDataURI":"{BULK_PREFIX}{position}"' not in obj.document:
        raise NotFound(f"The instance has no bulk data at {position}.")
    if '"7FE00010":{"vr":"O' in obj.document and _pixel_position(obj.document) == position:
        numbers = list(range(1, max(obj.number_of_frames or 1, 1) + 1))
        return await _frames_response(
            request, runtime, principal, obj, numbers, "dicomweb.bulkdata"
        )
    ranges = media.parse_accept(request.headers.get("accept"))
    if not any(r.media_type in (media.OCTETS, "*/*", "application/*") for r in ranges):
        raise NotAcceptable(f'Bulk data is sent as multipart/related; type="{media.OCTETS}".')
    path = await dicomweb.path_of(runtime, obj)
    elem = await asyncio.to_thread(bulk_value, path, position)
    if elem is None or not isinstance(elem.value, bytes | bytearray):
        raise NotFound(f"The instance has no bulk data at {position}.")
    tag = etag([obj], "bulk", position)
    if (unchanged := _unchanged(request, tag, _IMMUTABLE)) is not None:
        return unchanged
    dicomweb.audit(runtime, principal, "dicomweb.bulkdata", [obj])
    body = media.Multipart(media.OCTETS)
    payload = body.head(media.OCTETS) + bytes(elem.value) + body.tail()
    return Response(
        payload, media_type=body.content_type, headers={"ETag": tag, "Cache-Control": _IMMUTABLE}
    )


def _pixel_position(document: str) -> int | None:
    marker = '"7FE00010":{"vr":"'
    start = document.find(marker)
    if start < 0:
        return None
    uri = document.find(BULK_PREFIX, start)
    end = document.find('"', uri)
    try:
        return int(document[uri + len(BULK_PREFIX) : end])
    except ValueError:
        return None


# --- Rendered and thumbnails --------------------------------------------------------------


def _render_params(request: Request) -> tuple[pixels.RenderParams, bool]:
    """The rendering asked for, and whether as multipart/related (one image per part)."""
    ranges = media.parse_accept(request.headers.get("accept"))
    multipart = bool(ranges) and ranges[0].multipart
    accept = ranges[0].media_type if multipart else request.headers.get("accept")
    try:
        params = pixels.parse_render_params(accept, dict(request.query_params))
    except pixels.PixelError as exc:
        raise _pixel_error(exc) from None
    return params, multipart


async def _rendered(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    objs: Sequence[Located],
    frames: Sequence[int] | None,
    *,
    thumbnail: bool = False,
) -> Response:
    params, multipart = _render_params(request)
    images = [o for o in objs if o.rows]
    if not images:
        raise NotFound("Nothing here has an image to render.")
    tag = etag(images, "rendered", frames, params, thumbnail, multipart)
    cache = _IMMUTABLE if len(objs) == 1 else _REVALIDATE
    if (unchanged := _unchanged(request, tag, cache)) is not None:
        return unchanged
    dicomweb.audit(runtime, principal, "dicomweb.rendered", images)
    headers = {"ETag": tag, "Cache-Control": cache}
    if thumbnail:
        obj = images[len(images) // 2]
        data = await _in_thread(pixels.thumbnail, await dicomweb.path_of(runtime, obj), params)
        return Response(data, media_type=params.media_type, headers=headers)
    if not multipart:
        # A single image was asked for (image/jpeg, not multipart/related; so do dicomweb-client
        # and browsers): the first frame asked for, of the first image.
        obj = images[0]
        first = frames[0] if frames else 1
        data = await _in_thread(pixels.render, await dicomweb.path_of(runtime, obj), first, params)
        return Response(data, media_type=params.media_type, headers=headers)
    # One part per image: the first frame of each instance, or the frames asked for.
    jobs = [(o, n) for o in images for n in (frames or [1])]
    body = media.Multipart(params.media_type)

    async def parts() -> AsyncIterator[tuple[str, bytes | AsyncIterator[bytes]]]:
        for obj, n in jobs:
            path = await dicomweb.path_of(runtime, obj)
            yield params.media_type, await _in_thread(pixels.render, path, n, params)

    return StreamingResponse(body.join(parts()), media_type=body.content_type, headers=headers)


@router.get("/studies/{study}/rendered", summary="A study rendered (WADO-RS)")
async def study_rendered(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str
) -> Response:
    objs = await _locate(runtime, principal, study)
    return await _rendered(request, runtime, principal, objs, None)


@router.get("/studies/{study}/series/{series}/rendered", summary="A series rendered (WADO-RS)")
async def series_rendered(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str, series: str
) -> Response:
    objs = await _locate(runtime, principal, study, series)
    return await _rendered(request, runtime, principal, objs, None)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/rendered",
    summary="An instance rendered (WADO-RS): its first frame",
)
async def instance_rendered(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study: str,
    series: str,
    sop: str,
) -> Response:
    obj = await dicomweb.instance(runtime, principal, study, series, sop)
    return await _rendered(request, runtime, principal, [obj], [1])


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered",
    summary="Frames rendered (WADO-RS)",
)
async def frames_rendered(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study: str,
    series: str,
    sop: str,
    frames: str,
) -> Response:
    numbers = _frame_numbers(frames)
    obj = await dicomweb.instance(runtime, principal, study, series, sop)
    _check_frames(obj, numbers)
    return await _rendered(request, runtime, principal, [obj], numbers)


@router.get("/studies/{study}/thumbnail", summary="Thumbnail of a study")
async def study_thumbnail(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str
) -> Response:
    """The middle image of the study's first series with an image."""
    objs = await _locate(runtime, principal, study)
    first_series = next((o.series_uid for o in objs if o.rows), None)
    chosen = [o for o in objs if o.series_uid == first_series] or objs
    return await _rendered(request, runtime, principal, chosen, None, thumbnail=True)


@router.get("/studies/{study}/series/{series}/thumbnail", summary="Thumbnail of a series")
async def series_thumbnail(
    request: Request, runtime: RuntimeDep, principal: CurrentPrincipal, study: str, series: str
) -> Response:
    objs = await _locate(runtime, principal, study, series)
    return await _rendered(request, runtime, principal, objs, None, thumbnail=True)


@router.get(
    "/studies/{study}/series/{series}/instances/{sop}/thumbnail",
    summary="Thumbnail of an instance",
)
async def instance_thumbnail(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    study: str,
    series: str,
    sop: str,
) -> Response:
    objs = await _locate(runtime, principal, study, series, sop)
    return await _rendered(request, runtime, principal, objs, None, thumbnail=True)


# --- WADO-URI (PS3.18 9) ------------------------------------------------------------------


@wado_uri_router.get("/wado", summary="WADO-URI, for older viewers")
async def wado_uri(
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    request_type: Annotated[str, Query(alias="requestType")],
    study_uid: Annotated[str, Query(alias="studyUID")],
    series_uid: Annotated[str, Query(alias="seriesUID")],
    object_uid: Annotated[str, Query(alias="objectUID")],
    content_type: Annotated[str, Query(alias="contentType")] = "image/jpeg",
    transfer_syntax: Annotated[str | None, Query(alias="transferSyntax")] = None,
    frame_number: Annotated[int, Query(alias="frameNumber", ge=1)] = 1,
    window_center: Annotated[float | None, Query(alias="windowCenter")] = None,
    window_width: Annotated[float | None, Query(alias="windowWidth", gt=0)] = None,
    rows: Annotated[int | None, Query(ge=1, le=8192)] = None,
    columns: Annotated[int | None, Query(ge=1, le=8192)] = None,
    image_quality: Annotated[int, Query(alias="imageQuality", ge=1, le=100)] = 90,
) -> Response:
    """``requestType=WADO``; ``contentType`` ``application/dicom`` (the object, Range
    supported), ``image/jpeg`` (default) or ``image/png`` (rendered)."""
    if request_type != "WADO":
        raise BadRequest(f"requestType must be WADO, not {request_type!r}.")
    obj = (await _locate(runtime, principal, study_uid, series_uid, object_uid))[0]
    kind = content_type.split(",")[0].split(";")[0].strip().lower()
    if kind == media.DICOM:
        syntax = transfer_syntax or obj.transfer_syntax_uid
        ranges = [media.MediaRange(media.DICOM, syntax, 1.0, False)]
        return await _single_file(request, runtime, principal, obj, ranges)
    if kind not in ("image/jpeg", "image/png"):
        raise NotAcceptable(
            f"contentType {content_type!r}: use application/dicom, image/jpeg or image/png."
        )
    if (window_center is None) != (window_width is None):
        raise BadRequest("Give windowCenter and windowWidth together.")
    _check_frames(obj, [frame_number])
    params = pixels.RenderParams(
        media_type=kind,
        quality=image_quality,
        window=(window_center, window_width, "linear")
        if window_center is not None and window_width is not None
        else None,
        viewport=(columns or rows or 0, rows or columns or 0) if (rows or columns) else None,
    )
    tag = etag([obj], "wado-uri", frame_number, params)
    if (unchanged := _unchanged(request, tag, _IMMUTABLE)) is not None:
        return unchanged
    dicomweb.audit(runtime, principal, "dicomweb.rendered", [obj])
    data = await _in_thread(
        pixels.render, await dicomweb.path_of(runtime, obj), frame_number, params
    )
    return Response(data, media_type=kind, headers={"ETag": tag, "Cache-Control": _IMMUTABLE})
