"""Jobs of delivery: one attempt (``deliver``) and the retry loop (``delivery_retry``)."""

from __future__ import annotations

from typing import Any

from radrelay.delivery.service import deliveries
from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime


async def deliver(ctx: dict[str, Any], delivery_id: int) -> str:
    """One attempt to deliver. The claim and the outcome are two short units of work; the
    sending between them holds no transaction, as a PACS may take minutes to answer."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        attempt = await deliveries.start_attempt(session, delivery_id, utcnow())
    if attempt is None:
        return "nothing to do"
    outcome = await deliveries.send(runtime, attempt)
    async with runtime.uow() as session:
        await deliveries.record(session, runtime.settings, attempt, outcome, utcnow())
    return outcome.state.value


async def delivery_retry(ctx: dict[str, Any]) -> int:
    """Periodic: send the attempts that are due, and give back the ones a dead worker left."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        return await deliveries.retry_due(session, utcnow())
