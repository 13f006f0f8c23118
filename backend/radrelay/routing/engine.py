"""The routing engine: (case, experts snapshot, clock, rules) -> decision, with its explanation.

Pure: no I/O, no clock of its own, no randomness. Experts are considered in user-id order and
ties are broken by the lower user id, so the same inputs always give the same decision.

The steps, each recorded in the decision:
1. Classify the case: subspecialty, work units, SLA target and deadline (``classify``).
2. Apply the escalation steps already reached (``case.escalation_step``, or all of them once the
   case has waited past the maximum wait).
3. Hard filters for every expert: credential, state, availability, subspecialty, qualification,
   excluded, caps. All are evaluated, so the explanation shows every reason, not the first.
4. Score the eligible (open workload, fairness deficit, familiarity, subspecialty level, wait
   until available, same patient), weighted by the policy.
5. Push: assign to the best. Pool: offer to the top N. Nobody eligible: mode ``none`` and why.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from radrelay.routing.schemas import (
    Candidate,
    CaseFacts,
    Classification,
    Decision,
    ExpertSnapshot,
    ExpertState,
    FilterResult,
    Mode,
    Priority,
    Qualification,
    ScoreComponent,
    SlaState,
    SlaStatus,
    Subspecialty,
)

if TYPE_CHECKING:
    from radrelay.routing.rules import RuleSet, SlaRule, SubspecialtyRule, WorkloadRule

__all__ = ["FILTERS", "classify", "decide", "primary_modality", "sla_status"]

# The hard filters in the order a "nobody is eligible" reason counts them: each ineligible expert
# is counted once, under the first filter they failed.
FILTERS = (
    "excluded",
    "credential",
    "subspecialty",
    "qualification",
    "state",
    "availability",
    "caps",
)

# Modalities that carry no images to read, and which acquisition names a mixed study
# (PET/CT is read as PET, a study with a scout DX as the CT).
_NOT_READ = frozenset({"SR", "KO", "PR", "DOC", "REG", "SEG", "RTSTRUCT", "PLAN", "AU", "ECG"})
_MODALITY_ORDER = ("PT", "NM", "MG", "MR", "CT", "XA", "RF", "US", "DX", "CR")


def primary_modality(modalities: Sequence[str]) -> str:
    """The modality a study is routed by, from its ModalitiesInStudy."""
    present = [m.strip().upper() for m in modalities if m.strip()]
    for modality in _MODALITY_ORDER:
        if modality in present:
            return modality
    readable = [m for m in present if m not in _NOT_READ]
    return readable[0] if readable else (present[0] if present else "OT")


@lru_cache(maxsize=4096)
def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value.isoformat()}")


# ---------------------------------------------------------------------------------------------
# Classification


def _subspecialty(case: CaseFacts, rule: SubspecialtyRule) -> tuple[Subspecialty, str]:
    if case.requested_subspecialty is not None and rule.requested_wins:
        return Subspecialty(case.requested_subspecialty), "requested by the sending hospital"
    modality = case.modality.strip().upper()
    entries = [
        (i, m) for i, m in enumerate(rule.matches) if not m.modalities or modality in m.modalities
    ]
    # Strongest evidence first: an explicit procedure code, a modality that decides alone (MG,
    # NM), the study description, the series descriptions, then BodyPartExamined, which
    # technicians often leave at the scanner's default.
    codes = {c.strip().upper() for c in case.procedure_codes}
    if codes:
        for i, m in entries:
            hit = codes.intersection(m.procedure_codes)
            if hit:
                return m.subspecialty, f"procedure code {min(hit)} (matches[{i}])"
    for i, m in entries:
        if m.modality_only:
            return m.subspecialty, f"modality {modality} (matches[{i}])"
    study = case.study_description.casefold()
    if study:
        for i, m in entries:
            keyword = m.search(study)
            if keyword:
                return m.subspecialty, f"{keyword!r} in the study description (matches[{i}])"
    series = [s.casefold() for s in case.series_descriptions if s]
    for i, m in entries:
        for text in series:
            keyword = m.search(text)
            if keyword:
                return m.subspecialty, f"{keyword!r} in a series description (matches[{i}])"
    body_part = case.body_part.strip().upper()
    if body_part:
        for i, m in entries:
            if body_part in m.body_parts:
                return m.subspecialty, f"body part {body_part} (matches[{i}])"
    return rule.fallback, "no mapping matched: fallback"


def _sla_target(case: CaseFacts, subspecialty: str, rule: SlaRule) -> tuple[int, str]:
    priority, modality = str(case.priority), case.modality.strip().upper()
    code = case.hospital_code
    contract = rule.hospitals.get(code)
    if contract is not None:
        for t in contract.targets:
            if t.matches(priority, modality, subspecialty):
                return t.minutes, f"{code} contract target {t.label()!r}"
    center = next((t for t in rule.targets if t.matches(priority, modality, subspecialty)), None)
    contracted: int | None = getattr(contract.defaults, priority) if contract else None
    if center is not None:
        if contracted is not None and contracted < center.minutes:
            return contracted, (
                f"{code} contract {priority} target (tighter than the center's "
                f"{center.label()!r}, {center.minutes} min)"
            )
        return center.minutes, f"center target {center.label()!r}"
    if contracted is not None:
        return contracted, f"{code} contract {priority} target"
    minutes: int = getattr(rule.defaults, priority)
    return minutes, f"center default for {priority}"


def _work_units(case: CaseFacts, subspecialty: str, rule: WorkloadRule) -> tuple[float, str]:
    modality, body_part = case.modality.strip().upper(), case.body_part.strip().upper()
    for i, exam in enumerate(rule.exams):
        if exam.matches(modality, subspecialty, body_part):
            return exam.units, f"exam {exam.label or f'exams[{i}]'!r}"
    if modality in rule.modality_defaults:
        return rule.modality_defaults[modality], f"default for {modality}"
    return rule.default_units, "default"


def classify(case: CaseFacts, rules: RuleSet) -> Classification:
    """Subspecialty, work units and deadline of a case, before any expert is considered."""
    subspecialty, sub_reason = _subspecialty(case, rules.subspecialty)
    units, units_reason = _work_units(case, subspecialty, rules.workload)
    minutes, sla_reason = _sla_target(case, subspecialty, rules.sla)
    return Classification(
        subspecialty=subspecialty,
        subspecialty_reason=sub_reason,
        work_units=units,
        work_units_reason=units_reason,
        sla_target_minutes=minutes,
        sla_reason=sla_reason,
        deadline=case.received_at + timedelta(minutes=minutes),
    )


# ---------------------------------------------------------------------------------------------
# Filters and score


class _Judge:
    """Applies the filters and the score for one decision.

    A decision explains itself for every expert, often hundreds, so results are shared: most
    experts pass most filters for the same reason, and ``FilterResult`` is immutable. Results are
    memoised by the inputs they depend on (state, qualification, credential expiry, window end).
    """

    def __init__(
        self,
        case: CaseFacts,
        now: datetime,
        rules: RuleSet,
        cls: Classification,
        *,
        overdue: bool,
    ):
        policy = rules.policy
        eligibility = policy.eligibility
        self.case, self.now, self.rules = case, now, rules
        self.priority = priority = Priority(case.priority)
        self.subspecialty = cls.subspecialty
        self.units = cls.work_units
        self.latest_start = cls.deadline - timedelta(minutes=eligibility.read_margin_minutes)
        self.wait_allowed = (
            getattr(eligibility.availability, priority) == "before_deadline"
            and self.latest_start > now
        )
        self.memo: dict[tuple[object, ...], FilterResult] = {}
        code = case.hospital_code

        allowed = getattr(eligibility.states, priority)
        self.allowed_states = " or ".join(allowed)
        self.states = {
            state: FilterResult("state", True, str(state))
            if state in allowed
            else FilterResult(
                "state",
                False,
                f"{state}; {priority} cases go to readers who are {self.allowed_states}",
            )
            for state in ExpertState
        }

        prelim, what = eligibility.preliminary, "writes preliminary reports only"
        if not prelim.allowed:
            prelim_result = FilterResult(
                "qualification", False, f"{what}; the policy requires final signers"
            )
        elif priority not in prelim.priorities:
            prelim_result = FilterResult(
                "qualification", False, f"{what}; {priority} cases need a final signer"
            )
        elif code in prelim.final_required_hospitals:
            prelim_result = FilterResult(
                "qualification", False, f"{what}; {code} requires a final signer"
            )
        else:
            prelim_result = FilterResult("qualification", True, f"{what}: a senior co-signs")
        self.qualifications = {
            Qualification.final: FilterResult("qualification", True, "signs final reports"),
            Qualification.preliminary: prelim_result,
        }

        self.excluded = FilterResult("excluded", False, "released or declined this case")
        self.not_excluded = FilterResult("excluded", True, "has not released or declined it")
        self.no_credential_needed = (
            None
            if eligibility.require_credential
            else FilterResult("credential", True, "credentials not required by the policy")
        )

        if priority in policy.caps.bypass_priorities:
            self.caps_bypass: FilterResult | None = FilterResult(
                "caps", True, f"caps do not apply to {priority} cases"
            )
        elif overdue:
            self.caps_bypass = FilterResult(
                "caps", True, "caps do not apply: the case has waited past the maximum wait"
            )
        else:
            self.caps_bypass = None
        self.within_caps = FilterResult("caps", True, "within caps")

    def credential(self, e: ExpertSnapshot) -> FilterResult:
        if self.no_credential_needed is not None:
            return self.no_credential_needed
        code = self.case.hospital_code
        if self.case.hospital_id not in e.credentials:
            return self._cached(("credential", "none"), False, f"not credentialed for {code}")
        expiry = e.credentials[self.case.hospital_id]
        if expiry is None:
            return self._cached(("credential", None), True, f"credentialed for {code}")
        if expiry <= self.now:
            reason = f"credential for {code} expired {_utc(expiry)}"
            return self._cached(("credential", expiry), False, reason)
        reason = f"credentialed for {code} until {_utc(expiry)}"
        return self._cached(("credential", expiry), True, reason)

    def _cached(self, key: tuple[object, ...], passed: bool, reason: str) -> FilterResult:
        result = self.memo.get(key)
        if result is None:
            result = self.memo[key] = FilterResult(str(key[0]), passed, reason)
        return result

    def availability(self, e: ExpertSnapshot) -> tuple[FilterResult, float]:
        """The filter, and the minutes until the expert's window opens (0: now)."""
        now = self.now
        for start, end in e.availability:
            if start <= now < end:
                key = ("availability", "now", end)
                return self._cached(key, True, f"available now, until {_utc(end)}"), 0.0
        if self.wait_allowed:
            first = None
            for start, end in e.availability:
                if end > now and start <= self.latest_start and (first is None or start < first):
                    first = start
            if first is not None:
                key = ("availability", "from", first)
                reason = f"available from {_utc(first)}, before the deadline"
                return self._cached(key, True, reason), (first - now).total_seconds() / 60
            margin = self.rules.policy.eligibility.read_margin_minutes
            reason = (
                f"no availability window opens by {_utc(self.latest_start)} "
                f"({margin} min before the deadline)"
            )
            return self._cached(("availability", "none"), False, reason), 0.0
        upcoming = min((start for start, _ in e.availability if start > now), default=None)
        if upcoming is None:
            return self._cached(
                ("availability", "never"), False, "not in an availability window now"
            ), 0.0
        reason = f"not in an availability window now (next opens {_utc(upcoming)})"
        return self._cached(("availability", "next", upcoming), False, reason), 0.0

    def subspecialty_filter(self, e: ExpertSnapshot, widened: bool) -> FilterResult:
        sub = self.subspecialty
        level = e.subspecialties.get(sub)
        general = e.subspecialties.get(Subspecialty.general)
        key = ("subspecialty", level, general, widened)
        result = self.memo.get(key)
        if result is not None:
            return result
        if level is not None:
            result = FilterResult("subspecialty", True, f"reads {sub} (level {level})")
        elif sub == Subspecialty.general:
            result = FilterResult("subspecialty", False, "does not read general cases")
        elif not widened:
            result = FilterResult("subspecialty", False, f"does not read {sub}")
        elif general is not None:
            result = FilterResult(
                "subspecialty", True, f"reads general (level {general}); pool widened from {sub}"
            )
        else:
            result = FilterResult("subspecialty", False, f"reads neither {sub} nor general")
        self.memo[key] = result
        return result

    def caps(self, e: ExpertSnapshot) -> FilterResult:
        if self.caps_bypass is not None:
            return self.caps_bypass
        caps, units = self.rules.policy.caps, self.units
        over = []
        open_cases = e.cap_open_cases if e.cap_open_cases is not None else caps.open_cases
        if open_cases is not None and e.open_cases >= open_cases:
            over.append(f"{e.open_cases} open cases (cap {open_cases})")
        if caps.open_units is not None and e.open_units + units > caps.open_units:
            over.append(
                f"{e.open_units:g} open units + {units:g} over the queue cap of {caps.open_units:g}"
            )
        daily = e.cap_daily_units if e.cap_daily_units is not None else caps.daily_units
        if daily is not None and e.units_today + units > daily:
            over.append(
                f"{e.units_today:g} units today + {units:g} over the daily cap of {daily:g}"
            )
        if over:
            return FilterResult("caps", False, "; ".join(over))
        return self.within_caps

    def score(
        self, e: ExpertSnapshot, wait_minutes: float
    ) -> tuple[tuple[ScoreComponent, ...], float]:
        # Points are rounded so that equal inputs tie exactly (then the lower user id wins);
        # + 0.0 turns -0.0 into 0.0 in the explanation. Written out, not looped: this runs for
        # every eligible expert.
        w = self.rules.policy.weights
        case = self.case
        deficit = e.shift_target_units - e.units_shift
        reads = e.familiarity.get(case.hospital_id, 0)
        level = e.subspecialties.get(self.subspecialty, 0)
        same = 1.0 if case.patient_key and case.patient_key in e.open_patient_keys else 0.0
        hours = round(wait_minutes / 60, 4)
        p_open = round(-w.open_workload * e.open_units, 4) + 0.0
        p_fair = round(w.fairness * deficit, 4) + 0.0
        p_fam = round(w.familiarity * math.log1p(reads), 4) + 0.0
        p_level = round(w.subspecialty_level * level, 4) + 0.0
        p_wait = round(-w.wait_hours * hours, 4) + 0.0
        p_same = w.same_patient * same
        components = (
            ScoreComponent("open_workload", e.open_units, w.open_workload, p_open),
            ScoreComponent("fairness", deficit, w.fairness, p_fair),
            ScoreComponent("familiarity", reads, w.familiarity, p_fam),
            ScoreComponent("subspecialty_level", level, w.subspecialty_level, p_level),
            ScoreComponent("wait_hours", hours, w.wait_hours, p_wait),
            ScoreComponent("same_patient", same, w.same_patient, p_same),
        )
        total = round(p_open + p_fair + p_fam + p_level + p_wait + p_same, 4) + 0.0
        return components, total


