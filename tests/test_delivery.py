"""Delivery back to the sending hospital through a running server: endpoints registered by an
admin, a signed report delivered to a real pynetdicom PACS and an HMAC-checking webhook on
loopback, retries after the peer comes back, a failure fixed and retried by a coordinator, an
amendment delivered again, and who may see the status."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, EnhancedSRStorage

from conftest import Api, Hospital, World, wait_until
from test_delivery_senders import PACS_AE, SECRET, Pacs, free_port, pacs, receiver
from test_report_dicom import DSRDUMP, dcmtk
from test_reports import complete, pdf, reading, sign, start, written
from test_worklist import Reader, case, coordinator, reader


def signed_for(world: World, h: Hospital) -> tuple[Hospital, Reader, int, dict[str, Any]]:
    """A final report signed for a case of ``h`` (whose endpoints are registered first)."""
    senior = reader(world, [h], {"chest": 3})
    case_id = reading(world, h, senior, requested_subspecialty="chest")
    report = start(senior, case_id)
    written(senior, report)
    return h, senior, case_id, sign(senior, report["id"])


def add_endpoint(world: World, h: Hospital, kind: str, **config: Any) -> dict[str, Any]:
    r = world.admin.post(
        f"/api/hospitals/{h.code}/delivery-endpoints",
        json={"kind": kind, "name": f"{kind} of {h.code}", "config": config},
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def dicom_endpoint(world: World, h: Hospital, port: int) -> dict[str, Any]:
    return add_endpoint(world, h, "dicom", ae_title=PACS_AE, host="127.0.0.1", port=port)


def deliveries(api: Api, case_id: int) -> list[dict[str, Any]]:
    r = api.get(f"/api/cases/{case_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def settled(api: Api, case_id: int, count: int, status: str = "sent") -> list[dict[str, Any]]:
    """The case's deliveries once ``count`` of them are ``status``."""

    def check() -> list[dict[str, Any]] | None:
        found = deliveries(api, case_id)
        return found if sum(d["status"] == status for d in found) >= count else None

    return wait_until(check, timeout=30, what=f"{count} deliveries {status}")  # type: ignore[no-any-return]


def amend(senior: Reader, report_id: int) -> None:
    body = complete(senior.api.get(f"/api/reports/{report_id}").json())
    body["texts"]["impression"] = "右肺上叶实性小结节（6 mm），建议 6 个月后复查。"
    r = senior.api.put(f"/api/reports/{report_id}/draft", json=body)
    assert r.status_code == 200, r.text
    r = senior.api.post(
        f"/api/reports/{report_id}/amend",
        json={**senior.credentials(), "reason": "随访间隔更正 follow-up interval"},
    )
    assert r.status_code == 200, r.text


def pdf_of(peer: Pacs, version: int) -> bytes:
    [ds] = [ds for ds in peer.received if ds.SeriesDescription == f"RadRelay report v{version}"]
    return bytes(ds.EncapsulatedDocument[: ds.EncapsulatedDocumentLength])


