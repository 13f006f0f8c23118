"""The one path every received object takes, whether it came by browser upload, STOW-RS or
C-STORE: prepare (inspect, store the file; in a worker process, ``ingest.prepare``) -> index it
-> open or update the case.

Order matters for "nothing half-stored, nothing acknowledged lost": the file is written and
fsynced under its final key before its index row is added, and the caller acknowledges only after
the unit of work commits. A crash before the commit leaves at most an unreferenced file, never a
row without its file, and the sender, who got no success, sends again. With object storage the
file is written to the local receive cache, and a job sends it to the bucket after the commit
(``archive.offload``): no upload on the receive path.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.archive.offload import offload_soon
from radrelay.archive.service import archive
from radrelay.audit.service import audit
from radrelay.auth.schemas import Principal
from radrelay.cases.schemas import ClinicalInfo, Source
from radrelay.cases.service import cases
from radrelay.errors import QueueUnavailable
from radrelay.ingest.prepare import PrepareConfig, Prepared, Received, prepare
from radrelay.ingest.schemas import FileOutcome, Outcome
from radrelay.kit import dicom, pool
from radrelay.kit.db import on_commit
from radrelay.kit.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    source: Source
    hospital_id: int
    principal: Principal | None = None
    calling_ae: str = ""


@dataclass
class _StudyBatch:
    case_id: int
    study_pk: int
    # Created in this transaction: the study has no instances yet, the case holds the arrival.
    new_study: bool = False
    new_case: bool = False
    new_series: int = 0
    new_instances: int = 0
    per_series: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    series: dict[tuple[int, str], int] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


class _Ids:
    """Ids of studies (with their case) and series already indexed, so that the instances after
    the first of a study skip their lookups. Rows are never deleted and entries are added only
    after a commit, so an entry is never wrong; a miss just costs the lookup."""

    LIMIT = 50_000

    def __init__(self) -> None:
        self.studies: dict[tuple[int, str], tuple[int, int]] = {}
        self.series: dict[tuple[int, str], int] = {}

    def remember_study(self, key: tuple[int, str], value: tuple[int, int]) -> None:
        if len(self.studies) >= self.LIMIT:
            self.studies.clear()
        self.studies[key] = value

    def remember_series(self, key: tuple[int, str], value: int) -> None:
        if len(self.series) >= self.LIMIT:
            self.series.clear()
        self.series[key] = value


def _ids(runtime: Runtime) -> _Ids:
    ids = runtime.local.get("ingest.ids")
    if ids is None:
        ids = runtime.local["ingest.ids"] = _Ids()
    return ids  # type: ignore[no-any-return]


_QUEUE_PING_TIMEOUT = 2.0


class IngestService:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    async def require_queue(self, runtime: Runtime) -> None:
        """Refuse to receive while the job queue is unreachable (``QueueUnavailable``: 503,
        0xA700 for C-STORE). A study taken in now could be neither routed nor announced while
        its sender believes it delivered; told to retry, the sender keeps it and sends it again
        once the queue is back. One PING per request (for C-STORE, per group commit, before its
        transaction), a fraction of a millisecond on a local Redis. Embedded, the queue is this
        process and always answers."""
        try:
            assert runtime.jobs is not None
            await asyncio.wait_for(runtime.jobs.ping(), _QUEUE_PING_TIMEOUT)
        except Exception as exc:
            log.warning(
                "refusing to receive: the job queue is unavailable (%s)", type(exc).__name__
            )
            raise QueueUnavailable(
                "The job queue is unavailable, so nothing was received: what arrives now could "
                "not be routed. Send it again shortly."
            ) from exc

    @staticmethod
    def _config(runtime: Runtime) -> PrepareConfig:
        settings = runtime.settings
        # Object storage: the local receive cache; the bucket is written after the commit.
        return PrepareConfig(
            settings.tmp_dir, settings.receive_storage_url, settings.max_instance_bytes
        )

    def _submit(
        self, runtime: Runtime, hospital_id: int, item: Received, expected_study: str | None
    ) -> Future[Prepared | FileOutcome]:
        config = self._config(runtime)
        return pool.submit(runtime, prepare, config, hospital_id, item, expected_study)

    def prepare(
        self,
        runtime: Runtime,
        hospital_id: int,
        item: Received,
        expected_study: str | None = None,
        *,
        here: bool = False,
    ) -> Prepared | FileOutcome:
        """Inspect and store one object, waiting for it: for threads that may block (the DICOM
        gateway's associations). In a worker process, or with ``here`` in the calling thread,
        which skips the hand-over to and from the worker but holds the interpreter lock while
        pydicom parses."""
        if here:
            return prepare(self._config(runtime), hospital_id, item, expected_study)
        return self._submit(runtime, hospital_id, item, expected_study).result()

    def prepare_soon(
        self,
        runtime: Runtime,
        hospital_id: int,
        item: Received,
        expected_study: str | None = None,
    ) -> asyncio.Future[Prepared | FileOutcome]:
        """Start preparing one object in a worker; await the result later (so a request can
        prepare its first parts while the rest of its body is still arriving)."""
        return asyncio.wrap_future(self._submit(runtime, hospital_id, item, expected_study))

    async def prepare_all(
        self,
        runtime: Runtime,
        hospital_id: int,
        items: Sequence[Received],
        expected_study: str | None = None,
    ) -> list[Prepared | FileOutcome]:
        return list(
            await asyncio.gather(
                *(self.prepare_soon(runtime, hospital_id, item, expected_study) for item in items)
            )
        )

    async def store(
        self,
        runtime: Runtime,
        session: AsyncSession,
        origin: Origin,
        items: Sequence[Prepared | FileOutcome],
        *,
        info: ClinicalInfo | None = None,
    ) -> list[FileOutcome]:
        """Index prepared objects in the caller's unit of work and open or update their cases.
        Returns one outcome per item, in order; failures from ``prepare`` pass through.

        Work is per study, not per object: one lookup of the known digests and one multi-row
        insert for all the study's objects in the request, so a STOW batch of 50 costs a
        handful of statements."""
        outcomes: list[FileOutcome | None] = [
            item if isinstance(item, FileOutcome) else None for item in items
        ]
        by_study: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            if isinstance(item, Prepared):
                by_study[item.inspected.header.study_instance_uid].append(i)
        batches = []
        first_new: str | None = None
        # Studies in UID order: two requests touching the same studies take their locks in the
        # same order and cannot deadlock.
        for _, positions in sorted(by_study.items()):
            group = [cast(Prepared, items[i]) for i in positions]
            batch = await self._open_study(
                runtime, session, origin, group[0].inspected.header, info
            )
            # Hold the study until commit: the digest lookup and the insert below must not
            # interleave with another transaction's on the same study (else two identical
            # copies both look new, or two different ones are not seen as a conflict).
            await archive.lock_study(session, batch.study_pk)
            results = await self._index_study(runtime, session, origin, group, batch)
            for i, outcome in zip(positions, results, strict=True):
                outcomes[i] = outcome
                if first_new is None and outcome.outcome in (Outcome.stored, Outcome.conflict):
                    first_new = cast(Prepared, items[i]).inspected.sha256
            batches.append(batch)
        for batch in batches:
            await archive.count_added(
                session,
                study_pk=batch.study_pk,
                new_series=batch.new_series,
                new_instances=batch.new_instances,
                per_series=batch.per_series,
            )
            await cases.record_arrivals(
                session,
                batch.case_id,
                count=batch.new_instances,
                conflicts=batch.conflicts,
                opened=batch.new_case,
            )
        if first_new is not None:
            offload_soon(runtime, session, origin.hospital_id, first_new)
        return cast(list[FileOutcome], outcomes)

    async def _open_study(
        self,
        runtime: Runtime,
        session: AsyncSession,
        origin: Origin,
        h: dicom.Header,
        info: ClinicalInfo | None,
    ) -> _StudyBatch:
        ids = _ids(runtime)
        key = (origin.hospital_id, h.study_instance_uid)
        known = ids.studies.get(key)
        # Clinical information given with an upload must reach the case even for a known study.
        if known is not None and info is None:
            return _StudyBatch(known[1], known[0])
        ref = await archive.study_for(session, origin.hospital_id, h)
        case_id, case_created = await cases.open_for_study(
            session,
            hospital_id=origin.hospital_id,
            study=ref,
            header=h,
            source=origin.source,
            info=info,
            principal=origin.principal,
        )
        on_commit(session, partial(ids.remember_study, key, (ref.study_pk, case_id)))
        return _StudyBatch(case_id, ref.study_pk, new_study=ref.created, new_case=case_created)

    async def _index_study(
        self,
        runtime: Runtime,
        session: AsyncSession,
        origin: Origin,
        group: list[Prepared],
        batch: _StudyBatch,
    ) -> list[FileOutcome]:
        ids = _ids(runtime)
        known: dict[str, set[str]] = {}
        if not batch.new_study:  # else no instance can be stored under it yet
            known = await archive.digests_for_sops(
                session, batch.study_pk, {p.inspected.header.sop_instance_uid for p in group}
            )
        rows = []
        results = []
        for item in group:
            h, sha = item.inspected.header, item.inspected.sha256
            digests = known.setdefault(h.sop_instance_uid, set())
            if sha in digests:
                results.append(
                    FileOutcome.of(
                        item.name, h, Outcome.duplicate, 0, "already stored", batch.case_id
                    )
                )
                continue
            conflict = bool(digests)
            digests.add(sha)  # a second copy in the same request is a duplicate of this one
            series_key = (batch.study_pk, h.series_instance_uid)
            series_pk = ids.series.get(series_key) or batch.series.get(series_key)
            if series_pk is None:
                series_pk, created = await archive.series_for(session, batch.study_pk, h)
                batch.series[series_key] = series_pk
                batch.new_series += int(created)
                on_commit(session, partial(ids.remember_series, series_key, series_pk))
            rows.append(
                archive.instance_row(
                    study_pk=batch.study_pk,
                    series_pk=series_pk,
                    h=h,
                    sha256=sha,
                    size=item.inspected.size,
                    key=item.key,
                    source=origin.source.value,
                    conflict=conflict,
                )
            )
            batch.new_instances += 1
            batch.per_series[series_pk] += 1
            if conflict:
                batch.conflicts.append(h.sop_instance_uid)
                results.append(
                    FileOutcome.of(
                        item.name,
                        h,
                        Outcome.conflict,
                        0,
                        "another object was already stored under this SOP Instance UID; both are "
                        "kept and the case is flagged",
                        batch.case_id,
                    )
                )
            else:
                results.append(FileOutcome.of(item.name, h, Outcome.stored, 0, "", batch.case_id))
        await archive.add_instances(session, rows)
        return results

    def audit_receipt(
        self,
        session: AsyncSession,
        principal: Principal | None,
        hospital_id: int,
        per_study: Mapping[str, int],
        *,
        source: str,
        calling_ae: str = "",
    ) -> None:
        """One audit event per study received in a request or association (not per instance:
        the trail stays readable and the hot path light)."""
        for study_uid, count in per_study.items():
            detail: dict[str, object] = {"source": source, "instances": count}
            if calling_ae:
                detail["calling_ae"] = calling_ae
            audit.record(
                session,
                principal,
                "study.receive",
                object_type="study",
                object_id=study_uid,
                hospital_id=hospital_id,
                detail=detail,
            )


def stored_per_study(outcomes: Sequence[FileOutcome]) -> Counter[str]:
    return Counter(o.study_instance_uid for o in outcomes if o.outcome.ok and o.study_instance_uid)


ingest = IngestService()
