"""``radrelay simulate``: the discrete-event simulation of routing policies, without a server.

Small hand-made days whose outcome can be worked out on paper check the event loop (reading in
order, escalation re-routes, co-signs, the SLA watch retrying cases nobody could take); the
built-in day checks determinism and the command line."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import RADRELAY, ROOT
from radrelay.routing.rules import RuleSet, load_rules
from radrelay.routing.schemas import Mode, Priority
from radrelay.routing.simulate import (
    SIM_TZ,
    START,
    PolicyResult,
    SimulationInputError,
    gini,
    load_arrivals,
    load_roster,
    percentile,
    poisson_arrivals,
    policy_rules,
    run,
    simulate,
)

RULES_DIR = ROOT / "worklist_rules"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules(RULES_DIR)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# One reader all day; every radiograph takes exactly 10 minutes (sigma 0).
SOLO = """
reading_times: {CR: {median: 10, sigma: 0}}
experts:
  - {id: 1, name: Solo, subspecialties: {chest: 3, general: 2}, windows: ["00:00-24:00"]}
"""


def csv_of(*rows: str) -> str:
    return "received_at,hospital,modality,priority,body_part,study_description\n" + "\n".join(rows)


def by_name(results: tuple[PolicyResult, ...]) -> dict[str, PolicyResult]:
    return {r.name: r for r in results}


class TestStatistics:
    def test_gini_of_known_vectors(self) -> None:
        assert gini([3, 3, 3, 3]) == 0
        assert gini([0, 0, 0, 1]) == pytest.approx(0.75)  # (n-1)/n: one has everything
        # sum of |xi - xj| over ordered pairs 20, over 2 n^2 mean = 80
        assert gini([1, 2, 3, 4]) == pytest.approx(0.25)
        assert gini([4, 1, 3, 2]) == pytest.approx(0.25)
        assert gini([]) == 0
        assert gini([0, 0]) == 0

    def test_percentiles_interpolate_between_ranks(self) -> None:
        values = [37, 10, 28, 19]
        assert percentile(values, 0.5) == pytest.approx(23.5)
        assert percentile(values, 0.9) == pytest.approx(34.3)
        assert percentile(values, 0) == 10
        assert percentile(values, 1) == 37
        assert percentile([], 0.5) is None


class TestPolicies:
    def test_variants_change_only_the_assignment_modes(self, rules: RuleSet) -> None:
        push, pool = policy_rules(rules, "push"), policy_rules(rules, "pool")
        shipped, routine_pool = policy_rules(rules, "rules"), policy_rules(rules, "pool-routine")
        for code in ("HPZ", "QSX", "LHX"):
            for p in Priority:
                assert push.policy.assignment.mode_for(code, p) == Mode.push
                assert pool.policy.assignment.mode_for(code, p) == Mode.pool
                want = Mode.pool if p == Priority.routine else Mode.push
                assert routine_pool.policy.assignment.mode_for(code, p) == want
        assert shipped.policy.assignment.mode_for("HPZ", Priority.routine) == Mode.pool
        assert shipped.policy.assignment.mode_for("QSX", Priority.routine) == Mode.push
        # The loaded rules are not touched, and everything else is the same.
        assert rules.policy.assignment.mode_for("HPZ", Priority.routine) == Mode.pool
        assert push.policy.weights == rules.policy.weights
        assert push.sla == rules.sla

    def test_unknown_policy_is_refused(self, rules: RuleSet, tmp_path: Path) -> None:
        roster = load_roster(write(tmp_path / "roster.yaml", SOLO))
        with pytest.raises(SimulationInputError, match="unknown policy 'shove'"):
            simulate(rules, poisson_arrivals(1, 1, 1), roster, policies=["shove"])


class TestHandMadeDays:
    def test_one_reader_reads_in_order_and_the_last_breaches(
        self, rules: RuleSet, tmp_path: Path
    ) -> None:
        # Four STAT chest radiographs a minute apart (target 30 min), 10 minutes each: finals at
        # 10, 20, 30, 40, so TATs 10, 19, 28, 37; only the last passes its deadline (33).
        roster = load_roster(write(tmp_path / "roster.yaml", SOLO))
        rows = [f"{m},LHX,CR,stat,CHEST,胸部正位" for m in (0, 1, 2, 3)]
        arrivals, start = load_arrivals(write(tmp_path / "a.csv", csv_of(*rows)))
        assert start == START
        results = by_name(simulate(rules, arrivals, roster, policies=["push", "pool"]))
        for name in ("push", "pool"):
            r = results[name]
            stat = r.by_priority["stat"]
            assert (r.overall.cases, r.overall.finished, r.unfinished) == (4, 4, 0)
            assert stat.tat_p50 == pytest.approx(23.5)
            assert stat.tat_p90 == pytest.approx(34.3)
            assert stat.tat_p95 == pytest.approx(35.65)
            assert stat.breach_rate == pytest.approx(0.25)
            assert stat.mean_wait_open == pytest.approx((0 + 9 + 18 + 27) / 4)
            assert r.overall.breach_rate == pytest.approx(0.25)
            assert r.by_priority["routine"].cases == 0
            assert r.experts[0].units == pytest.approx(0.8)  # 4 x 0.2 (X-ray chest)
            assert r.gini_units == 0
        # Push assigns at once; in a pool the case waits until the reader claims it.
        assert results["push"].overall.mean_wait_assign == 0
        assert results["pool"].overall.mean_wait_assign == pytest.approx(13.5)
        # The queued cases reached the first escalation step (half the target) and were routed
        # again, to the same and only reader.
        assert results["push"].rerouted == 2

    def test_a_preliminary_report_waits_for_the_co_sign(
        self, rules: RuleSet, tmp_path: Path
    ) -> None:
        # Only the junior reads chest (the senior reads general only, and routine is not widened
        # before half its 24 h target): 10 min to read, then 0.5 x 10 min for the senior.
        roster = load_roster(
            write(
                tmp_path / "roster.yaml",
                """