# ---------------------------------------------------------------------------------------------
# Decision


@dataclass(slots=True)
class _Evaluated:
    expert: ExpertSnapshot
    filters: tuple[FilterResult, ...]  # all but subspecialty, in FILTERS order
    passed: bool  # all of ``filters`` passed
    wait_minutes: float
    subspecialty: FilterResult


def _nobody_reason(evaluated: list[_Evaluated], judge: _Judge, widened: bool) -> str:
    if not evaluated:
        return "nobody is eligible: the roster snapshot has no experts"
    counts: Counter[str] = Counter()
    for ev in evaluated:
        failed = {f.name for f in (*ev.filters, ev.subspecialty) if not f.passed}
        counts[next(name for name in FILTERS if name in failed)] += 1
    sub, code = judge.subspecialty, judge.case.hospital_code
    phrases = {
        "excluded": "released or declined this case",
        "credential": f"not credentialed for {code} (or expired)",
        "subspecialty": f"do not read {sub}" + (" or general" if widened else ""),
        "qualification": "write preliminary reports only where a final signer is needed",
        "state": f"not {judge.allowed_states}",
        "availability": "not available " + ("before the deadline" if judge.wait_allowed else "now"),
        "caps": "at a cap",
    }
    parts = [f"{counts[name]} {phrases[name]}" for name in FILTERS if counts[name]]
    return (
        f"nobody is eligible for this {judge.priority} {sub} case from {code}: "
        f"of {len(evaluated)} experts, " + "; ".join(parts)
    )


