"""Jobs of the worklist: routing a case, the SLA watch, an expert going offline. Each opens its
own unit of work and is safe to run twice (routing re-reads the case and applies a decision only
to the state it was computed from)."""

from __future__ import annotations

from typing import Any

from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime
from radrelay.routing.service import RoutingContext, routing
from radrelay.worklist.service import worklist


async def route_case(ctx: dict[str, Any], case_id: int, trigger: str) -> str | None:
    """Route one case (``route:<case id>:<trigger>``); returns the decision's mode."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        decision = await routing.route(
            session, RoutingContext.of(runtime), case_id, trigger=trigger, now=utcnow()
        )
    return decision.mode.value if decision else None


async def sla_watch(ctx: dict[str, Any]) -> dict[str, int]:
    """Periodic: leases, SLA warnings and breaches, escalation, cases waiting for a reader."""
    runtime: Runtime = ctx["runtime"]
    report = await worklist.watch(runtime, RoutingContext.of(runtime), utcnow())
    return report.model_dump()


async def expert_offline(ctx: dict[str, Any], user_id: int) -> int:
    """An expert went offline: their unstarted cases and offers go back to routing."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        return await worklist.expert_offline(session, RoutingContext.of(runtime), user_id, utcnow())
