"""Replay a day of arrivals against a roster through the real routing engine, once per policy.

``radrelay simulate`` answers "what would push, pool, or the shipped rules do to turnaround and
to fairness with our roster?" before a change reaches real radiologists. It is a discrete-event
simulation: arrivals (an hourly Poisson model, or a CSV of real arrivals) are routed by
``engine.decide`` with expert snapshots built from the simulated state; readers read one case at
a time in worklist order while inside their windows; the SLA watch re-routes waiting cases with
the escalation steps ``engine.sla_status`` says are due. Nothing here touches a database or the
clock: the same inputs and seed give the same numbers.

The model and its assumptions are described in docs/simulation.md. The numbers below are data:
change them here (or pass a roster file), not in the event loop.
"""

from __future__ import annotations

import csv
import heapq
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, time, timedelta, timezone
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from radrelay.routing.engine import decide, primary_modality, sla_status
from radrelay.routing.rules import RuleSet
from radrelay.routing.schemas import (
    CaseFacts,
    Employment,
    ExpertSnapshot,
    ExpertState,
    Mode,
    Priority,
    Qualification,
    Subspecialty,
)

__all__ = [
    "DEFAULT_POLICIES",
    "POLICIES",
    "SIM_TZ",
    "START",
    "Arrival",
    "PolicyResult",
    "Roster",
    "SimulationInputError",
    "SimulationResult",
    "default_roster",
    "gini",
    "load_arrivals",
    "load_roster",
    "percentile",
    "poisson_arrivals",
    "policy_rules",
    "run",
    "simulate",
]

# Shifts are written in local time; the centers this is built for are in China (UTC+8).
SIM_TZ = timezone(timedelta(hours=8), "UTC+08:00")
# A Monday, so "a day" is a weekday of outpatient work.
START = datetime(2025, 3, 3, tzinfo=SIM_TZ)
# After the last arrival the simulation runs until every case is final, but no longer than this:
# the longest shipped target is 48 h and the maximum wait 24 h, so a case still open a week
# later is stuck (nobody credentialed for its hospital, say) and is reported as unfinished.
DRAIN_MINUTES = 7 * 24 * 60
DAY = 24 * 60

POLICIES: dict[str, str] = {
    "push": "every case pushed to the best eligible reader",
    "pool": "every case offered to the top readers; the first free one claims it",
    "rules": "as the rules directory says",
    "pool-routine": "STAT and urgent pushed, routine offered as a pool",
    "pool-stat": "STAT offered as a pool, urgent and routine pushed",
}
DEFAULT_POLICIES = ("push", "pool", "rules")

_PRIORITY_RANK = {Priority.stat: 0, Priority.urgent: 1, Priority.routine: 2}

# ---------------------------------------------------------------------------------------------
# Reading times
#
# Median minutes to read and report a typical exam of each modality, and the lognormal sigma.
# DOMAIN.md: sustained reading runs at 6-12 work RVUs an hour; with the work units of
# worklist_rules/workload.yaml that is 4-12 min for a CT at 1.2 units, 8-16 for an MR at 1.6,
# 1-2 for a radiograph at 0.2. The medians sit at the slow end of those ranges, above it for
# radiographs (CR 3, US 5, CT 10, MR 14, MG 6), because a remote reader of a grassroots
# hospital's study rarely has priors and types the whole report. The time of one exam scales
# with its work units against the modality's default units (a CT abdomen at 1.8 units takes 1.5
# times a typical CT), since work RVUs are built from reading time. Sigma 0.5 (p90 about 1.9
# times the median) is an assumption for the right skew of reading times; DOMAIN.md has no
# published figure for it.
READING_MINUTES: dict[str, tuple[float, float]] = {
    "CR": (3.0, 0.5),
    "DX": (3.0, 0.5),
    "US": (5.0, 0.5),
    "MG": (6.0, 0.5),
    "CT": (10.0, 0.5),
    "MR": (14.0, 0.5),
    "PT": (20.0, 0.5),
    "NM": (12.0, 0.5),
    "XA": (12.0, 0.5),
}
OTHER_READING_MINUTES = (8.0, 0.5)
# A senior co-signing a preliminary report re-reads the images and edits the text: assumed to
# take this fraction of a first read (DOMAIN.md records the double signature, not its duration).
COSIGN_FRACTION = 0.4

# ---------------------------------------------------------------------------------------------
# The built-in arrival model: three hospitals of a regional virtual imaging center.

# Studies per day, by hospital and modality. Two county hospitals (QSX has a contract in the
# shipped sla.yaml; LHX is the golden cases' county hospital) with CT, MR, radiography,
# ultrasound and mammography, and a township health center (HPZ) with DR and ultrasound only,
# as its contract says. About 320 studies a day at scale 1.
HOSPITAL_VOLUMES: dict[str, dict[str, float]] = {
    "QSX": {"CT": 60, "MR": 15, "CR": 45, "US": 30, "MG": 8},
    "LHX": {"CT": 40, "MR": 8, "CR": 35, "US": 25, "MG": 5},
    "HPZ": {"DX": 30, "US": 20},
}
# Share of STAT and urgent per modality; the rest is routine. Emergencies are mostly CT (head
# trauma, stroke, abdomen) and chest radiographs; mammography is screening. About 7% STAT.
PRIORITY_MIX: dict[str, tuple[float, float]] = {
    "CT": (0.12, 0.15),
    "MR": (0.03, 0.10),
    "CR": (0.06, 0.12),
    "DX": (0.06, 0.12),
    "US": (0.03, 0.10),
    "MG": (0.0, 0.02),
}
# Relative arrivals per local hour (0-23). Routine and urgent work follows the outpatient day
# (morning peak, lunch dip, afternoon peak); emergencies are flatter with an evening rise.
OUTPATIENT_PROFILE = (
    0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 1.0, 2.5, 3.0, 3.0, 2.5,
    1.2, 1.5, 2.5, 2.5, 2.0, 1.2, 0.8, 0.6, 0.5, 0.4, 0.3, 0.25,
)  # fmt: skip
EMERGENCY_PROFILE = (
    0.6, 0.5, 0.4, 0.4, 0.4, 0.5, 0.6, 0.8, 1.0, 1.1, 1.1, 1.1,
    1.0, 1.0, 1.1, 1.1, 1.2, 1.3, 1.3, 1.3, 1.2, 1.0, 0.9, 0.7,
)  # fmt: skip
# What the studies of each modality are (study description, DICOM body part, share), so that the
# rules' subspecialty mapping and work units apply as they would to real traffic.
STUDY_MIX: dict[str, tuple[tuple[str, str, float], ...]] = {
    "CT": (
        ("头颅CT平扫", "HEAD", 0.35),
        ("胸部CT平扫", "CHEST", 0.30),
        ("腹部CT增强", "ABDOMEN", 0.14),
        ("腰椎CT", "LSPINE", 0.08),
        ("颈部CT", "NECK", 0.04),
        ("泌尿系CT", "ABDOMEN", 0.05),
        ("主动脉CTA", "CHEST", 0.02),
        ("冠脉CTA", "HEART", 0.02),
    ),
    "MR": (
        ("头颅MR平扫", "HEAD", 0.40),
        ("腰椎MR", "LSPINE", 0.25),
        ("膝关节MR", "KNEE", 0.15),
        ("上腹部MR", "ABDOMEN", 0.10),
        ("前列腺MR", "PROSTATE", 0.05),
        ("颈部MR", "NECK", 0.05),
    ),
    "CR": (
        ("胸部正位", "CHEST", 0.60),
        ("腰椎正侧位", "LSPINE", 0.15),
        ("膝关节正侧位", "KNEE", 0.15),
        ("腹部平片", "ABDOMEN", 0.10),
    ),
    "DX": (
        ("胸部正位", "CHEST", 0.70),
        ("腰椎正侧位", "LSPINE", 0.15),
        ("膝关节正侧位", "KNEE", 0.15),
    ),
    "US": (
        ("腹部超声", "ABDOMEN", 0.50),
        ("甲状腺超声", "THYROID", 0.15),
        ("泌尿系超声", "KIDNEY", 0.15),
        ("乳腺超声", "BREAST", 0.10),
        ("颈动脉超声", "NECK", 0.10),
    ),
    "MG": (("乳腺钼靶", "BREAST", 1.0),),
}

