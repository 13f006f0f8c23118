"""What the routing engine reads (a case's facts, a snapshot of the experts) and what it decides.

Inputs and outputs are frozen dataclasses, not pydantic models: the router builds hundreds of
expert snapshots per decision and the explanation holds an object or more per expert, so they
must be cheap to make. Pydantic still validates them where they come from text (golden cases, a
stored decision read back) through ``TypeAdapter``, with unknown fields refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, ConfigDict, Field, TypeAdapter

from radrelay.cases.schemas import Priority, Subspecialty

__all__ = [
    "Candidate",
    "CaseFacts",
    "Classification",
    "Decision",
    "Employment",
    "ExpertSnapshot",
    "ExpertState",
    "FilterResult",
    "Mode",
    "Priority",
    "Qualification",
    "RuleRef",
    "ScoreComponent",
    "SlaState",
    "SlaStatus",
    "Subspecialty",
]

_STRICT = ConfigDict(extra="forbid")

Level = Annotated[int, Field(ge=1, le=3)]


class Employment(StrEnum):
    full_time = "full_time"
    part_time = "part_time"


class ExpertState(StrEnum):
    online = "online"
    away = "away"
    offline = "offline"


class Qualification(StrEnum):
    final = "final"  # signs final reports
    preliminary = "preliminary"  # writes preliminary reports that a senior co-signs


class Mode(StrEnum):
    push = "push"  # assigned to the best eligible expert
    pool = "pool"  # offered to the top eligible experts; the first to claim it reads it
    none = "none"  # nobody is eligible: the case waits for the next routing pass


class SlaState(StrEnum):
    ok = "ok"
    warning = "warning"  # past a warning threshold
    breached = "breached"  # past the deadline


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """The facts of one case that routing looks at. Datetimes are timezone-aware.

    ``modality`` is the study's primary modality (see ``engine.primary_modality``).
    ``escalation_step`` counts the SLA escalation steps already applied (0 at first routing).
    ``excluded_expert_ids`` are experts who released or declined the case.
    ``patient_key`` identifies the patient at the hospital; the reader who holds another open
    study of the same patient is preferred (policy weight ``same_patient``).
    """

    __pydantic_config__ = _STRICT

    case_id: int
    hospital_id: int
    hospital_code: str
    priority: Priority
    modality: str
    received_at: AwareDatetime
    body_part: str = ""
    study_description: str = ""
    series_descriptions: tuple[str, ...] = ()
    procedure_codes: tuple[str, ...] = ()
    requested_subspecialty: Subspecialty | None = None
    escalation_step: Annotated[int, Field(ge=0)] = 0
    patient_key: str | None = None
    excluded_expert_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class ExpertSnapshot:
    """One expert as routing sees them at the moment of the decision.

    ``availability`` holds [start, end) windows: shifts for full-time readers, declared windows for
    part-time ones; a reader with no window is never available. ``credentials`` maps hospital id to
    the credential's expiry (None: no expiry). ``open_units`` is the work units of their open
    (assigned, unreported) cases; ``units_today`` and ``units_shift`` count work units taken today
    and in the current shift; ``shift_target_units`` is their fair share for the shift.
    ``familiarity`` maps hospital id to the number of studies they have read for it.
    ``open_patient_keys`` are the patient keys of their open cases.
    """

    __pydantic_config__ = _STRICT

    user_id: int
    name: str = ""
    employment: Employment = Employment.full_time
    state: ExpertState = ExpertState.online
    subspecialties: Mapping[Subspecialty, Level] = field(default_factory=dict)
    qualification: Qualification = Qualification.final
    credentials: Mapping[int, AwareDatetime | None] = field(default_factory=dict)
    availability: tuple[tuple[AwareDatetime, AwareDatetime], ...] = ()
    cap_open_cases: Annotated[int, Field(ge=0)] | None = None
    cap_daily_units: Annotated[float, Field(ge=0)] | None = None
    open_cases: Annotated[int, Field(ge=0)] = 0
    open_units: Annotated[float, Field(ge=0)] = 0.0
    units_today: Annotated[float, Field(ge=0)] = 0.0
    units_shift: Annotated[float, Field(ge=0)] = 0.0
    shift_target_units: Annotated[float, Field(ge=0)] = 0.0
    familiarity: Mapping[int, Annotated[int, Field(ge=0)]] = field(default_factory=dict)
    open_patient_keys: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FilterResult:
    """One hard filter applied to one expert. ``name`` is one of: credential, state,
    availability, subspecialty, qualification, excluded, caps."""

    name: str
    passed: bool
    reason: str


@dataclass(slots=True)
class ScoreComponent:
    """``value`` is the input (units, reads, level, hours ...), ``points`` its signed share of
    the total after weighting.

    Not frozen, like ``Candidate``: one is made per expert and component, and a frozen
    dataclass costs three times as much to build. Treat both as read-only."""

    name: str
    value: float
    weight: float
    points: float


@dataclass(slots=True)
class Candidate:
    """How one expert fared. Read-only in practice (see ``ScoreComponent``).

    The explanation is kept in full where a coordinator needs it, and in short for the rest of
    a roster of hundreds (the form ``Decision.to_json`` stores):

    - the best ``COMPACT_FULL`` eligible, and every offered one: every hard filter (all passed,
      in ``FILTERS`` order), the score components, ``total``, ``rank`` (1 = best), ``notes``;
    - the other eligible: ``total`` and ``rank`` only (they passed every filter);
    - the ineligible: ``filters`` holds the filters they failed, all of them, in ``FILTERS``
      order (the others passed); no score.
    """

    user_id: int
    name: str
    eligible: bool
    filters: tuple[FilterResult, ...] = ()
    score: tuple[ScoreComponent, ...] = ()
    total: float | None = None
    rank: int | None = None
    notes: tuple[str, ...] = ()

    def failed(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.filters if not f.passed)


@dataclass(frozen=True, slots=True)
class RuleRef:
    kind: str
    id: str
    version: int


@dataclass(frozen=True, slots=True)
class Classification:
    """What the rules say about a case before any expert is considered."""

    subspecialty: Subspecialty
    subspecialty_reason: str
    work_units: float
    work_units_reason: str
    sla_target_minutes: int
    sla_reason: str
    deadline: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one case, with its explanation. Store ``to_json()`` with the case.

    ``mode`` push: ``assignee`` reads it. pool: ``offered`` (best first) may claim it. none:
    nobody is eligible and ``reason`` says why. ``cosign_required`` is set when the assignee
    writes preliminary reports only; in pool mode each preliminary candidate carries the note.
    ``widened``: the subspecialty filter admitted general readers (escalation or fallback).
    ``alert_coordinator``: an applied escalation step, the maximum wait, or nobody eligible asks
    for a coordinator. ``shadow`` is the decision of the monitor-mode rules, never applied.
    ``candidates``: the eligible by rank, then the ineligible by user id; how much of each one's
    explanation is kept is told in ``Candidate``.
    """

    case_id: int
    decided_at: datetime
    priority: Priority
    subspecialty: Subspecialty
    subspecialty_reason: str
    work_units: float
    sla_target_minutes: int
    sla_reason: str
    deadline: datetime
    escalation_step: int
    mode: Mode
    assignee: int | None
    offered: tuple[int, ...]
    cosign_required: bool
    widened: bool
    overdue_wait: bool
    alert_coordinator: bool
    reason: str
    candidates: tuple[Candidate, ...]
    rules: tuple[RuleRef, ...]
    shadow: Decision | None = None

    def candidate(self, user_id: int) -> Candidate | None:
        for c in self.candidates:
            if c.user_id == user_id:
                return c
        return None

    def to_json(self, *, compact: bool = False) -> dict[str, Any]:
        """A JSON-compatible dict (datetimes as ISO 8601 strings). ``from_json`` reads it back
        equal to this decision.

        The engine already keeps the explanation short (see ``Candidate``); ``compact`` also
        leaves out the fields that are then empty, which ``from_json`` restores as empty. It
        shortens in the same way a decision holding every explanation in full.
        """
        data: dict[str, Any] = _DECISION.dump_python(self, mode="json")
        if compact:
            _compact(data)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Decision:
        decision: Decision = _DECISION.validate_python(data)
        return decision


