"""What routing keeps of a decision (``routing.service.stored``): the explanation, with the
ineligible experts grouped once there are many."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from radrelay.routing.engine import decide
from radrelay.routing.rules import load_rules
from radrelay.routing.schemas import CaseFacts, ExpertSnapshot, Priority, Subspecialty
from radrelay.routing.service import INELIGIBLE_KEPT, stored

RULES = load_rules(Path(__file__).resolve().parents[1] / "worklist_rules")
NOW = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
SHIFT = ((NOW - timedelta(hours=6), NOW + timedelta(hours=6)),)


def expert(user_id: int, *, credentialed: bool, sub: Subspecialty) -> ExpertSnapshot:
    return ExpertSnapshot(
        user_id=user_id,
        name=f"Dr {user_id}",
        subspecialties={sub: 2},
        credentials={7: None} if credentialed else {},
        availability=SHIFT,
    )


def case() -> CaseFacts:
    return CaseFacts(
        case_id=1,
        hospital_id=7,
        hospital_code="LHX",
        priority=Priority.urgent,
        modality="CT",
        received_at=NOW,
        requested_subspecialty=Subspecialty.chest,
    )


class TestStored:
    def test_few_ineligible_are_kept_one_by_one(self) -> None:
        experts = [expert(1, credentialed=True, sub=Subspecialty.chest)] + [
            expert(i, credentialed=False, sub=Subspecialty.chest) for i in range(2, 5)
        ]
        data = stored(decide(case(), experts, NOW, RULES))
        assert "ineligible" not in data
        assert {c["user_id"] for c in data["candidates"]} == {1, 2, 3, 4}

    def test_many_ineligible_are_grouped_by_first_failed_filter(self) -> None:
        uncredentialed = list(range(100, 100 + INELIGIBLE_KEPT))
        wrong_reader = list(range(200, 210))
        experts = (
            [expert(1, credentialed=True, sub=Subspecialty.chest)]
            + [expert(i, credentialed=False, sub=Subspecialty.chest) for i in uncredentialed]
            + [expert(i, credentialed=True, sub=Subspecialty.breast) for i in wrong_reader]
        )
        decision = decide(case(), experts, NOW, RULES)
        data = stored(decision)
        assert [c["user_id"] for c in data["candidates"]] == [1]
        groups = {g["failed"]: g for g in data["ineligible"]}
        assert set(groups) == {"credential", "subspecialty"}
        assert groups["credential"]["count"] == INELIGIBLE_KEPT
        assert sorted(groups["credential"]["user_ids"]) == uncredentialed
        assert sorted(groups["subspecialty"]["user_ids"]) == wrong_reader
        example = groups["subspecialty"]["example"]
        assert [f["name"] for f in example["filters"]] == ["subspecialty"]
        # The rest of the decision is untouched.
        full = decision.to_json(compact=True)
        assert {k: v for k, v in data.items() if k not in ("candidates", "ineligible")} == {
            k: v for k, v in full.items() if k != "candidates"
        }