# The built-in roster: 8 full-time readers on three shifts (one of them a junior who writes
# preliminary reports) and 6 part-time readers with evening windows, two of them preliminary.
# Validated by the same model as a roster file; docs/simulation.md shows the file format.
_FT = {"QSX": 300, "LHX": 200, "HPZ": 100}  # studies read per hospital before the day starts
_PT = {"QSX": 40, "LHX": 40, "HPZ": 20}
DEFAULT_ROSTER: dict[str, Any] = {
    "experts": [
        # Full-time, day shift.
        {"id": 1, "name": "Chen (neuro)", "windows": ["08:00-16:00"], "familiarity": _FT,
         "subspecialties": {"neuro": 3, "head_neck": 2, "general": 2}},
        {"id": 2, "name": "Li (chest)", "windows": ["08:00-16:00"], "familiarity": _FT,
         "subspecialties": {"chest": 3, "cardiac": 2, "vascular": 2, "general": 2}},
        {"id": 3, "name": "Zhang (abdominal)", "windows": ["08:00-16:00"], "familiarity": _FT,
         "subspecialties": {"abdominal": 3, "genitourinary": 3, "vascular": 1, "general": 2}},
        {"id": 4, "name": "Liu (junior)", "windows": ["08:00-16:00"], "familiarity": _PT,
         "qualification": "preliminary", "speed": 0.8,
         "subspecialties": {"general": 1, "chest": 1, "msk": 1}},
        # Full-time, evening shift.
        {"id": 5, "name": "Zhao (general)", "windows": ["16:00-24:00"], "familiarity": _FT,
         "subspecialties": {"general": 3, "neuro": 2, "chest": 2, "abdominal": 2}},
        {"id": 6, "name": "Wang (msk, breast)", "windows": ["16:00-24:00"], "familiarity": _FT,
         "subspecialties": {"msk": 3, "breast": 2, "general": 2}},
        # Full-time, night shift.
        {"id": 7, "name": "Sun (nights)", "windows": ["00:00-08:00"], "familiarity": _FT,
         "subspecialties": {"general": 3, "neuro": 2, "chest": 2, "msk": 1}},
        {"id": 8, "name": "Zhou (nights)", "windows": ["00:00-08:00"], "familiarity": _FT,
         "subspecialties": {"general": 2, "abdominal": 2, "genitourinary": 1, "neuro": 1}},
        # Part-time, credentialed at some hospitals only (multi-site practice registration).
        {"id": 9, "name": "Wu (neuro, part-time)", "employment": "part_time",
         "windows": ["19:00-22:00"], "hospitals": ["QSX", "LHX"], "familiarity": _PT,
         "subspecialties": {"neuro": 3, "head_neck": 3, "general": 1}},
        {"id": 10, "name": "Xu (chest, part-time)", "employment": "part_time",
         "windows": ["18:00-22:00"], "familiarity": _PT,
         "subspecialties": {"chest": 3, "cardiac": 2, "general": 2}},
        {"id": 11, "name": "Ma (resident, part-time)", "employment": "part_time",
         "windows": ["20:00-23:00"], "hospitals": ["LHX", "HPZ"], "familiarity": _PT,
         "qualification": "preliminary", "speed": 0.8,
         "subspecialties": {"abdominal": 2, "genitourinary": 2, "general": 1}},
        {"id": 12, "name": "Hu (msk, part-time)", "employment": "part_time",
         "windows": ["12:00-14:00", "19:00-21:00"], "familiarity": _PT,
         "subspecialties": {"msk": 3, "general": 2}},
        {"id": 13, "name": "Guo (resident, part-time)", "employment": "part_time",
         "windows": ["18:00-23:00"], "hospitals": ["LHX", "HPZ"], "familiarity": _PT,
         "qualification": "preliminary", "speed": 0.8,
         "subspecialties": {"general": 2, "chest": 1}},
        {"id": 14, "name": "He (breast, part-time)", "employment": "part_time",
         "windows": ["19:00-21:00"], "hospitals": ["QSX", "LHX"], "familiarity": _PT,
         "subspecialties": {"breast": 3, "general": 1}},
    ]
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Inputs: roster and arrivals


class SimulationInputError(Exception):
    """A roster, arrivals file or option is not usable; ``problems`` says what and where."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _window(value: str) -> str:
    match = _WINDOW.match(value.strip())
    if not match:
        raise ValueError(f"a window looks like 08:00-16:00, got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"not a time of day in {value!r}")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"window {value!r} is empty (use 00:00-24:00 for all day)")
    return value.strip()


Window = Annotated[str, AfterValidator(_window)]
Level = Annotated[int, Field(ge=1, le=3)]
HospitalCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{2,32}$")]


class ReadingTime(_Strict):
    median: float = Field(gt=0, le=600, description="Median minutes for a typical exam.")
    sigma: float = Field(
        default=0.5, ge=0, le=3, description="Lognormal sigma; 0: always the median."
    )


class RosterExpert(_Strict):
    """One reader. ``windows`` repeat every day in local time (an end before the start runs past
    midnight). ``hospitals`` are where they are credentialed, or ``all``. ``speed`` divides
    their reading time (0.8: a junior takes 25% longer). ``familiarity`` is how many studies they
    have read for each hospital before the simulated day."""

    id: int = Field(ge=1)
    name: str = ""
    employment: Employment = Employment.full_time
    qualification: Qualification = Qualification.final
    subspecialties: dict[Subspecialty, Level] = Field(min_length=1)
    hospitals: list[HospitalCode] | Literal["all"] = "all"
    windows: list[Window] = Field(min_length=1)
    speed: float = Field(default=1.0, gt=0, le=5)
    cap_open_cases: int | None = Field(default=None, ge=0)
    cap_daily_units: float | None = Field(default=None, ge=0)
    familiarity: dict[HospitalCode, int] = Field(default_factory=dict)


class Roster(_Strict):
    """Who reads. ``off_shift_state`` is the state a reader sets when their window ends:
    ``offline`` (logged off: their unopened cases and offers go back to routing, as the worklist
    does when an expert goes offline) or ``away`` (they keep them, and routine work may still be
    pushed to them for their next window, as the policy's ``before_deadline`` availability
    allows)."""

    off_shift_state: Literal["offline", "away"] = "offline"
    reading_times: dict[str, ReadingTime] = Field(
        default_factory=dict, description="Per modality, replacing the built-in numbers."
    )
    cosign_fraction: float = Field(default=COSIGN_FRACTION, ge=0, le=5)
    experts: list[RosterExpert] = Field(min_length=1)

    @field_validator("reading_times")
    @classmethod
    def _modalities_upper(cls, value: dict[str, ReadingTime]) -> dict[str, ReadingTime]:
        return {k.strip().upper(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _unique_ids(self) -> Roster:
        ids = [e.id for e in self.experts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"expert ids must be unique; repeated: {dupes}")
        return self


def _format_errors(where: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/simulation.md)"
        elif err["type"] == "missing":
            message = "required field is missing"
        elif isinstance(err.get("input"), str | int | float) and "got" not in message:
            message += f" (got {err['input']!r})"
        out.append(f"{where}: {loc or '(top level)'}: {message}")
    return out


def default_roster() -> Roster:
    return Roster.model_validate(DEFAULT_ROSTER)


def load_roster(path: Path) -> Roster:
    """Read and validate a roster YAML file; ``SimulationInputError`` says what is wrong."""
    name = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimulationInputError([f"{name}: cannot read the roster: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise SimulationInputError([f"{name}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise SimulationInputError([f"{name}: expected a mapping with an `experts` list"])
    try:
        return Roster.model_validate(data)
    except ValidationError as exc:
        raise SimulationInputError(_format_errors(name, exc)) from None


@dataclass(frozen=True, slots=True)
class Arrival:
    """One study arriving, ``minute`` minutes after the start of the simulated day."""

    minute: float
    hospital_code: str
    modality: str
    priority: Priority
    body_part: str = ""
    study_description: str = ""
    patient_key: str | None = None


class _ArrivalRow(_Strict):
    received_at: str = Field(min_length=1)
    hospital: HospitalCode
    modality: str = Field(min_length=1)
    priority: Priority
    body_part: str = ""
    study_description: str = ""
    patient_key: str = ""

    @field_validator("priority", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


_ARRIVAL_COLUMNS = tuple(_ArrivalRow.model_fields)
_REQUIRED_COLUMNS = ("received_at", "hospital", "modality", "priority")


def load_arrivals(path: Path) -> tuple[list[Arrival], datetime]:
    """Read a CSV of arrivals; return them and the start of the simulated period.

    ``received_at`` is either minutes since the start (the start is then ``START``) or an ISO
    8601 datetime (the start is local midnight of the earliest; without a timezone, UTC+8).
    ``modality`` may list several (``CT\\SR``): the engine's primary modality is used."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SimulationInputError([f"{name}: cannot read the arrivals: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise SimulationInputError([f"{name}: not UTF-8 text"]) from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    problems = [f"{name}: missing column {c!r}" for c in _REQUIRED_COLUMNS if c not in columns]
    problems += [
        f"{name}: unknown column {c!r} (columns: {', '.join(_ARRIVAL_COLUMNS)})"
        for c in columns
        if c not in _ARRIVAL_COLUMNS
    ]
    if problems:
        raise SimulationInputError(problems)
    rows: list[tuple[int, _ArrivalRow, float | datetime]] = []
    for line, raw in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            row = _ArrivalRow.model_validate(values)
        except ValidationError as exc:
            problems += _format_errors(f"{name}: line {line}", exc)
            continue
        when = _parse_when(row.received_at)
        if when is None:
            problems.append(
                f"{name}: line {line}: received_at: expected minutes since the start or an ISO "
                f"8601 datetime (got {row.received_at!r})"
            )
            continue
        rows.append((line, row, when))
    if not rows and not problems:
        problems.append(f"{name}: no arrivals")
    kinds = {isinstance(w, datetime) for _, _, w in rows}
    if len(kinds) > 1:
        problems.append(f"{name}: received_at mixes minutes and datetimes; use one or the other")
    if problems:
        raise SimulationInputError(problems)

    start = START
    if kinds == {True}:
        earliest = min(w for _, _, w in rows if isinstance(w, datetime))
        start = datetime.combine(earliest.date(), time(0), tzinfo=earliest.tzinfo)
    arrivals = []
    for _, row, when in rows:
        minute = (when - start).total_seconds() / 60 if isinstance(when, datetime) else when
        modality = primary_modality(re.split(r"[\\/,]", row.modality))
        arrivals.append(
            Arrival(
                minute=minute,
                hospital_code=row.hospital,
                modality=modality,
                priority=row.priority,
                body_part=row.body_part.upper(),
                study_description=row.study_description,
                patient_key=row.patient_key or None,
            )
        )
    arrivals.sort(key=lambda a: a.minute)
    return arrivals, start


def _parse_when(value: str) -> float | datetime | None:
    try:
        minutes = float(value)
    except ValueError:
        pass
    else:
        return minutes if math.isfinite(minutes) and minutes >= 0 else None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=SIM_TZ)


