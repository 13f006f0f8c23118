"""The audit trail: every access to patient data, every security event.

``record`` adds the event to the caller's unit of work, so it commits (or not) with what it
describes. ``record_now`` commits on its own, for events that must survive a failed request: a
refused login, a denied access.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from radrelay.auth.schemas import Principal
from radrelay.kit.db import Database, utcnow
from radrelay.kit.runtime import Runtime
from radrelay.models import AuditEvent

log = logging.getLogger(__name__)


def _event(
    principal: Principal | None,
    action: str,
    *,
    object_type: str = "",
    object_id: str | int = "",
    hospital_id: int | None = None,
    outcome: str = "success",
    ip: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent(
        actor_id=principal.user_id if principal else None,
        actor_role=principal.role.value if principal else "",
        hospital_id=hospital_id
        if hospital_id is not None
        else (principal and principal.hospital_id),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        ip=ip or (principal.ip if principal else ""),
        outcome=outcome,
        detail=detail or {},
    )


class AuditService:
    def record(
        self, session: AsyncSession, principal: Principal | None, action: str, **kw: Any
    ) -> None:
        session.add(_event(principal, action, **kw))

    async def record_now(
        self, db: Database, principal: Principal | None, action: str, **kw: Any
    ) -> None:
        async with db.unit_of_work() as session:
            session.add(_event(principal, action, **kw))


audit = AuditService()


class AccessLog:
    """Reads of images and metadata through DICOMweb, written to the trail in the background.

    A viewer opening a CT pulls hundreds of frames; one audit row (and one database write) per
    request would cost more than serving the frame. Reads are counted in memory per (who,
    action, study) and written as one row per key every ``interval`` seconds and when the
    process stops, with the count and the first and last time. A process killed outright loses
    at most the last interval's counts; every other read is in the trail.
    """

    def __init__(self, db: Database, interval: float = 2.0):
        self.db = db
        self.interval = interval
        self._pending: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        principal: Principal,
        action: str,
        *,
        study_pk: int | None,
        hospital_id: int | None,
        items: int = 1,
    ) -> None:
        """``study_pk`` None: a search, whose ``items`` are the results returned."""
        key = (principal.user_id, principal.role.value, principal.ip, action, study_pk, hospital_id)
        now = utcnow()
        entry = self._pending.get(key)
        if entry is None:
            self._pending[key] = {"requests": 1, "items": items, "first": now, "last": now}
        else:
            entry["requests"] += 1
            entry["items"] += items
            entry["last"] = now
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        # Reads recorded while a flush waits for the database find this task still running and
        # start no other: loop until nothing is left, or they would sit in memory until the next
        # read (and be lost if none came before the process is killed).
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
            if not self._pending:
                return

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with self.db.unit_of_work() as session:
                for (actor, role, ip, action, study_pk, hospital_id), entry in pending.items():
                    session.add(
                        AuditEvent(
                            at=entry["first"],
                            actor_id=actor,
                            actor_role=role,
                            hospital_id=hospital_id,
                            action=action,
                            object_type="study" if study_pk is not None else "search",
                            object_id="" if study_pk is None else str(study_pk),
                            ip=ip,
                            outcome="success",
                            detail={
                                "requests": entry["requests"],
                                "items": entry["items"],
                                "last_at": entry["last"].isoformat(),
                            },
                        )
                    )
        except Exception:
            # The database is away: keep the counts for the next try rather than lose them.
            log.warning("could not write the access log; keeping %d entries", len(pending))
            for key, entry in pending.items():
                merged = self._pending.setdefault(key, entry)
                if merged is not entry:
                    merged["requests"] += entry["requests"]
                    merged["items"] += entry["items"]
                    merged["first"] = min(merged["first"], entry["first"])

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        await self.flush()


def access_log(runtime: Runtime) -> AccessLog:
    """The process's access log (one per runtime, flushed when it closes)."""
    found = runtime.local.get("audit.access_log")
    if found is None:
        found = runtime.local["audit.access_log"] = AccessLog(runtime.db)
        runtime.on_close(found.close)
    return found  # type: ignore[no-any-return]
