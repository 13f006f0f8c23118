"""Reading the archive through DICOMweb: search, locate, metadata, frames, in the caller's
scope. Pixel work (decoding, rendering, transcoding) is in ``pixels``; what is computed once per
object (DICOM JSON, frame positions) is in ``metadata``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import access_log
from radrelay.auth.schemas import Principal, Role
from radrelay.cases.auth import Scope, scope_of
from radrelay.dicomweb import metadata as meta
from radrelay.dicomweb import qido
from radrelay.dicomweb.repository import Located, repository
from radrelay.errors import NotFound
from radrelay.kit import pool
from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime
from radrelay.kit.storage import ObjectMissing, StorageError
from radrelay.reporting.service import reports

# Metadata of this many objects is computed and saved per transaction (and as many objects
# are looked for in object storage at once).
_BATCH = 50
_CHUNK = 1 << 20
# A viewer asks for an instance's frames, rendered frames and metadata in quick succession:
# where it is and that the caller may see it is remembered this long (and so is a lost
# assignment honoured this late at most).
_RECENT_SECONDS = 5.0
_RECENT_MAX = 20_000


def instance_url(base: str, obj: Located) -> str:
    return f"{base}/studies/{obj.study_uid}/series/{obj.series_uid}/instances/{obj.sop_uid}"


def etag(objects: Sequence[Located], *variant: object) -> str:
    """Strong validator of a representation: stored objects never change, so the digests of
    the objects it is made of and how it is made (media type, syntax, parameters) identify it."""
    h = hashlib.sha256()
    for obj in objects:
        h.update(obj.sha256.encode())
    h.update(repr(variant).encode())
    return f'"{h.hexdigest()[:40]}"'


async def _wider(session: AsyncSession, principal: Principal) -> Scope | None:
    """A radiologist's scope with the studies waiting for their co-signature (reporting's
    rule), when it adds any; None otherwise, and for everyone else without a query."""
    if principal.role != Role.radiologist:
        return None
    scope = await reports.image_scope(session, principal, utcnow())
    return scope if scope.cosign_hospital_ids else None


class DicomwebService:
    async def search(
        self,
        session: AsyncSession,
        principal: Principal,
        query: qido.Query,
        base: str,
        scoped: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], bool]:
        """Results as DICOM JSON, and whether more lie beyond ``limit``."""
        attrs = qido.returned(query, scoped)
        scope = await _wider(session, principal) or scope_of(principal)
        rows = await repository.search(session, scope, query)
        results = []
        for values in rows[: query.limit]:
            url = f"{base}/studies/{values['StudyInstanceUID']}"
            if query.level != qido.Level.study:
                url += f"/series/{values['SeriesInstanceUID']}"
            if query.level == qido.Level.instance:
                url += f"/instances/{values['SOPInstanceUID']}"
            results.append(qido.result(attrs, values, url))
        return results, len(rows) > query.limit

    async def check_study(
        self, session: AsyncSession, principal: Principal, study_uid: str
    ) -> None:
        if await repository.study_pks(session, study_uid, scope_of(principal)):
            return
        wider = await _wider(session, principal)
        if wider is None or not await repository.study_pks(session, study_uid, wider):
            raise NotFound("No such study in the archive, or not one you may see.")

    async def locate(
        self,
        session: AsyncSession,
        principal: Principal,
        study_uid: str,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        *,
        with_document: bool = False,
    ) -> list[Located]:
        """The objects named by the URL, or 404: absent and out of scope look the same."""
        # The studies a senior opens to co-sign are looked up only when the case scope has
        # nothing: a viewer's many requests for a case it holds cost no extra query.
        found = await repository.locate(
            session,
            scope_of(principal),
            study_uid,
            series_uid,
            sop_uid,
            with_document=with_document,
        )
        wider = None if found else await _wider(session, principal)
        if wider is not None:
            found = await repository.locate(
                session, wider, study_uid, series_uid, sop_uid, with_document=with_document
            )
        if not found:
            what = "instance" if sop_uid else "series" if series_uid else "study"
            raise NotFound(f"No such {what} in the archive, or not one you may see.")
        return found

    async def instance(
        self, runtime: Runtime, principal: Principal, study: str, series: str, sop: str
    ) -> Located:
        """One instance, described, for frame and rendering requests: from the last few
        seconds' lookups when the same scope asked for it (no database round trip), else
        located and completed."""
        scope = scope_of(principal)
        key = (scope, study, series, sop)
        recent: dict[Any, tuple[float, Located]] = runtime.local.setdefault("dicomweb.recent", {})
        now = time.monotonic()
        hit = recent.get(key)
        if hit is not None and now - hit[0] < _RECENT_SECONDS:
            return hit[1]
        async with runtime.db.reading() as session:
            found = await self.locate(session, principal, study, series, sop)
        obj = (await self.complete(runtime, found))[0]
        if len(recent) >= _RECENT_MAX:
            recent.clear()
        recent[key] = (now, obj)
        return obj

    def audit(
        self, runtime: Runtime, principal: Principal, action: str, objs: Sequence[Located]
    ) -> None:
        """One entry per study touched, counted in the background (``AccessLog``)."""
        per_study: dict[tuple[int, int], int] = {}
        for obj in objs:
            key = (obj.study_pk, obj.hospital_id)
            per_study[key] = per_study.get(key, 0) + 1
        log = access_log(runtime)
        for (study_pk, hospital_id), n in per_study.items():
            log.record(principal, action, study_pk=study_pk, hospital_id=hospital_id, items=n)

    def audit_search(self, runtime: Runtime, principal: Principal, results: int) -> None:
        access_log(runtime).record(
            principal, "dicomweb.search", study_pk=None, hospital_id=None, items=results
        )

    async def path_of(self, runtime: Runtime, obj: Located) -> Path:
        """A local file of the object, for pydicom and frame offsets: the stored file, or with
        object storage a cached copy, downloaded first if need be. An index row without its
        object is damage, not a user error: ``ObjectMissing`` says so loudly."""
        path = runtime.storage.local_path(obj.storage_key)
        if path is not None:
            return path
        return await asyncio.to_thread(runtime.storage.fetch, obj.storage_key)

    async def check_stored(self, runtime: Runtime, objs: Sequence[Located]) -> None:
        """Raise ``ObjectMissing`` before a response starts if one of the objects is nowhere:
        a multipart answer cut short halfway would look like a smaller study."""
        remote = [o.storage_key for o in objs if runtime.storage.local_path(o.storage_key) is None]
        for start in range(0, len(remote), _BATCH):
            keys = remote[start : start + _BATCH]
            found = await asyncio.gather(
                *(asyncio.to_thread(runtime.storage.exists, key) for key in keys)
            )
            for key, there in zip(keys, found, strict=True):
                if not there:
                    raise ObjectMissing(key)

    async def object_chunks(self, runtime: Runtime, obj: Located) -> AsyncIterator[bytes]:
        """The object's bytes as stored, read from the local file or streamed from the
        bucket, a chunk at a time."""
        fp = await asyncio.to_thread(runtime.storage.open, obj.storage_key)
        try:
            while chunk := await asyncio.to_thread(fp.read, _CHUNK):
                yield chunk
        finally:
            fp.close()

    async def complete(self, runtime: Runtime, objs: Sequence[Located]) -> list[Located]:
        """The objects with their metadata, computing (and keeping) what is missing: objects
        that arrived after their case was indexed, or before the indexing job got to them.
        Computed before the transaction that keeps it opens: SQLite has one writer, and ingest
        must not wait for pydicom."""
        missing = [o for o in objs if not o.described]
        if not missing:
            return list(objs)
        described = await self._describe(runtime, missing)
        async with runtime.uow() as session:
            await repository.save_metadata(session, [row for _, row in described])
        done = {obj.instance_pk: row for obj, row in described}
        out = []
        for obj in objs:
            row = done.get(obj.instance_pk)
            if row is not None:
                obj = Located(
                    **{
                        **obj.__dict__,
                        "described": True,
                        "document": row["document"],
                        "pixel_offset": row["pixel_offset"],
                        "frame_length": row["frame_length"],
                        "frames": row["frames"],
                    }
                )
            out.append(obj)
        return out

    async def _describe(
        self, runtime: Runtime, objs: Sequence[Located]
    ) -> list[tuple[Located, dict[str, Any]]]:
        paths = await asyncio.gather(*(self.path_of(runtime, o) for o in objs))
        futures = [asyncio.wrap_future(pool.submit(runtime, meta.describe, path)) for path in paths]
        results = await asyncio.gather(*futures)
        return [
            (
                obj,
                {
                    "instance_pk": obj.instance_pk,
                    "document": d.document,
                    "bits_allocated": d.bits_allocated,
                    "pixel_offset": d.pixel_offset,
                    "frame_length": d.frame_length,
                    "frames": d.frames,
                },
            )
            for obj, d in zip(objs, results, strict=True)
        ]

    def metadata_json(self, objs: Sequence[Located], base: str) -> bytes:
        """The DICOM JSON array of the objects' metadata, from the stored documents: joining
        text, no parsing."""
        parts = []
        for obj in objs:
            assert obj.document is not None
            prefix = f'"BulkDataURI":"{instance_url(base, obj)}/'
            parts.append(obj.document.replace('"BulkDataURI":"', prefix))
        return ("[" + ",".join(parts) + "]").encode()

    async def index_study(self, runtime: Runtime, study_pk: int) -> int:
        """Compute the metadata of a study's objects that lack it (the ``index_study`` job).
        Safe to run twice: rows already there are skipped, and equal rows never conflict."""
        async with runtime.uow() as session:
            missing = await repository.without_metadata(session, study_pk)
        done = 0
        for start in range(0, len(missing), _BATCH):
            batch = missing[start : start + _BATCH]
            described = await self._describe(runtime, batch)
            async with runtime.uow() as session:
                await repository.save_metadata(session, [row for _, row in described])
            done += len(batch)
        return done


def read_range(path: Path, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of a stored file (one frame, one fragment)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length:
        raise StorageError(f"stored file {path.name} is shorter than its index says")
    return data


def json_body(results: Any) -> bytes:
    return json.dumps(results, ensure_ascii=False, separators=(",", ":")).encode()


dicomweb = DicomwebService()
