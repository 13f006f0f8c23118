"""The routing engine without a server: the golden cases in ``worklist_rules/cases``, the rules
schema and its error messages, and properties that must hold for any roster."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from radrelay.routing.engine import FILTERS, decide, primary_modality, sla_status
from radrelay.routing.rules import (
    GoldenCase,
    RulesError,
    RuleSet,
    check,
    load_golden_cases,
    load_rules,
)
from radrelay.routing.schemas import (
    COMPACT_FULL,
    CaseFacts,
    Decision,
    ExpertSnapshot,
    ExpertState,
    Mode,
    Priority,
    Qualification,
    SlaState,
    Subspecialty,
)
from radrelay.routing.service import RoutingContext, next_retry

RULES_DIR = Path(__file__).resolve().parents[1] / "worklist_rules"
GOLDEN, GOLDEN_PROBLEMS = load_golden_cases(RULES_DIR / "cases")
NOW = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
SHIFT = ((NOW - timedelta(hours=6), NOW + timedelta(hours=6)),)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(RULES_DIR)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rules (without golden cases) to break."""
    target = tmp_path / "rules"
    target.mkdir()
    for path in RULES_DIR.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def make_case(**kw: object) -> CaseFacts:
    fields: dict[str, object] = {
        "case_id": 1,
        "hospital_id": 3,
        "hospital_code": "LHX",
        "priority": Priority.routine,
        "modality": "CT",
        "study_description": "胸部CT平扫",
        "received_at": NOW - timedelta(minutes=5),
    }
    fields.update(kw)
    return CaseFacts(**fields)  # type: ignore[arg-type]


