"""Turnaround report shapes, and the one row per case the report is computed from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from radrelay.cases.schemas import Priority, Subspecialty


class GroupBy(StrEnum):
    hospital = "hospital"
    subspecialty = "subspecialty"
    priority = "priority"
    modality = "modality"
    expert = "expert"
    day = "day"


class Interval(StrEnum):
    """Turnaround intervals, each from one case milestone to a later one."""

    received_to_assigned = "received_to_assigned"
    assigned_to_opened = "assigned_to_opened"
    received_to_opened = "received_to_opened"
    opened_to_preliminary = "opened_to_preliminary"
    received_to_preliminary = "received_to_preliminary"
    received_to_final = "received_to_final"


# (start milestone, end milestone) of each interval: attribute names of ``CaseTimes``.
INTERVAL_ENDS: dict[Interval, tuple[str, str]] = {
    Interval.received_to_assigned: ("received_at", "assigned_at"),
    Interval.assigned_to_opened: ("assigned_at", "opened_at"),
    Interval.received_to_opened: ("received_at", "opened_at"),
    Interval.opened_to_preliminary: ("opened_at", "preliminary_at"),
    Interval.received_to_preliminary: ("received_at", "preliminary_at"),
    Interval.received_to_final: ("received_at", "final_at"),
}

PERCENTILES = (50, 90, 95)


class OutputFormat(StrEnum):
    json = "json"
    csv = "csv"


@dataclass(frozen=True, slots=True)
class CaseTimes:
    """What the report needs of one case: its milestones and the labels it is grouped by.
    Holds no patient data."""

    received_at: datetime
    assigned_at: datetime | None
    opened_at: datetime | None
    preliminary_at: datetime | None
    final_at: datetime | None
    deadline: datetime | None
    hospital_id: int
    hospital_code: str
    subspecialty: str | None
    priority: str
    modality: str
    reader_id: int | None
    reader_name: str | None


class IntervalStats(BaseModel):
    interval: Interval
    count: int = Field(description="Cases that reached both ends of the interval.")
    p50: float | None = Field(description="Minutes; null when count is 0.")
    p90: float | None
    p95: float | None


class SlaStats(BaseModel):
    finished: int = Field(description="Cases with a final report (final_at set).")
    on_time: int = Field(description="Finished no later than their deadline.")
    late: int = Field(description="Finished after their deadline.")
    no_deadline: int = Field(description="Finished, but never given a deadline (not routed).")
    compliance: float | None = Field(
        description="on_time / (on_time + late), 0..1; null when no finished case had a deadline."
    )
    breached_open: int = Field(
        description="Not finished and already past their deadline at the time of the report."
    )


class GroupStats(BaseModel):
    key: str = Field(description="Stable key of the group (hospital or reader id, day, value).")
    label: str = Field(description="What a person reads: hospital code, reader name, ...")
    cases: int = Field(description="Cases received in the range in this group.")
    intervals: list[IntervalStats]
    sla: SlaStats


class TurnaroundFilters(BaseModel):
    hospital_id: int | None = None
    priority: Priority | None = None
    subspecialty: Subspecialty | None = None


class TurnaroundReport(BaseModel):
    since: datetime = Field(description="Start of the range on received_at (inclusive).")
    until: datetime = Field(description="End of the range on received_at (exclusive).")
    generated_at: datetime = Field(description="The 'now' that breached_open is measured at.")
    group_by: GroupBy
    filters: TurnaroundFilters
    percentile_method: str
    overall: GroupStats
    groups: list[GroupStats]