def poisson_arrivals(hours: float, scale: float, seed: int) -> list[Arrival]:
    """Arrivals from the built-in model: per local hour, hospital, modality and priority, a
    Poisson process at ``scale`` times the model's rate. Hours past 24 repeat the profile."""
    rng = random.Random(f"arrivals:{seed}")
    totals = {
        Priority.routine: sum(OUTPATIENT_PROFILE),
        Priority.urgent: sum(OUTPATIENT_PROFILE),
        Priority.stat: sum(EMERGENCY_PROFILE),
    }
    arrivals = []
    for hour in range(math.ceil(hours)):
        length = min(1.0, hours - hour)
        for code, volumes in HOSPITAL_VOLUMES.items():
            for modality, per_day in volumes.items():
                stat, urgent = PRIORITY_MIX.get(modality, (0.0, 0.0))
                shares = {
                    Priority.stat: stat,
                    Priority.urgent: urgent,
                    Priority.routine: 1 - stat - urgent,
                }
                for priority, share in shares.items():
                    profile = EMERGENCY_PROFILE if priority == Priority.stat else OUTPATIENT_PROFILE
                    rate = scale * per_day * share * profile[hour % 24] / totals[priority]
                    # Exponential gaps inside the hour: a Poisson count at any rate, with times.
                    t = rng.expovariate(rate) if rate > 0 else math.inf
                    while t < length:
                        desc, body_part = _pick_study(rng, modality)
                        arrivals.append(
                            Arrival(
                                minute=(hour + t) * 60,
                                hospital_code=code,
                                modality=modality,
                                priority=priority,
                                body_part=body_part,
                                study_description=desc,
                            )
                        )
                        t += rng.expovariate(rate)
    arrivals.sort(key=lambda a: (a.minute, a.hospital_code, a.modality))
    return arrivals