reading_times: {CR: {median: 10, sigma: 0}}
cosign_fraction: 0.5
experts:
  - {id: 1, name: Junior, qualification: preliminary, subspecialties: {chest: 3},
     windows: ["00:00-24:00"]}
  - {id: 2, name: Senior, subspecialties: {general: 1}, windows: ["00:00-24:00"]}
""",
            )
        )
        arrivals, _ = load_arrivals(
            write(tmp_path / "a.csv", csv_of("0,LHX,CR,routine,CHEST,胸部正位"))
        )
        for r in simulate(rules, arrivals, roster, policies=["push", "pool"]):
            assert r.overall.tat_p50 == pytest.approx(15.0)
            assert r.cosigned == 1
            junior, senior = r.experts
            assert (junior.cases, junior.units, junior.cosigned) == (1, pytest.approx(0.2), 0)
            assert (senior.cases, senior.units, senior.cosigned) == (0, 0, 1)

    def test_the_watch_routes_a_waiting_case_when_a_reader_comes_online(
        self, rules: RuleSet, tmp_path: Path
    ) -> None:
        # Nobody is on shift until 01:00: the STAT case waits (mode none), the SLA watch routes it
        # at its first pass after the window opens (01:00:30) and it is final 10 minutes later.
        roster = load_roster(
            write(tmp_path / "roster.yaml", SOLO.replace("00:00-24:00", "01:00-02:00"))
        )
        arrivals, _ = load_arrivals(write(tmp_path / "a.csv", csv_of("0,LHX,CR,stat,CHEST,")))
        (r,) = simulate(rules, arrivals, roster, policies=["push"])
        assert r.waited_unrouted == 1
        assert r.overall.tat_p50 == pytest.approx(70.5)
        assert r.overall.mean_wait_assign == pytest.approx(60.5)
        assert r.overall.breach_rate == 1

    def test_going_offline_hands_unopened_cases_to_the_next_shift(
        self, rules: RuleSet, tmp_path: Path
    ) -> None:
        # A's window ends at 00:15 with two cases queued behind the one being read: A reads the
        # first (00:00-00:10) and the second (00:10-00:20: a case already opened stays with its
        # reader after the window), while the third goes back to routing and to B, who logged
        # on at 00:15 (a shift starts before the one it relieves ends).
        roster = load_roster(
            write(
                tmp_path / "roster.yaml",
                """
reading_times: {CR: {median: 10, sigma: 0}}
experts:
  - {id: 1, name: A, subspecialties: {chest: 3}, windows: ["00:00-00:15"]}
  - {id: 2, name: B, subspecialties: {chest: 3}, windows: ["00:15-08:00"]}
""",
            )
        )
        rows = [f"{m},LHX,CR,urgent,CHEST,胸部正位" for m in (0, 0.5, 1)]
        arrivals, _ = load_arrivals(write(tmp_path / "a.csv", csv_of(*rows)))
        (r,) = simulate(rules, arrivals, roster, policies=["push"])
        a, b = r.experts
        assert (a.cases, b.cases) == (2, 1)
        # finals: 10, 20 (A), 25 (B took the third at 00:15)
        assert r.overall.tat_p50 == pytest.approx(19.5)
        assert r.overall.breach_rate == 0

    def test_arrivals_with_datetimes_start_at_local_midnight(self, tmp_path: Path) -> None:
        text = csv_of(
            "2025-05-06T09:30:00+08:00,QSX,CT\\SR,STAT,HEAD,头颅CT平扫",
            "2025-05-06 08:00,HPZ,DX,routine,,",
        )
        arrivals, start = load_arrivals(write(tmp_path / "a.csv", text))
        assert start == datetime(2025, 5, 6, tzinfo=SIM_TZ)
        assert [a.minute for a in arrivals] == [480, 570]
        assert arrivals[1].modality == "CT"  # the primary modality of CT\SR
        assert arrivals[1].priority == Priority.stat
        assert start + timedelta(minutes=570) == datetime(2025, 5, 6, 9, 30, tzinfo=SIM_TZ)


class TestBuiltInDay:
    def test_same_seed_same_numbers(self, rules: RuleSet) -> None:
        first = run(rules, rules_label="shipped", hours=8, seed=7).to_json()
        again = run(rules, rules_label="shipped", hours=8, seed=7).to_json()
        other = run(rules, rules_label="shipped", hours=8, seed=8).to_json()
        assert first == again
        assert first["policies"] != other["policies"]
        assert [p["name"] for p in first["policies"]] == ["push", "pool", "rules"]

    def test_a_day_is_read_completely_by_the_default_roster(self, rules: RuleSet) -> None:
        arrivals = poisson_arrivals(24, 1, 1)
        stat = sum(1 for a in arrivals if a.priority == Priority.stat) / len(arrivals)
        assert 250 < len(arrivals) < 400
        assert 0.02 < stat < 0.12
        result = run(rules, rules_label="shipped", seed=1)
        assert result.cases == len(arrivals)
        for p in result.policies:
            assert p.unfinished == 0
            assert p.overall.finished == len(arrivals)
            assert sum(e.units for e in p.experts) > 0


class TestInputErrors:
    def test_a_bad_roster_names_each_problem(self, tmp_path: Path) -> None:
        path = write(
            tmp_path / "roster.yaml",
            """
