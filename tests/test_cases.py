"""Cases as hospitals and staff see them: scope, clinical information, readiness exactly once."""

from __future__ import annotations

import concurrent.futures

from conftest import Server, World, wait_until
from helpers import part10, study, upload


def send(api, datasets, **fields):  # type: ignore[no-untyped-def]
    return upload(api, [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(datasets)], **fields)


class TestScope:
    def test_each_role_sees_what_it_should(self, server: Server, world: World) -> None:
        a, b = world.hospital(), world.hospital()
        r = send(a.tech, study(slices=2))
        assert r.status_code == 200, r.text
        case_id = r.json()["case_ids"][0]

        assert a.tech.get(f"/api/cases/{case_id}").status_code == 200
        # Another hospital: not found (not forbidden), and absent from its list.
        assert b.tech.get(f"/api/cases/{case_id}").status_code == 404
        assert case_id not in [c["id"] for c in b.tech.get("/api/cases?limit=500").json()["items"]]
        # Staff see every hospital's cases.
        coordinator = world.signed_in("coordinator")
        assert coordinator.get(f"/api/cases/{case_id}").json()["hospital_code"] == a.code
        # A radiologist sees only cases routed to them; none are yet.
        radiologist = world.signed_in("radiologist")
        assert radiologist.get(f"/api/cases/{case_id}").status_code == 404
        assert radiologist.get("/api/cases").json()["total"] == 0

    def test_tech_cannot_edit_another_hospitals_case(self, server: Server, world: World) -> None:
        a, b = world.hospital(), world.hospital()
        case_id = send(a.tech, study(slices=1)).json()["case_ids"][0]
        r = b.tech.patch(f"/api/cases/{case_id}", json={"priority": "stat"})
        assert r.status_code == 404
        assert a.tech.get(f"/api/cases/{case_id}").json()["priority"] == "routine"


class TestClinicalInformation:
    def test_upload_fields_land_on_the_case_and_can_be_edited(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        r = send(
            h.tech,
            study(slices=2),
            priority="urgent",
            clinical_question="右下腹痛 RLQ pain, appendicitis?",
            requested_subspecialty="abdominal",
        )
        case = h.tech.get(f"/api/cases/{r.json()['case_ids'][0]}").json()
        assert case["priority"] == "urgent"
        assert case["clinical_question"] == "右下腹痛 RLQ pain, appendicitis?"
        assert case["requested_subspecialty"] == "abdominal"

        patched = h.tech.patch(
            f"/api/cases/{case['id']}", json={"priority": "stat", "clinical_history": "既往史 none"}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["priority"] == "stat"
        assert patched.json()["clinical_history"] == "既往史 none"
        assert patched.json()["clinical_question"] == "右下腹痛 RLQ pain, appendicitis?"
        kinds = [e["kind"] for e in patched.json()["events"]]
        # The upload set the fields when it opened the case; the edit is on the timeline (beside
        # routing, which runs once the case is ready).
        assert [k for k in kinds if k != "routed"] == ["received", "ready", "clinical_info"]

    def test_null_clears_the_subspecialty_and_the_timeline_names_the_editor(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        case_id = send(h.tech, study(slices=1), requested_subspecialty="neuro").json()["case_ids"][
            0
        ]
        r = h.tech.patch(f"/api/cases/{case_id}", json={"requested_subspecialty": None})
        assert r.status_code == 200, r.text
        assert r.json()["requested_subspecialty"] is None
        edit = [e for e in r.json()["events"] if e["kind"] == "clinical_info"][-1]
        assert edit["actor_name"] == h.tech.username
        assert edit["detail"] == {"fields": ["requested_subspecialty"]}
        assert h.tech.patch(f"/api/cases/{case_id}", json={"priority": None}).status_code == 422

    def test_invalid_edits_say_what_is_wrong(self, server: Server, world: World) -> None:
        h = world.hospital()
        case_id = send(h.tech, study(slices=1)).json()["case_ids"][0]
        r = h.tech.patch(f"/api/cases/{case_id}", json={"priority": "yesterday"})
        assert r.status_code == 422
        assert "priority" in r.json()["message"]
        empty = h.tech.patch(f"/api/cases/{case_id}", json={})
        assert empty.status_code == 400
        assert "Nothing to change" in empty.json()["message"]


class TestReadiness:
    def test_incomplete_upload_becomes_ready_when_stable(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        datasets = study(slices=4)
        first = send(h.tech, datasets[:2], complete="false").json()
        case_id = first["case_ids"][0]
        assert h.tech.get(f"/api/cases/{case_id}").json()["status"] == "receiving"
        send(h.tech, datasets[2:], complete="false")

        case = wait_until(
            lambda: (c := h.tech.get(f"/api/cases/{case_id}").json())["status"] == "ready" and c,
            timeout=30,
            what="the stable study to become ready",
        )
        assert case["number_of_instances"] == 4
        assert [e["kind"] for e in case["events"]].count("ready") == 1
        assert [e["detail"] for e in case["events"] if e["kind"] == "ready"] == [
            {"reason": "stable"}
        ]

    def test_ready_happens_once_however_many_race_for_it(
        self, server: Server, world: World
    ) -> None:
        """Eight uploads of one study finish at once, each asking for readiness, while the sweeper
        runs: one transition, one "ready" event."""
        h = world.hospital()
        datasets = study(slices=8)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda ds: send(h.tech, [ds]), datasets))
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        case_ids = {r.json()["case_ids"][0] for r in results}
        assert len(case_ids) == 1
        case = h.tech.get(f"/api/cases/{case_ids.pop()}").json()
        assert case["status"] == "ready"
        assert [e["kind"] for e in case["events"]].count("ready") == 1
        assert [e["kind"] for e in case["events"]].count("received") == 1

    def test_late_instances_join_the_ready_case(self, server: Server, world: World) -> None:
        h = world.hospital()
        datasets = study(slices=3)
        case_id = send(h.tech, datasets[:2]).json()["case_ids"][0]
        assert h.tech.get(f"/api/cases/{case_id}").json()["status"] == "ready"
        again = send(h.tech, datasets[2:]).json()
        assert again["case_ids"] == [case_id]
        case = wait_until(
            lambda: (
                (c := h.tech.get(f"/api/cases/{case_id}").json())["number_of_instances"] == 3 and c
            ),
            what="the late instance to be counted",
        )
        assert case["late_instances"] == 1
        assert "late_instances" in [e["kind"] for e in case["events"]]


class TestListing:
    def test_filters_and_paging(self, server: Server, world: World) -> None:
        h = world.hospital()
        send(h.tech, study(slices=1), priority="stat")
        send(h.tech, study(slices=1), priority="routine")
        send(h.tech, study(slices=1), priority="routine")
        page = h.tech.get("/api/cases", params={"limit": 2}).json()
        assert page["total"] == 3
        assert len(page["items"]) == 2
        rest = h.tech.get("/api/cases", params={"limit": 2, "offset": 2}).json()
        assert len(rest["items"]) == 1
        stat = h.tech.get("/api/cases", params={"priority": "stat"}).json()
        assert [c["priority"] for c in stat["items"]] == ["stat"]
        assert h.tech.get("/api/cases", params={"limit": 0}).status_code == 422
