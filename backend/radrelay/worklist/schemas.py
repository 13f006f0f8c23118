"""The worklist as readers and coordinators see it, and the bodies of their actions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from radrelay.cases.schemas import CaseRead, Priority


class Hold(StrEnum):
    """How a case sits in a reader's worklist."""

    offered = "offered"  # in their pool: theirs if they claim it first
    assigned = "assigned"  # given to them, not opened yet
    reading = "reading"  # claimed, under a lease


class SlaRead(BaseModel):
    state: str = Field(description="ok, warning or breached.")
    remaining_minutes: float = Field(description="Minutes to the deadline; negative when late.")
    elapsed_fraction: float
    overdue_wait: bool = Field(description="Waited past the maximum wait: it goes first.")


class WorklistItem(BaseModel):
    case: CaseRead
    hold: Hold | None = Field(description="The caller's hold (readers); null for coordinators.")
    sla: SlaRead | None = Field(description="Null until the case is routed.")


class WorklistPage(BaseModel):
    items: list[WorklistItem]
    total: int
    limit: int
    offset: int
    hidden_offers: int = Field(
        default=0,
        description="Readers: cases offered to them beyond the top of their pool, shown when "
        "the ones above are taken (no cherry-picking).",
    )


class ClaimRead(BaseModel):
    case_id: int
    status: str
    lease_expires_at: datetime = Field(description="Claim again before this to keep the case.")
    lease_minutes: int


class Reason(BaseModel):
    reason: str = Field(default="", max_length=1000)


class CoordinatorReason(BaseModel):
    """Coordinators say why they act; the reason is kept on the case's timeline."""

    reason: str = Field(min_length=1, max_length=1000)


class AssignBody(CoordinatorReason):
    reader_id: int = Field(description="User id of an active radiologist.")


class PriorityBody(CoordinatorReason):
    priority: Priority


class RoutingDecisionRead(BaseModel):
    id: int
    decided_at: datetime
    trigger: str
    mode: str
    assignee_id: int | None
    escalation_step: int
    applied: bool
    decision: dict[str, Any] = Field(
        description="The engine's explanation: classification, filters and scores per reader."
    )


class WatchReport(BaseModel):
    """What one pass of the SLA watch did."""

    leases_expired: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0
    rerouted: int = 0
