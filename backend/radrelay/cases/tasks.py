"""Jobs of the cases domain. Each opens its own unit of work and is safe to run twice."""

from __future__ import annotations

from typing import Any

from radrelay.cases.service import cases
from radrelay.kit.runtime import Runtime


async def case_ready(ctx: dict[str, Any], case_id: int) -> None:
    """A case's study is complete: summarise it (routing starts here, issue 4)."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        await cases.on_ready(session, case_id)


async def sweep_stable_studies(ctx: dict[str, Any]) -> int:
    """Periodic: studies with no new instance for the stable age become ready cases."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        ready = await cases.sweep_stable(session, runtime.settings.stable_age_seconds)
    return len(ready)
