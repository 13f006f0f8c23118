"""Routing rules as data: the schema of ``worklist_rules/*.yaml``, loading, and checking.

Each file holds one rule with an ``id``, a ``version``, a ``mode`` and a ``kind``:

- ``active``: the rule the engine applies. Exactly one active rule of each kind must exist.
- ``monitor``: computed beside the active one (a shadow decision stored with the real one) but
  never applied, to see what a change would do before it takes effect. At most one per kind.
- ``inactive``: validated, otherwise ignored.

``load_rules`` raises ``RulesError`` listing every problem as ``file: path.to.field: message``;
``check`` returns those problems, and the failures of the golden cases in ``cases/``, for
``radrelay rules check``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from radrelay.cases.schemas import Priority, Subspecialty
from radrelay.kit import yamlfiles
from radrelay.kit.keywords import keyword_pattern
from radrelay.kit.yamlfiles import node_line, read_yaml, yaml_files
from radrelay.routing.engine import decide
from radrelay.routing.schemas import (
    CaseFacts,
    Decision,
    ExpertSnapshot,
    ExpertState,
    Mode,
    RuleRef,
)

__all__ = [
    "Expectation",
    "GoldenCase",
    "PolicyRule",
    "Rule",
    "RuleKind",
    "RuleMode",
    "RuleSet",
    "RulesError",
    "SlaRule",
    "SubspecialtyRule",
    "WorkloadRule",
    "check",
    "load_golden_cases",
    "load_rules",
]


class RuleMode(StrEnum):
    active = "active"
    monitor = "monitor"
    inactive = "inactive"


class RuleKind(StrEnum):
    sla = "sla"
    subspecialty = "subspecialty"
    workload = "workload"
    policy = "policy"


class AvailabilityMode(StrEnum):
    now = "now"  # inside an availability window at the moment of the decision
    before_deadline = "before_deadline"  # a window opens early enough to read before the deadline


class RulesError(Exception):
    """The rules directory is not usable; ``problems`` lists each as ``file: path: message``."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(
            "worklist rules are invalid:\n" + "\n".join(f"  {p}" for p in self.problems)
        )


# ---------------------------------------------------------------------------------------------
# Field types


def _upper(value: str) -> str:
    return value.strip().upper()


