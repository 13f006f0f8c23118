"""Routing: how long the pure engine takes to decide, printed as tables.

    .venv/bin/python bench/routing.py                  # every section
    .venv/bin/python bench/routing.py --only engine    # one section
    .venv/bin/python bench/routing.py --quick          # a smoke run (numbers not comparable)

Each section measures one part of routing and prints its own table (a section is a function
``bench_<name>(args) -> list[Row]`` registered in ``SECTIONS``, with the options it needs added
to ``main``):

- ``engine``: ``radrelay.routing.engine.decide()`` in this process, no I/O. The roster holds 500
  experts whose aggregates (open cases and units, units today and this shift, the patient keys of
  their open cases, familiarity) add up to 10,000 open cases. The roster is mixed like a real
  one: subspecialties and levels, full-time shifts and part-time windows, online, away and
  offline readers, missing or expired credentials, and a few readers at a cap. The cases come
  from the shipped ``worklist_rules``: stat, urgent and routine; CT, CR/DX, MR, US and MG; push
  hospitals and HPZ, whose routine work goes to a pool. Rows by kind of case, then the
  realistic mix, then the worst case (all 500 eligible, every one scored), then the mix again
  with a monitor-mode rule beside the active ones (the engine then decides twice: active and
  shadow).

Latencies are wall time around each call, after a warm-up, with the garbage collector on as in
the routing job; the CPU time of each call is given beside them, as other load on the machine
lengthens wall times but barely changes it. ``--freeze-gc`` runs the engine section after
``gc.freeze()``, as a routing worker could do once started: the rare full collections then no
longer walk the objects made before (each otherwise adds 10-20 ms to one decision). Targets are
reported, never asserted; the exit status is 0 unless a section failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx

from ingest import cores, cpu_model, load_average, log
from radrelay.routing.engine import classify, decide
from radrelay.routing.rules import RuleKind, RuleSet, load_rules
from radrelay.routing.schemas import (
    CaseFacts,
    Decision,
    Employment,
    ExpertSnapshot,
    ExpertState,
    Priority,
    Qualification,
    Subspecialty,
)
from radrelay.routing.service import stored

RULES_DIR = Path(__file__).resolve().parents[1] / "worklist_rules"

# From the issue: "decision latency with 500 experts and 10,000 open cases (p95 under 5 ms)".
DECIDE_P95_MS = 5.0
EXPERTS = 500
OPEN_CASES = 10_000

# 12:00 in Beijing: the day shift is on, the night shift starts at 20:00.
NOW = datetime(2025, 3, 3, 4, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TODAY = NOW.replace(hour=0)

# (id, code, share of the cases). QSX and HPZ are the hospitals the shipped policy names: QSX
# needs final signers, HPZ's routine work goes to a pool. The others take the defaults.
HOSPITALS = [
    (1, "QSX", 22),
    (2, "HPZ", 20),
    (3, "LHX", 14),
    (4, "JSZ", 12),
    (5, "YCH", 10),
    (6, "BTW", 8),
    (7, "DQM", 8),
    (8, "XNK", 6),
]

# Primary subspecialty of a reader, and how common it is on the roster.
PRIMARY = {
    Subspecialty.chest: 18,
    Subspecialty.neuro: 15,
    Subspecialty.abdominal: 14,
    Subspecialty.msk: 14,
    Subspecialty.general: 12,
    Subspecialty.breast: 6,
    Subspecialty.head_neck: 5,
    Subspecialty.cardiac: 4,
    Subspecialty.genitourinary: 4,
    Subspecialty.vascular: 3,
    Subspecialty.pediatric: 3,
    Subspecialty.nuclear: 2,
}

# Work units of an open case, by how common the exam is in a grassroots hospital's queue (DR
# first), from worklist_rules/workload.yaml.
OPEN_UNITS = [(0.2, 55), (0.3, 10), (0.6, 8), (0.8, 10), (1.0, 7), (1.3, 2), (1.8, 5), (2.2, 3)]

# Study descriptions by modality, as grassroots hospitals write them; the subspecialty rule
# maps them (a few to nothing: general).
DESCRIPTIONS = {
    "CT": [
        "头颅CT平扫",
        "胸部CT平扫",
        "肺结节随访",
        "腹部增强",
        "冠脉CTA",
        "颈部增强",
        "主动脉CTA",
        "腰椎CT",
        "泌尿系CT",
        "CT",
    ],
    "CR": ["胸部正位", "胸片", "腰椎正侧位", "膝关节正侧位", "手正斜位", "DR"],
    "DX": ["胸部正位", "颈椎正侧位", "踝关节", "DR"],
    "MR": ["头颅MR平扫", "右膝关节MR", "腰椎MR", "肝脏增强MR", "乳腺MR", "垂体MR"],
    "US": ["腹部超声", "甲状腺超声", "乳腺超声", "泌尿系超声", "子宫附件超声", "肝胆超声"],
    "MG": ["乳腺钼靶", ""],
}
MODALITIES = [("CT", 35), ("CR", 18), ("DX", 12), ("MR", 12), ("US", 15), ("MG", 8)]
PRIORITIES = [(Priority.stat, 10), (Priority.urgent, 20), (Priority.routine, 70)]
# How long ago a case of each priority came in (minutes): it is routed again while it waits.
RECEIVED_AGO = {Priority.stat: 15, Priority.urgent: 60, Priority.routine: 900}


T = TypeVar("T")


def pick(rnd: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    return rnd.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


# --- the roster -----------------------------------------------------------------------------


def windows(rnd: random.Random, employment: Employment) -> tuple[tuple[datetime, datetime], ...]:
    """The windows a snapshot holds: from the current one to tomorrow's."""
    if employment == Employment.full_time:
        # Day shift 08-20 Beijing (00-12 UTC), or night shift 20-08 (12-24 UTC).
        start = TODAY if rnd.random() < 0.7 else TODAY + timedelta(hours=12)
        return tuple((start + k * DAY, start + k * DAY + timedelta(hours=12)) for k in (0, 1))
    found = []
    for _ in range(rnd.randint(1, 3)):
        start = NOW + timedelta(hours=rnd.randint(-3, 30))
        found.append((start, start + timedelta(hours=rnd.randint(2, 5))))
    return tuple(sorted(found))