class TestEndpointApi:
    def test_register_validate_update_remove(self, world: World) -> None:
        h = world.hospital()
        webhook = add_endpoint(
            world, h, "webhook", url="http://127.0.0.1:9/fhir/DiagnosticReport", secret=SECRET
        )
        assert webhook["has_secret"] is True and "secret" not in webhook["config"]
        assert webhook["config"]["signature_header"] == "X-RadRelay-Signature"
        listed = world.admin.get(f"/api/hospitals/{h.code}/delivery-endpoints")
        assert listed.status_code == 200 and SECRET not in listed.text
        assert [e["id"] for e in listed.json()] == [webhook["id"]]

        # What is wrong, by field, and never the secret given.
        short = "tooshort"
        r = world.admin.post(
            f"/api/hospitals/{h.code}/delivery-endpoints",
            json={
                "kind": "webhook",
                "name": "w",
                "config": {"url": "http://x.org", "secret": short},
            },
        )
        assert r.status_code == 422, r.text
        message = r.json()["message"]
        assert "url:" in message and "https" in message and "secret:" in message
        assert short not in r.text
        r = world.admin.post(
            f"/api/hospitals/{h.code}/delivery-endpoints",
            json={"kind": "dicom", "name": "d", "config": {"ae_title": PACS_AE, "host": "h"}},
        )
        assert r.status_code == 422 and "port" in r.json()["message"]

        # An update without the secret keeps it.
        url = f"/api/hospitals/{h.code}/delivery-endpoints/{webhook['id']}"
        r = world.admin.put(
            url,
            json={
                "kind": "webhook",
                "name": "renamed",
                "config": {"url": "http://127.0.0.1:10/fhir"},
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["has_secret"] and r.json()["name"] == "renamed"
        assert SECRET not in r.text

        # Admins only; another hospital's endpoint is not reachable through this one.
        assert h.tech.get(f"/api/hospitals/{h.code}/delivery-endpoints").status_code == 403
        other = world.hospital()
        r = world.admin.delete(f"/api/hospitals/{other.code}/delivery-endpoints/{webhook['id']}")
        assert r.status_code == 404
        assert world.admin.delete(url).status_code == 204
        assert world.admin.get(f"/api/hospitals/{h.code}/delivery-endpoints").json() == []


class TestDelivery:
    def test_final_then_amended_report_reach_pacs_and_webhook(self, world: World) -> None:
        with pacs() as peer, receiver() as hook:
            h = world.hospital()
            dicom_endpoint(world, h, peer.port)
            add_endpoint(world, h, "webhook", url=hook.url, secret=SECRET)
            _, senior, case_id, signed = signed_for(world, h)
            first = settled(h.tech, case_id, 2)
            assert {d["kind"] for d in first} == {"dicom", "webhook"}
            assert all(d["attempts"] == 1 and d["version"] == 1 for d in first)
            # The PACS holds the signed PDF byte for byte; the webhook verified the HMAC.
            assert pdf_of(peer, 1) == pdf(h.tech, signed["id"], 1)
            [(headers, body)] = hook.accepted
            assert headers["x-radrelay-signature"].startswith("sha256=")
            resource = json.loads(body)
            assert resource["resourceType"] == "DiagnosticReport"
            assert resource["status"] == "final"

            amend(senior, signed["id"])
            both = settled(h.tech, case_id, 4)
            again = [d for d in both if d["version"] == 2]
            assert len(again) == 2 and {d["report_status"] for d in again} == {"amended"}
            assert len({d["id"] for d in both}) == 4
            assert pdf_of(peer, 2) == pdf(h.tech, signed["id"], 2)
            assert [json.loads(b)["status"] for _, b in hook.accepted] == ["final", "amended"]

            # The hospital's own tech and coordinators see it; nobody else.
            assert len(deliveries(coordinator(world), case_id)) == 4
            other = world.hospital()
            assert other.tech.get(f"/api/cases/{case_id}/deliveries").status_code == 404
            assert senior.api.get(f"/api/cases/{case_id}/deliveries").status_code == 403

    def test_key_images_reach_the_sr_and_the_fhir_report(
        self, world: World, tmp_path: Path
    ) -> None:
        with pacs() as peer, receiver() as hook:
            h = world.hospital()
            add_endpoint(
                world, h, "dicom", ae_title=PACS_AE, host="127.0.0.1", port=peer.port, send_sr=True
            )
            add_endpoint(world, h, "webhook", url=hook.url, secret=SECRET)
            senior = reader(world, [h], {"chest": 3})
            case_id = reading(world, h, senior, requested_subspecialty="chest")
            study_uid = case(senior.api, case_id)["study_instance_uid"]
            instances = senior.api.get(f"/dicomweb/studies/{study_uid}/instances").json()
            marked = [
                {
                    "study_instance_uid": study_uid,
                    "series_instance_uid": i["0020000E"]["Value"][0],
                    "sop_instance_uid": i["00080018"]["Value"][0],
                    "caption": caption,
                }
                for i, caption in zip(
                    instances, ["右肺上叶结节 nodule", "对照层面 reference"], strict=True
                )
            ]
            report = start(senior, case_id)
            body = {**complete(report), "key_images": marked}
            r = senior.api.put(f"/api/reports/{report['id']}/draft", json=body)
            assert r.status_code == 200, r.text
            sign(senior, report["id"])
            settled(h.tech, case_id, 2)
            wanted = [k["sop_instance_uid"] for k in marked]

            [sr] = [ds for ds in peer.received if ds.SOPClassUID == EnhancedSRStorage]
            images = [item for item in _content_items(sr) if item.ValueType == "IMAGE"]
            assert [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in images] == wanted
            assert {i.ReferencedSOPSequence[0].ReferencedSOPClassUID for i in images} == {
                CTImageStorage
            }
            evidence = {
                sop.ReferencedSOPInstanceUID
                for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for sop in series.ReferencedSOPSequence
            }
            assert set(wanted) <= evidence
            path = tmp_path / "sr.dcm"
            sr.save_as(path, enforce_file_format=True)
            dump = dcmtk(DSRDUMP, path)  # exit 0, no error reported
            assert dump.count("IMAGE:") == 2 and "右肺上叶结节 nodule" in dump

            [(_, raw)] = hook.accepted
            resource = json.loads(raw)
            media = {m["id"]: m for m in resource["contained"] if m["resourceType"] == "Media"}
            assert [m["comment"] for m in resource["media"]] == [k["caption"] for k in marked]
            linked = [media[m["link"]["reference"][1:]] for m in resource["media"]]
            assert [m["identifier"][0]["value"] for m in linked] == [
                f"urn:oid:{uid}" for uid in wanted
            ]
            for m, k in zip(linked, marked, strict=True):
                assert m["status"] == "completed" and m["content"]["contentType"] == "image/jpeg"
                url = m["content"]["url"]
                assert url.endswith(
                    f"/dicomweb/studies/{study_uid}/series/{k['series_instance_uid']}"
                    f"/instances/{k['sop_instance_uid']}/frames/1/rendered"
                )
                # The hospital opens the frame at that address with its own credentials.
                got = h.tech.get(url[url.index("/dicomweb/") :], headers={"Accept": "image/jpeg"})
                assert got.status_code == 200 and got.content[:2] == b"\xff\xd8"

    def test_pacs_down_then_back(self, world: World) -> None:
        h = world.hospital()
        port = free_port()
        dicom_endpoint(world, h, port)
        _, _, case_id, _ = signed_for(world, h)

        def waiting() -> dict[str, Any] | None:
            [d] = deliveries(h.tech, case_id)
            return d if d["status"] == "pending" and d["attempts"] >= 1 else None

        d = wait_until(waiting, what="a failed first attempt")
        assert d["last_code"] == "connection_refused" and "cannot connect" in d["last_error"]
        assert d["next_attempt_at"]
        with pacs(port) as peer:
            [sent] = settled(h.tech, case_id, 1)
            assert sent["attempts"] >= 2 and sent["last_error"] == "" and sent["sent_at"]
            assert len(peer.received) == 1

    def test_wrong_secret_fails_then_fixed_and_retried(self, world: World) -> None:
        with receiver() as hook:
            h = world.hospital()
            endpoint = add_endpoint(world, h, "webhook", url=hook.url, secret=secrets.token_hex(24))
            _, _, case_id, _ = signed_for(world, h)
            [failed] = settled(h.tech, case_id, 1, "failed")
            assert failed["attempts"] == 1 and "secret" in failed["last_error"]
            assert failed["last_code"] == "http_status"
            coord = coordinator(world)
            listed = coord.get("/api/deliveries", params={"status": "failed"})
            assert listed.status_code == 200
            assert failed["id"] in [d["id"] for d in listed.json()]
            assert h.tech.get("/api/deliveries").status_code == 403
            assert h.tech.post(f"/api/deliveries/{failed['id']}/retry").status_code == 403

            r = world.admin.put(
                f"/api/hospitals/{h.code}/delivery-endpoints/{endpoint['id']}",
                json={
                    "kind": "webhook",
                    "name": endpoint["name"],
                    "config": {"url": hook.url, "secret": SECRET},
                },
            )
            assert r.status_code == 200, r.text
            r = coord.post(f"/api/deliveries/{failed['id']}/retry")
            assert r.status_code == 200, r.text
            assert r.json()["status"] in ("pending", "sending", "sent")
            [sent] = settled(h.tech, case_id, 1)
            assert sent["id"] == failed["id"] and sent["attempts"] == 2
            assert len(hook.accepted) == 1
            # Only a failed delivery is retried by hand.
            assert coord.post(f"/api/deliveries/{sent['id']}/retry").status_code == 409


def _content_items(ds: Dataset) -> Iterator[Dataset]:
    for item in getattr(ds, "ContentSequence", []):
        yield item
        yield from _content_items(item)