experts:
  - {id: 1, subspecialties: {nuero: 3}, windows: ["8-16"]}
  - {id: 1, subspecialties: {chest: 2}, windows: ["08:00-16:00"], shift: day}
""",
        )
        with pytest.raises(SimulationInputError) as caught:
            load_roster(path)
        text = "\n".join(caught.value.problems)
        assert "experts[0].subspecialties.nuero" in text
        assert "experts[0].windows[0]: a window looks like 08:00-16:00, got '8-16'" in text
        assert "experts[1].shift: unknown field" in text

        twice = "  - {id: 1, subspecialties: {chest: 2}, windows: [08:00-16:00]}\n" * 2
        write(path, "experts:\n" + twice)
        with pytest.raises(SimulationInputError, match=r"unique; repeated: \[1\]"):
            load_roster(path)
        with pytest.raises(SimulationInputError, match="cannot read the roster"):
            load_roster(tmp_path / "missing.yaml")

    def test_a_bad_arrivals_file_names_the_line(self, tmp_path: Path) -> None:
        path = write(
            tmp_path / "a.csv", csv_of("0,LHX,CR,stat,,", "5,LHX,CR,high,,", "x,LHX,CR,stat,,")
        )
        with pytest.raises(SimulationInputError) as caught:
            load_arrivals(path)
        text = "\n".join(caught.value.problems)
        assert "line 3: priority" in text and "'high'" in text
        assert "line 4: received_at: expected minutes since the start" in text
        write(path, "received_at,hospital,modality,prority\n0,LHX,CR,stat\n")
        with pytest.raises(SimulationInputError) as caught:
            load_arrivals(path)
        assert any("missing column 'priority'" in p for p in caught.value.problems)
        assert any("unknown column 'prority'" in p for p in caught.value.problems)


class TestCommandLine:
    def test_prints_a_table_per_policy(self) -> None:
        out = subprocess.run(
            [RADRELAY, "simulate", "--hours", "2", "--seed", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "| policy | TAT p50 | TAT p90 | TAT p95 | breach |" in out
        for name in ("push", "pool", "rules"):
            assert f"\n## {name}: " in out
            assert f"\n| {name} | " in out
        assert out.count("| all | ") == 3
        assert "Gini" in out

    def test_json_output(self, tmp_path: Path) -> None:
        arrivals = write(tmp_path / "a.csv", csv_of("0,LHX,CR,stat,CHEST,", "3,LHX,CT,urgent,,"))
        done = subprocess.run(
            [RADRELAY, "simulate", "--arrivals", str(arrivals), "--policy", "pool", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        data = json.loads(done.stdout)
        assert data["cases"] == 2
        assert [p["name"] for p in data["policies"]] == ["pool"]
        assert data["policies"][0]["overall"]["finished"] == 2

    def test_a_bad_roster_fails_with_what_to_fix(self, tmp_path: Path) -> None:
        roster = write(tmp_path / "roster.yaml", "experts:\n  - {id: 0, windows: [08-16]}\n")
        done = subprocess.run(
            [RADRELAY, "simulate", "--hours", "1", "--roster", str(roster)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert done.stdout == ""
        assert f"error: {roster}: experts[0].id: Input should be greater than or equal to 1" in (
            done.stderr
        )
        assert "experts[0].subspecialties: required field is missing" in done.stderr
        assert "experts[0].windows[0]: a window looks like 08:00-16:00" in done.stderr

    def test_hours_do_not_apply_to_an_arrivals_file(self, tmp_path: Path) -> None:
        arrivals = write(tmp_path / "a.csv", csv_of("0,LHX,CR,stat,,"))
        done = subprocess.run(
            [RADRELAY, "simulate", "--arrivals", str(arrivals), "--hours", "3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2
        assert "--hours and --scale shape the Poisson model" in done.stderr