def credentials(rnd: random.Random) -> dict[int, datetime | None]:
    found: dict[int, datetime | None] = {}
    for hospital_id, _, _ in HOSPITALS:
        draw = rnd.random()
        if draw < 0.08:
            continue  # not credentialed there
        if draw < 0.12:
            found[hospital_id] = NOW - timedelta(days=rnd.randint(1, 90))  # expired
        elif draw < 0.55:
            found[hospital_id] = NOW + timedelta(days=rnd.randint(1, 720))
        else:
            found[hospital_id] = None
    return found


def roster(
    rnd: random.Random, n: int = EXPERTS, open_cases: int = OPEN_CASES
) -> list[ExpertSnapshot]:
    """``n`` experts whose aggregates add up to ``open_cases`` open cases."""
    drafts: list[ExpertSnapshot] = []
    weights: list[float] = []
    subs = list(Subspecialty)
    for user_id in rnd.sample(range(1000, 100_000), n):
        employment = Employment.part_time if rnd.random() < 0.3 else Employment.full_time
        part_time = employment == Employment.part_time
        availability = windows(rnd, employment)
        on_now = any(start <= NOW < end for start, end in availability)
        states = [(ExpertState.online, 85), (ExpertState.away, 10), (ExpertState.offline, 5)]
        if not on_now:
            states = [(ExpertState.online, 15), (ExpertState.away, 20), (ExpertState.offline, 65)]
        subspecialties = {pick(rnd, list(PRIMARY.items())): rnd.choice([1, 2, 2, 3, 3])}
        for sub in rnd.sample(subs, rnd.randint(0, 2)):
            subspecialties.setdefault(sub, rnd.randint(1, 2))
        if rnd.random() < 0.4:
            subspecialties.setdefault(Subspecialty.general, rnd.randint(1, 2))
        drafts.append(
            ExpertSnapshot(
                user_id=user_id,
                name=f"Dr {user_id}",
                employment=employment,
                state=pick(rnd, states),
                subspecialties=subspecialties,
                qualification=(
                    Qualification.preliminary if rnd.random() < 0.12 else Qualification.final
                ),
                credentials=credentials(rnd),
                availability=availability,
                cap_open_cases=rnd.randint(8, 30) if part_time or rnd.random() < 0.1 else None,
                cap_daily_units=rnd.choice([15.0, 25.0, 40.0]) if rnd.random() < 0.2 else None,
                shift_target_units=12.0 if part_time else 30.0,
                familiarity={
                    h: int(rnd.paretovariate(1.2) * 20)
                    for h, _, _ in HOSPITALS
                    if rnd.random() < 0.8
                },
            )
        )
        # Who holds the open cases: readers on shift most, part-timers half as many. Off-shift
        # readers keep some: what they took and will read when their window opens.
        weights.append((0.5 if part_time else 1.0) * (1.0 if on_now else 0.6))

    held = [0] * n
    for i in rnd.choices(range(n), weights, k=open_cases):
        held[i] += 1
    units = [u for u, _ in OPEN_UNITS]
    unit_weights = [w for _, w in OPEN_UNITS]
    codes = [code for _, code, _ in HOSPITALS]
    experts = []
    for draft, count in zip(drafts, held, strict=True):
        target = draft.shift_target_units
        expert = replace(
            draft,
            open_cases=count,
            open_units=round(sum(rnd.choices(units, unit_weights, k=count)), 1),
            units_today=round(rnd.uniform(0, 1.2 * target), 1),
            units_shift=round(rnd.uniform(0, target), 1),
            open_patient_keys=frozenset(
                f"{rnd.choice(codes)}:{rnd.randint(1, 400_000)}" for _ in range(count)
            ),
        )
        # A few readers have reached a cap of their own.
        if rnd.random() < 0.03:
            expert = replace(expert, cap_open_cases=count)
        elif rnd.random() < 0.02:
            expert = replace(expert, cap_daily_units=expert.units_today)
        experts.append(expert)
    return experts