@dataclass(frozen=True, slots=True)
class SlaStatus:
    """Where a case stands against its deadline at ``now`` (for the SLA watch and worklists).

    ``escalation_step_due`` is how many escalation steps should have been applied by now: when it
    exceeds the case's ``escalation_step``, route it again with the new step.
    ``overdue_wait``: the case has waited longer than the maximum wait; worklists put it first.
    """

    elapsed_fraction: float
    remaining_minutes: float
    state: SlaState
    warnings_passed: int
    escalation_step_due: int
    alert_coordinator: bool
    overdue_wait: bool


COMPACT_FULL = 10


def _compact(data: dict[str, Any]) -> None:
    candidates = []
    offered = set(data["offered"])
    for c in data["candidates"]:
        if not c["eligible"]:
            failed = [f for f in c["filters"] if not f["passed"]]
            c = {"user_id": c["user_id"], "name": c["name"], "eligible": False, "filters": failed}
        elif not c["filters"] or (c["rank"] > COMPACT_FULL and c["user_id"] not in offered):
            c = {k: v for k, v in c.items() if k not in ("filters", "score", "notes")}
        candidates.append(c)
    data["candidates"] = candidates
    if data.get("shadow"):
        _compact(data["shadow"])


CASE_FACTS: TypeAdapter[CaseFacts] = TypeAdapter(CaseFacts)
EXPERT_SNAPSHOT: TypeAdapter[ExpertSnapshot] = TypeAdapter(ExpertSnapshot)
_DECISION: TypeAdapter[Decision] = TypeAdapter(Decision)
