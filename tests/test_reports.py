"""The report lifecycle through the API of a running server: writing, autosave, signing with the
username and password again, co-signing, amendments, addenda, the stored PDFs and their
verification, critical findings, and who may see what."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets

from conftest import Api, Hospital, Server, World, wait_until
from helpers import part10, study, upload
from radrelay import synth
from radrelay.config import Settings
from radrelay.kit.runtime import Runtime
from radrelay.reporting.service import reports
from test_worklist import Reader, case, coordinator, reader

PATIENT = "Zhang^Wei=张^伟"


def send_patient(hospital: Hospital, **fields: str) -> int:
    """A two-slice CT of 张伟 from the hospital; the case id."""
    patient = synth.SynthPatient(
        name=PATIENT, patient_id=f"P{uuid.uuid4().hex[:8]}", birth_date="19610302", sex="M"
    )
    files = [
        (f"{i}.dcm", part10(ds))
        for i, ds in enumerate(study("CT", slices=2, hospital=hospital.code, patient=patient))
    ]
    r = upload(hospital.tech, files, **fields)
    assert r.status_code == 200, r.text
    return int(r.json()["case_ids"][0])


def reading(world: World, hospital: Hospital, who: Reader, **fields: str) -> int:
    """A case of the hospital, given to ``who`` by a coordinator and claimed: being read."""
    case_id = send_patient(hospital, **fields)
    coord = coordinator(world)
    wait_until(lambda: case(coord, case_id)["status"] != "receiving", what=f"case {case_id} ready")

    def assigned() -> bool:
        r = coord.post(
            f"/api/cases/{case_id}/assign", json={"reader_id": who.id, "reason": "report test"}
        )
        return r.status_code == 200

    wait_until(assigned, what=f"case {case_id} assigned")
    r = who.api.post(f"/api/cases/{case_id}/claim")
    assert r.status_code == 200, r.text
    return case_id


def start(who: Reader, case_id: int, template_id: str | None = "ct-chest") -> dict[str, Any]:
    """The report started, from a template whose defaults leave only the narrative to write
    (``None``: the template chosen for the study)."""
    r = who.api.post(f"/api/cases/{case_id}/report", json={"template_id": template_id})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def complete(report: dict[str, Any]) -> dict[str, Any]:
    """An autosave body that fills what the template requires (its defaults kept)."""
    draft = report["draft"]
    entries = dict(draft["entries"])
    texts = dict(draft["texts"])
    texts["findings"] = "右肺上叶见一实性小结节，直径约 6 mm。"
    texts["impression"] = "右肺上叶实性小结节，建议 12 个月后复查。"
    return {"revision": draft["revision"], "entries": entries, "texts": texts}


def written(who: Reader, report: dict[str, Any]) -> dict[str, Any]:
    r = who.api.put(f"/api/reports/{report['id']}/draft", json=complete(report))
    assert r.status_code == 200, r.text
    assert r.json()["missing"] == [], r.json()
    return r.json()  # type: ignore[no-any-return]


def sign(who: Reader, report_id: int, **extra: Any) -> dict[str, Any]:
    r = who.api.post(f"/api/reports/{report_id}/sign", json={**who.credentials(), **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def pdf(api: Api, report_id: int, version: int) -> bytes:
    r = api.get(f"/api/reports/{report_id}/versions/{version}/pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return r.content


def stored(server: Server, hospital: Hospital, report_id: int, version: int) -> Path:
    [path] = (server.storage_root / f"h{hospital.id}" / "reports" / str(report_id)).glob(
        f"v{version}-*.pdf"
    )
    return path


def verify(api: Api, report_id: int, version: int | None = None) -> dict[str, Any]:
    params = {"version": version} if version else {}
    r = api.get(f"/api/reports/{report_id}/verify", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def final_report(world: World) -> tuple[Hospital, Reader, int, dict[str, Any]]:
    h = world.hospital()
    senior = reader(world, [h], {"chest": 3})
    case_id = reading(world, h, senior, requested_subspecialty="chest")
    report = start(senior, case_id)
    written(senior, report)
    return h, senior, case_id, sign(senior, report["id"])


class TestLifecycle:
    def test_write_autosave_sign_download_verify(self, server: Server, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, senior, requested_subspecialty="chest")

        report = start(senior, case_id, template_id=None)
        assert report["status"] == "draft" and report["template_id"].startswith("ct-")
        assert report["draft"]["revision"] == 0 and report["versions"] == []
        # Another template: what both templates have is kept (the chest template's defaults
        # leave only the narrative to write).
        other = "ct-abdomen-pelvis" if report["template_id"] == "ct-chest" else "ct-chest"
        r = senior.api.put(
            f"/api/reports/{report['id']}/template", json={"revision": 0, "template_id": other}
        )
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["template_id"] == other and report["draft"]["revision"] == 1
        # A second report for the case is refused; the first one is there to GET.
        assert senior.api.post(f"/api/cases/{case_id}/report", json={}).status_code == 409
        assert senior.api.get(f"/api/cases/{case_id}/report").json()["id"] == report["id"]

        # Autosave: incomplete is fine, an unknown field is not, a stale revision is 409.
        defaults = report["draft"]["entries"]
        body = {"revision": 1, "entries": defaults, "texts": {"findings": "草稿"}}
        r = senior.api.put(f"/api/reports/{report['id']}/draft", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["revision"] == 2 and r.json()["missing"]
        r = senior.api.put(f"/api/reports/{report['id']}/draft", json=body)
        assert r.status_code == 409 and r.json()["detail"] == {"revision": 2}
        bad = {"revision": 2, "entries": {"no_such_field": "x"}, "texts": {}}
        r = senior.api.put(f"/api/reports/{report['id']}/draft", json=bad)
        assert r.status_code == 400 and r.json()["detail"][0]["field"] == "no_such_field"

        # Signing an incomplete report names what is missing.
        r = senior.api.post(f"/api/reports/{report['id']}/sign", json=senior.credentials())
        assert r.status_code == 400 and any(p["field"] == "impression" for p in r.json()["detail"])

        report = senior.api.get(f"/api/reports/{report['id']}").json()
        written(senior, report)
        # The username and password again: a wrong password signs nothing (TestSignerCredentials
        # has the rest).
        r = senior.api.post(
            f"/api/reports/{report['id']}/sign",
            json={"username": senior.username, "password": "wrong!"},
        )
        assert r.status_code == 403, r.text
        assert senior.api.get(f"/api/reports/{report['id']}").json()["versions"] == []

        signed = sign(senior, report["id"])
        assert signed["status"] == "final" and not signed["awaiting_cosign"]
        [v1] = signed["versions"]
        assert v1["version"] == 1 and v1["released"] and v1["superseded_at"] is None
        [signature] = v1["signatures"]
        assert (signature["meaning"], signature["user_id"]) == ("author", senior.id)
        assert signature["field"] == "RadRelay-v1-author" and signature["printed_name"]

        # The case is final and out of the reader's worklist.
        c = case(h.tech, case_id)
        assert c["status"] == "final"
        kinds = [e["kind"] for e in c["events"]]
        assert "report_final" in kinds
        r = senior.api.get("/api/worklist")
        assert case_id not in {i["case"]["id"] for i in r.json()["items"]}

        # The hospital's technician reads the final report and downloads the PDF: the stored
        # bytes exactly, whose hash is the ETag, and which verify.
        mine = h.tech.get(f"/api/cases/{case_id}/report")
        assert mine.status_code == 200, mine.text
        assert mine.json()["draft"] is None and len(mine.json()["versions"]) == 1
        data = pdf(h.tech, report["id"], 1)
        assert data == stored(server, h, report["id"], 1).read_bytes()
        r = h.tech.get(f"/api/reports/{report['id']}/versions/1/pdf")
        assert r.headers["etag"] == f'"{v1["pdf_sha256"]}"'
        check = verify(h.tech, report["id"])
        assert (check["intact"], check["valid"], check["trusted"]) == (True, True, True)
        assert check["sha256"] == check["recorded_sha256"] == v1["pdf_sha256"]
        assert [s["field"] for s in check["signatures"]] == ["RadRelay-v1-author"]
        if shutil.which("pdftotext"):
            text = subprocess.run(
                ["pdftotext", "-", "-"], input=data, capture_output=True, check=True
            ).stdout.decode()
            assert "张伟" in text and "右肺上叶实性小结节" in text

        # Reading a report and downloading its PDF are in the audit trail.
        r = world.admin.get(
            "/api/audit",
            params={"action": ["report.sign", "report.pdf"], "hospital_id": h.id, "limit": 100},
        )
        assert r.status_code == 200, r.text
        items = r.json() if isinstance(r.json(), list) else r.json()["items"]
        actions = {
            (e["action"], e["actor_id"]) for e in items if e["object_id"] == str(report["id"])
        }
        tech_id = h.tech.get("/api/me").json()["id"]
        assert {("report.sign", senior.id), ("report.pdf", tech_id)} <= actions

        # The turnaround metrics now count received -> final for the hospital.
        r = h.tech.get("/api/metrics/turnaround")
        [mine_group] = r.json()["groups"]
        received_to_final = next(
            i for i in mine_group["intervals"] if i["interval"] == "received_to_final"
        )
        assert received_to_final["count"] == 1
        assert mine_group["sla"]["finished"] == 1

    def test_signed_reports_cannot_be_signed_again(self, world: World) -> None:
        _, senior, _, signed = final_report(world)
        r = senior.api.post(f"/api/reports/{signed['id']}/sign", json=senior.credentials())
        assert r.status_code == 409

    async def test_the_hospital_gets_a_live_event(self, server: Server, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        case_id = await asyncio.to_thread(reading, world, h, senior, requested_subspecialty="chest")
        report = start(senior, case_id)
        await asyncio.to_thread(written, senior, report)
        ws = server.url.replace("http", "ws")
        seen: list[dict[str, Any]] = []

        async def listen() -> None:
            async with websockets.connect(f"{ws}/ws?token={h.tech.token}") as conn:
                assert json.loads(await asyncio.wait_for(conn.recv(), 10))["type"] == "hello"
                listening.set()
                while True:
                    event = json.loads(await asyncio.wait_for(conn.recv(), 20))
                    seen.append(event)
                    if event["type"] == "report.signed":
                        return

        listening = asyncio.Event()
        task = asyncio.create_task(listen())
        await asyncio.wait_for(listening.wait(), 10)
        await asyncio.to_thread(sign, senior, report["id"])
        await asyncio.wait_for(task, 30)
        event = seen[-1]
        assert (event["case_id"], event["status"], event["version"]) == (case_id, "final", 1)
        assert "patient" not in json.dumps(event).lower()


def failed_signatures(world: World, who: Reader) -> list[dict[str, Any]]:
    """The failed sign-ins audited for ``who``, newest first: wrong signing credentials too."""
    r = world.admin.get(
        "/api/audit", params={"action": "auth.login_failed", "actor_id": who.id, "limit": 100}
    )
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


class TestSignerCredentials:
    """Both components of the electronic signature, username and password, are typed again at
    every signature (21 CFR 11.200(a)(1))."""

    def test_a_wrong_username_is_refused_as_a_wrong_password(self, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        other = reader(world, [h], {"chest": 3})
        report = start(senior, reading(world, h, senior, requested_subspecialty="chest"))
        written(senior, report)
        url = f"/api/reports/{report['id']}/sign"

        wrong_password = senior.api.post(
            url, json={"username": senior.username, "password": "wrong!"}
        )
        assert wrong_password.status_code == 403, wrong_password.text
        # The right password with another reader's username, or with the signer's own in other
        # letter case (sign-in compares usernames exactly too): the same answer, so it does not
        # tell which component was wrong.
        for username in (other.username, senior.username.upper(), f" {senior.username}"):
            r = senior.api.post(url, json={"username": username, "password": senior.password})
            assert r.status_code == 403, r.text
            assert r.json() == wrong_password.json()
        assert "nothing was signed" in wrong_password.json()["message"]
        assert senior.api.get(f"/api/reports/{report['id']}").json()["versions"] == []

        # Each failure is audited alike, under the signed-in account.
        failures = failed_signatures(world, senior)
        assert len(failures) == 4
        assert {(e["object_id"], e["outcome"]) for e in failures} == {(senior.username, "failure")}
        assert {json.dumps(e["detail"], sort_keys=True) for e in failures} == {
            json.dumps({"purpose": "report.sign", "reason": "bad_credentials"}, sort_keys=True)
        }

        # Both components right: signed.
        assert sign(senior, report["id"])["status"] == "final"

    def test_wrong_usernames_count_toward_the_throttle(self, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        report = start(senior, reading(world, h, senior, requested_subspecialty="chest"))
        written(senior, report)
        url = f"/api/reports/{report['id']}/sign"
        # Five failures in the window (login_max_failures_per_account), either component wrong.
        for body in [{"username": senior.username, "password": "wrong!"}] * 2 + [
            {"username": f"{senior.username}-x", "password": senior.password}
        ] * 3:
            assert senior.api.post(url, json=body).status_code == 403
        r = senior.api.post(url, json=senior.credentials())
        assert r.status_code == 429, r.text
        assert int(r.headers["Retry-After"]) > 0
        assert senior.api.get(f"/api/reports/{report['id']}").json()["versions"] == []

    def test_a_missing_component_is_a_422_naming_it(self, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        report = start(senior, reading(world, h, senior, requested_subspecialty="chest"))
        written(senior, report)
        for action, extra in (
            ("sign", {}),
            ("cosign", {}),
            ("amend", {"reason": "r"}),
            ("addenda", {"text": "t", "reason": "r"}),
        ):
            url = f"/api/reports/{report['id']}/{action}"
            r = senior.api.post(url, json={"password": senior.password, **extra})
            assert r.status_code == 422, r.text
            assert [p["field"] for p in r.json()["detail"]] == ["username"]
            assert r.json()["message"].startswith("username:")
            r = senior.api.post(url, json={"username": senior.username, **extra})
            assert r.status_code == 422, r.text
            assert [p["field"] for p in r.json()["detail"]] == ["password"]
        # Refused as malformed, before any check of the password: no failure counted.
        assert failed_signatures(world, senior) == []
        assert senior.api.get(f"/api/reports/{report['id']}").json()["versions"] == []


class TestKeyImagesAndTemplates:
    def test_key_images_are_rendered_into_the_signed_report(self, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, senior, requested_subspecialty="chest")
        report = start(senior, case_id)
        study_uid = case(senior.api, case_id)["study_instance_uid"]
        r = senior.api.get(f"/dicomweb/studies/{study_uid}/instances")
        assert r.status_code == 200, r.text
        first = r.json()[0]
        image = {
            "study_instance_uid": study_uid,
            "series_instance_uid": first["0020000E"]["Value"][0],
            "sop_instance_uid": first["00080018"]["Value"][0],
            "caption": "右肺上叶结节 nodule",
        }
        body = {**complete(report), "key_images": [image]}
        r = senior.api.put(f"/api/reports/{report['id']}/draft", json=body)
        assert r.status_code == 200, r.text
        signed = sign(senior, report["id"])
        [v1] = senior.api.get(f"/api/reports/{report['id']}/versions").json()
        [shown] = v1["document"]["key_images"]
        assert shown["sop_instance_uid"] == image["sop_instance_uid"]
        assert shown["jpeg"] is None  # kept by reference, not in the row
        assert b"/DCTDecode" in pdf(senior.api, signed["id"], 1)

    def test_a_key_image_of_another_hospital_is_refused(self, world: World) -> None:
        h, elsewhere = world.hospital(), world.hospital()
        senior = reader(world, [h, elsewhere], {"chest": 3})
        theirs = reading(world, elsewhere, senior, requested_subspecialty="chest")
        mine = reading(world, h, senior, requested_subspecialty="chest")
        study_uid = case(senior.api, theirs)["study_instance_uid"]
        first = senior.api.get(f"/dicomweb/studies/{study_uid}/instances").json()[0]
        report = start(senior, mine)
        body = complete(report)
        body["key_images"] = [
            {
                "study_instance_uid": study_uid,
                "series_instance_uid": first["0020000E"]["Value"][0],
                "sop_instance_uid": first["00080018"]["Value"][0],
            }
        ]
        assert senior.api.put(f"/api/reports/{report['id']}/draft", json=body).status_code == 200
        r = senior.api.post(f"/api/reports/{report['id']}/sign", json=senior.credentials())
        assert r.status_code == 400 and "not in the case's images" in r.json()["message"]


class TestCosign:
    def test_a_juniors_preliminary_is_final_once_a_senior_cosigns(
        self, server: Server, world: World
    ) -> None:
        h = world.hospital()
        junior = reader(world, [h], {"chest": 2}, qualification="preliminary")
        senior = reader(world, [h], {"chest": 3})
        elsewhere = reader(world, [world.hospital()], {"chest": 3})
        case_id = reading(world, h, junior, requested_subspecialty="chest")
        report = start(junior, case_id)
        written(junior, report)

        signed = sign(junior, report["id"])
        assert signed["status"] == "preliminary" and signed["awaiting_cosign"]
        assert not signed["versions"][0]["released"]
        c = case(coordinator(world), case_id)
        assert c["status"] == "preliminary"
        # Not for the hospital yet, nor for a senior of another hospital.
        assert h.tech.get(f"/api/cases/{case_id}/report").status_code == 404
        assert elsewhere.api.get(f"/api/reports/{report['id']}").status_code == 404
        # The junior cannot change it while it waits.
        body = complete(junior.api.get(f"/api/reports/{report['id']}").json())
        assert junior.api.put(f"/api/reports/{report['id']}/draft", json=body).status_code == 409

        # In the senior's co-sign queue (not in the junior's: they wrote it).
        queue = senior.api.get("/api/reports/cosign-queue")
        assert queue.status_code == 200, queue.text
        assert report["id"] in {i["report_id"] for i in queue.json()}
        assert junior.api.get("/api/reports/cosign-queue").status_code == 403
        assert senior.api.get(f"/api/reports/{report['id']}").status_code == 200
        assert elsewhere.api.post(
            f"/api/reports/{report['id']}/cosign", json=elsewhere.credentials()
        ).status_code in (403, 404)

        r = senior.api.post(
            f"/api/reports/{report['id']}/cosign",
            json={"username": senior.username, "password": "nope"},
        )
        assert r.status_code == 403
        # The co-signer's own password under another's username signs nothing either.
        r = senior.api.post(
            f"/api/reports/{report['id']}/cosign",
            json={"username": junior.username, "password": senior.password},
        )
        assert r.status_code == 403
        r = senior.api.post(f"/api/reports/{report['id']}/cosign", json=senior.credentials())
        assert r.status_code == 200, r.text
        final = r.json()
        assert final["status"] == "final" and not final["awaiting_cosign"]
        v1, v2 = final["versions"]
        assert v1["superseded_by"] == 2 and v2["status"] == "final" and v2["released"]
        assert [(s["meaning"], s["user_id"]) for s in v2["signatures"]] == [
            ("author", junior.id),
            ("cosigner", senior.id),
        ]
        assert case(h.tech, case_id)["status"] == "final"

        # One file, two signatures: the author's still covers what they signed.
        v1_bytes, v2_bytes = pdf(senior.api, report["id"], 1), pdf(h.tech, report["id"], 2)
        assert v2_bytes.startswith(v1_bytes)
        if shutil.which("pdftotext"):
            # The co-signer's visible stamp says it is final on the page itself.
            text = subprocess.run(
                ["pdftotext", "-", "-"], input=v2_bytes, capture_output=True, check=True
            ).stdout.decode()
            assert "FINAL REPORT" in " ".join(text.split())
        check = verify(h.tech, report["id"])
        assert check["valid"] and check["version"] == 2
        assert [s["field"] for s in check["signatures"]] == [
            "RadRelay-v1-author",
            "RadRelay-v2-cosigner",
        ]
        assert all(s["valid"] for s in check["signatures"])
        # The hospital sees the final version only, not the preliminary behind it.
        assert [
            v["version"] for v in h.tech.get(f"/api/reports/{report['id']}").json()["versions"]
        ] == [2]
        assert h.tech.get(f"/api/reports/{report['id']}/versions/1/pdf").status_code == 404

    def test_seniors_who_may_cosign_open_the_study_while_it_waits(self, world: World) -> None:
        h = world.hospital()
        junior = reader(world, [h], {"chest": 2}, qualification="preliminary")
        senior = reader(world, [h], {"chest": 3})
        elsewhere = reader(world, [world.hospital()], {"chest": 3})
        case_id = reading(world, h, junior, requested_subspecialty="chest")
        study_uid = case(junior.api, case_id)["study_instance_uid"]
        [first, *_] = junior.api.get(f"/dicomweb/studies/{study_uid}/instances").json()
        instance = (
            f"/dicomweb/studies/{study_uid}/series/{first['0020000E']['Value'][0]}"
            f"/instances/{first['00080018']['Value'][0]}"
        )
        urls = [f"/dicomweb/studies/{study_uid}/series", f"{instance}/frames/1"]
        # Before the preliminary waits, the senior has no business with the study.
        assert senior.api.get(urls[0]).status_code == 404
        report = start(junior, case_id)
        image = {
            "study_instance_uid": study_uid,
            "series_instance_uid": first["0020000E"]["Value"][0],
            "sop_instance_uid": first["00080018"]["Value"][0],
            "caption": "nodule",
        }
        body = {**complete(report), "key_images": [image]}
        assert junior.api.put(f"/api/reports/{report['id']}/draft", json=body).status_code == 200
        sign(junior, report["id"])

        for url in urls:
            r = senior.api.get(url)
            assert r.status_code == 200, (url, r.text)
            assert r.content
            # A senior credentialed elsewhere does not see it, nor does the list of studies.
            assert elsewhere.api.get(url).status_code == 404
        [series] = senior.api.get(urls[0]).json()
        assert series["0020000E"]["Value"][0] == first["0020000E"]["Value"][0]
        found = senior.api.get("/dicomweb/studies", params={"StudyInstanceUID": study_uid})
        assert [s["0020000D"]["Value"][0] for s in found.json()] == [study_uid]
        assert elsewhere.api.get(
            "/dicomweb/studies", params={"StudyInstanceUID": study_uid}
        ).json() in ([], None)
        # Images only: the case itself stays out of the co-signer's case lists.
        assert senior.api.get(f"/api/cases/{case_id}").status_code == 404

        r = senior.api.post(f"/api/reports/{report['id']}/cosign", json=senior.credentials())
        assert r.status_code == 200, r.text
        # The final version's document keeps the key images (the SR and FHIR forms read them).
        v2 = senior.api.get(f"/api/reports/{report['id']}/versions").json()[1]
        assert [k["sop_instance_uid"] for k in v2["document"]["key_images"]] == [
            image["sop_instance_uid"]
        ]
        # Co-signed: the grant ends with the wait (the instance cache holds it 5 s at most).
        assert senior.api.get(urls[0]).status_code == 404
        wait_until(lambda: senior.api.get(urls[1]).status_code == 404, what="frame access ended")

    def test_stat_case_released_early_then_signed_final(self, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, senior, requested_subspecialty="chest", priority="stat")
        report = start(senior, case_id)
        written(senior, report)
        early = sign(senior, report["id"], preliminary=True)
        assert early["status"] == "preliminary" and not early["awaiting_cosign"]
        assert early["versions"][0]["released"]
        assert case(h.tech, case_id)["status"] == "preliminary"
        assert h.tech.get(f"/api/cases/{case_id}/report").status_code == 200
        final = sign(senior, report["id"])
        assert final["status"] == "final" and len(final["versions"]) == 2
        c = case(h.tech, case_id)
        assert c["status"] == "final"


def pdf_text(data: bytes) -> str:
    out = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
    return " ".join(out.stdout.decode().split())


def preview(api: Api, report_id: int) -> bytes:
    r = api.get(f"/api/reports/{report_id}/preview")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "no-store"
    return r.content


class TestPreview:
    def test_the_reader_sees_the_draft_as_it_would_sign_it_unsigned(
        self, world: World, tmp_path: Path
    ) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        bystander = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, senior, requested_subspecialty="chest")
        report = start(senior, case_id)
        report_id = report["id"]

        # Incomplete: the preview still renders, and says what signing would refuse.
        body = complete(report)
        body["texts"]["impression"] = ""
        assert senior.api.put(f"/api/reports/{report_id}/draft", json=body).status_code == 200
        text = pdf_text(preview(senior.api, report_id))
        assert "右肺上叶见一实性小结节" in text
        assert "草稿 DRAFT — not signed / 未签署" in text
        assert "Not complete: impression" in text
        assert "正式报告" in text  # what a final-qualified reader's signature would make

        draft = senior.api.get(f"/api/reports/{report_id}").json()["draft"]
        body = {**complete(report), "revision": draft["revision"]}
        body["texts"]["findings"] = "左肺下叶见磨玻璃影 GGO 8 mm。"
        assert senior.api.put(f"/api/reports/{report_id}/draft", json=body).status_code == 200
        data = preview(senior.api, report_id)
        text = pdf_text(data)
        assert "左肺下叶见磨玻璃影 GGO 8 mm" in text and "Not complete" not in text
        assert "Draft preview: not signed" in text
        assert b"/ByteRange" not in data and b"/Sig" not in data
        (tmp_path / "draft.pdf").write_bytes(data)
        sig = subprocess.run(["pdfsig", str(tmp_path / "draft.pdf")], capture_output=True)
        assert "does not contain any signatures" in (sig.stdout + sig.stderr).decode()

        # Not for the hospital, nor for a radiologist not on the case; coordinators may.
        assert h.tech.get(f"/api/reports/{report_id}/preview").status_code in (403, 404)
        assert bystander.api.get(f"/api/reports/{report_id}/preview").status_code in (403, 404)
        assert coordinator(world).get(f"/api/reports/{report_id}/preview").status_code == 200
        assert senior.api.get("/api/reports/999999999/preview").status_code == 404

        # Signed: nothing to preview until the draft is edited toward an amendment.
        sign(senior, report_id)
        assert senior.api.get(f"/api/reports/{report_id}/preview").status_code == 409
        assert h.tech.get(f"/api/reports/{report_id}/preview").status_code in (403, 404)
        body = complete(senior.api.get(f"/api/reports/{report_id}").json())
        body["texts"]["impression"] = "左肺下叶磨玻璃结节，建议 3 个月后复查。"
        assert senior.api.put(f"/api/reports/{report_id}/draft", json=body).status_code == 200
        text = pdf_text(preview(senior.api, report_id))
        assert "建议 3 个月后复查" in text and "修正报告" in text and "DRAFT" in text

        r = world.admin.get(
            "/api/audit",
            params={"action": "report.preview", "hospital_id": h.id, "limit": 100},
        )
        assert r.status_code == 200, r.text
        items = r.json() if isinstance(r.json(), list) else r.json()["items"]
        previews = [e for e in items if e["object_id"] == str(report_id)]
        assert {e["actor_id"] for e in previews} >= {senior.id} and len(previews) >= 4

    def test_a_cosign_candidate_reads_the_preliminary_not_a_draft(self, world: World) -> None:
        h = world.hospital()
        junior = reader(world, [h], {"chest": 2}, qualification="preliminary")
        senior = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, junior, requested_subspecialty="chest")
        report = start(junior, case_id)
        written(junior, report)
        assert "初步报告" in pdf_text(preview(junior.api, report["id"]))
        sign(junior, report["id"])
        assert senior.api.get(f"/api/reports/{report['id']}").status_code == 200
        assert senior.api.get(f"/api/reports/{report['id']}/preview").status_code == 403
        assert junior.api.get(f"/api/reports/{report['id']}/preview").status_code == 409


class TestCorrections:
    def test_amend_then_addendum(self, server: Server, world: World) -> None:
        h, senior, case_id, signed = final_report(world)
        report_id = signed["id"]
        body = complete(senior.api.get(f"/api/reports/{report_id}").json())
        body["texts"]["impression"] = "右肺上叶实性小结节（6 mm），建议 6 个月后复查。"
        r = senior.api.put(f"/api/reports/{report_id}/draft", json=body)
        assert r.status_code == 200, r.text
        r = senior.api.post(
            f"/api/reports/{report_id}/amend",
            json={**senior.credentials(), "reason": "随访间隔更正 follow-up interval"},
        )
        assert r.status_code == 200, r.text
        amended = r.json()
        assert amended["status"] == "amended"
        v1, v2 = amended["versions"]
        assert v1["superseded_by"] == 2 and v1["superseded_at"]
        assert v2["status"] == "amended" and v2["amendment_reason"].startswith("随访")
        assert case(h.tech, case_id)["status"] == "amended"
        # The old version stays readable and verifiable.
        assert pdf(h.tech, report_id, 1) == stored(server, h, report_id, 1).read_bytes()
        assert verify(h.tech, report_id, 1)["valid"]
        assert verify(h.tech, report_id, 2)["valid"]

        r = senior.api.post(
            f"/api/reports/{report_id}/addenda",
            json={
                **senior.credentials(),
                "text": "补充：纵隔淋巴结未见肿大。",
                "reason": "临床医师询问 clinician asked",
            },
        )
        assert r.status_code == 201, r.text
        v3 = r.json()["versions"][-1]
        assert v3["version"] == 3 and v3["status"] == "amended"
        assert [s["meaning"] for s in v3["signatures"]] == ["addendum"]
        versions = h.tech.get(f"/api/reports/{report_id}/versions").json()
        [addendum] = versions[-1]["document"]["addenda"]
        assert (
            addendum["text"].startswith("补充") and addendum["signature"]["meaning"] == "addendum"
        )
        assert verify(h.tech, report_id)["valid"]
        # A later amendment keeps the addenda: a correction does not drop what was added.
        r = senior.api.post(
            f"/api/reports/{report_id}/amend",
            json={**senior.credentials(), "reason": "错别字 typo"},
        )
        assert r.status_code == 200, r.text
        v4 = h.tech.get(f"/api/reports/{report_id}/versions").json()[-1]
        assert (v4["version"], v4["document"]["supersedes_version"]) == (4, 3)
        assert [a["text"] for a in v4["document"]["addenda"]] == [addendum["text"]]
        # Addenda need a final report and its signer.
        bystander = reader(world, [h], {"chest": 3})
        r = bystander.api.post(
            f"/api/reports/{report_id}/addenda",
            json={**bystander.credentials(), "text": "x", "reason": "y"},
        )
        assert r.status_code == 404

    def test_a_changed_pdf_no_longer_verifies(self, server: Server, world: World) -> None:
        h, _, _, signed = final_report(world)
        path = stored(server, h, signed["id"], 1)
        data = bytearray(path.read_bytes())
        # A byte of the page content, inside the signed range.
        at = data.index(b"stream") + 40
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        check = verify(h.tech, signed["id"])
        assert not check["valid"] and not check["intact"]
        assert check["sha256"] != check["recorded_sha256"]
        assert check["problems"]


class TestCriticalFindings:
    def test_flag_communicate_and_follow(self, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, senior, requested_subspecialty="chest")
        report = start(senior, case_id)
        r = senior.api.post(
            f"/api/reports/{report['id']}/critical", json={"description": "右侧张力性气胸"}
        )
        assert r.status_code == 201, r.text
        finding = r.json()
        assert finding["status"] == "open" and 3500 < finding["seconds_left"] <= 3600

        coord = coordinator(world)
        open_ = coord.get("/api/critical-findings", params={"status": "open"}).json()
        assert finding["id"] in {f["id"] for f in open_}
        assert finding["id"] in {f["id"] for f in senior.api.get("/api/critical-findings").json()}
        assert h.tech.get("/api/critical-findings").status_code == 403
        assert senior.api.get(f"/api/reports/{report['id']}").json()["critical"]

        r = coord.post(
            f"/api/critical-findings/{finding['id']}/communication",
            json={"communicated_to": "急诊科 李医生 Dr Li, ED", "method": "phone"},
        )
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "done" and done["method"] == "phone"
        assert done["communicated_at"] and done["seconds_left"] is None
        open_ = coord.get("/api/critical-findings", params={"status": "open"}).json()
        assert finding["id"] not in {f["id"] for f in open_}
        kinds = [e["kind"] for e in case(coord, case_id)["events"]]
        assert "critical_flagged" in kinds and "critical_communicated" in kinds
        # Recorded once.
        r = coord.post(
            f"/api/critical-findings/{finding['id']}/communication",
            json={"communicated_to": "x", "method": "other"},
        )
        assert r.status_code == 409


class TestCriticalWatch:
    def test_overdue_findings_are_announced_once(self, server: Server, world: World) -> None:
        h = world.hospital()
        senior = reader(world, [h], {"chest": 3})
        case_id = reading(world, h, senior, requested_subspecialty="chest")
        report = start(senior, case_id)
        r = senior.api.post(f"/api/reports/{report['id']}/critical", json={"description": "气胸"})
        assert r.status_code == 201, r.text
        settings = Settings(
            data_dir=server.data_dir,
            database_url=server.database_url,
            redis_url=server.env.get("RADRELAY_REDIS_URL"),
            secret_key="unused",
        )

        async def watch(at: datetime) -> int:
            runtime = Runtime(settings)
            try:
                async with runtime.uow() as session:
                    return await reports.critical_watch(session, at)
            finally:
                await runtime.close()

        later = datetime.now(UTC) + timedelta(hours=2)
        assert asyncio.run(watch(later)) >= 1
        assert asyncio.run(watch(later)) == 0
        kinds = [e["kind"] for e in case(coordinator(world), case_id)["events"]]
        assert kinds.count("critical_overdue") == 1


class TestScope:
    def test_others_see_nothing(self, world: World) -> None:
        h, _, case_id, signed = final_report(world)
        other = world.hospital()
        bystander = reader(world, [h], {"chest": 3})
        for api in (other.tech, bystander.api):
            assert api.get(f"/api/cases/{case_id}/report").status_code == 404
            assert api.get(f"/api/reports/{signed['id']}").status_code == 404
            assert api.get(f"/api/reports/{signed['id']}/versions/1/pdf").status_code == 404
            assert api.get(f"/api/reports/{signed['id']}/verify").status_code == 404
        # A technician does not write reports; a reader not holding the case cannot start one.
        h2 = world.hospital()
        reader2 = reader(world, [h2], {"chest": 3})
        case2 = reading(world, h2, reader2, requested_subspecialty="chest")
        assert h2.tech.post(f"/api/cases/{case2}/report", json={}).status_code == 403
        assert bystander.api.post(f"/api/cases/{case2}/report", json={}).status_code == 404
        # Before it is signed the hospital sees no report at all.
        start(reader2, case2)
        assert h2.tech.get(f"/api/cases/{case2}/report").status_code == 404


def test_readers_get_the_templates_their_editor_builds_forms_from(world: World) -> None:
    hospital = world.hospital()
    dr = reader(world, [hospital], {"chest": 2})
    r = dr.api.get("/api/templates", params={"modality": "CT"})
    assert r.status_code == 200, r.text
    offered = r.json()
    ids = [t["id"] for t in offered]
    assert "ct-chest" in ids
    # The modality's own first, the generic fallback last; nothing for another modality.
    assert all("CT" in t["modalities"] for t in offered[:-1])
    assert offered[-1]["modalities"] == [] and offered[-1]["fallback"] is True
    assert not any("MR" in t["modalities"] for t in offered)
    everything = dr.api.get("/api/templates").json()
    assert len(everything) > len(offered)

    r = dr.api.get("/api/templates/ct-chest")
    assert r.status_code == 200, r.text
    template = r.json()
    assert template["id"] == "ct-chest" and template["title"]["zh"]
    keys = [s["key"] for s in template["sections"]]
    assert "findings" in keys and "impression" in keys
    assert any(f["type"] == "measurement" for s in template["sections"] for f in s["fields"])

    r = dr.api.get("/api/templates/no-such")
    assert r.status_code == 404 and "no-such" in r.json()["message"]
    # A hospital's technician does not write reports.
    assert hospital.tech.get("/api/templates").status_code == 403


def test_the_case_names_its_report_once_started(world: World) -> None:
    h = world.hospital()
    senior = reader(world, [h], {"chest": 3})
    case_id = reading(world, h, senior, requested_subspecialty="chest")
    assert case(senior.api, case_id)["report_id"] is None
    report = start(senior, case_id)
    assert case(senior.api, case_id)["report_id"] == report["id"]
    # The hospital learns the id too, but nothing behind it until a version is released.
    assert case(h.tech, case_id)["report_id"] == report["id"]
    assert h.tech.get(f"/api/reports/{report['id']}").status_code == 404