def all_eligible(experts: Sequence[ExpertSnapshot], sub: Subspecialty) -> list[ExpertSnapshot]:
    """The same roster with everyone eligible for any case of subspecialty ``sub``: the most work
    for the engine (every expert scored)."""
    credentials: dict[int, datetime | None] = {h: None for h, _, _ in HOSPITALS}
    return [
        replace(
            e,
            state=ExpertState.online,
            qualification=Qualification.final,
            credentials=credentials,
            availability=((NOW - timedelta(hours=2), NOW + timedelta(hours=10)),),
            subspecialties={**e.subspecialties, sub: e.subspecialties.get(sub, 2)},
            cap_open_cases=None,
            cap_daily_units=None,
            open_units=min(e.open_units, 9.0),  # under the 12-unit queue cap
        )
        for e in experts
    ]


# --- the cases ------------------------------------------------------------------------------


def make_case(
    rnd: random.Random,
    case_id: int,
    experts: Sequence[ExpertSnapshot],
    priority: Priority | None = None,
    hospital: str | None = None,
    not_hospital: str = "",
) -> CaseFacts:
    """A case for the roster ``experts``: of ``priority`` (else drawn), from ``hospital`` (else
    drawn, never ``not_hospital``)."""
    priority = priority or pick(rnd, PRIORITIES)
    choices = [
        (h, w)
        for h, w in ((h[:2], h[2]) for h in HOSPITALS)
        if (hospital is None or h[1] == hospital) and h[1] != not_hospital
    ]
    hospital_id, code = pick(rnd, choices)
    modality = pick(rnd, MODALITIES)
    if rnd.random() < 0.15:
        # A follow-up: the patient has another open study with some reader.
        holder = rnd.choice([e for e in experts if e.open_patient_keys])
        patient_key = rnd.choice(sorted(holder.open_patient_keys))
    else:
        patient_key = f"{code}:{rnd.randint(400_001, 800_000)}"
    ago = rnd.uniform(0, RECEIVED_AGO[priority])
    if priority == Priority.routine and rnd.random() < 0.01:
        ago = 1500  # waited past the maximum wait
    return CaseFacts(
        case_id=case_id,
        hospital_id=hospital_id,
        hospital_code=code,
        priority=priority,
        modality=modality,
        received_at=NOW - timedelta(minutes=ago),
        study_description=rnd.choice(DESCRIPTIONS[modality]),
        requested_subspecialty=Subspecialty.neuro if rnd.random() < 0.03 else None,
        escalation_step=pick(rnd, [(0, 90), (1, 7), (2, 3)]),
        patient_key=patient_key,
        excluded_expert_ids=(
            frozenset(e.user_id for e in rnd.sample(list(experts), 2))
            if rnd.random() < 0.05
            else frozenset()
        ),
    )


def with_monitor_rule(rules: RuleSet) -> RuleSet:
    """The shipped rules plus a monitor-mode policy (fairness weighs twice as much, offers go to
    five): every decision is then made twice, the second as the shadow."""
    policy = rules.policy
    trial = policy.model_copy(
        update={
            "id": "policy-next",
            "version": policy.version + 1,
            "mode": "monitor",
            "weights": policy.weights.model_copy(update={"fairness": 1.0}),
            "offer_size": 5,
        }
    )
    return replace(rules, monitor={RuleKind.policy: trial})


