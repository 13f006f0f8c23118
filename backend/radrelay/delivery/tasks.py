"""Jobs of delivery: one attempt (``deliver``) and the retry loop (``delivery_retry``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from radrelay.delivery.service import Attempt, deliveries
from radrelay.kit.db import utcnow
from radrelay.kit.runtime import Runtime

log = logging.getLogger(__name__)


async def deliver(ctx: dict[str, Any], delivery_id: int) -> str:
    """One attempt to deliver. The claim and the outcome are two short units of work; the
    sending between them holds no transaction, as a PACS may take minutes to answer."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        attempt = await deliveries.start_attempt(session, delivery_id, utcnow())
    if attempt is None:
        return "nothing to do"
    # While the peer takes its time, the claim is renewed: the retry loop gives a claim that
    # nobody renews (this worker died) to another attempt.
    keeping = asyncio.create_task(_keep_claim(runtime, attempt))
    try:
        outcome = await deliveries.send(runtime, attempt)
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
    async with runtime.uow() as session:
        await deliveries.record(session, runtime.settings, attempt, outcome, utcnow())
    return outcome.state.value


async def _keep_claim(runtime: Runtime, attempt: Attempt) -> None:
    every = runtime.settings.delivery_claim_seconds / 3
    while True:
        await asyncio.sleep(every)
        try:
            async with runtime.uow() as session:
                if not await deliveries.keep_claim(session, attempt, utcnow()):
                    return  # given up for dead meanwhile: its record() will be ignored
        except Exception:
            # The database is away: the claim may lapse and the delivery be sent again,
            # which the peer takes as the same objects (their UIDs come from the report).
            log.warning("delivery %s: could not renew the claim", attempt.delivery_id)


async def delivery_retry(ctx: dict[str, Any]) -> int:
    """Periodic: send the attempts that are due, and give back the ones a dead worker left."""
    runtime: Runtime = ctx["runtime"]
    async with runtime.uow() as session:
        return await deliveries.retry_due(session, runtime.settings, utcnow())