def _decide(
    case: CaseFacts, experts: Sequence[ExpertSnapshot], now: datetime, rules: RuleSet
) -> Decision:
    cls = classify(case, rules)
    sla, policy = rules.sla, rules.policy
    priority = Priority(case.priority)

    overdue = sla.max_wait_minutes is not None and now - case.received_at >= timedelta(
        minutes=sla.max_wait_minutes
    )
    steps = sla.escalation if overdue else sla.escalation[: case.escalation_step]
    escalation_widens = any(s.widen_to_general for s in steps)
    offer_size = policy.offer_size + sum(s.add_to_offer for s in steps)
    alert = overdue or any(s.alert_coordinator for s in steps)
    judge = _Judge(case, now, rules, cls, overdue=overdue)

    widened = escalation_widens and cls.subspecialty != Subspecialty.general
    excluded_ids = case.excluded_expert_ids
    evaluated = []
    for e in sorted(experts, key=lambda x: x.user_id):
        availability, wait = judge.availability(e)
        filters = (
            judge.excluded if e.user_id in excluded_ids else judge.not_excluded,
            judge.credential(e),
            judge.qualifications[e.qualification],
            judge.states[e.state],
            availability,
            judge.caps(e),
        )
        passed = all(f.passed for f in filters)
        evaluated.append(
            _Evaluated(e, filters, passed, wait, judge.subspecialty_filter(e, widened))
        )

    if (
        not widened
        and cls.subspecialty != Subspecialty.general
        and priority in policy.eligibility.fallback_to_general_when_none_eligible
        and not any(ev.passed and ev.subspecialty.passed for ev in evaluated)
    ):
        trial = [judge.subspecialty_filter(ev.expert, True) for ev in evaluated]
        if any(ev.passed and s.passed for ev, s in zip(evaluated, trial, strict=True)):
            widened = True
            for ev, s in zip(evaluated, trial, strict=True):
                ev.subspecialty = s

    scored = []
    others = []
    for ev in evaluated:
        e = ev.expert
        explained = (*ev.filters[:2], ev.subspecialty, *ev.filters[2:])
        notes: tuple[str, ...] = (
            ("co-sign needed",) if e.qualification == Qualification.preliminary else ()
        )
        if not (ev.passed and ev.subspecialty.passed):
            others.append(Candidate(e.user_id, e.name, False, explained, notes=notes))
            continue
        components, total = judge.score(e, ev.wait_minutes)
        if ev.wait_minutes > 0:
            notes += (f"window opens in {ev.wait_minutes:.0f} min",)
        if components[-1].value:
            notes += ("reads another open study of this patient",)
        scored.append((-total, e.user_id, e.name, explained, components, total, notes))
    scored.sort(key=lambda s: (s[0], s[1]))
    ranked = [
        Candidate(user_id, name, True, filters, components, total, rank, notes)
        for rank, (_, user_id, name, filters, components, total, notes) in enumerate(scored, 1)
    ]

    mode = policy.assignment.mode_for(case.hospital_code, priority)
    assignee: int | None = None
    offered: tuple[int, ...] = ()
    cosign = False
    if not ranked:
        mode = Mode.none
        alert = True
        reason = _nobody_reason(evaluated, judge, widened)
    elif mode == Mode.push:
        best = ranked[0]
        assignee = best.user_id
        cosign = "co-sign needed" in best.notes
        reason = (
            f"assigned to {best.name or best.user_id} (score {best.total:g}, best of {len(ranked)})"
        )
    else:
        offered = tuple(c.user_id for c in ranked[:offer_size])
        reason = f"offered to the top {len(offered)} of {len(ranked)} eligible experts"
    if widened:
        if overdue:
            why = "the case waited past the maximum wait"
        elif escalation_widens:
            why = f"escalation step {case.escalation_step}"
        else:
            why = f"no {cls.subspecialty} reader was eligible for this {priority} case"
        reason += f"; pool widened to general readers ({why})"

    return Decision(
        case_id=case.case_id,
        decided_at=now,
        priority=priority,
        subspecialty=cls.subspecialty,
        subspecialty_reason=cls.subspecialty_reason,
        work_units=cls.work_units,
        sla_target_minutes=cls.sla_target_minutes,
        sla_reason=cls.sla_reason,
        deadline=cls.deadline,
        escalation_step=len(sla.escalation) if overdue else case.escalation_step,
        mode=mode,
        assignee=assignee,
        offered=offered,
        cosign_required=cosign,
        widened=widened,
        overdue_wait=overdue,
        alert_coordinator=alert,
        reason=reason,
        candidates=(*ranked, *others),
        rules=rules.refs(),
    )