def make_expert(user_id: int, **kw: object) -> ExpertSnapshot:
    fields: dict[str, object] = {
        "user_id": user_id,
        "name": f"Dr {user_id}",
        "subspecialties": {Subspecialty.chest: 2},
        "credentials": {3: None},
        "availability": SHIFT,
    }
    fields.update(kw)
    return ExpertSnapshot(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Golden cases


def test_golden_cases_are_valid_and_cover_the_issue() -> None:
    assert GOLDEN_PROBLEMS == []
    assert len(GOLDEN) >= 12


@pytest.mark.parametrize(("name", "golden"), GOLDEN, ids=[name for name, _ in GOLDEN])
def test_golden_case(name: str, golden: GoldenCase, rules: RuleSet) -> None:
    decision = decide(golden.case, golden.experts, golden.now, rules)
    assert list(golden.expect.compare(decision)) == []


def test_check_passes_for_the_shipped_rules() -> None:
    assert check(RULES_DIR) == []


def test_check_reports_a_golden_case_that_no_longer_holds(rules_dir: Path) -> None:
    cases = rules_dir / "cases"
    cases.mkdir()
    shutil.copy(RULES_DIR / "cases" / "01_stat_ct_head_neuro.yaml", cases / "head.yaml")
    edit(cases / "head.yaml", "  assignee: 11", "  assignee: 13")
    assert check(rules_dir) == ["cases/head.yaml: expect.assignee: expected 13, got 11"]


# ---------------------------------------------------------------------------------------------
# Rules schema


class TestLoadRules:
    def test_shipped_rules_have_one_active_rule_per_kind(self, rules: RuleSet) -> None:
        assert [(r.kind, r.id, r.version) for r in rules.refs()] == [
            ("sla", "sla", 1),
            ("subspecialty", "subspecialty", 1),
            ("workload", "workload", 1),
            ("policy", "policy", 1),
        ]
        assert rules.monitor == {}
        assert rules.shadow() is None

    def test_invalid_fields_are_named_with_file_path_and_line(self, rules_dir: Path) -> None:
        edit(rules_dir / "sla.yaml", "  stat: 30\n", "  stat: -5\n  stst: 3\n")
        edit(rules_dir / "policy.yaml", "routine: [online, away]", "routine: [online, asleep]")
        with pytest.raises(RulesError) as caught:
            load_rules(rules_dir)
        problems = caught.value.problems
        assert any(
            p.startswith("sla.yaml: defaults.stat (line ") and "greater than 0" in p
            for p in problems
        ), problems
        assert any(
            p.startswith("sla.yaml: defaults.stst (line ") and "unknown field" in p
            for p in problems
        ), problems
        assert any(
            p.startswith("policy.yaml: eligibility.states.routine[1] (line ") and "'asleep'" in p
            for p in problems
        ), problems
        # A kind whose only file is broken is not reported missing as well.
        assert not any("no active" in p for p in problems), problems
        assert "sla.yaml: defaults.stat" in str(caught.value)

    def test_unknown_subspecialty_lists_the_valid_names(self, rules_dir: Path) -> None:
        edit(rules_dir / "subspecialty.yaml", "- subspecialty: cardiac", "- subspecialty: cardio")
        problems = check(rules_dir)
        assert len(problems) == 1
        assert problems[0].startswith("subspecialty.yaml: matches[3].subspecialty (line ")
        assert "'head_neck'" in problems[0] and "(got 'cardio')" in problems[0]

    def test_yaml_syntax_error_gives_the_line(self, rules_dir: Path) -> None:
        (rules_dir / "workload.yaml").write_text("id: w\nversion: 1\nexams: [\n", encoding="utf-8")
        problems = check(rules_dir)
        assert len(problems) == 1
        assert problems[0].startswith("workload.yaml: line 4, column 1: not valid YAML")

    def test_unknown_kind(self, rules_dir: Path) -> None:
        edit(rules_dir / "workload.yaml", "kind: workload", "kind: workloads")
        assert check(rules_dir) == [
            "workload.yaml: kind (line 6): got 'workloads'; one of sla, subspecialty, workload, "
            "policy"
        ]

    def test_two_active_rules_of_one_kind_is_an_error(self, rules_dir: Path) -> None:
        shutil.copy(rules_dir / "policy.yaml", rules_dir / "policy-b.yaml")
        edit(rules_dir / "policy-b.yaml", "id: policy", "id: policy-b")
        assert check(rules_dir) == [
            "policy.yaml: mode: more than one active policy rule (policy-b.yaml, policy.yaml); "
            "set all but one to monitor or inactive"
        ]

    def test_duplicate_ids_and_a_missing_kind(self, rules_dir: Path) -> None:
        edit(rules_dir / "workload.yaml", "id: workload", "id: sla")
        assert check(rules_dir) == [
            "workload.yaml: id: 'sla' is also the id of sla.yaml",
            "rules/: kind: no active workload rule (a file with kind: workload and mode: active)",
        ]

    def test_inactive_rules_are_validated_but_ignored(self, rules_dir: Path) -> None:
        shutil.copy(rules_dir / "policy.yaml", rules_dir / "policy-old.yaml")
        edit(rules_dir / "policy-old.yaml", "id: policy", "id: policy-old")
        edit(rules_dir / "policy-old.yaml", "mode: active", "mode: inactive")
        assert load_rules(rules_dir).policy.id == "policy"
        edit(rules_dir / "policy-old.yaml", "offer_size: 3", "offer_size: 0")
        assert [p.split(" (line")[0] for p in check(rules_dir)] == ["policy-old.yaml: offer_size"]

    def test_escalation_steps_must_increase(self, rules_dir: Path) -> None:
        edit(rules_dir / "sla.yaml", "  - at: 0.75\n", "  - at: 0.4\n")
        (problem,) = check(rules_dir)
        assert problem.startswith("sla.yaml: escalation (line ")
        assert "the steps' `at` must be strictly increasing, got [0.5, 0.4, 1.0]" in problem

    def test_escalation_step_needs_an_action(self, rules_dir: Path) -> None:
        edit(rules_dir / "sla.yaml", "  - at: 1.0\n    alert_coordinator: true", "  - at: 1.0")
        (problem,) = check(rules_dir)
        assert problem.startswith("sla.yaml: escalation[2] (line ")
        assert "needs an action" in problem

    def test_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(RulesError, match="not found"):
            load_rules(tmp_path / "nowhere")


class TestMonitorRules:
    def test_a_monitor_rule_produces_a_shadow_decision(self, rules_dir: Path) -> None:
        shutil.copy(rules_dir / "policy.yaml", rules_dir / "policy-pool.yaml")
        edit(rules_dir / "policy-pool.yaml", "id: policy", "id: policy-pool")
        edit(rules_dir / "policy-pool.yaml", "version: 1", "version: 2")
        edit(rules_dir / "policy-pool.yaml", "mode: active", "mode: monitor")
        edit(rules_dir / "policy-pool.yaml", "  default: push", "  default: pool")
        rules = load_rules(rules_dir)
        assert rules.policy.id == "policy"
        assert rules.monitor["policy"].id == "policy-pool"  # type: ignore[index]

        experts = [make_expert(1, open_units=2.0), make_expert(2), make_expert(3, open_units=1.0)]
        decision = decide(make_case(), experts, NOW, rules)
        assert (decision.mode, decision.assignee) == (Mode.push, 2)
        shadow = decision.shadow
        assert shadow is not None and shadow.shadow is None
        assert (shadow.mode, shadow.assignee, shadow.offered) == (Mode.pool, None, (2, 3, 1))
        assert ("policy", "policy-pool", 2) in [(r.kind, r.id, r.version) for r in shadow.rules]
        stored = decision.to_json()
        assert stored["shadow"]["mode"] == "pool"
        assert Decision.from_json(json.loads(json.dumps(stored))) == decision

    def test_two_monitor_rules_of_one_kind_is_an_error(self, rules_dir: Path) -> None:
        for name in ("a", "b"):
            shutil.copy(rules_dir / "sla.yaml", rules_dir / f"sla-{name}.yaml")
            edit(rules_dir / f"sla-{name}.yaml", "id: sla", f"id: sla-{name}")
            edit(rules_dir / f"sla-{name}.yaml", "mode: active", "mode: monitor")
        problems = check(rules_dir)
        assert len(problems) == 1 and "more than one monitor sla rule" in problems[0]


# ---------------------------------------------------------------------------------------------
# Classification and SLA


class TestClassify:
    @pytest.mark.parametrize(
        ("modality", "description", "series", "body_part", "expected"),
        [
            ("CT", "头颅CT平扫", [], "", Subspecialty.neuro),
            ("CT", "颅脑外伤", [], "", Subspecialty.neuro),
            ("MR", "Brain MRI", [], "", Subspecialty.neuro),
            ("DX", "胸部正位", [], "", Subspecialty.chest),
            ("CT", "肺结节随访", [], "", Subspecialty.chest),
            ("CT", "肝脏增强", [], "", Subspecialty.abdominal),
            ("MR", "右膝关节MR", [], "", Subspecialty.msk),
            ("CR", "腰椎正侧位", [], "", Subspecialty.msk),
            ("MR", "Shoulder", [], "", Subspecialty.msk),
            ("MG", "", [], "", Subspecialty.breast),
            ("US", "乳腺超声", [], "", Subspecialty.breast),
            ("CT", "冠脉CTA", [], "", Subspecialty.cardiac),
            ("CT", "颈部增强", [], "", Subspecialty.head_neck),
            ("US", "甲状腺超声", [], "", Subspecialty.head_neck),
            ("CT", "Sinus CT", [], "", Subspecialty.head_neck),
            ("CT", "主动脉CTA", [], "", Subspecialty.vascular),
            ("US", "泌尿系超声", [], "", Subspecialty.genitourinary),
            ("PT", "PET/CT brain", [], "", Subspecialty.nuclear),
            ("CT", "", ["Forehead soft tissue"], "", Subspecialty.general),
            ("CT", "CT", ["Axial 5mm", "Lung window"], "", Subspecialty.chest),
            ("CR", "DR", [], "knee", Subspecialty.msk),
            ("OT", "", [], "", Subspecialty.general),
        ],
    )
    def test_mapping(
        self,
        rules: RuleSet,
        modality: str,
        description: str,
        series: list[str],
        body_part: str,
        expected: Subspecialty,
    ) -> None:
        case = make_case(
            modality=modality,
            study_description=description,
            series_descriptions=tuple(series),
            body_part=body_part,
        )
        assert decide(case, [], NOW, rules).subspecialty == expected

    def test_primary_modality(self) -> None:
        assert primary_modality(["SR", "CT"]) == "CT"
        assert primary_modality(["CT", "PT"]) == "PT"
        assert primary_modality(["dx", "KO"]) == "DX"
        assert primary_modality(["SR"]) == "SR"
        assert primary_modality([]) == "OT"

    def test_naive_datetimes_are_refused(self, rules: RuleSet) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            decide(make_case(), [], NOW.replace(tzinfo=None), rules)


class TestSlaStatus:
    def test_warnings_escalation_and_breach(self, rules: RuleSet) -> None:
        received = NOW
        deadline = received + timedelta(minutes=100)

        def at(minutes: int):  # type: ignore[no-untyped-def]
            return sla_status(received, deadline, received + timedelta(minutes=minutes), rules)

        assert (at(10).state, at(10).escalation_step_due, at(10).alert_coordinator) == (
            SlaState.ok,
            0,
            False,
        )
        assert (at(55).state, at(55).warnings_passed, at(55).escalation_step_due) == (
            SlaState.warning,
            1,
            1,
        )
        assert (at(80).warnings_passed, at(80).escalation_step_due, at(80).alert_coordinator) == (
            2,
            2,
            True,
        )
        late = at(130)
        assert (late.state, late.escalation_step_due, late.remaining_minutes) == (
            SlaState.breached,
            3,
            -30,
        )

    def test_maximum_wait(self, rules: RuleSet) -> None:
        received = NOW
        deadline = received + timedelta(hours=48)
        status = sla_status(received, deadline, received + timedelta(hours=25), rules)
        assert status.overdue_wait and status.alert_coordinator
        assert status.escalation_step_due == len(rules.sla.escalation)
        assert status.state == SlaState.warning


# ---------------------------------------------------------------------------------------------
# Properties over random rosters


def random_roster(rnd: random.Random, n: int) -> list[ExpertSnapshot]:
    subs = list(Subspecialty)
    experts = []
    for user_id in rnd.sample(range(1, 1000), n):
        start = NOW + timedelta(hours=rnd.randint(-10, 30))
        credentials = {
            h: rnd.choice([None, NOW - timedelta(days=1), NOW + timedelta(days=30)])
            for h in rnd.sample([1, 2, 3], rnd.randint(0, 3))
        }
        experts.append(
            ExpertSnapshot(
                user_id=user_id,
                name=f"Dr {user_id}",
                state=rnd.choice(list(ExpertState)),
                subspecialties={s: rnd.randint(1, 3) for s in rnd.sample(subs, rnd.randint(0, 3))},
                qualification=rnd.choice(list(Qualification)),
                credentials=credentials,
                availability=((start, start + timedelta(hours=rnd.randint(1, 12))),),
                cap_open_cases=rnd.choice([None, 2, 5]),
                cap_daily_units=rnd.choice([None, 5.0, 20.0]),
                open_cases=rnd.randint(0, 6),
                open_units=round(rnd.uniform(0, 14), 1),
                units_today=round(rnd.uniform(0, 20), 1),
                units_shift=round(rnd.uniform(0, 10), 1),
                shift_target_units=rnd.choice([0.0, 10.0]),
                familiarity={h: rnd.randint(0, 300) for h in (1, 2, 3)},
            )
        )
    return experts


def random_case(rnd: random.Random) -> CaseFacts:
    hospital_id, code = rnd.choice([(1, "QSX"), (2, "HPZ"), (3, "LHX")])
    return make_case(
        case_id=rnd.randint(1, 10**6),
        hospital_id=hospital_id,
        hospital_code=code,
        priority=rnd.choice(list(Priority)),
        modality=rnd.choice(["CT", "MR", "DX", "US", "MG"]),
        study_description=rnd.choice(["头颅平扫", "胸部", "腹部增强", "膝关节", "", "Chest PA"]),
        requested_subspecialty=rnd.choice([None, None, Subspecialty.neuro, Subspecialty.general]),
        escalation_step=rnd.randint(0, 3),
        received_at=NOW - timedelta(minutes=rnd.randint(0, 2000)),
        excluded_expert_ids=frozenset(rnd.sample(range(1, 1000), 50)),
    )


def failed_filters(
    case: CaseFacts, e: ExpertSnapshot, decision: Decision, rules: RuleSet
) -> list[str]:
    """The filters ``e`` fails, written from the policy's words (worklist_rules/README.md)
    rather than from the engine, to check each candidate's explanation against."""
    eligibility, caps = rules.policy.eligibility, rules.policy.caps
    priority = str(case.priority)
    failed = set()
    if e.user_id in case.excluded_expert_ids:
        failed.add("excluded")
    if eligibility.require_credential and (
        case.hospital_id not in e.credentials
        or (e.credentials[case.hospital_id] or NOW + timedelta(days=1)) <= NOW
    ):
        failed.add("credential")
    read = {decision.subspecialty} | ({Subspecialty.general} if decision.widened else set())
    if not read & set(e.subspecialties):
        failed.add("subspecialty")
    prelim = eligibility.preliminary
    if e.qualification == Qualification.preliminary and not (
        prelim.allowed
        and priority in prelim.priorities
        and case.hospital_code not in prelim.final_required_hospitals
    ):
        failed.add("qualification")
    if e.state not in getattr(eligibility.states, priority):
        failed.add("state")
    latest_start = decision.deadline - timedelta(minutes=eligibility.read_margin_minutes)
    may_wait = getattr(eligibility.availability, priority) == "before_deadline"
    if not any(
        start <= NOW < end or (may_wait and NOW < end and start <= latest_start)
        for start, end in e.availability
    ):
        failed.add("availability")
    if priority not in caps.bypass_priorities and not decision.overdue_wait:
        cap_open = e.cap_open_cases if e.cap_open_cases is not None else caps.open_cases
        cap_daily = e.cap_daily_units if e.cap_daily_units is not None else caps.daily_units
        units = decision.work_units
        if (
            (cap_open is not None and e.open_cases >= cap_open)
            or (caps.open_units is not None and e.open_units + units > caps.open_units)
            or (cap_daily is not None and e.units_today + units > cap_daily)
        ):
            failed.add("caps")
    return [name for name in FILTERS if name in failed]


SEEDS = range(150)


@pytest.mark.parametrize("seed", SEEDS[::15])
def test_decisions_respect_the_filters_for_any_roster(seed: int, rules: RuleSet) -> None:
    for trial in range(15):
        rnd = random.Random(seed * 100 + trial)
        case, experts = random_case(rnd), random_roster(rnd, rnd.randint(0, 15))
        decision = decide(case, experts, NOW, rules)

        assert sorted(c.user_id for c in decision.candidates) == sorted(e.user_id for e in experts)
        eligible = [c for c in decision.candidates if c.eligible]
        by_id = {e.user_id: e for e in experts}
        for c in decision.candidates:
            # Eligible exactly when no filter fails; the ineligible keep every filter they
            # failed (and only those), the best eligible every filter, all passed.
            failed = failed_filters(case, by_id[c.user_id], decision, rules)
            assert c.eligible == (not failed)
            assert (c.total is not None) == c.eligible == (c.rank is not None)
            if not c.eligible:
                assert [f.name for f in c.filters] == failed
                assert not any(f.passed for f in c.filters)
            elif c.rank <= COMPACT_FULL:  # type: ignore[operator]
                assert [f.name for f in c.filters] == list(FILTERS)
                assert all(f.passed for f in c.filters)
                assert c.total == round(sum(s.points for s in c.score), 4)
            else:
                assert (c.filters, c.score) == ((), ())
        assert [c.rank for c in eligible] == list(range(1, len(eligible) + 1))
        chosen = {decision.assignee} if decision.assignee is not None else set(decision.offered)
        assert chosen <= {c.user_id for c in eligible}
        assert not chosen & case.excluded_expert_ids
        assert not (chosen - {c.user_id for c in eligible if c.filters and c.score})
        if not eligible:
            assert decision.mode == Mode.none and decision.reason.startswith("nobody is eligible")
            assert decision.alert_coordinator
        elif decision.mode == Mode.push:
            assert decision.assignee == eligible[0].user_id and decision.offered == ()
        else:
            assert decision.mode == Mode.pool and decision.assignee is None
            assert list(decision.offered) == [c.user_id for c in eligible][: len(decision.offered)]
            assert 1 <= len(decision.offered) <= rules.policy.offer_size + 2
        for user_id in chosen:
            expert = by_id[user_id]
            credential = expert.credentials[case.hospital_id]
            assert credential is None or credential > NOW
            assert expert.state != ExpertState.offline
            if case.priority == Priority.stat:
                assert expert.qualification == Qualification.final
                assert any(start <= NOW < end for start, end in expert.availability)
        if decision.cosign_required:
            assert by_id[decision.assignee].qualification == Qualification.preliminary  # type: ignore[index]


@pytest.mark.parametrize("seed", SEEDS[::30])
def test_decisions_are_deterministic_and_serialisable(seed: int, rules: RuleSet) -> None:
    rnd = random.Random(seed)
    case, experts = random_case(rnd), random_roster(rnd, 12)
    first = decide(case, experts, NOW, rules)
    shuffled = experts[:]
    rnd.shuffle(shuffled)
    again = decide(case, shuffled, NOW, rules)
    assert again == first
    stored = json.loads(json.dumps(first.to_json(), ensure_ascii=False))
    assert Decision.from_json(stored) == first
    assert stored["deadline"].endswith("Z")


def test_ties_go_to_the_lower_user_id(rules: RuleSet) -> None:
    experts = [make_expert(user_id) for user_id in (9, 4, 7)]
    decision = decide(make_case(), experts, NOW, rules)
    assert decision.assignee == 4
    assert [c.user_id for c in decision.candidates] == [4, 7, 9]
    assert len({c.total for c in decision.candidates}) == 1


def test_score_explains_each_component(rules: RuleSet) -> None:
    expert = make_expert(
        5,
        open_units=2.0,
        units_shift=4.0,
        shift_target_units=10.0,
        familiarity={3: 20},
        open_patient_keys=frozenset({"P1"}),
    )
    decision = decide(make_case(patient_key="P1"), [expert], NOW, rules)
    (candidate,) = decision.candidates
    points = {c.name: c.points for c in candidate.score}
    w = rules.policy.weights
    assert points["open_workload"] == -2.0 * w.open_workload
    assert points["fairness"] == 6.0 * w.fairness
    assert points["familiarity"] == round(w.familiarity * 3.044522437723423, 4)
    assert points["subspecialty_level"] == 2 * w.subspecialty_level
    assert points["wait_hours"] == 0.0
    assert points["same_patient"] == w.same_patient
    assert candidate.total == round(sum(points.values()), 4)
    assert "reads another open study of this patient" in candidate.notes


def test_compact_json_keeps_what_explains_the_choice(rules: RuleSet) -> None:
    experts = [make_expert(i, open_units=i / 10) for i in range(1, 16)]
    experts.append(make_expert(99, state=ExpertState.offline))
    decision = decide(make_case(), experts, NOW, rules)
    compact = decision.to_json(compact=True)
    by_id = {c["user_id"]: c for c in compact["candidates"]}
    assert len(by_id[1]["filters"]) == len(FILTERS) and by_id[1]["score"]
    assert "filters" not in by_id[15] and by_id[15]["rank"] == 15 and by_id[15]["total"] < 0
    assert [f["name"] for f in by_id[99]["filters"]] == ["state"]
    assert len(json.dumps(compact)) < len(json.dumps(decision.to_json()))
    # The decision holds the explanation as it is stored: nothing is lost in storage.
    assert Decision.from_json(compact) == decision
    assert decision.candidate(99).failed() == ("state",)  # type: ignore[union-attr]


def test_every_offered_candidate_keeps_its_explanation(rules: RuleSet) -> None:
    # More offers than COMPACT_FULL: each reader offered the case still sees why, and that a
    # co-sign is needed.
    policy = rules.policy.model_copy(
        update={
            "offer_size": COMPACT_FULL + 2,
            "assignment": rules.policy.assignment.model_copy(update={"default": "pool"}),
        }
    )
    experts = [make_expert(i, open_units=i / 10) for i in range(1, 16)]
    experts[11] = make_expert(12, open_units=1.2, qualification=Qualification.preliminary)
    decision = decide(make_case(), experts, NOW, replace(rules, policy=policy))
    assert decision.mode == Mode.pool and len(decision.offered) == COMPACT_FULL + 2
    for c in decision.candidates:
        assert bool(c.filters) == bool(c.score) == (c.user_id in decision.offered)
    assert "co-sign needed" in decision.candidate(12).notes  # type: ignore[union-attr]
    assert Decision.from_json(decision.to_json(compact=True)) == decision


def test_excluded_expert_is_never_chosen_even_if_best(rules: RuleSet) -> None:
    experts = [make_expert(1), make_expert(2, open_units=5.0)]
    case = make_case(excluded_expert_ids=frozenset({1}))
    decision = decide(case, experts, NOW, rules)
    assert decision.assignee == 2
    assert decision.candidate(1).failed() == ("excluded",)  # type: ignore[union-attr]


def test_escalation_step_beyond_the_rules_applies_them_all(rules: RuleSet) -> None:
    case = make_case(hospital_id=2, hospital_code="HPZ", modality="DX", escalation_step=9)
    experts = [make_expert(i, credentials={2: None}) for i in range(1, 9)]
    decision = decide(case, experts, NOW, rules)
    assert decision.mode == Mode.pool and len(decision.offered) == rules.policy.offer_size + 2
    assert decision.widened and decision.alert_coordinator


def test_general_case_needs_a_general_reader(rules: RuleSet) -> None:
    case = make_case(study_description="", modality="OT")
    experts = [make_expert(1), make_expert(2, subspecialties={Subspecialty.general: 1})]
    decision = decide(case, experts, NOW, rules)
    assert decision.subspecialty == Subspecialty.general
    assert decision.assignee == 2
    assert decision.candidate(1).failed() == ("subspecialty",)  # type: ignore[union-attr]


def test_decide_does_not_mutate_its_inputs(rules: RuleSet) -> None:
    experts = [make_expert(1), make_expert(2)]
    before = [replace(e) for e in experts]
    decide(make_case(), experts, NOW, rules)
    assert experts == before


def test_a_waiting_case_is_tried_again_when_a_window_opens_or_after_the_backoff(
    rules: RuleSet,
) -> None:
    """A case nobody could take is routed again at the first window opening among the
    hospital's experts, or after the context's backoff when none opens sooner."""
    ctx = RoutingContext(rules, "Asia/Shanghai", retry_seconds=120)
    soon = NOW + timedelta(seconds=50)
    later = NOW + timedelta(hours=3)
    open_now = (NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert next_retry(ctx, [make_expert(1, availability=(open_now,))], NOW) == NOW + timedelta(
        seconds=120
    )
    opening = make_expert(2, availability=(open_now, (later, later + timedelta(hours=4))))
    assert next_retry(ctx, [opening], NOW) == NOW + timedelta(seconds=120)
    sooner = make_expert(3, availability=((soon, soon + timedelta(hours=1)),))
    assert next_retry(ctx, [opening, sooner], NOW) == soon
    assert next_retry(ctx, [], NOW) == NOW + timedelta(seconds=120)
