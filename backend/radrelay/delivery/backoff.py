"""When to try a delivery again, and when to stop trying on our own.

Exponential backoff: after the n-th failed attempt the next one waits ``base * factor**(n-1)``,
at most ``cap``, shortened by up to ``JITTER`` (a fifth) at random so that the deliveries a
hospital's outage held back do not all come back in the same second. With the defaults:
30 s, 1 min, 2 min, 4 min, 8 min, 16 min, 32 min, then 1 h for each later attempt.

"Never dropped": a delivery ends ``sent`` or ``failed``, never gone. After ``max_attempts``
temporary failures it becomes ``failed`` with the last reason, stays visible to coordinators and
technicians, and can be retried by hand (which starts the count again). A permanent failure
stops at once: retrying the same thing would not help until someone changes it. The deliveries
table (``models.delivery``) keeps these states; ``decide`` is the rule ``delivery.service``
follows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from radrelay.delivery.schemas import Outcome, OutcomeState

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Decision", "DeliveryState", "decide", "next_attempt"]

BASE = timedelta(seconds=30)
FACTOR = 2.0
CAP = timedelta(hours=1)
JITTER = 0.2
# 11 waits: 30 s + 1 + 2 + 4 + 8 + 16 + 32 min + 4 x 1 h, about 5 hours of trying, which
# outlasts a hospital's usual night-time network or PACS maintenance window.
DEFAULT_MAX_ATTEMPTS = 12


def next_attempt(
    attempt: int,
    now: datetime,
    *,
    base: timedelta = BASE,
    factor: float = FACTOR,
    cap: timedelta = CAP,
    jitter: Callable[[], float] = random.random,
) -> datetime:
    """The time of the next attempt after ``attempt`` attempts (1 after the first) failed.

    ``jitter`` returns a number in [0, 1): 0 keeps the full delay, values towards 1 shorten it
    by up to ``JITTER``. The jitter only shortens, so the cap holds."""
    if attempt < 1:
        raise ValueError("attempt counts the attempts made so far: 1 or more")
    u = jitter()
    if not 0.0 <= u < 1.0:
        raise ValueError(f"jitter must return a number in [0, 1), not {u}")
    # Compared in seconds before raising to the power, so a long-failing delivery cannot
    # overflow timedelta.
    exponent = attempt - 1
    seconds = cap.total_seconds()
    if exponent < 64:
        seconds = min(seconds, base.total_seconds() * factor**exponent)
    return now + timedelta(seconds=seconds * (1.0 - JITTER * u))


class DeliveryState(StrEnum):
    pending = "pending"  # waiting for its next attempt
    sent = "sent"
    failed = "failed"  # stays visible; retried only by hand


@dataclass(frozen=True, slots=True)
class Decision:
    state: DeliveryState
    next_at: datetime | None  # set when pending
    reason: str


def decide(
    outcome: Outcome,
    attempts: int,
    now: datetime,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base: timedelta = BASE,
    jitter: Callable[[], float] = random.random,
) -> Decision:
    """What becomes of a delivery after its ``attempts``-th attempt ended in ``outcome``.

    A temporary failure is tried again (no sooner than the peer's Retry-After) until
    ``max_attempts``; then, like a permanent failure, the delivery is ``failed`` and kept."""
    if outcome.state is OutcomeState.sent:
        return Decision(DeliveryState.sent, None, outcome.reason)
    if outcome.state is OutcomeState.failed:
        return Decision(DeliveryState.failed, None, outcome.reason)
    if attempts >= max_attempts:
        return Decision(
            DeliveryState.failed,
            None,
            f"gave up after {attempts} attempts; the last: {outcome.reason} "
            "(retry by hand once the cause is fixed)",
        )
    at = next_attempt(attempts, now, base=base, jitter=jitter)
    if outcome.retry_after is not None:
        at = max(at, now + timedelta(seconds=outcome.retry_after))
    return Decision(DeliveryState.pending, at, outcome.reason)
