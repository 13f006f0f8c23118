"""Moving stored objects to object storage in the background (``kit.s3``).

Ingest and reporting put each object in the local receive cache. After their unit of work
commits, an ``offload_objects`` job sends the hospital's waiting objects to the bucket; the
periodic sweep sends again whatever a crash between commit and enqueue, or an outage of the
store, left waiting, drops the local copies already sent and trims the read cache. With file
storage nothing moves and all of this does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.kit import jobs
from radrelay.kit.runtime import Runtime
from radrelay.kit.s3 import S3Storage

log = logging.getLogger(__name__)

# Storage keys start with h<hospital id>/ (archive.keys.storage_key, reports): one job drains
# one hospital's objects, so hospitals are sent in parallel by several workers.
_HOSPITAL = re.compile(r"h(\d+)")


def offload_soon(runtime: Runtime, session: AsyncSession, hospital_id: int, digest: str) -> None:
    """After this unit of work commits, send the hospital's waiting objects. ``digest``, of
    one object the unit of work stored, keys the job: one job per batch of new objects."""
    if isinstance(runtime.storage, S3Storage):
        jobs.enqueue(
            session,
            "offload_objects",
            f"offload:h{hospital_id}:{digest[:16]}",
            hospital_id=hospital_id,
        )


async def send_waiting(runtime: Runtime, hospital_id: int) -> int:
    """The ``offload_objects`` job: how many objects it sent."""
    storage = runtime.storage
    if not isinstance(storage, S3Storage):
        return 0
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(storage.executor, storage.offload, f"h{hospital_id}")


async def sweep(runtime: Runtime) -> int:
    """The periodic sweep: enqueues a job for each hospital with objects that waited too
    long; returns how many."""
    storage = runtime.storage
    if not isinstance(storage, S3Storage):
        return 0
    result = await asyncio.get_running_loop().run_in_executor(storage.executor, storage.sweep)
    hospital_ids = sorted(
        int(m.group(1)) for name in result.unsent if (m := _HOSPITAL.fullmatch(name))
    )
    if result.unsent and len(hospital_ids) < len(result.unsent):
        log.warning("objects wait in the receive cache under keys that name no hospital")
    if hospital_ids:
        log.info(
            "offload sweep: objects of %d hospital(s) still wait for the bucket; sending again",
            len(hospital_ids),
        )
        assert runtime.jobs is not None
        # A new id per pass: a job that failed (the store was down) is tried again next pass.
        slot = int(time.time() // runtime.settings.s3_sweep_seconds)
        await runtime.jobs.send(
            jobs.Job("offload_objects", f"offload:h{hid}:sweep-{slot}", {"hospital_id": hid})
            for hid in hospital_ids
        )
    return len(hospital_ids)