Modality = Annotated[
    str, AfterValidator(_upper), Field(pattern=r"^[A-Z0-9]{2,16}$", description="DICOM Modality")
]
BodyPart = Annotated[str, AfterValidator(_upper), Field(min_length=1, max_length=64)]
HospitalCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,32}$")]
Minutes = Annotated[int, Field(gt=0, le=60 * 24 * 60)]
Fraction = Annotated[float, Field(gt=0, le=1)]
Keyword = Annotated[str, AfterValidator(str.strip), Field(min_length=1, max_length=64)]
Units = Annotated[float, Field(gt=0, le=100)]
Weight = Annotated[float, Field(ge=0, le=1000)]
AssignMode = Literal["push", "pool"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _increasing(values: Sequence[float], what: str) -> None:
    if any(b <= a for a, b in pairwise(values)):
        raise ValueError(f"{what} must be strictly increasing, got {list(values)}")


class _RuleBase(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    mode: RuleMode
    description: str = ""

    def ref(self) -> RuleRef:
        kind: str = getattr(self, "kind")  # noqa: B009 (each subclass declares it as a Literal)
        return RuleRef(kind=kind, id=self.id, version=self.version)


# ---------------------------------------------------------------------------------------------
# SLA


class PriorityMinutes(_Strict):
    stat: Minutes
    urgent: Minutes
    routine: Minutes


class PartialPriorityMinutes(_Strict):
    stat: Minutes | None = None
    urgent: Minutes | None = None
    routine: Minutes | None = None


class SlaTarget(_Strict):
    """A target for a subset of cases: each list given must contain the case's value."""

    name: str = ""
    priorities: list[Priority] = Field(default_factory=list)
    modalities: list[Modality] = Field(default_factory=list)
    subspecialties: list[Subspecialty] = Field(default_factory=list)
    minutes: Minutes

    def matches(self, priority: str, modality: str, subspecialty: str) -> bool:
        return (
            (not self.priorities or priority in self.priorities)
            and (not self.modalities or modality in self.modalities)
            and (not self.subspecialties or subspecialty in self.subspecialties)
        )

    def label(self) -> str:
        return self.name or "+".join(
            [*self.priorities, *self.modalities, *self.subspecialties] or ["all"]
        )


class HospitalContract(_Strict):
    """A hospital's contracted targets. Its own ``targets`` win; its ``defaults`` replace the
    center's per-priority defaults and are also used when tighter than a center target."""

    note: str = ""
    defaults: PartialPriorityMinutes = PartialPriorityMinutes()
    targets: list[SlaTarget] = Field(default_factory=list)


class EscalationStep(_Strict):
    """Applied once ``at`` of the SLA target has elapsed (1.0 = at the deadline)."""

    at: Annotated[float, Field(gt=0, le=3)]
    widen_to_general: bool = False
    add_to_offer: int = Field(default=0, ge=0, le=50)
    alert_coordinator: bool = False

    @model_validator(mode="after")
    def _does_something(self) -> EscalationStep:
        if not (self.widen_to_general or self.add_to_offer or self.alert_coordinator):
            raise ValueError(
                "an escalation step needs an action: widen_to_general, add_to_offer or "
                "alert_coordinator"
            )
        return self


class SlaRule(_RuleBase):
    kind: Literal["sla"]
    defaults: PriorityMinutes
    targets: list[SlaTarget] = Field(default_factory=list)
    hospitals: dict[HospitalCode, HospitalContract] = Field(default_factory=dict)
    warn_at: list[Fraction] = Field(default_factory=lambda: [0.5, 0.8])
    escalation: list[EscalationStep] = Field(default_factory=list)
    max_wait_minutes: Minutes | None = None

    @field_validator("warn_at")
    @classmethod
    def _warnings_increase(cls, value: list[float]) -> list[float]:
        _increasing(value, "warning thresholds")
        return value

    @field_validator("escalation")
    @classmethod
    def _steps_increase(cls, value: list[EscalationStep]) -> list[EscalationStep]:
        _increasing([s.at for s in value], "the steps' `at`")
        return value


# ---------------------------------------------------------------------------------------------
# Subspecialty mapping


class SubspecialtyMatch(_Strict):
    """Maps cases to ``subspecialty``. ``modalities``, when given, restricts the entry; then any
    of the procedure codes, keywords (study or series description) or body parts matches. An
    entry with modalities only maps every study of those modalities."""

    subspecialty: Subspecialty
    modalities: list[Modality] = Field(default_factory=list)
    procedure_codes: list[Annotated[str, AfterValidator(_upper)]] = Field(default_factory=list)
    keywords: list[Keyword] = Field(default_factory=list)
    body_parts: list[BodyPart] = Field(default_factory=list)

    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> SubspecialtyMatch:
        if not (self.modalities or self.procedure_codes or self.keywords or self.body_parts):
            raise ValueError(
                "give at least one of modalities, procedure_codes, keywords, body_parts"
            )
        self._pattern = keyword_pattern(self.keywords)
        return self

    @property
    def modality_only(self) -> bool:
        return not (self.procedure_codes or self.keywords or self.body_parts)

    def search(self, text: str) -> str | None:
        """The keyword found in ``text`` (already casefolded), if any."""
        if self._pattern is None:
            return None
        found = self._pattern.search(text)
        return found.group(0) if found else None


class SubspecialtyRule(_RuleBase):
    kind: Literal["subspecialty"]
    fallback: Subspecialty = Subspecialty.general
    requested_wins: bool = True
    matches: list[SubspecialtyMatch] = Field(min_length=1)


# ---------------------------------------------------------------------------------------------
# Workload


class ExamUnits(_Strict):
    """Work units of an exam type: the modality must be listed, and each other list given must
    contain the case's value."""

    label: str = ""
    modalities: list[Modality] = Field(min_length=1)
    subspecialties: list[Subspecialty] = Field(default_factory=list)
    body_parts: list[BodyPart] = Field(default_factory=list)
    units: Units

    def matches(self, modality: str, subspecialty: str, body_part: str) -> bool:
        return (
            modality in self.modalities
            and (not self.subspecialties or subspecialty in self.subspecialties)
            and (not self.body_parts or body_part in self.body_parts)
        )


class WorkloadRule(_RuleBase):
    kind: Literal["workload"]
    exams: list[ExamUnits] = Field(default_factory=list)
    modality_defaults: dict[Modality, Units] = Field(default_factory=dict)
    default_units: Units


# ---------------------------------------------------------------------------------------------
# Policy


class PriorityStates(_Strict):
    stat: list[ExpertState] = Field(min_length=1)
    urgent: list[ExpertState] = Field(min_length=1)
    routine: list[ExpertState] = Field(min_length=1)


class PriorityAvailability(_Strict):
    stat: AvailabilityMode = AvailabilityMode.now
    urgent: AvailabilityMode = AvailabilityMode.now
    routine: AvailabilityMode = AvailabilityMode.before_deadline


class PreliminaryPolicy(_Strict):
    """Readers who write preliminary reports only (a senior co-signs)."""

    allowed: bool = True
    priorities: list[Priority] = Field(default_factory=lambda: [Priority.urgent, Priority.routine])
    final_required_hospitals: list[HospitalCode] = Field(default_factory=list)


class Eligibility(_Strict):
    require_credential: bool = True
    states: PriorityStates
    availability: PriorityAvailability = PriorityAvailability()
    read_margin_minutes: int = Field(default=60, ge=0, le=24 * 60)
    preliminary: PreliminaryPolicy = PreliminaryPolicy()
    fallback_to_general_when_none_eligible: list[Priority] = Field(default_factory=list)


class Weights(_Strict):
    open_workload: Weight  # points lost per open work unit
    fairness: Weight  # points per work unit of the shift deficit
    familiarity: Weight  # points per log(1 + reads for the hospital)
    subspecialty_level: Weight  # points per level (1-3) in the case's subspecialty
    wait_hours: Weight = 0.0  # points lost per hour until the reader's window opens
    same_patient: Weight = 0.0  # points when the reader holds another open study of the patient


class AssignmentModes(_Strict):
    default: AssignMode = "push"
    priorities: dict[Priority, AssignMode] = Field(default_factory=dict)
    hospitals: dict[HospitalCode, dict[Priority, AssignMode]] = Field(default_factory=dict)

    def mode_for(self, hospital_code: str, priority: Priority) -> Mode:
        """The hospital's mode for the priority, else the priority's, else the default."""
        by_hospital = self.hospitals.get(hospital_code, {})
        return Mode(by_hospital.get(priority) or self.priorities.get(priority) or self.default)


class Caps(_Strict):
    """Caps for every reader, used when the reader has none of their own (daily units, open
    cases); ``open_units`` is a queue-depth cap in work units."""

    bypass_priorities: list[Priority] = Field(default_factory=lambda: [Priority.stat])
    open_cases: int | None = Field(default=None, ge=0)
    open_units: float | None = Field(default=None, ge=0)
    daily_units: float | None = Field(default=None, ge=0)


class PolicyRule(_RuleBase):
    kind: Literal["policy"]
    eligibility: Eligibility
    weights: Weights
    assignment: AssignmentModes = AssignmentModes()
    offer_size: int = Field(ge=1, le=100)
    pool_visible_per_reader: int = Field(default=5, ge=1, le=100)
    claim_lease_minutes: int = Field(ge=1, le=24 * 60)
    caps: Caps = Caps()


Rule: TypeAlias = SlaRule | SubspecialtyRule | WorkloadRule | PolicyRule
_MODELS: dict[str, type[BaseModel]] = {
    RuleKind.sla: SlaRule,
    RuleKind.subspecialty: SubspecialtyRule,
    RuleKind.workload: WorkloadRule,
    RuleKind.policy: PolicyRule,
}


@dataclass(frozen=True)
class RuleSet:
    """The active rule of each kind, and the monitor-mode rules kept beside them."""

    sla: SlaRule
    subspecialty: SubspecialtyRule
    workload: WorkloadRule
    policy: PolicyRule
    monitor: Mapping[RuleKind, Rule] = field(default_factory=dict)

    def refs(self) -> tuple[RuleRef, ...]:
        return tuple(r.ref() for r in (self.sla, self.subspecialty, self.workload, self.policy))

    def shadow(self) -> RuleSet | None:
        """The rule set with the monitor rules in place of the active ones, if there are any."""
        if not self.monitor:
            return None
        m = self.monitor
        sla, sub = m.get(RuleKind.sla, self.sla), m.get(RuleKind.subspecialty, self.subspecialty)
        workload, policy = (
            m.get(RuleKind.workload, self.workload),
            m.get(RuleKind.policy, self.policy),
        )
        assert isinstance(sla, SlaRule) and isinstance(sub, SubspecialtyRule)
        assert isinstance(workload, WorkloadRule) and isinstance(policy, PolicyRule)
        return RuleSet(sla=sla, subspecialty=sub, workload=workload, policy=policy)


# ---------------------------------------------------------------------------------------------
# Loading


_MESSAGES = {
    **yamlfiles.MESSAGES,
    "extra_forbidden": "unknown field (check the spelling; see worklist_rules/README.md)",
}


def _problems(name: str, exc: ValidationError, root: yaml.Node | None) -> list[str]:
    return yamlfiles.validation_problems(name, exc, root, _MESSAGES)


def _parse_rule(path: Path, name: str) -> tuple[Rule | None, str | None, list[str]]:
    """The rule, or its kind (if known) and its problems."""
    data, root, problems = read_yaml(path, name)
    if problems:
        return None, None, problems
    if not isinstance(data, dict):
        return None, None, [f"{name}: (top level): expected a mapping with id, version, mode, kind"]
    kind = data.get("kind")
    if kind not in _MODELS:
        expected = ", ".join(_MODELS)
        got = "missing" if kind is None else f"got {kind!r}"
        line = node_line(root, ["kind"])
        return None, None, [f"{name}: kind (line {line}): {got}; one of {expected}"]
    try:
        rule: Rule = _MODELS[kind].model_validate(data)  # type: ignore[assignment]
    except ValidationError as exc:
        return None, kind, _problems(name, exc, root)
    return rule, kind, []


def _load(directory: Path) -> tuple[RuleSet | None, list[str]]:
    directory = Path(directory)
    if not directory.is_dir():
        return None, [f"{directory}: (directory): not found"]
    problems: list[str] = []
    seen_ids: dict[str, str] = {}
    by_mode: dict[tuple[RuleKind, RuleMode], list[tuple[str, Rule]]] = {}
    # Kinds that may be missing only because a file of theirs is broken (None: unknown kind).
    broken: set[str | None] = set()
    for path in yaml_files(directory):
        rule, kind, errs = _parse_rule(path, path.name)
        problems += errs
        if rule is None:
            broken.add(kind)
            continue
        if rule.id in seen_ids:
            problems.append(f"{path.name}: id: {rule.id!r} is also the id of {seen_ids[rule.id]}")
            continue
        seen_ids[rule.id] = path.name
        by_mode.setdefault((RuleKind(rule.kind), rule.mode), []).append((path.name, rule))

    active: dict[RuleKind, Rule] = {}
    monitor: dict[RuleKind, Rule] = {}
    for kind in RuleKind:
        actives = by_mode.get((kind, RuleMode.active), [])
        monitors = by_mode.get((kind, RuleMode.monitor), [])
        if len(actives) == 1:
            active[kind] = actives[0][1]
        elif actives:
            names = ", ".join(n for n, _ in actives)
            problems.append(
                f"{actives[1][0]}: mode: more than one active {kind} rule ({names}); "
                "set all but one to monitor or inactive"
            )
        elif monitors:
            problems.append(
                f"{monitors[0][0]}: mode: a monitor {kind} rule needs an active {kind} rule "
                "to shadow"
            )
        elif kind not in broken and None not in broken:
            problems.append(
                f"{directory.name}/: kind: no active {kind} rule "
                f"(a file with kind: {kind} and mode: active)"
            )
        if len(monitors) > 1:
            names = ", ".join(n for n, _ in monitors)
            problems.append(
                f"{monitors[1][0]}: mode: more than one monitor {kind} rule ({names}); "
                "a shadow decision tries one change per kind"
            )
        elif monitors:
            monitor[kind] = monitors[0][1]
    if problems:
        return None, problems
    sla, sub = active[RuleKind.sla], active[RuleKind.subspecialty]
    workload, policy = active[RuleKind.workload], active[RuleKind.policy]
    assert isinstance(sla, SlaRule) and isinstance(sub, SubspecialtyRule)
    assert isinstance(workload, WorkloadRule) and isinstance(policy, PolicyRule)
    return RuleSet(sla, sub, workload, policy, monitor), []


def load_rules(directory: Path) -> RuleSet:
    """Read and validate every ``*.yaml`` directly in ``directory`` (not ``cases/``)."""
    rules, problems = _load(directory)
    if rules is None:
        raise RulesError(problems)
    return rules


# ---------------------------------------------------------------------------------------------
# Golden cases


class Expectation(_Strict):
    """What a golden case expects; only the fields given are compared."""

    subspecialty: Subspecialty | None = None
    mode: Mode | None = None
    assignee: int | None = None
    offered: list[int] | None = None
    deadline: AwareDatetime | None = None
    sla_target_minutes: int | None = None
    work_units: float | None = None
    ranking: list[int] | None = Field(
        default=None, description="Eligible experts, best first (all of them)."
    )
    excluded: dict[int, list[str]] | None = Field(
        default=None,
        description="Expert -> the filters they failed (exactly). Experts not listed must be "
        "eligible only when `ranking` is also given.",
    )
    cosign_required: bool | None = None
    widened: bool | None = None
    alert_coordinator: bool | None = None
    overdue_wait: bool | None = None
    reason_contains: list[str] | None = None
    shadow: Expectation | None = None

    def compare(self, decision: Decision, prefix: str = "expect") -> Iterator[str]:
        given = self.model_fields_set
        simple = (
            "subspecialty",
            "mode",
            "assignee",
            "deadline",
            "sla_target_minutes",
            "cosign_required",
            "widened",
            "alert_coordinator",
            "overdue_wait",
        )
        for name in simple:
            want, got = getattr(self, name), getattr(decision, name)
            if name in given and want != got:
                yield f"{prefix}.{name}: expected {want!s}, got {got!s}"
        if "work_units" in given and abs((self.work_units or 0) - decision.work_units) > 1e-9:
            yield f"{prefix}.work_units: expected {self.work_units}, got {decision.work_units}"
        if "offered" in given and list(decision.offered) != self.offered:
            yield f"{prefix}.offered: expected {self.offered}, got {list(decision.offered)}"
        if "ranking" in given:
            ranking = [c.user_id for c in decision.candidates if c.eligible]
            if ranking != self.ranking:
                yield f"{prefix}.ranking: expected {self.ranking}, got {ranking}"
        for user_id, filters in (self.excluded or {}).items():
            candidate = decision.candidate(user_id)
            failed = sorted(candidate.failed()) if candidate else None
            if failed != sorted(filters):
                want = sorted(filters)
                yield f"{prefix}.excluded.{user_id}: expected {want} failed, got {failed}"
        for text in self.reason_contains or []:
            if text not in decision.reason:
                yield f"{prefix}.reason_contains: {text!r} not in {decision.reason!r}"
        if "shadow" in given:
            if self.shadow is None or decision.shadow is None:
                if self.shadow is not decision.shadow:
                    yield f"{prefix}.shadow: expected {self.shadow}, got {decision.shadow}"
            else:
                yield from self.shadow.compare(decision.shadow, f"{prefix}.shadow")


class GoldenCase(_Strict):
    """A situation (case, experts, clock) and the decision the rules must reach."""

    name: str
    description: str = ""
    now: AwareDatetime
    case: CaseFacts
    expert_defaults: dict[str, Any] = Field(
        default_factory=dict, description="Fields every expert has unless it sets its own."
    )
    experts: list[ExpertSnapshot]
    expect: Expectation

    @model_validator(mode="before")
    @classmethod
    def _apply_expert_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("expert_defaults"), dict):
            defaults = data["expert_defaults"]
            experts = data.get("experts")
            if isinstance(experts, list):
                data = {
                    **data,
                    "experts": [{**defaults, **e} if isinstance(e, dict) else e for e in experts],
                }
        return data


def load_golden_cases(directory: Path) -> tuple[list[tuple[str, GoldenCase]], list[str]]:
    """The golden cases in ``directory`` (file name, case), and the problems of those that do
    not validate."""
    cases: list[tuple[str, GoldenCase]] = []
    problems: list[str] = []
    if not directory.is_dir():
        return cases, problems
    for path in yaml_files(directory):
        name = f"{directory.name}/{path.name}"
        data, root, errs = read_yaml(path, name)
        if errs:
            problems += errs
            continue
        try:
            cases.append((name, GoldenCase.model_validate(data)))
        except ValidationError as exc:
            problems += _problems(name, exc, root)
    return cases, problems


def check(directory: Path) -> list[str]:
    """Every problem in the rules directory, for ``radrelay rules check`` (empty: all good):
    invalid rule files, missing or duplicate active rules, invalid golden cases, and golden cases
    whose decision differs from the expected one."""
    directory = Path(directory)
    rules, problems = _load(directory)
    cases, case_problems = load_golden_cases(directory / "cases")
    problems += case_problems
    if rules is None:
        return problems
    for name, golden in cases:
        try:
            decision = decide(golden.case, golden.experts, golden.now, rules)
        except ValueError as exc:
            problems.append(f"{name}: (case): the engine refused it: {exc}")
            continue
        problems += [f"{name}: {p}" for p in golden.expect.compare(decision)]
    return problems