def _pick_study(rng: random.Random, modality: str) -> tuple[str, str]:
    mix = STUDY_MIX.get(modality)
    if not mix:
        return "", ""
    desc, body_part, _ = rng.choices(mix, weights=[w for _, _, w in mix])[0]
    return desc, body_part


# ---------------------------------------------------------------------------------------------
# Policies


def policy_rules(rules: RuleSet, name: str) -> RuleSet:
    """The rules with the assignment modes of policy ``name`` (see ``POLICIES``), in memory.

    Monitor-mode rules are dropped: their shadow decisions are never applied, so they would
    only slow the simulation down."""
    assignment = rules.policy.assignment
    modes: dict[str, dict[str, Any]] = {
        "push": {"default": "push", "priorities": {}, "hospitals": {}},
        "pool": {"default": "pool", "priorities": {}, "hospitals": {}},
        "pool-routine": {"default": "push", "priorities": {"routine": "pool"}, "hospitals": {}},
        "pool-stat": {"default": "push", "priorities": {"stat": "pool"}, "hospitals": {}},
    }
    if name not in POLICIES:
        raise SimulationInputError([f"unknown policy {name!r}; one of {', '.join(POLICIES)}"])
    if name in modes:
        assignment = assignment.model_copy(update=modes[name])
    policy = rules.policy.model_copy(update={"assignment": assignment})
    return replace(rules, policy=policy, monitor={})


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0-1), interpolating linearly between ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = (len(ordered) - 1) * q
    lo = math.floor(index)
    hi = math.ceil(index)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (index - lo)


def gini(values: Sequence[float]) -> float:
    """The Gini coefficient: 0 when everyone has the same, (n-1)/n when one has everything."""
    n = len(values)
    total = sum(values)
    if n == 0 or total <= 0:
        return 0.0
    ranked = sum(i * x for i, x in enumerate(sorted(values), start=1))
    return 2 * ranked / (n * total) - (n + 1) / n


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class TatStats:
    cases: int
    finished: int
    tat_p50: float | None
    tat_p90: float | None
    tat_p95: float | None
    breach_rate: float | None  # unfinished cases count as breached
    mean_wait_assign: float | None  # received -> pushed to (or claimed by) the reader who read it
    mean_wait_open: float | None  # received -> that reader opened it


@dataclass(frozen=True, slots=True)
class ExpertLoad:
    user_id: int
    name: str
    employment: str
    cases: int
    units: float
    online_hours: float
    cosigned: int


@dataclass(frozen=True, slots=True)
class PolicyResult:
    name: str
    description: str
    overall: TatStats
    by_priority: dict[str, TatStats]
    gini_units: float
    gini_units_full_time: float
    gini_units_per_hour: float  # units per online hour, readers who were online
    experts: tuple[ExpertLoad, ...]
    decisions: int
    rerouted: int  # cases routed more than once
    waited_unrouted: int  # cases that at some point had nobody eligible
    widened: int
    cosigned: int
    unfinished: int


