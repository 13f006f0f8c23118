"""The routing engine: (case, experts snapshot, clock, rules) -> decision, with its explanation.

Pure: no I/O, no clock of its own, no randomness. Experts are considered in user-id order and
ties are broken by the lower user id, so the same inputs always give the same decision.

The steps, each recorded in the decision:
1. Classify the case: subspecialty, work units, SLA target and deadline (``classify``).
2. Apply the escalation steps already reached (``case.escalation_step``, or all of them once the
   case has waited past the maximum wait).
3. Hard filters for every expert: credential, state, availability, subspecialty, qualification,
   excluded, caps. All are evaluated, so an ineligible expert's explanation gives every filter
   they failed, not the first.
4. Score the eligible (open workload, fairness deficit, familiarity, subspecialty level, wait
   until available, same patient), weighted by the policy.
5. Push: assign to the best. Pool: offer to the top N. Nobody eligible: mode ``none`` and why.

The decision holds the explanation in the form it is stored in (see ``Candidate``): every filter
and score component of the best candidates, rank and total of the other eligible, the failed
filters of the ineligible. With hundreds of experts, wording the rest would cost more than the
decision itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

from radrelay.routing.schemas import (
    COMPACT_FULL,
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


@lru_cache(maxsize=16384)
def _points(weight: float, value: float) -> float:
    """A score component's points. Rounded so that equal inputs tie exactly (then the lower
    user id wins); + 0.0 turns -0.0 into 0.0 in the explanation. Memoised: round() to 4 places
    costs more than the rest of the score, and the inputs (queue depths, levels, reads) repeat
    across experts and decisions."""
    return round(weight * value, 4) + 0.0


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

# One bit per hard filter, in FILTERS order: the lowest bit set is the filter under which a
# "nobody is eligible" reason counts the expert.
_EXCLUDED = 1 << FILTERS.index("excluded")
_CREDENTIAL = 1 << FILTERS.index("credential")
_SUBSPECIALTY = 1 << FILTERS.index("subspecialty")
_QUALIFICATION = 1 << FILTERS.index("qualification")
_STATE = 1 << FILTERS.index("state")
_AVAILABILITY = 1 << FILTERS.index("availability")
_CAPS = 1 << FILTERS.index("caps")

_Inputs = tuple[float, float, float, float, float, float]
_SCORE = (
    "open_workload",
    "fairness",
    "familiarity",
    "subspecialty_level",
    "wait_hours",
    "same_patient",
)


@dataclass(slots=True)
class _Sweep:
    """What ``_Judge.sweep`` found, each list in user-id order."""

    eligible: list[ExpertSnapshot] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # minutes until each one's window opens
    failing: list[ExpertSnapshot] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # the filters each one failed, as bits
    # Failed the subspecialty filter only, and read general: eligible if the pool falls back to
    # general readers. With the minutes until their window opens.
    general_only: list[tuple[ExpertSnapshot, float]] = field(default_factory=list)


class _Judge:
    """Applies the filters and the score for one decision, in two steps.

    ``sweep`` runs for every expert, often hundreds per decision, so it only finds which filters
    each one fails (one bit per filter), with plain comparisons. Then ``describe`` words every
    filter of the best candidates, and ``describe_failed`` the failed filters of the ineligible
    (see ``Candidate``). Whether a filter passed is decided by the sweep alone: the describing
    methods are told, and only say why. Most experts pass or fail a filter for the same reason,
    and ``FilterResult`` is immutable, so reasons are shared: precomputed, or memoised by the
    inputs they depend on (credential expiry, window start or end, the numbers over a cap).
    """

    def __init__(
        self,
        case: CaseFacts,
        now: datetime,
        rules: RuleSet,
        cls: Classification,
        *,
        overdue: bool,
        widened: bool,
    ):
        policy = rules.policy
        eligibility = policy.eligibility
        self.case, self.now, self.rules = case, now, rules
        self.priority = priority = Priority(case.priority)
        self.subspecialty = cls.subspecialty
        self.units = cls.work_units
        self.widened = widened  # general readers pass the subspecialty filter
        self.latest_start = cls.deadline - timedelta(minutes=eligibility.read_margin_minutes)
        self.wait_allowed = (
            getattr(eligibility.availability, priority) == "before_deadline"
            and self.latest_start > now
        )
        self.memo: dict[tuple[object, ...], FilterResult] = {}
        self.failed_memo: dict[tuple[object, ...], tuple[FilterResult, ...]] = {}
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
        self.state_passes = frozenset(s for s, r in self.states.items() if r.passed)

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
        self.not_credentialed = FilterResult("credential", False, f"not credentialed for {code}")
        self.credentialed = FilterResult("credential", True, f"credentialed for {code}")

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

    def sweep(self, experts: Iterable[ExpertSnapshot], *, may_fall_back: bool) -> _Sweep:
        """Which filters each expert fails. ``may_fall_back``: also collect the general readers
        who fail only the subspecialty filter."""
        # Written out in one loop over local names: this is the part of a decision that grows
        # with the roster.
        found = _Sweep()
        eligible, waits = found.eligible.append, found.waits.append
        failing, failed = found.failing.append, found.failed.append
        general_only = found.general_only.append
        now, case = self.now, self.case
        hospital_id, excluded_ids = case.hospital_id, case.excluded_expert_ids
        check_credential = self.no_credential_needed is None
        state_passes = self.state_passes
        preliminary = Qualification.preliminary
        preliminary_fails = not self.qualifications[preliminary].passed
        sub, general = self.subspecialty, Subspecialty.general
        widened = self.widened
        wait_allowed, latest_start = self.wait_allowed, self.latest_start
        check_caps = self.caps_bypass is None
        caps, units = self.rules.policy.caps, self.units
        cap_open, cap_queue, cap_daily = caps.open_cases, caps.open_units, caps.daily_units

        for e in experts:
            bits = _EXCLUDED if e.user_id in excluded_ids else 0
            if check_credential:
                credentials = e.credentials
                if hospital_id not in credentials:
                    bits |= _CREDENTIAL
                else:
                    expiry = credentials[hospital_id]
                    if expiry is not None and expiry <= now:
                        bits |= _CREDENTIAL
            levels = e.subspecialties
            if sub not in levels and not (widened and general in levels):
                bits |= _SUBSPECIALTY
            if preliminary_fails and e.qualification == preliminary:
                bits |= _QUALIFICATION
            if e.state not in state_passes:
                bits |= _STATE
            wait = 0.0
            for start, end in e.availability:
                if start <= now < end:
                    break
            else:
                first = None
                if wait_allowed:
                    for start, end in e.availability:
                        if end > now and start <= latest_start and (first is None or start < first):
                            first = start
                if first is None:
                    bits |= _AVAILABILITY
                else:
                    wait = (first - now).total_seconds() / 60
            if check_caps:
                cap = e.cap_open_cases if e.cap_open_cases is not None else cap_open
                daily = e.cap_daily_units if e.cap_daily_units is not None else cap_daily
                if (
                    (cap is not None and e.open_cases >= cap)
                    or (cap_queue is not None and e.open_units + units > cap_queue)
                    or (daily is not None and e.units_today + units > daily)
                ):
                    bits |= _CAPS
            if not bits:
                eligible(e)
                waits(wait)
            else:
                failing(e)
                failed(bits)
                if may_fall_back and bits == _SUBSPECIALTY and general in levels:
                    general_only((e, wait))
        return found

    def describe(self, e: ExpertSnapshot) -> tuple[FilterResult, ...]:
        """Every filter, each passed, for an eligible expert. In FILTERS order."""
        return (
            self.not_excluded,
            self._credential(e, True),
            self._subspecialty(e, True),
            self.qualifications[e.qualification],
            self.states[e.state],
            self._availability(e, True),
            self._caps(e, True),
        )

    def describe_failed(self, e: ExpertSnapshot, failed: int) -> tuple[FilterResult, ...]:
        """The filters an ineligible expert failed (``failed``: bits), in FILTERS order."""
        # Most of the roster is ineligible, mostly for reasons many experts share (offline, does
        # not read the subspecialty), so whole explanations are shared, keyed by the few inputs
        # their reasons depend on. Caps (last in FILTERS) quote the expert's own numbers: added
        # apart.
        key = (
            failed & ~_CAPS,
            e.state if failed & _STATE else None,
            e.credentials.get(self.case.hospital_id) if failed & _CREDENTIAL else None,
            self._next_window(e) if failed & _AVAILABILITY and not self.wait_allowed else None,
        )
        shared = self.failed_memo.get(key)
        if shared is None:
            out = []
            if failed & _EXCLUDED:
                out.append(self.excluded)
            if failed & _CREDENTIAL:
                out.append(self._credential(e, False))
            if failed & _SUBSPECIALTY:
                out.append(self._subspecialty(e, False))
            if failed & _QUALIFICATION:
                out.append(self.qualifications[e.qualification])
            if failed & _STATE:
                out.append(self.states[e.state])
            if failed & _AVAILABILITY:
                out.append(self._availability(e, False))
            shared = self.failed_memo[key] = tuple(out)
        if failed & _CAPS:
            return (*shared, self._caps(e, False))
        return shared

    def _cached(self, key: tuple[object, ...], passed: bool, reason: str) -> FilterResult:
        result = self.memo.get(key)
        if result is None:
            result = self.memo[key] = FilterResult(str(key[0]), passed, reason)
        return result

    def _credential(self, e: ExpertSnapshot, passed: bool) -> FilterResult:
        if self.no_credential_needed is not None:
            return self.no_credential_needed
        code = self.case.hospital_code
        expiry = e.credentials.get(self.case.hospital_id)
        if expiry is None:
            return self.credentialed if passed else self.not_credentialed
        if passed:
            reason = f"credentialed for {code} until {_utc(expiry)}"
        else:
            reason = f"credential for {code} expired {_utc(expiry)}"
        return self._cached(("credential", expiry), passed, reason)

    def _availability(self, e: ExpertSnapshot, passed: bool) -> FilterResult:
        now = self.now
        if passed:
            for start, end in e.availability:
                if start <= now < end:
                    return self._cached(
                        ("availability", "now", end), True, f"available now, until {_utc(end)}"
                    )
            first = min(
                (s for s, end in e.availability if end > now and s <= self.latest_start),
                default=now,
            )
            reason = f"available from {_utc(first)}, before the deadline"
            return self._cached(("availability", "from", first), True, reason)
        if self.wait_allowed:
            margin = self.rules.policy.eligibility.read_margin_minutes
            reason = (
                f"no availability window opens by {_utc(self.latest_start)} "
                f"({margin} min before the deadline)"
            )
            return self._cached(("availability", "none"), False, reason)
        upcoming = self._next_window(e)
        if upcoming is None:
            return self._cached(
                ("availability", "never"), False, "not in an availability window now"
            )
        reason = f"not in an availability window now (next opens {_utc(upcoming)})"
        return self._cached(("availability", "next", upcoming), False, reason)

    def _next_window(self, e: ExpertSnapshot) -> datetime | None:
        return min((start for start, _ in e.availability if start > self.now), default=None)

    def _subspecialty(self, e: ExpertSnapshot, passed: bool) -> FilterResult:
        sub = self.subspecialty
        level = e.subspecialties.get(sub)
        general = e.subspecialties.get(Subspecialty.general)
        key = ("subspecialty", passed, level, general, self.widened)
        result = self.memo.get(key)
        if result is not None:
            return result
        if passed:
            if level is not None:
                reason = f"reads {sub} (level {level})"
            else:
                reason = f"reads general (level {general}); pool widened from {sub}"
        elif sub == Subspecialty.general:
            reason = "does not read general cases"
        elif not self.widened:
            reason = f"does not read {sub}"
        else:
            reason = f"reads neither {sub} nor general"
        result = self.memo[key] = FilterResult("subspecialty", passed, reason)
        return result

    def _caps(self, e: ExpertSnapshot, passed: bool) -> FilterResult:
        if self.caps_bypass is not None:
            return self.caps_bypass
        if passed:
            return self.within_caps
        # The reason quotes the numbers over a cap. Many experts share them (a queue depth is a
        # sum of a few unit values), so reasons are memoised by those numbers.
        caps, units = self.rules.policy.caps, self.units
        cap_open = e.cap_open_cases if e.cap_open_cases is not None else caps.open_cases
        cap_daily = e.cap_daily_units if e.cap_daily_units is not None else caps.daily_units
        over_open = cap_open is not None and e.open_cases >= cap_open
        over_queue = caps.open_units is not None and e.open_units + units > caps.open_units
        over_daily = cap_daily is not None and e.units_today + units > cap_daily
        key = (
            "caps",
            (e.open_cases, cap_open) if over_open else None,
            e.open_units if over_queue else None,
            (e.units_today, cap_daily) if over_daily else None,
        )
        result = self.memo.get(key)
        if result is None:
            over = []
            if over_open:
                over.append(f"{e.open_cases} open cases (cap {cap_open})")
            if over_queue:
                over.append(
                    f"{e.open_units:g} open units + {units:g} over the queue cap of "
                    f"{caps.open_units:g}"
                )
            if over_daily:
                over.append(
                    f"{e.units_today:g} units today + {units:g} over the daily cap of {cap_daily:g}"
                )
            result = self.memo[key] = FilterResult("caps", False, "; ".join(over))
        return result

    def score(self, e: ExpertSnapshot, wait_minutes: float) -> tuple[float, _Inputs, _Inputs]:
        """The total, and the input and points of each component (in ``_SCORE`` order)."""
        w = self.rules.policy.weights
        case = self.case
        deficit = e.shift_target_units - e.units_shift
        reads = e.familiarity.get(case.hospital_id, 0)
        level = e.subspecialties.get(self.subspecialty, 0)
        same = 1.0 if case.patient_key and case.patient_key in e.open_patient_keys else 0.0
        hours = round(wait_minutes / 60, 4) if wait_minutes else 0.0
        p_open = _points(-w.open_workload, e.open_units)
        p_fair = _points(w.fairness, deficit)
        p_fam = _points(w.familiarity, math.log1p(reads))
        p_level = _points(w.subspecialty_level, level)
        p_wait = _points(-w.wait_hours, hours)
        p_same = w.same_patient * same
        total = round(p_open + p_fair + p_fam + p_level + p_wait + p_same, 4) + 0.0
        inputs = (e.open_units, deficit, reads, level, hours, same)
        return total, inputs, (p_open, p_fair, p_fam, p_level, p_wait, p_same)

    def components(self, inputs: _Inputs, points: _Inputs) -> tuple[ScoreComponent, ...]:
        w = self.rules.policy.weights
        weights = (
            w.open_workload,
            w.fairness,
            w.familiarity,
            w.subspecialty_level,
            w.wait_hours,
            w.same_patient,
        )
        return tuple(map(ScoreComponent, _SCORE, inputs, weights, points))


# ---------------------------------------------------------------------------------------------
# Decision


def _nobody_reason(found: _Sweep, judge: _Judge) -> str:
    if not found.failing:
        return "nobody is eligible: the roster snapshot has no experts"
    counts: Counter[str] = Counter()
    for bits in found.failed:
        counts[FILTERS[(bits & -bits).bit_length() - 1]] += 1
    sub, code, widened = judge.subspecialty, judge.case.hospital_code, judge.widened
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
        f"of {len(found.failing)} experts, " + "; ".join(parts)
    )


def _fall_back_to_general(found: _Sweep, judge: _Judge) -> None:
    """Nobody who reads the subspecialty is eligible: admit general readers."""
    judge.widened = True
    found.eligible = [e for e, _ in found.general_only]
    found.waits = [wait for _, wait in found.general_only]
    failing, failed = [], []
    for e, bits in zip(found.failing, found.failed, strict=True):
        if bits & _SUBSPECIALTY and Subspecialty.general in e.subspecialties:
            bits &= ~_SUBSPECIALTY
        if bits:
            failing.append(e)
            failed.append(bits)
    found.failing, found.failed = failing, failed


_user_id = attrgetter("user_id")
_rank_key = itemgetter(0, 1)  # the best total first, then the lower user id


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
    general_case = cls.subspecialty == Subspecialty.general
    widened = escalation_widens and not general_case
    judge = _Judge(case, now, rules, cls, overdue=overdue, widened=widened)

    may_fall_back = (
        not widened
        and not general_case
        and priority in policy.eligibility.fallback_to_general_when_none_eligible
    )
    found = judge.sweep(sorted(experts, key=_user_id), may_fall_back=may_fall_back)
    if may_fall_back and not found.eligible and found.general_only:
        _fall_back_to_general(found, judge)
    widened = judge.widened

    scored = []
    for e, wait in zip(found.eligible, found.waits, strict=True):
        total, inputs, points = judge.score(e, wait)
        scored.append((-total, e.user_id, e, wait, total, inputs, points))
    scored.sort(key=_rank_key)

    mode = policy.assignment.mode_for(case.hospital_code, priority)
    if not scored:
        mode = Mode.none
    offered = tuple(s[1] for s in scored[:offer_size]) if mode == Mode.pool else ()
    # The candidates whose whole explanation is kept: see Candidate.
    explained = max(COMPACT_FULL, len(offered))
    ranked = []
    for rank, (_, user_id, e, wait, total, inputs, points) in enumerate(scored, 1):
        if rank > explained:
            ranked.append(Candidate(user_id, e.name, True, total=total, rank=rank))
            continue
        notes: tuple[str, ...] = ()
        if e.qualification == Qualification.preliminary:
            notes += ("co-sign needed",)
        if wait > 0:
            notes += (f"window opens in {wait:.0f} min",)
        if inputs[-1]:
            notes += ("reads another open study of this patient",)
        filters = judge.describe(e)
        score = judge.components(inputs, points)
        ranked.append(Candidate(user_id, e.name, True, filters, score, total, rank, notes))
    others = [
        Candidate(e.user_id, e.name, False, judge.describe_failed(e, bits))
        for e, bits in zip(found.failing, found.failed, strict=True)
    ]

    assignee: int | None = None
    cosign = False
    if not ranked:
        alert = True
        reason = _nobody_reason(found, judge)
    elif mode == Mode.push:
        best = ranked[0]
        assignee = best.user_id
        cosign = "co-sign needed" in best.notes
        reason = (
            f"assigned to {best.name or best.user_id} (score {best.total:g}, best of {len(ranked)})"
        )
    else:
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
