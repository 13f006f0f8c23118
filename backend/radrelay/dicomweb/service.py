"""Reading the archive through DICOMweb: search, locate, metadata, frames, in the caller's
scope. Pixel work (decoding, rendering, transcoding) is in ``pixels``; what is computed once per
object (DICOM JSON, frame positions) is in ``metadata``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.audit.service import access_log
from radrelay.auth.schemas import Principal
from radrelay.cases.auth import scope_of
from radrelay.dicomweb import metadata as meta
from radrelay.dicomweb import qido
from radrelay.dicomweb.repository import Located, repository
from radrelay.errors import NotFound
from radrelay.kit import pool
from radrelay.kit.runtime import Runtime
from radrelay.kit.storage import StorageError

# Metadata of this many objects is computed and saved per transaction.
_BATCH = 50


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
        scope = scope_of(principal)
        attrs = qido.returned(query, scoped)
        results: list[dict[str, Any]] = []
        if query.level == qido.Level.study:
            studies = await repository.studies(session, scope, query)
            for study, patient in studies[: query.limit]:
                values = _values(study=study, patient=patient)
                url = f"{base}/studies/{study.study_instance_uid}"
                results.append(qido.result(attrs, values, url))
            more = len(studies) > query.limit
        elif query.level == qido.Level.series:
            series = await repository.series(session, scope, query)
            for se, study, patient in series[: query.limit]:
                values = _values(series=se, study=study, patient=patient)
                url = f"{base}/studies/{study.study_instance_uid}/series/{se.series_instance_uid}"
                results.append(qido.result(attrs, values, url))
            more = len(series) > query.limit
        else:
            instances = await repository.instances(session, scope, query)
            for inst, se, study, patient, bits in instances[: query.limit]:
                values = _values(instance=inst, series=se, study=study, patient=patient)
                values["BitsAllocated"] = bits
                url = (
                    f"{base}/studies/{study.study_instance_uid}/series/"
                    f"{se.series_instance_uid}/instances/{inst.sop_instance_uid}"
                )
                results.append(qido.result(attrs, values, url))
            more = len(instances) > query.limit
        return results, more

    async def check_study(
        self, session: AsyncSession, principal: Principal, study_uid: str
    ) -> None:
        if not await repository.study_pks(session, study_uid, scope_of(principal)):
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
        found = await repository.locate(
            session,
            scope_of(principal),
            study_uid,
            series_uid,
            sop_uid,
            with_document=with_document,
        )
        if not found:
            what = "instance" if sop_uid else "series" if series_uid else "study"
            raise NotFound(f"No such {what} in the archive, or not one you may see.")
        return found

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

    def path_of(self, runtime: Runtime, obj: Located) -> Path:
        path = runtime.storage.local_path(obj.storage_key)
        if path is None or not path.exists():
            # An index row without its file is damage, not a user error: say it loudly.
            raise StorageError(f"stored object {obj.instance_pk} is missing from storage")
        return path

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
        futures = [
            asyncio.wrap_future(pool.submit(runtime, meta.describe, self.path_of(runtime, o)))
            for o in objs
        ]
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


def _values(**rows: Any) -> dict[str, Any]:
    """Attribute values by keyword from index rows named by their model (study=, series= ...),
    for ``qido.result``."""
    values: dict[str, Any] = {}
    for attr in qido.ATTRS.values():
        row = rows.get(attr.column.class_.__name__.lower())
        if row is not None:
            values[attr.keyword] = getattr(row, attr.column.key)
    return values


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