def decide(
    case: CaseFacts, experts: Sequence[ExpertSnapshot], now: datetime, rules: RuleSet
) -> Decision:
    """Route ``case`` among ``experts`` at ``now``. With monitor-mode rules, the decision they
    would reach is attached as ``shadow`` (never applied). Raises ValueError for naive
    datetimes."""
    _require_aware(now, "now")
    _require_aware(case.received_at, "case.received_at")
    decision = _decide(case, experts, now, rules)
    shadow_rules = rules.shadow()
    if shadow_rules is None:
        return decision
    return replace(decision, shadow=_decide(case, experts, now, shadow_rules))


def sla_status(
    received_at: datetime, deadline: datetime, now: datetime, rules: RuleSet
) -> SlaStatus:
    """Where a case stands against its deadline, for the SLA watch: which warnings have passed,
    how many escalation steps are due, and whether it has waited past the maximum wait."""
    sla = rules.sla
    total = (deadline - received_at).total_seconds()
    elapsed = (now - received_at).total_seconds()
    fraction = elapsed / total if total > 0 else 1.0
    overdue = sla.max_wait_minutes is not None and elapsed >= sla.max_wait_minutes * 60
    steps_due = (
        len(sla.escalation) if overdue else sum(1 for s in sla.escalation if fraction >= s.at)
    )
    warnings = sum(1 for f in sla.warn_at if fraction >= f)
    breached = now >= deadline
    state = SlaState.breached if breached else SlaState.warning if warnings else SlaState.ok
    alert = breached or overdue or any(s.alert_coordinator for s in sla.escalation[:steps_due])
    return SlaStatus(
        elapsed_fraction=round(fraction, 4),
        remaining_minutes=round((deadline - now).total_seconds() / 60, 2),
        state=state,
        warnings_passed=warnings,
        escalation_step_due=steps_due,
        alert_coordinator=alert,
        overdue_wait=overdue,
    )
