"""Jobs of reporting: the watch on critical findings whose communication is overdue."""

from __future__ import annotations

from typing import Any

from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime
from radrelay.reporting.service import reports


async def critical_watch(ctx: dict[str, Any]) -> int:
    """Periodic: announce (once each, to coordinators and the flagging reader) the critical
    findings whose communication to the hospital is overdue. Safe to run twice: a finding is
    taken by one conditional UPDATE."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        return await reports.critical_watch(session, utcnow())