# --- measuring ------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    metric: str
    target: str  # as printed
    limit_ms: float | None = None  # p95 must be under it; None: no target
    latencies: list[float] = field(default_factory=list)  # seconds, wall time
    cpu: list[float] = field(default_factory=list)  # seconds, CPU time of this thread
    eligible: list[int] = field(default_factory=list)  # eligible experts per decision
    stored: list[int] = field(default_factory=list)  # bytes of to_json(compact=True)
    note: str = ""
    error: str = ""

    def ms(self, p: float, cpu: bool = False) -> str:
        values = self.cpu if cpu else self.latencies
        return f"{1000 * percentile(values, p):.2f}" if values else "-"

    @property
    def verdict(self) -> str:
        if self.error:
            return "FAILED: " + self.error[:140].replace("|", "/")
        if self.limit_ms is None or not self.latencies:
            return "-"
        return "pass" if 1000 * percentile(self.latencies, 95) < self.limit_ms else "MISS"


def measure(
    row: Row,
    rules: RuleSet,
    work: Sequence[tuple[CaseFacts, Sequence[ExpertSnapshot]]],
    warmup: int,
) -> Row:
    for case, experts in work[:warmup]:
        decide(case, experts, NOW, rules)
    # Keep only a sample of the decisions: holding them all would make each full collection of
    # the garbage collector slower than in the routing job, which drops them once stored.
    every = max(1, (len(work) - warmup) // 50)
    sample: list[Decision] = []
    gc.collect()
    clock, cpu = time.perf_counter, time.thread_time
    for i, (case, experts) in enumerate(work[warmup:]):
        c0, t0 = cpu(), clock()
        decision = decide(case, experts, NOW, rules)
        t1, c1 = clock(), cpu()
        row.latencies.append(t1 - t0)
        row.cpu.append(c1 - c0)
        row.eligible.append(sum(1 for c in decision.candidates if c.eligible))
        if i % every == 0:
            sample.append(decision)
    # What the routing job stores with each case, measured apart from decide().
    for decision in sample:
        row.stored.append(len(json.dumps(stored(decision), ensure_ascii=False)))
    return row


def bench_engine(args: argparse.Namespace) -> list[Row]:
    """decide() with 500 experts and 10,000 open cases, by kind of case."""
    rnd = random.Random(args.seed)
    rules = load_rules(RULES_DIR)
    log(f"engine: a roster of {args.experts} experts holding {args.open_cases} open cases ...")
    experts = roster(rnd, args.experts, args.open_cases)
    try:
        return _engine_rows(args, rnd, rules, experts)
    finally:
        gc.unfreeze()


def _engine_rows(
    args: argparse.Namespace, rnd: random.Random, rules: RuleSet, experts: list[ExpertSnapshot]
) -> list[Row]:
    """The rows of ``bench_engine``; it undoes ``--freeze-gc`` after them."""
    n, warmup = args.decisions, args.warmup
    target = f"p95 < {DECIDE_P95_MS:g} ms"

    def cases(
        priority: Priority | None = None, hospital: str | None = None, not_hospital: str = ""
    ) -> list[tuple[CaseFacts, Sequence[ExpertSnapshot]]]:
        return [
            (make_case(rnd, i, experts, priority, hospital, not_hospital), experts)
            for i in range(warmup + n)
        ]

    mix = cases()
    if args.freeze_gc:
        gc.collect()
        gc.freeze()
    kinds = [
        ("push stat", cases(priority=Priority.stat)),
        ("push urgent", cases(priority=Priority.urgent)),
        ("push routine (not HPZ)", cases(priority=Priority.routine, not_hospital="HPZ")),
        ("pool routine (HPZ)", cases(priority=Priority.routine, hospital="HPZ")),
        ("mix (10% stat, 20% urgent, 70% routine)", mix),
    ]
    rows = []
    for name, work in kinds:
        log(f"engine: {name}, {n} decisions ...")
        rows.append(measure(Row(name, target, DECIDE_P95_MS), rules, work, warmup))

    log("engine: worst case, all eligible ...")
    # One roster per subspecialty, not a copy per case: copies would fill the heap, and each
    # full pass of the garbage collector, which walks all of it, would count in the latencies.
    rosters: dict[Subspecialty, list[ExpertSnapshot]] = {}
    worst: list[tuple[CaseFacts, Sequence[ExpertSnapshot]]] = []
    for case, _ in mix:
        sub = classify(case, rules).subspecialty
        if sub not in rosters:
            rosters[sub] = all_eligible(experts, sub)
        worst.append((case, rosters[sub]))
    rows.append(
        measure(
            Row(f"mix, all {len(experts)} eligible (worst case)", target, DECIDE_P95_MS),
            rules,
            worst,
            warmup,
        )
    )
    del worst, rosters

    log("engine: mix with a monitor rule (shadow decision) ...")
    rows.append(
        measure(
            Row(
                "mix + monitor rule (shadow: decides twice)",
                target,
                DECIDE_P95_MS,
                note="two decisions per call: the target is for one",
            ),
            with_monitor_rule(rules),
            mix,
            warmup,
        )
    )
    return rows


# --- report ---------------------------------------------------------------------------------


def engine_table(rows: Sequence[Row]) -> str:
    out = [
        "| case mix | n | eligible (median) | p50 ms | p95 ms | p99 ms | max ms | CPU p95 ms "
        "| stored JSON KB (median) | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        eligible = f"{statistics.median(r.eligible):.0f}" if r.eligible else "-"
        stored = f"{statistics.median(r.stored) / 1024:.1f}" if r.stored else "-"
        verdict = r.verdict + (f" ({r.note})" if r.note else "")
        out.append(
            f"| {r.metric} | {len(r.latencies)} | {eligible} | {r.ms(50)} | {r.ms(95)} "
            f"| {r.ms(99)} | {r.ms(100)} | {r.ms(95, cpu=True)} | {stored} | {r.target} "
            f"| {verdict} |"
        )
    return "\n".join(out)


# --- worklist: GET /api/worklist on PostgreSQL with 100,000 cases ------------------------------

WORKLIST_P95_MS = 50.0
READER_PASSWORD = "reader-bench-password"


def seed_worklist(
    db_url: str, args: argparse.Namespace, password_hash: str
) -> dict[str, list[int]]:
    """Hospitals, ``args.experts`` readers with profiles, and ``args.cases`` cases with studies
    and patients, written with SQLAlchemy Core (so column defaults apply) into the server's
    database. ``args.open_cases`` of them are open: held by readers, offered to three, or
    waiting; the rest are finished (status ``final``, as reporting writes it). Returns ids."""
    from sqlalchemy import create_engine, insert, text

    from radrelay.models import (
        Case,
        CaseAssignment,
        Expert,
        ExpertCredential,
        ExpertShift,
        ExpertSubspecialty,
        Hospital,
        Patient,
        Study,
        User,
    )

    rnd = random.Random(args.seed)
    engine = create_engine(db_url.replace("postgresql+asyncpg://", "postgresql+psycopg://"))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        hospital_ids = [
            conn.execute(
                insert(Hospital.__table__)
                .values(code=code, name=f"Hospital {code}")
                .returning(Hospital.__table__.c.id)
            ).scalar_one()
            for _, code, _ in HOSPITALS
        ]
        weights = [share for _, _, share in HOSPITALS]
        users = [
            {
                "username": f"reader{i:04d}",
                "display_name": f"Reader {i}",
                "password_hash": password_hash,
                "role": "radiologist",
            }
            for i in range(args.experts)
        ]
        reader_ids = list(
            conn.execute(insert(User.__table__).returning(User.__table__.c.id), users).scalars()
        )
        conn.execute(
            insert(Expert.__table__),
            [
                {
                    "user_id": u,
                    "employment": "full_time" if i % 4 else "part_time",
                    "qualification": "final" if i % 5 else "preliminary",
                    "state": rnd.choices(["online", "away", "offline"], [70, 10, 20])[0],
                }
                for i, u in enumerate(reader_ids)
            ],
        )
        conn.execute(
            insert(ExpertSubspecialty.__table__),
            [
                {"user_id": u, "subspecialty": s.value, "level": rnd.randint(1, 3)}
                for u in reader_ids
                for s in {pick(rnd, list(PRIMARY.items())), Subspecialty.general}
            ],
        )
        conn.execute(
            insert(ExpertCredential.__table__),
            [
                {"user_id": u, "hospital_id": h, "expires_at": None}
                for u in reader_ids
                for h in hospital_ids
            ],
        )
        conn.execute(
            insert(ExpertShift.__table__),
            [
                {"user_id": u, "weekday": d, "start_minute": 8 * 60, "end_minute": 20 * 60}
                for u in reader_ids
                for d in range(7)
            ],
        )
        patients = [
            {
                "hospital_id": rnd.choices(hospital_ids, weights)[0],
                "patient_key": f"P{i}",
                "patient_id": f"P{i}",
                "patient_name": f"PATIENT^{i}",
                "name_search": f"=patient^{i}=",
            }
            for i in range(args.cases // 2)
        ]
        patient_rows = list(
            conn.execute(
                insert(Patient.__table__).returning(
                    Patient.__table__.c.id, Patient.__table__.c.hospital_id
                ),
                patients,
            ).all()
        )
        studies = []
        for i in range(args.cases):
            patient_pk, hospital_id = patient_rows[i % len(patient_rows)]
            modality = pick(rnd, MODALITIES)
            studies.append(
                {
                    "hospital_id": hospital_id,
                    "patient_pk": patient_pk,
                    "study_instance_uid": f"2.25.{i}",
                    "study_date": "20250301",
                    "modalities_in_study": modality,
                    "study_description": rnd.choice(DESCRIPTIONS[modality]),
                }
            )
        study_rows = list(
            conn.execute(
                insert(Study.__table__).returning(
                    Study.__table__.c.id,
                    Study.__table__.c.hospital_id,
                    Study.__table__.c.patient_pk,
                ),
                studies,
            ).all()
        )
        cases, open_kinds = [], []
        for i, (study_pk, hospital_id, patient_pk) in enumerate(study_rows):
            priority = pick(rnd, PRIORITIES)
            is_open = i >= args.cases - args.open_cases
            kind = rnd.choices(["held", "offered", "ready"], [60, 25, 15])[0] if is_open else "done"
            received = now - timedelta(minutes=rnd.uniform(1, 600 if is_open else 60 * 24 * 90))
            minutes = {Priority.stat: 30, Priority.urgent: 120, Priority.routine: 1440}[priority]
            reader = rnd.choice(reader_ids) if kind in ("held", "done") else None
            status = {
                "held": rnd.choice(["assigned", "reading"]),
                "offered": "offered",
                "ready": "ready",
                "done": "final",
            }[kind]
            open_kinds.append(kind)
            cases.append(
                {
                    "hospital_id": hospital_id,
                    "study_pk": study_pk,
                    "patient_pk": patient_pk,
                    "status": status,
                    "priority": priority.value,
                    "source": "stow",
                    "received_at": received,
                    "ready_at": received,
                    "routed_at": received,
                    "assigned_at": received if reader else None,
                    "final_at": received + timedelta(minutes=rnd.uniform(5, minutes))
                    if kind == "done"
                    else None,
                    "deadline": received + timedelta(minutes=minutes),
                    "sla_target_minutes": minutes,
                    "subspecialty": pick(rnd, list(PRIMARY.items())).value,
                    "work_units": pick(rnd, OPEN_UNITS),
                    "reader_id": reader,
                    "sla_state": "breached"
                    if is_open and received + timedelta(minutes=minutes) < now
                    else "ok",
                    "sla_next_at": received + timedelta(minutes=minutes) if is_open else None,
                }
            )
        case_ids = list(
            conn.execute(insert(Case.__table__).returning(Case.__table__.c.id), cases).scalars()
        )
        holds = []
        for case_id, row, kind in zip(case_ids, cases, open_kinds, strict=True):
            if row["reader_id"] is not None:
                holds.append(
                    {
                        "case_id": case_id,
                        "user_id": row["reader_id"],
                        "kind": "assigned",
                        "active": kind == "held",
                        "created_at": row["received_at"],
                    }
                )
            if kind == "offered":
                holds += [
                    {
                        "case_id": case_id,
                        "user_id": u,
                        "kind": "offered",
                        "active": True,
                        "created_at": row["received_at"],
                    }
                    for u in rnd.sample(reader_ids, 3)
                ]
        conn.execute(insert(CaseAssignment.__table__), holds)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    engine.dispose()
    return {"hospitals": hospital_ids, "readers": reader_ids}


def timed_gets(
    client: httpx.Client, requests: Sequence[tuple[str, dict[str, object]]], row: Row
) -> Row:
    for path, params in requests:
        t0 = time.perf_counter()
        r = client.get(path, params=params)  # type: ignore[arg-type]
        row.latencies.append(time.perf_counter() - t0)
        if r.status_code != 200:
            row.error = f"{path} {r.status_code}: {r.text[:100]}"
            return row
    return row


def bench_worklist(args: argparse.Namespace) -> list[Row]:
    """GET /api/worklist of a real server on PostgreSQL holding ``args.cases`` cases."""
    import tempfile

    import ingest as harness

    target = f"p95 < {WORKLIST_P95_MS:g} ms"
    n = args.requests
    with (
        tempfile.TemporaryDirectory(prefix="radrelay-bench-") as tmp,
        harness.running_server("postgres", Path(tmp), args) as server,
    ):
        admin = httpx.Client(base_url=server.url, timeout=60)
        token = admin.post(
            "/api/auth/token",
            data={"username": "admin", "password": harness.ADMIN_PASSWORD},
        ).json()["access_token"]
        admin.headers["Authorization"] = f"Bearer {token}"
        r = admin.post(
            "/api/users",
            json={"username": "coord", "role": "coordinator", "password": READER_PASSWORD},
        )
        assert r.status_code == 201, r.text
        from sqlalchemy import create_engine, text

        url = server.env["RADRELAY_DATABASE_URL"].replace("+asyncpg", "+psycopg")
        engine = create_engine(url)
        with engine.connect() as conn:
            password_hash = conn.execute(
                text("SELECT password_hash FROM users WHERE username = 'coord'")
            ).scalar_one()
        engine.dispose()
        log(f"worklist: seeding {args.cases} cases ({args.open_cases} open) ...")
        t0 = time.perf_counter()
        ids = seed_worklist(server.env["RADRELAY_DATABASE_URL"], args, password_hash)
        log(f"worklist: seeded in {time.perf_counter() - t0:.0f}s")

        def signed_in(username: str) -> httpx.Client:
            c = httpx.Client(base_url=server.url, timeout=60)
            r = c.post("/api/auth/token", data={"username": username, "password": READER_PASSWORD})
            assert r.status_code == 200, r.text
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
            return c

        rnd = random.Random(args.seed)
        readers = [signed_in(f"reader{i:04d}") for i in rnd.sample(range(args.experts), 20)]
        coord = signed_in("coord")
        rows = []
        for client in readers[:3]:  # warm-up
            client.get("/api/worklist")
        row = Row("reader's worklist (held + top of pool)", target, WORKLIST_P95_MS)
        for i in range(n):
            t0 = time.perf_counter()
            r = readers[i % len(readers)].get("/api/worklist")
            row.latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                row.error = f"{r.status_code}: {r.text[:100]}"
                break
        rows.append(row)
        boards: list[tuple[str, list[dict[str, object]]]] = [
            ("board: all open, first 100 by deadline", [{}]),
            ("board: one hospital", [{"hospital_id": h} for h in ids["hospitals"]]),
            (
                "board: breached, stat+urgent",
                [{"sla_state": "breached", "priority": ["stat", "urgent"]}],
            ),
            (
                "board: subspecialty + status",
                [{"subspecialty": s.value, "status": "offered"} for s in PRIMARY],
            ),
            ("board: one reader's cases", [{"reader_id": u} for u in ids["readers"][:50]]),
        ]
        for label, variants in boards:
            coord.get("/api/worklist", params=variants[0])  # type: ignore[arg-type]
            requests = [("/api/worklist", variants[i % len(variants)]) for i in range(n)]
            rows.append(timed_gets(coord, requests, Row(label, target, WORKLIST_P95_MS)))
        rows.append(route_waiting(server.env, min(n, 200)))
    return rows


def route_waiting(env: dict[str, str], count: int) -> Row:
    """routing.route() as the routing job runs it, on waiting cases of the seeded database: the
    roster and load queries, the engine, and writing the decision, committed."""
    import asyncio

    from sqlalchemy import select

    from radrelay.config import Settings
    from radrelay.kit.db import utcnow
    from radrelay.kit.runtime import Runtime
    from radrelay.models import Case
    from radrelay.routing.service import RoutingContext, routing

    row = Row("route() of a waiting case, end to end (job, no HTTP)", "- (engine: 5 ms)")

    async def run() -> None:
        runtime = Runtime(
            Settings(
                data_dir=Path(env["RADRELAY_DATA_DIR"]), database_url=env["RADRELAY_DATABASE_URL"]
            )
        )
        ctx = RoutingContext.of(runtime)
        try:
            async with runtime.db.reading() as session:
                ids = list(
                    await session.scalars(
                        select(Case.id).where(Case.status == "ready").limit(count + 10)
                    )
                )
            for i, case_id in enumerate(ids):
                t0 = time.perf_counter()
                async with runtime.uow() as session:
                    await routing.route(session, ctx, case_id, trigger="bench", now=utcnow())
                if i >= 10:  # the first ones warm the pools and caches
                    row.latencies.append(time.perf_counter() - t0)
        finally:
            await runtime.close()

    asyncio.run(run())
    return row


def worklist_table(rows: Sequence[Row]) -> str:
    out = [
        "| query | n | p50 ms | p95 ms | p99 ms | max ms | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.metric} | {len(r.latencies)} | {r.ms(50)} | {r.ms(95)} | {r.ms(99)} "
            f"| {r.ms(100)} | {r.target} | {r.verdict} |"
        )
    return "\n".join(out)


def worklist_about(args: argparse.Namespace) -> list[str]:
    return [
        f"- a real `radrelay serve` + `radrelay worker` on a new PostgreSQL database holding "
        f"{args.cases} cases ({args.open_cases} open: 60% held by a reader, 25% offered to "
        f"three, 15% waiting) and {args.experts} readers credentialed at {len(HOSPITALS)} "
        "hospitals; the rest finished, with their studies and patients",
        f"- {args.requests} sequential requests per row over one keep-alive HTTP/1.1 client, "
        "latency measured at the client (request sent to body received); the reader rows "
        "rotate over 20 signed-in readers, the board rows over their filter values",
    ]


@dataclass(frozen=True)
class Section:
    title: str
    run: Callable[[argparse.Namespace], list[Row]]
    table: Callable[[Sequence[Row]], str]
    about: Callable[[argparse.Namespace], list[str]]


def engine_about(args: argparse.Namespace) -> list[str]:
    return [
        f"- roster: {args.experts} experts holding {args.open_cases} open cases (seed "
        f"{args.seed}); rules: worklist_rules/ as shipped",
        f"- {args.decisions} decisions per row after {args.warmup} warm-up decisions; "
        "latency is wall time of decide(), GC on; CPU p95 is the CPU time of the calls, "
        "which other load on the machine barely changes",
        "- eligible: experts who passed every filter (all of them are scored); stored JSON: "
        "routing.service.stored(decision), what the routing job keeps with the case",
        "- the shadow row makes two decisions per call (active rules, then the monitor rule): "
        "it shows what a monitor rule costs, its target is still the one of a decision",
        "- gc.freeze() after building the roster and the cases: "
        + ("yes (--freeze-gc)" if args.freeze_gc else "no"),
    ]


SECTIONS: dict[str, Section] = {
    "engine": Section("decide()", bench_engine, engine_table, engine_about),
    "worklist": Section(
        "GET /api/worklist on PostgreSQL", bench_worklist, worklist_table, worklist_about
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SECTIONS),
        help="run only this section (repeatable); default: all",
    )
    parser.add_argument("--experts", type=int, default=EXPERTS)
    parser.add_argument("--open-cases", type=int, default=OPEN_CASES)
    parser.add_argument("--decisions", type=int, default=2_000, help="measured, per row")
    parser.add_argument("--warmup", type=int, default=200, help="decisions before measuring")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--freeze-gc", action="store_true", help="engine: gc.freeze() once the data is built"
    )
    parser.add_argument("--quick", action="store_true", help="200 decisions per row")
    parser.add_argument("--cases", type=int, default=100_000, help="worklist: cases in all")
    parser.add_argument("--requests", type=int, default=300, help="worklist: per row")
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/test", help="worklist"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="worklist")
    parser.add_argument("--set", action="append", default=[], help="worklist: server VAR=value")
    parser.add_argument("--keep", action="store_true", help="worklist: keep the data dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.decisions, args.warmup = 200, 20
        args.cases, args.requests = 20_000, 50

    load_before = load_average()
    began = time.perf_counter()
    results: list[tuple[str, Section, list[Row]]] = []
    failed = False
    for name in args.only or list(SECTIONS):
        section = SECTIONS[name]
        try:
            rows = section.run(args)
        except Exception as exc:
            log(f"{name}: FAILED: {type(exc).__name__}: {exc}")
            rows = [Row("(the section)", "-", error=f"{type(exc).__name__}: {exc}")]
            failed = True
        results.append((name, section, rows))

    print()
    print(f"RadRelay routing benchmark ({time.strftime('%Y-%m-%d %H:%M')})")
    print(f"- machine: {cores()} cores (nproc), {cpu_model()}; Python {platform.python_version()}")
    print(
        f"- load average (1, 5, 15 min) before: {load_before}, after: {load_average()}; "
        f"the whole run took {time.perf_counter() - began:.0f}s"
    )
    for name, section, rows in results:
        print()
        print(f"## {name}: {section.title}")
        print()
        for line in section.about(args):
            print(line)
        print()
        print(section.table(rows))
    if args.quick:
        print("\n(--quick: a smoke run; the numbers are not comparable with the targets)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