@dataclass(frozen=True, slots=True)
class SimulationResult:
    source: str
    start: datetime
    hours: float
    seed: int
    scale: float | None
    cherry_pick: float
    cases: int
    experts: int
    roster: str
    rules: str
    policies: tuple[PolicyResult, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["start"] = self.start.isoformat()
        return data

    def to_markdown(self) -> str:
        return "\n".join(_markdown(self))


def _m(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _markdown(result: SimulationResult) -> Iterator[str]:
    scale = f", scale {result.scale:g}" if result.scale is not None else ""
    cherry = f", cherry-pick {result.cherry_pick:g}" if result.cherry_pick else ""
    yield (
        f"# Simulation: {result.cases} cases over {result.hours:g} h ({result.source}{scale}, "
        f"seed {result.seed}{cherry}), {result.experts} experts ({result.roster}), "
        f"rules {result.rules}"
    )
    yield ""
    yield "Times in minutes. TAT: received to final report (co-sign included)."
    for note in result.notes:
        yield f"Note: {note}"
    yield ""
    yield (
        "| policy | TAT p50 | TAT p90 | TAT p95 | breach | stat breach | wait to open "
        "| Gini units | Gini full-time | Gini per hour |"
    )
    yield "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for p in result.policies:
        o, stat = p.overall, p.by_priority[Priority.stat]
        yield (
            f"| {p.name} | {_m(o.tat_p50)} | {_m(o.tat_p90)} | {_m(o.tat_p95)} "
            f"| {_pct(o.breach_rate)} | {_pct(stat.breach_rate)} | {_m(o.mean_wait_open)} "
            f"| {p.gini_units:.3f} | {p.gini_units_full_time:.3f} | {p.gini_units_per_hour:.3f} |"
        )
    for p in result.policies:
        yield ""
        yield f"## {p.name}: {p.description}"
        yield ""
        yield (
            "| priority | cases | TAT p50 | TAT p90 | TAT p95 | SLA breach "
            "| mean wait to assign | mean wait to open |"
        )
        yield "|---|--:|--:|--:|--:|--:|--:|--:|"
        rows = [("all", p.overall), *p.by_priority.items()]
        for label, s in rows:
            yield (
                f"| {label} | {s.cases} | {_m(s.tat_p50)} | {_m(s.tat_p90)} | {_m(s.tat_p95)} "
                f"| {_pct(s.breach_rate)} | {_m(s.mean_wait_assign)} | {_m(s.mean_wait_open)} |"
            )
        loads = sorted(p.experts, key=lambda e: (-e.units, e.user_id))
        most, least = loads[0], loads[-1]
        yield ""
        yield (
            f"Work units: Gini {p.gini_units:.3f} across all experts, "
            f"{p.gini_units_full_time:.3f} across full-time, {p.gini_units_per_hour:.3f} per "
            f"online hour; most {most.units:.1f} ({most.name or most.user_id}), least "
            f"{least.units:.1f} ({least.name or least.user_id})."
        )
        yield (
            f"Routing: {p.decisions} decisions, {p.rerouted} cases re-routed, "
            f"{p.waited_unrouted} waited with nobody eligible, {p.widened} widened to general, "
            f"{p.cosigned} co-signed, {p.unfinished} unfinished."
        )


# ---------------------------------------------------------------------------------------------
# The event loop


class _Status(IntEnum):
    new = 0
    waiting = 1  # nobody eligible: the SLA watch tries again
    pool = 2  # offered, unclaimed
    queued = 3  # pushed to a reader, not opened
    reading = 4
    awaiting_cosign = 5
    cosigning = 6
    done = 7


_UNSTARTED = (_Status.waiting, _Status.pool, _Status.queued)


class _Event(IntEnum):
    # At the same minute: work finishes, then shifts change (the relief logs on before the
    # reader they relieve logs off, so handed-back cases can go to them), then cases arrive,
    # then the watch.
    finish = 0
    window_start = 1
    window_end = 2
    arrival = 3
    escalate = 4
    watch = 5


@dataclass(slots=True, eq=False)
class _Case:
    id: int
    arrival: Arrival
    received: float
    facts: CaseFacts
    read_z: float
    cosign_z: float
    status: _Status = _Status.new
    deadline: float = 0.0
    deadline_at: datetime | None = None
    target: float = 0.0
    units: float = 0.0
    read_minutes: float = 0.0
    cosign_minutes: float = 0.0
    step: int = 0
    overdue_applied: bool = False
    offered: frozenset[int] = frozenset()
    holder: _Reader | None = None  # pushed to or claimed by
    taken_day: int | None = None  # the day the holder's units were counted in
    assigned_at: float | None = None
    opened_at: float | None = None
    final_at: float | None = None
    decisions: int = 0
    waited_unrouted: bool = False
    widened: bool = False
    cosigned: bool = False
    routed_epoch: tuple[int, int] = (-1, -1)
    caps_bound: bool = False  # someone failed only the caps filter at the last routing
    escalation_token: int = 0


@dataclass(slots=True, eq=False)
class _Reader:
    spec: RosterExpert
    credentials: dict[int, datetime | None]
    windows: list[tuple[float, float]]
    windows_at: list[tuple[datetime, datetime]]
    familiarity: dict[int, int]
    subspecialties: Mapping[Subspecialty, int]
    online: bool = False
    window_start: float = 0.0
    online_minutes: float = 0.0
    queue: list[_Case] = field(default_factory=list)
    current: _Case | None = None
    idle_since: float = 0.0
    units_by_day: dict[int, float] = field(default_factory=dict)
    cases_read: int = 0
    units_read: float = 0.0
    cosigned: int = 0

    @property
    def id(self) -> int:
        return self.spec.id


def _daily_windows(spec: RosterExpert, days: int) -> list[tuple[float, float]]:
    """The expert's windows in minutes from the start, day -1 to ``days``, overlaps merged."""
    spans = []
    for text in spec.windows:
        h1, m1, h2, m2 = (int(g) for g in _WINDOW.match(text).groups())  # type: ignore[union-attr]
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            end += DAY
        spans += [(d * DAY + start, d * DAY + end) for d in range(-1, days + 1)]
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class _Simulation:
    """One policy's run. Times are float minutes from ``start``."""

    def __init__(
        self,
        name: str,
        rules: RuleSet,
        arrivals: Sequence[Arrival],
        draws: Sequence[tuple[float, float]],
        roster: Roster,
        hospital_ids: Mapping[str, int],
        start: datetime,
        *,
        seed: int,
        cherry_pick: float,
        watch_seconds: float,
    ):
        self.name = name
        self.rules = rules
        self.start = start
        self.roster = roster
        self.rng = random.Random(f"claims:{seed}:{name}")
        self.cherry_pick = cherry_pick
        self.watch = watch_seconds / 60
        self.off_state = ExpertState(roster.off_shift_state)
        self.visible = rules.policy.pool_visible_per_reader
        self.max_wait = rules.sla.max_wait_minutes
        self.horizon = (arrivals[-1].minute if arrivals else 0.0) + DRAIN_MINUTES
        days = math.ceil(self.horizon / DAY) + 1

        self.readers: list[_Reader] = []
        for spec in sorted(roster.experts, key=lambda e: e.id):
            codes = hospital_ids if spec.hospitals == "all" else spec.hospitals
            windows = _daily_windows(spec, days)
            self.readers.append(
                _Reader(
                    spec=spec,
                    credentials={hospital_ids[c]: None for c in codes if c in hospital_ids},
                    windows=windows,
                    windows_at=[(self._at(s), self._at(e)) for s, e in windows],
                    familiarity={
                        hospital_ids[c]: n for c, n in spec.familiarity.items() if c in hospital_ids
                    },
                    subspecialties=dict(spec.subspecialties),
                )
            )
        self.cases = [
            _Case(
                id=i,
                arrival=a,
                received=a.minute,
                facts=CaseFacts(
                    case_id=i,
                    hospital_id=hospital_ids[a.hospital_code],
                    hospital_code=a.hospital_code,
                    priority=a.priority,
                    modality=a.modality,
                    received_at=self._at(a.minute),
                    body_part=a.body_part,
                    study_description=a.study_description,
                    patient_key=a.patient_key,
                ),
                read_z=z1,
                cosign_z=z2,
            )
            for i, (a, (z1, z2)) in enumerate(zip(arrivals, draws, strict=True), start=1)
        ]
        self.events: list[tuple[float, int, int, Any]] = []
        self.seq = 0
        self.now = 0.0
        # Bumped when eligibility can change: shifts (roster), finished work and midnight (caps).
        self.epoch = 0
        self.caps_epoch = 0
        self.watch_pending = False
        self.waiting: dict[int, _Case] = {}
        self.pool: dict[int, _Case] = {}
        self.cosign: dict[int, _Case] = {}
        self.open_cases = 0
        self.arrived = 0
        self.decisions = 0

    # -- time ------------------------------------------------------------------------------

    def _at(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=minute)

    def _push(self, when: float, kind: _Event, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, int(kind), self.seq, payload))

    def _next_watch(self, after: float) -> float:
        """The first SLA watch pass at or after ``after`` (the watch runs every 30 s)."""
        return math.ceil(after / self.watch - 1e-9) * self.watch

    # -- run -------------------------------------------------------------------------------

    def run(self) -> PolicyResult:
        for case in self.cases:
            self._push(case.received, _Event.arrival, case)
        for reader in self.readers:
            for start, end in reader.windows:
                if end > 0 and start < self.horizon:
                    self._push(max(start, 0.0), _Event.window_start, (reader, start))
                    self._push(end, _Event.window_end, reader)
        last_day = 0
        while self.events:
            when, kind, _, payload = heapq.heappop(self.events)
            if when > self.horizon:
                break
            self.now = when
            day = int(when // DAY)
            if day != last_day:
                last_day = day
                self._changed(caps_only=True)  # daily caps start again
            self._handle(_Event(kind), payload)
            self._dispatch()
            if self.arrived == len(self.cases) and self.open_cases == 0:
                break
        for reader in self.readers:
            if reader.online:
                reader.online_minutes += self.now - max(reader.window_start, 0.0)
        return self._result()

    def _handle(self, kind: _Event, payload: Any) -> None:
        if kind == _Event.arrival:
            self.arrived += 1
            self.open_cases += 1
            self._route(payload)
        elif kind == _Event.finish:
            self._finish(payload)
        elif kind == _Event.window_start:
            reader, start = payload
            reader.online, reader.window_start = True, start
            reader.idle_since = self.now
            self._changed()
        elif kind == _Event.window_end:
            self._window_end(payload)
        elif kind == _Event.escalate:
            case, token = payload
            if token == case.escalation_token:
                self._escalate(case)
        elif kind == _Event.watch:
            self._watch()

    # -- routing ---------------------------------------------------------------------------

    def _route(self, case: _Case) -> None:
        # Routed again to the reader who already holds it: they have held it since then.
        kept = (case.holder, case.assigned_at) if case.status == _Status.queued else None
        self._detach(case)
        facts = case.facts
        if facts.escalation_step != case.step:
            facts = case.facts = replace(facts, escalation_step=case.step)
        deadline = case.deadline_at or self._at(self.horizon)
        day = int(self.now // DAY)
        on_duty = [r.units_by_day.get(day, 0.0) for r in self.readers if r.online]
        target = sum(on_duty) / len(on_duty) if on_duty else 0.0
        experts = [self._snapshot(r, deadline, day, target) for r in self.readers]
        decision = decide(facts, experts, self._at(self.now), self.rules)
        self.decisions += 1
        case.decisions += 1
        if case.deadline_at is None:
            self._classified(case, decision.deadline, decision.work_units)
        case.overdue_applied |= decision.overdue_wait
        case.widened |= decision.widened
        if decision.mode == Mode.push:
            assert decision.assignee is not None
            reader = next(r for r in self.readers if r.id == decision.assignee)
            case.status = _Status.queued
            reader.queue.append(case)
            self._take(reader, case)
            if kept and kept[0] is reader:
                case.assigned_at = kept[1]
        elif decision.mode == Mode.pool:
            case.status = _Status.pool
            case.offered = frozenset(decision.offered)
            self.pool[case.id] = case
        else:
            case.status = _Status.waiting
            case.waited_unrouted = True
            case.routed_epoch = (self.epoch, self.caps_epoch)
            case.caps_bound = any(c.failed() == ("caps",) for c in decision.candidates)
            self.waiting[case.id] = case
        self._schedule_escalation(case)

    def _classified(self, case: _Case, deadline: datetime, units: float) -> None:
        """First decision: the deadline and units are known, so the reading times are too."""
        case.deadline_at = deadline
        case.deadline = (deadline - self.start).total_seconds() / 60
        case.target = case.deadline - case.received
        case.units = units
        modality = case.arrival.modality
        custom = self.roster.reading_times.get(modality)
        median, sigma = (
            (custom.median, custom.sigma)
            if custom
            else READING_MINUTES.get(modality, OTHER_READING_MINUTES)
        )
        workload = self.rules.workload
        typical = workload.modality_defaults.get(modality, workload.default_units)
        minutes = median * units / typical
        case.read_minutes = minutes * math.exp(sigma * case.read_z)
        case.cosign_minutes = (
            self.roster.cosign_fraction * minutes * math.exp(sigma * case.cosign_z)
        )

    def _snapshot(self, r: _Reader, deadline: datetime, day: int, target: float) -> ExpertSnapshot:
        """The expert as the routing service shows them to the engine."""
        now = self.now
        held = [*r.queue, r.current] if r.current is not None and r.current.holder is r else r.queue
        today = r.units_by_day.get(day, 0.0)
        return ExpertSnapshot(
            user_id=r.id,
            name=r.spec.name,
            employment=r.spec.employment,
            state=ExpertState.online if r.online else self.off_state,
            subspecialties=r.subspecialties,
            qualification=r.spec.qualification,
            credentials=r.credentials,
            # Only the windows that can matter to this case: the one open now, and those that
            # open before its deadline.
            availability=tuple(
                w_at
                for (s, e), w_at in zip(r.windows, r.windows_at, strict=True)
                if e > now and (s <= now or w_at[0] < deadline)
            ),
            cap_open_cases=r.spec.cap_open_cases,
            cap_daily_units=r.spec.cap_daily_units,
            open_cases=len(held),
            open_units=sum(c.units for c in held),
            units_today=today,
            # The routing service counts the shift as the day, and the fair share as the mean
            # of what the readers online took today; the simulation does the same.
            units_shift=today,
            shift_target_units=target,
            familiarity=r.familiarity,
            open_patient_keys=frozenset(
                c.arrival.patient_key for c in held if c.arrival.patient_key
            ),
        )

    def _take(self, reader: _Reader, case: _Case) -> None:
        day = int(self.now // DAY)
        reader.units_by_day[day] = reader.units_by_day.get(day, 0.0) + case.units
        case.holder, case.taken_day, case.assigned_at = reader, day, self.now

    def _detach(self, case: _Case) -> None:
        """Take an unstarted case out of wherever it waits, undoing a push's unit counts."""
        if case.status == _Status.queued and case.holder and case.taken_day is not None:
            reader = case.holder
            reader.queue.remove(case)
            reader.units_by_day[case.taken_day] -= case.units
            case.holder = case.taken_day = case.assigned_at = None
        self.pool.pop(case.id, None)
        self.waiting.pop(case.id, None)

    def _schedule_escalation(self, case: _Case) -> None:
        """Wake the case at the first watch pass after its next escalation step or maximum
        wait, whichever comes first."""
        sla = self.rules.sla
        due = []
        if case.step < len(sla.escalation):
            due.append(case.received + sla.escalation[case.step].at * case.target)
        if self.max_wait is not None and not case.overdue_applied:
            due.append(case.received + self.max_wait)
        if not due:
            return
        when = self._next_watch(max(min(due), self.now))
        if when <= self.now:
            when = self.now + self.watch
        case.escalation_token += 1
        self._push(when, _Event.escalate, (case, case.escalation_token))

    def _escalate(self, case: _Case) -> None:
        if case.status not in _UNSTARTED:
            return  # opened: the reader has it, the watch no longer moves it
        assert case.deadline_at is not None
        status = sla_status(
            case.facts.received_at, case.deadline_at, self._at(self.now), self.rules
        )
        if status.escalation_step_due > case.step or (
            status.overdue_wait and not case.overdue_applied
        ):
            case.step = max(case.step, status.escalation_step_due)
            self._route(case)
        else:
            self._schedule_escalation(case)

    def _changed(self, *, caps_only: bool = False) -> None:
        """Something that decides eligibility changed: a shift began or ended, or (``caps_only``)
        work was finished or a day began. The next SLA watch pass routes the waiting cases again,
        as the real watch does on every pass; passes with nothing changed are skipped because
        the engine would give the same answer, which keeps a day's run fast."""
        if caps_only:
            self.caps_epoch += 1
        else:
            self.epoch += 1
        if self.waiting and not self.watch_pending:
            self.watch_pending = True
            self._push(self._next_watch(self.now + 1e-6), _Event.watch, None)

    def _watch(self) -> None:
        self.watch_pending = False
        for case in sorted(self.waiting.values(), key=self._key):
            epoch, caps_epoch = case.routed_epoch
            if epoch != self.epoch or (case.caps_bound and caps_epoch != self.caps_epoch):
                self._route(case)

    def _window_end(self, reader: _Reader) -> None:
        """The reader's window is over. Going offline hands their unopened cases back to
        routing and withdraws their offers (a case with no offer left is routed again), as the
        worklist does; a case being read is finished first. Going away keeps everything."""
        reader.online = False
        reader.online_minutes += self.now - max(reader.window_start, 0.0)
        if self.off_state == ExpertState.offline:
            for case in sorted(reader.queue, key=self._key):
                self._route(case)
            for case in sorted(self.pool.values(), key=self._key):
                if reader.id in case.offered:
                    case.offered = case.offered - {reader.id}
                    if not case.offered:
                        self._route(case)
        self._changed()

    # -- reading ---------------------------------------------------------------------------

    def _key(self, case: _Case) -> tuple[int, int, float, int]:
        """Worklist order: past the maximum wait first, then priority, then deadline."""
        overdue = self.max_wait is not None and self.now - case.received >= self.max_wait
        return (0 if overdue else 1, _PRIORITY_RANK[case.facts.priority], case.deadline, case.id)

    def _dispatch(self) -> None:
        idle = [r for r in self.readers if r.online and r.current is None]
        for reader in sorted(idle, key=lambda r: (r.idle_since, r.id)):
            self._start_next(reader)

    def _start_next(self, r: _Reader) -> None:
        options: list[tuple[tuple[int, int, float, int], str, _Case]] = []
        if r.queue:
            case = min(r.queue, key=self._key)
            options.append((self._key(case), "queue", case))
        visible = sorted((c for c in self.pool.values() if r.id in c.offered), key=self._key)
        visible = visible[: self.visible]
        if visible:
            options.append((self._key(visible[0]), "pool", visible[0]))
        if r.spec.qualification == Qualification.final and self.cosign:
            mine = [c for c in self.cosign.values() if c.facts.hospital_id in r.credentials]
            if mine:
                case = min(mine, key=self._key)
                options.append((self._key(case), "cosign", case))
        if not options:
            return
        _, source, case = min(options, key=lambda o: o[0])
        if source == "pool" and self.cherry_pick and self.rng.random() < self.cherry_pick:
            # The reader takes the easiest case they can see, as readers who choose do.
            case = min(visible, key=lambda c: (c.units, self._key(c)))
        if source == "cosign":
            del self.cosign[case.id]
            case.status = _Status.cosigning
            minutes = case.cosign_minutes
        else:
            if source == "pool":
                del self.pool[case.id]
                self._take(r, case)
            else:
                r.queue.remove(case)
            case.status = _Status.reading
            case.opened_at = self.now
            minutes = case.read_minutes
        r.current = case
        self._push(self.now + minutes / r.spec.speed, _Event.finish, r)

    def _finish(self, r: _Reader) -> None:
        case = r.current
        assert case is not None
        r.current = None
        r.idle_since = self.now
        self._changed(caps_only=True)  # open work fell: caps may admit someone now
        if case.status == _Status.cosigning:
            r.cosigned += 1
            self._final(case)
            return
        r.cases_read += 1
        r.units_read += case.units
        hospital = case.facts.hospital_id
        r.familiarity[hospital] = r.familiarity.get(hospital, 0) + 1
        if r.spec.qualification == Qualification.preliminary:
            case.status = _Status.awaiting_cosign
            case.cosigned = True
            self.cosign[case.id] = case
        else:
            self._final(case)

    def _final(self, case: _Case) -> None:
        case.status = _Status.done
        case.final_at = self.now
        self.open_cases -= 1

    # -- result ----------------------------------------------------------------------------

    def _stats(self, cases: Sequence[_Case]) -> TatStats:
        done = [c for c in cases if c.final_at is not None]
        tats = [c.final_at - c.received for c in done if c.final_at is not None]
        breached = sum(1 for c in cases if c.final_at is None or c.final_at > c.deadline)
        assigned = [c.assigned_at - c.received for c in cases if c.assigned_at is not None]
        opened = [c.opened_at - c.received for c in cases if c.opened_at is not None]
        return TatStats(
            cases=len(cases),
            finished=len(done),
            tat_p50=percentile(tats, 0.5),
            tat_p90=percentile(tats, 0.9),
            tat_p95=percentile(tats, 0.95),
            breach_rate=breached / len(cases) if cases else None,
            mean_wait_assign=sum(assigned) / len(assigned) if assigned else None,
            mean_wait_open=sum(opened) / len(opened) if opened else None,
        )

    def _result(self) -> PolicyResult:
        loads = tuple(
            ExpertLoad(
                user_id=r.id,
                name=r.spec.name,
                employment=str(r.spec.employment),
                cases=r.cases_read,
                units=round(r.units_read, 4),
                online_hours=round(r.online_minutes / 60, 4),
                cosigned=r.cosigned,
            )
            for r in self.readers
        )
        full_time = [e.units for e in loads if e.employment == Employment.full_time]
        per_hour = [e.units / e.online_hours for e in loads if e.online_hours > 0]
        return PolicyResult(
            name=self.name,
            description=POLICIES[self.name],
            overall=self._stats(self.cases),
            by_priority={
                str(p): self._stats([c for c in self.cases if c.facts.priority == p])
                for p in Priority
            },
            gini_units=gini([e.units for e in loads]),
            gini_units_full_time=gini(full_time),
            gini_units_per_hour=gini(per_hour),
            experts=loads,
            decisions=self.decisions,
            rerouted=sum(1 for c in self.cases if c.decisions > 1),
            waited_unrouted=sum(1 for c in self.cases if c.waited_unrouted),
            widened=sum(1 for c in self.cases if c.widened),
            cosigned=sum(1 for c in self.cases if c.cosigned),
            unfinished=sum(1 for c in self.cases if c.final_at is None),
        )


# ---------------------------------------------------------------------------------------------
# Entry points


def simulate(
    rules: RuleSet,
    arrivals: Sequence[Arrival],
    roster: Roster,
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    seed: int = 1,
    start: datetime = START,
    cherry_pick: float = 0.0,
    watch_seconds: float = 30.0,
) -> tuple[PolicyResult, ...]:
    """Run every policy on the same arrivals and the same reading-time draws (common random
    numbers: differences between policies are the policies', not the dice's)."""
    if not 0 <= cherry_pick <= 1:
        raise SimulationInputError([f"cherry-pick is a probability, got {cherry_pick}"])
    for name in policies:
        if name not in POLICIES:
            raise SimulationInputError([f"unknown policy {name!r}; one of {', '.join(POLICIES)}"])
    ordered = sorted(arrivals, key=lambda a: a.minute)
    hospital_ids = {code: i for i, code in enumerate(sorted({a.hospital_code for a in ordered}), 1)}
    dice = random.Random(f"reading:{seed}")
    draws = [(dice.gauss(0, 1), dice.gauss(0, 1)) for _ in ordered]
    return tuple(
        _Simulation(
            name,
            policy_rules(rules, name),
            ordered,
            draws,
            roster,
            hospital_ids,
            start,
            seed=seed,
            cherry_pick=cherry_pick,
            watch_seconds=watch_seconds,
        ).run()
        for name in dict.fromkeys(policies)
    )


def _notes(arrivals: Sequence[Arrival], roster: Roster) -> tuple[str, ...]:
    codes = sorted({a.hospital_code for a in arrivals})
    covered = set()
    for e in roster.experts:
        covered |= set(codes) if e.hospitals == "all" else set(e.hospitals)
    return tuple(
        f"nobody on the roster is credentialed for {code}: its cases stay unfinished"
        for code in codes
        if code not in covered
    )


def run(
    rules: RuleSet,
    *,
    rules_label: str,
    arrivals_path: Path | None = None,
    roster_path: Path | None = None,
    hours: float | None = None,
    scale: float | None = None,
    seed: int = 1,
    policies: Sequence[str] = (),
    cherry_pick: float = 0.0,
    watch_seconds: float = 30.0,
) -> SimulationResult:
    """Load the inputs the command line names and simulate (``radrelay simulate``)."""
    roster = load_roster(roster_path) if roster_path else default_roster()
    if arrivals_path is not None:
        if hours is not None or scale is not None:
            raise SimulationInputError(
                ["--hours and --scale shape the Poisson model; a CSV of arrivals sets its own"]
            )
        arrivals, start = load_arrivals(arrivals_path)
        span = max(a.minute for a in arrivals) / 60
        source, hours = f"arrivals from {arrivals_path.name}", math.ceil(span) or 1
    else:
        hours, scale = 24.0 if hours is None else hours, 1.0 if scale is None else scale
        if not 0 < hours <= 24 * 31 or not 0 < scale <= 100:
            raise SimulationInputError(["--hours must be in (0, 744] and --scale in (0, 100]"])
        arrivals, start, source = poisson_arrivals(hours, scale, seed), START, "Poisson"
    results = simulate(
        rules,
        arrivals,
        roster,
        policies=list(policies) or DEFAULT_POLICIES,
        seed=seed,
        start=start,
        cherry_pick=cherry_pick,
        watch_seconds=watch_seconds,
    )
    return SimulationResult(
        source=source,
        start=start,
        hours=hours,
        seed=seed,
        scale=scale,
        cherry_pick=cherry_pick,
        cases=len(arrivals),
        experts=len(roster.experts),
        roster=f"roster {roster_path.name}" if roster_path else "built-in roster",
        rules=rules_label,
        policies=results,
        notes=_notes(arrivals, roster),
    )
