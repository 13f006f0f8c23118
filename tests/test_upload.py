"""Browser upload, ``POST /api/uploads``: what a technician sends from the browser (files, a
folder, zip archives) becomes a case of their hospital; every file gets its own outcome, bad
files never stop the good ones, and nothing is ever half-stored."""

from __future__ import annotations

import concurrent.futures
import copy
import io
import subprocess
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pydicom
from PIL import Image

from conftest import Api, Server, World, wait_until
from helpers import files_of_sop, part10, renamed, stored_files, study, tmp_files, upload
from helpers import testdata as data_file

MiB = 1024 * 1024
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000


# --- small tools ---------------------------------------------------------------------------


def outcomes(r: httpx.Response) -> dict[str, dict]:
    body = r.json()
    summary = body["detail"] if r.status_code == 400 else body
    return {f["name"]: f for f in summary["files"]}


def get_case(api: Api, case_id: int) -> dict:
    r = api.get(f"/api/cases/{case_id}")
    assert r.status_code == 200, r.text
    return r.json()


def case_list(api: Api) -> dict:
    r = api.get("/api/cases", params={"limit": 500})
    assert r.status_code == 200, r.text
    return r.json()


def zipped(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buffer.getvalue()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def cut_inside_header_of(data: bytes, tag: tuple[int, int], into: int) -> bytes:
    """The file cut ``into`` bytes after the start of an element (explicit VR little endian),
    so that the cut falls inside its tag/VR/length header, not inside any value."""
    group, element = tag
    at = data.index(group.to_bytes(2, "little") + element.to_bytes(2, "little"), 132)
    return data[: at + into]


def big_object(megabytes: float) -> bytes:
    """A valid CT image whose pixel data makes it ``megabytes`` big (random, so it does not
    compress: inside a zip it stays big)."""
    ds = study("CT", slices=1, size=16)[0]
    side = int((megabytes * MiB / 2) ** 0.5) + 1
    ds.Rows = ds.Columns = side
    rng = np.random.default_rng(7)
    ds.PixelData = rng.integers(0, 4095, size=(side, side), dtype="<u2").tobytes()
    return part10(ds)


# --- behaviours ----------------------------------------------------------------------------


class TestUploadStoresStudies:
    def test_files_are_stored_byte_for_byte_and_the_case_is_ready(
        self, server: Server, world: World
    ) -> None:
        """The basic path: a study's files become one ready case of the sender's hospital, and
        what is stored is exactly what was sent (no re-encoding of a Part 10 file)."""
        hospital = world.hospital()
        datasets = study("CT", slices=4)
        sent = {f"IM{i}.dcm": part10(ds) for i, ds in enumerate(datasets)}
        before_tmp = tmp_files(server)
        r = upload(hospital.tech, list(sent.items()))
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["stored"], body["duplicates"], body["failed"]) == (4, 0, 0)
        assert len(body["case_ids"]) == 1
        case_id = body["case_ids"][0]
        for f in body["files"]:
            assert f["outcome"] == "stored"
            assert f["status"] == 0
            assert f["case_id"] == case_id
            assert f["study_instance_uid"] == datasets[0].StudyInstanceUID

        case = get_case(hospital.tech, case_id)
        assert case["status"] == "ready"
        assert case["hospital_id"] == hospital.id
        assert case["source"] == "upload"
        assert case["priority"] == "routine"  # no case fields given: the defaults
        assert case["requested_subspecialty"] is None
        assert case["number_of_instances"] == 4
        assert case["number_of_series"] == 1
        assert case["modalities"] == ["CT"]
        assert case["study_instance_uid"] == datasets[0].StudyInstanceUID

        for f in body["files"]:
            (path,) = files_of_sop(server, hospital, f["sop_instance_uid"])
            assert path.read_bytes() == sent[f["name"]]
        assert len(stored_files(server, hospital)) == 4
        # The receive area is left clean: the parts were moved into storage or removed.
        assert tmp_files(server) - before_tmp == set()

    def test_folder_files_keep_their_relative_names_and_each_study_gets_a_case(
        self, server: Server, world: World
    ) -> None:
        """A folder dropped in the browser arrives as files named by their relative paths; the
        outcomes name them the same way, and two studies in one upload make two cases."""
        hospital = world.hospital()
        ct, mr = study("CT", slices=2), study("MR", slices=3)
        files = [(f"export/CT/IM{i}.dcm", part10(ds)) for i, ds in enumerate(ct)]
        files += [(f"export/MR/série 1/IM{i}", part10(ds)) for i, ds in enumerate(mr)]
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert set(by_name) == {name for name, _ in files}
        assert r.json()["stored"] == 5
        assert len(r.json()["case_ids"]) == 2
        studies = {by_name[n]["study_instance_uid"]: by_name[n]["case_id"] for n in by_name}
        assert set(studies) == {ct[0].StudyInstanceUID, mr[0].StudyInstanceUID}
        counts = {
            uid: get_case(hospital.tech, case_id)["number_of_instances"]
            for uid, case_id in studies.items()
        }
        assert counts == {ct[0].StudyInstanceUID: 2, mr[0].StudyInstanceUID: 3}

    def test_zip_with_dicomdir_skips_the_index_and_stores_the_files(
        self, server: Server, world: World
    ) -> None:
        """A CD export zipped on a Mac: the DICOMDIR is an index, not an image, and the
        archiver's litter is not either (outcome "skipped"); the files the DICOMDIR lists are
        read directly, whatever their names."""
        hospital = world.hospital()
        datasets = study("CT", slices=3)
        dicomdir = data_file("DICOMDIR").read_bytes()
        members = [("CDROM/", b""), ("CDROM/DICOMDIR", dicomdir)]
        members += [
            (f"CDROM/DICOM/ST000/SE000/IM{i:05d}", part10(d)) for i, d in enumerate(datasets)
        ]
        members += [
            ("CDROM/.DS_Store", b"\x00\x00\x00\x01Bud1"),
            ("__MACOSX/CDROM/._DICOMDIR", b"\x00\x05\x16\x07"),
            ("CDROM/Thumbs.db", b"\xd0\xcf\x11\xe0"),
        ]
        r = upload(hospital.tech, [("cd-export.zip", zipped(members))])
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["stored"], body["skipped"], body["failed"]) == (3, 4, 0)
        by_name = outcomes(r)
        assert "cd-export.zip/CDROM/" not in by_name  # folders are not files
        assert by_name["cd-export.zip/CDROM/DICOMDIR"]["outcome"] == "skipped"
        assert by_name["cd-export.zip/CDROM/.DS_Store"]["outcome"] == "skipped"
        assert "DICOMDIR" in by_name["cd-export.zip/CDROM/DICOMDIR"]["message"]
        for i in range(3):
            assert (
                by_name[f"cd-export.zip/CDROM/DICOM/ST000/SE000/IM{i:05d}"]["outcome"] == "stored"
            )
        assert get_case(hospital.tech, body["case_ids"][0])["number_of_instances"] == 3

    def test_a_dicomdir_sent_with_its_folder_is_skipped(self, server: Server, world: World) -> None:
        """A CD's folder dropped as it is includes its DICOMDIR: skipped as in a zip, whatever
        its path, and the images are stored."""
        hospital = world.hospital()
        datasets = study("CT", slices=2)
        files = [("cd/DICOMDIR", data_file("DICOMDIR").read_bytes())]
        files += [(f"cd/IM{i}", part10(ds)) for i, ds in enumerate(datasets)]
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert by_name["cd/DICOMDIR"]["outcome"] == "skipped"
        assert "DICOMDIR" in by_name["cd/DICOMDIR"]["message"]
        assert (r.json()["stored"], r.json()["skipped"], r.json()["failed"]) == (2, 1, 0)
        assert len(stored_files(server, hospital)) == 2

    def test_zips_and_loose_files_in_one_upload(self, server: Server, world: World) -> None:
        """Zips without a DICOMDIR (stored or deflated) mix with loose files of the same study."""
        hospital = world.hospital()
        datasets = study("CT", slices=5)
        data = [part10(ds) for ds in datasets]
        files = [
            ("a.zip", zipped([("1.dcm", data[0]), ("2.dcm", data[1])])),
            ("b.ZIP", zipped([("x/3", data[2])], zipfile.ZIP_STORED)),
            ("4.dcm", data[3]),
            ("5.dcm", data[4]),
        ]
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 5
        assert set(outcomes(r)) == {"a.zip/1.dcm", "a.zip/2.dcm", "b.ZIP/x/3", "4.dcm", "5.dcm"}
        assert len(r.json()["case_ids"]) == 1
        assert len(stored_files(server, hospital)) == 5

    def test_real_files_from_other_vendors_are_stored(self, server: Server, world: World) -> None:
        """Real files (pydicom's test data: little/big endian, implicit VR, RLE, JPEG 2000,
        deflated) are stored as they are."""
        hospital = world.hospital()
        names = [
            "CT_small.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_implicit.dcm",
            "MR_small_RLE.dcm",
            "JPEG2000.dcm",
            "image_dfl.dcm",
        ]
        files = []
        for name in names:
            buffer = io.BytesIO()
            renamed(data_file(name)).save_as(buffer)
            files.append((name, buffer.getvalue()))
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert {n: f["outcome"] for n, f in by_name.items()} == dict.fromkeys(names, "stored")
        for name, data in files:
            (path,) = files_of_sop(server, hospital, by_name[name]["sop_instance_uid"])
            assert path.read_bytes() == data


class TestCaseFields:
    def test_clinical_fields_show_on_the_case_and_the_tech_can_change_them(
        self, server: Server, world: World
    ) -> None:
        """What the technician types next to the files reaches the reader; they can correct it
        afterwards."""
        hospital = world.hospital()
        r = upload(
            hospital.tech,
            [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=2))],
            priority="urgent",
            clinical_question="排除肺栓塞 Rule out PE",
            clinical_history="Post-op day 3, dyspnoea",
            requested_exam="CTPA",
            requested_subspecialty="chest",
        )
        assert r.status_code == 200, r.text
        case_id = r.json()["case_ids"][0]
        case = get_case(hospital.tech, case_id)
        assert case["priority"] == "urgent"
        assert case["clinical_question"] == "排除肺栓塞 Rule out PE"
        assert case["clinical_history"] == "Post-op day 3, dyspnoea"
        assert case["requested_exam"] == "CTPA"
        assert case["requested_subspecialty"] == "chest"

        patched = hospital.tech.patch(
            f"/api/cases/{case_id}", json={"priority": "stat", "clinical_question": "Dissection?"}
        )
        assert patched.status_code == 200, patched.text
        case = get_case(hospital.tech, case_id)
        assert case["priority"] == "stat"
        assert case["clinical_question"] == "Dissection?"
        assert case["clinical_history"] == "Post-op day 3, dyspnoea"

    def test_an_invalid_case_field_is_400_naming_it_and_nothing_is_stored(
        self, server: Server, world: World
    ) -> None:
        """A mistake in the form is reported before anything is stored, so the technician fixes
        it and sends again without leaving an orphan case behind."""
        hospital = world.hospital()
        files = [("1.dcm", part10(study("CT", slices=1)[0]))]
        for field, value in [
            ("priority", "asap"),
            ("requested_subspecialty", "dermatology"),
            ("clinical_question", "x" * 4001),
            ("requested_exam", "y" * 201),
        ]:
            r = upload(hospital.tech, files, **{field: value})
            assert r.status_code == 400, (field, r.text)
            assert field in r.json()["message"], r.text
        assert case_list(hospital.tech)["total"] == 0
        assert stored_files(server, hospital) == []


class TestWhoSendsForWhom:
    def test_radiologists_and_strangers_cannot_upload(self, server: Server, world: World) -> None:
        """Reading is not sending: a radiologist gets 403, no token 401."""
        radiologist = world.signed_in("radiologist")
        files = [("1.dcm", part10(study("CT", slices=1)[0]))]
        r = upload(radiologist, files)
        assert r.status_code == 403, r.text
        assert upload(radiologist, files, hospital="ANY").status_code == 403
        assert upload(httpx.Client(base_url=server.url), files).status_code == 401

    def test_a_tech_always_sends_for_their_own_hospital(self, server: Server, world: World) -> None:
        """Naming another hospital in the form does not move the study there."""
        mine, other = world.hospital(), world.hospital()
        r = upload(
            mine.tech,
            [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=2))],
            hospital=other.code,
        )
        assert r.status_code == 200, r.text
        case_id = r.json()["case_ids"][0]
        assert get_case(mine.tech, case_id)["hospital_id"] == mine.id
        assert len(stored_files(server, mine)) == 2
        assert stored_files(server, other) == []
        assert case_list(other.tech)["total"] == 0

    def test_another_hospitals_tech_cannot_see_the_case(self, server: Server, world: World) -> None:
        """Out of scope looks exactly like absent."""
        mine, other = world.hospital(), world.hospital()
        r = upload(mine.tech, [("1.dcm", part10(study("CT", slices=1)[0]))])
        case_id = r.json()["case_ids"][0]
        assert other.tech.get(f"/api/cases/{case_id}").status_code == 404
        assert other.tech.get(f"/api/cases/{case_id + 10**6}").status_code == 404
        assert case_id not in [c["id"] for c in case_list(other.tech)["items"]]
        assert (
            other.tech.patch(f"/api/cases/{case_id}", json={"priority": "stat"}).status_code == 404
        )
        assert get_case(mine.tech, case_id)["priority"] == "routine"
        assert case_id in [c["id"] for c in case_list(mine.tech)["items"]]

    def test_coordinators_and_admins_name_the_hospital(self, server: Server, world: World) -> None:
        """Coordinators and admins send for any hospital, but must say which one."""
        hospital = world.hospital()
        coordinator = world.signed_in("coordinator")
        files = [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=2))]

        missing = upload(coordinator, files)
        assert missing.status_code == 400, missing.text
        assert "hospital" in missing.json()["message"]
        unknown = upload(coordinator, files, hospital="NO-SUCH-HOSPITAL")
        assert unknown.status_code == 404, unknown.text
        assert stored_files(server, hospital) == []

        r = upload(coordinator, files, hospital=hospital.code)
        assert r.status_code == 200, r.text
        case_id = r.json()["case_ids"][0]
        assert get_case(hospital.tech, case_id)["hospital_id"] == hospital.id
        assert get_case(coordinator, case_id)["hospital_code"] == hospital.code

        assert upload(world.admin, [("1.dcm", part10(study("MR", slices=1)[0]))]).status_code == 400
        r = upload(
            world.admin, [("1.dcm", part10(study("MR", slices=1)[0]))], hospital=hospital.code
        )
        assert r.status_code == 200, r.text
        assert get_case(hospital.tech, r.json()["case_ids"][0])["hospital_id"] == hospital.id
        assert case_list(hospital.tech)["total"] == 2


class TestReadiness:
    def test_an_incomplete_upload_waits_for_the_stable_age(
        self, server: Server, world: World
    ) -> None:
        """complete=false: a client sends one study in several requests; the case stays
        "receiving" until no instance came for the stable age (2 s here), then becomes ready
        exactly once."""
        hospital = world.hospital()
        datasets = study("CT", slices=4)
        first = upload(
            hospital.tech,
            [("1.dcm", part10(datasets[0])), ("2.dcm", part10(datasets[1]))],
            complete="false",
        )
        assert first.status_code == 200, first.text
        case_id = first.json()["case_ids"][0]
        assert get_case(hospital.tech, case_id)["status"] == "receiving"
        second = upload(
            hospital.tech,
            [("3.dcm", part10(datasets[2])), ("4.dcm", part10(datasets[3]))],
            complete="false",
        )
        assert second.json()["case_ids"] == [case_id]

        case = wait_until(
            lambda: (c := get_case(hospital.tech, case_id))["status"] == "ready" and c,
            timeout=30,
            what="the case to become ready after the stable age",
        )
        assert case["number_of_instances"] == 4
        assert case["late_instances"] == 0
        assert [e["kind"] for e in case["events"]].count("ready") == 1

    def test_a_complete_upload_is_ready_at_once_and_only_once(
        self, server: Server, world: World
    ) -> None:
        """complete=true (the default) makes the case ready in the same request; sending the
        same files again does not make it ready a second time."""
        hospital = world.hospital()
        files = [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=3))]
        r = upload(hospital.tech, files, complete="true")
        case_id = r.json()["case_ids"][0]
        case = get_case(hospital.tech, case_id)
        assert case["status"] == "ready"
        assert case["ready_at"] is not None
        again = upload(hospital.tech, files)
        assert again.status_code == 200, again.text
        assert again.json()["duplicates"] == 3
        case = get_case(hospital.tech, case_id)
        assert [e["kind"] for e in case["events"]].count("ready") == 1
        assert [e["kind"] for e in case["events"]].count("received") == 1


class TestBadInputIsNamedPerFile:
    def test_each_bad_file_is_named_and_the_valid_ones_are_stored(
        self, server: Server, world: World
    ) -> None:
        """One request with every kind of broken file next to two good ones: each broken file
        gets its own outcome and reason, the good ones are stored, and the case counts only
        them."""
        hospital = world.hospital()
        good = study("CT", slices=3)
        bad_uids = {}
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            ds = copy.deepcopy(good[2])
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            delattr(ds, keyword)
            bad_uids[f"no-{keyword}.dcm"] = part10(ds)
        real = data_file("CT_small.dcm").read_bytes()
        synthetic = part10(good[2])
        files = [
            ("good-1.dcm", part10(good[0])),
            ("notes.txt", "患者 notes: not an image\n".encode()),
            ("photo.png", png()),
            ("empty.dcm", b""),
            ("cut-in-pixels.dcm", real[: len(real) - 5000]),
            ("cut-in-header-value.dcm", real[: real.index(b"CompressedSamples^CT1") + 5]),
            ("cut-in-element-header.dcm", cut_inside_header_of(synthetic, (0x0028, 0x0010), 5)),
            ("only-preamble.dcm", real[:132]),
            *bad_uids.items(),
            ("good-2.dcm", part10(good[1])),
        ]
        before_tmp = tmp_files(server)
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        body = r.json()
        by_name = outcomes(r)
        assert set(by_name) == {name for name, _ in files}
        assert (body["stored"], body["failed"]) == (2, len(files) - 2)
        assert by_name["good-1.dcm"]["outcome"] == by_name["good-2.dcm"]["outcome"] == "stored"

        def failed(name: str, status: int, *words: str) -> None:
            f = by_name[name]
            assert f["outcome"] == "failed", f
            assert f["status"] == status, f
            for word in words:
                assert word in f["message"], f

        failed("notes.txt", CANNOT_UNDERSTAND, "not a DICOM")
        failed("photo.png", CANNOT_UNDERSTAND, "not a DICOM")
        failed("empty.dcm", CANNOT_UNDERSTAND, "empty")
        failed("cut-in-pixels.dcm", CANNOT_UNDERSTAND, "truncated")
        failed("cut-in-header-value.dcm", CANNOT_UNDERSTAND, "truncated")
        failed("cut-in-element-header.dcm", CANNOT_UNDERSTAND, "truncated")
        assert by_name["only-preamble.dcm"]["outcome"] == "failed"
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            failed(f"no-{keyword}.dcm", DATASET_DOES_NOT_MATCH, keyword, "missing")

        # Nothing half-stored: exactly the two good objects are on disk and in the case.
        assert len(stored_files(server, hospital)) == 2
        case = get_case(hospital.tech, body["case_ids"][0])
        assert case["number_of_instances"] == 2
        assert body["case_ids"] == [by_name["good-1.dcm"]["case_id"]]
        assert tmp_files(server) - before_tmp == set()

    def test_when_nothing_can_be_stored_it_is_400_with_the_summary(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        r = upload(hospital.tech, [("a.txt", b"hello"), ("b.dcm", b""), ("c.zip", b"PK\x03\x04")])
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail["stored"] == 0
        assert detail["failed"] == 3
        assert detail["case_ids"] == []
        assert {f["name"]: f["outcome"] for f in detail["files"]} == dict.fromkeys(
            ("a.txt", "b.dcm", "c.zip"), "failed"
        )
        assert case_list(hospital.tech)["total"] == 0

    def test_a_request_without_files_is_a_clear_4xx(self, server: Server, world: World) -> None:
        """No files at all is 400 naming the field; a body that is not a form is 415; a form
        cut short is 400."""
        hospital = world.hospital()
        r = hospital.tech.post("/api/uploads", files=[("priority", (None, b"stat"))])
        assert r.status_code == 400, r.text
        assert "files" in r.json()["message"]
        r = hospital.tech.post("/api/uploads", json={"files": []})
        assert r.status_code == 415, r.text
        r = hospital.tech.post(
            "/api/uploads",
            content=b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.dcm"'
            b"\r\n\r\nDICM...",
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 400, r.text
        r = hospital.tech.post(
            "/api/uploads", content=b"x", headers={"Content-Type": "multipart/form-data"}
        )
        assert r.status_code == 400, r.text
        assert "boundary" in r.json()["message"]
        assert case_list(hospital.tech)["total"] == 0


class TestZipSafety:
    def test_unsafe_members_and_a_zip_bomb_are_refused_and_the_rest_stored(
        self, server: Server, world: World
    ) -> None:
        """Members that would land outside the receive area, and one that inflates a thousand
        times, are refused each with its reason; the images in the same archive are stored and
        nothing is written outside."""
        hospital = world.hospital()
        datasets = study("CT", slices=2)
        members = [
            ("IM1.dcm", part10(datasets[0])),
            ("../escape.dcm", part10(study("CT", slices=1)[0])),
            ("a/../../escape2.dcm", part10(study("CT", slices=1)[0])),
            ("/tmp/absolute.dcm", part10(study("CT", slices=1)[0])),
            ("C:\\Windows\\absolute.dcm", part10(study("CT", slices=1)[0])),
            ("bomb.dcm", bytes(30 * MiB)),
            ("IM2.dcm", part10(datasets[1])),
        ]
        archive = zipped(members)
        assert len(archive) < MiB  # the bomb compresses about 1000 times
        r = upload(hospital.tech, [("upload.zip", archive)])
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert r.json()["stored"] == 2
        assert by_name["upload.zip/IM1.dcm"]["outcome"] == "stored"
        assert by_name["upload.zip/IM2.dcm"]["outcome"] == "stored"
        for name in ("../escape.dcm", "a/../../escape2.dcm"):
            f = by_name[f"upload.zip/{name}"]
            assert f["outcome"] == "failed"
            assert "refused" in f["message"] and "climbs out" in f["message"], f
        for name in ("/tmp/absolute.dcm", "C:\\Windows\\absolute.dcm"):
            f = by_name[f"upload.zip/{name}"]
            assert f["outcome"] == "failed"
            assert "absolute path" in f["message"], f
        bomb = by_name["upload.zip/bomb.dcm"]
        assert bomb["outcome"] == "failed"
        assert "zip bomb" in bomb["message"], bomb
        for f in by_name.values():
            assert f["outcome"] in ("stored", "failed")
            assert f["status"] != 0 or f["outcome"] == "stored", f
        for root in (server.data_dir, server.data_dir.parent, Path("/tmp")):
            assert not (root / "escape.dcm").exists()
            assert not (root / "escape2.dcm").exists()
        assert len(stored_files(server, hospital)) == 2

    def test_an_encrypted_member_is_refused(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        """Encrypted members cannot be read without a password we do not have: said so, and the
        plain members are still stored."""
        hospital = world.hospital()
        datasets = study("CT", slices=2)
        (tmp_path / "secret.dcm").write_bytes(part10(datasets[0]))
        (tmp_path / "plain.dcm").write_bytes(part10(datasets[1]))
        archive = tmp_path / "mixed.zip"
        subprocess.run(
            ["zip", "-q", "-P", "s3cret", str(archive), "secret.dcm"], cwd=tmp_path, check=True
        )
        subprocess.run(["zip", "-q", str(archive), "plain.dcm"], cwd=tmp_path, check=True)
        r = upload(hospital.tech, [("mixed.zip", archive.read_bytes())])
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert by_name["mixed.zip/plain.dcm"]["outcome"] == "stored"
        assert by_name["mixed.zip/secret.dcm"]["outcome"] == "failed"
        assert "encrypted" in by_name["mixed.zip/secret.dcm"]["message"]
        assert len(stored_files(server, hospital)) == 1

    def test_a_member_whose_directory_lies_about_its_size_is_refused(
        self, server: Server, world: World
    ) -> None:
        """Sizes in the zip's directory are not trusted: a member that says 1 KB but inflates to
        far more is cut off and refused, not extracted whole."""
        hospital = world.hospital()
        good = part10(study("CT", slices=1)[0])
        real_size = 3 * MiB
        archive = bytearray(zipped([("liar.dcm", bytes(real_size)), ("good.dcm", good)]))
        # Patch the uncompressed size in the local header and the central directory entry.
        lie = (1024).to_bytes(4, "little")
        size_bytes = real_size.to_bytes(4, "little")
        local = archive.index(b"PK\x03\x04")
        assert archive[local + 22 : local + 26] == size_bytes
        archive[local + 22 : local + 26] = lie
        central = archive.index(b"PK\x01\x02")
        assert archive[central + 24 : central + 28] == size_bytes
        archive[central + 24 : central + 28] = lie
        r = upload(hospital.tech, [("liar.zip", bytes(archive))])
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert by_name["liar.zip/liar.dcm"]["outcome"] == "failed"
        assert by_name["liar.zip/good.dcm"]["outcome"] == "stored"

    def test_corrupt_zips_are_failures_next_to_good_files(
        self, server: Server, world: World
    ) -> None:
        """A zip cut in half cannot be opened: one failure for it. A member whose compressed
        bytes are damaged fails alone; the intact member of the same archive is stored."""
        hospital = world.hospital()
        datasets = study("CT", slices=3)
        whole = zipped([("a.dcm", part10(study("CT", slices=1)[0]))])
        damaged = bytearray(
            zipped([("damaged.dcm", part10(datasets[1])), ("ok.dcm", part10(datasets[2]))])
        )
        start = damaged.index(b"damaged.dcm") + len("damaged.dcm")
        damaged[start + 10 : start + 60] = bytes(range(50))
        files = [
            ("broken.zip", whole[: len(whole) // 2]),
            ("damaged.zip", bytes(damaged)),
            ("good.dcm", part10(datasets[0])),
        ]
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        assert by_name["good.dcm"]["outcome"] == "stored"
        assert by_name["damaged.zip/ok.dcm"]["outcome"] == "stored"
        assert by_name["damaged.zip/damaged.dcm"]["outcome"] == "failed"
        broken = [f for n, f in by_name.items() if n.startswith("broken.zip")]
        assert broken and all(f["outcome"] == "failed" for f in broken)
        assert len(stored_files(server, hospital)) == 2


class TestSizeLimits:
    def test_an_upload_over_the_request_limit_is_413_and_stores_nothing(
        self, server: Server, world: World
    ) -> None:
        """Over RADRELAY_MAX_UPLOAD_BYTES (24 MiB here): refused as a whole, even the valid
        files in it, so the sender knows to split it."""
        hospital = world.hospital()
        datasets = study("CT", slices=4)
        first = upload(hospital.tech, [("1.dcm", part10(datasets[0]))], complete="false")
        case_id = first.json()["case_ids"][0]
        on_disk = stored_files(server, hospital)
        files = [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(datasets[1:])]
        files.append(("huge.bin", bytes(25 * MiB)))
        before_tmp = tmp_files(server)
        r = upload(hospital.tech, files)
        assert r.status_code == 413, r.text
        assert "limit" in r.json()["message"]
        assert case_list(hospital.tech)["total"] == 1
        case = get_case(hospital.tech, case_id)
        assert case["number_of_instances"] == 1
        assert case["status"] == "receiving"  # the refused request did not complete it either
        assert stored_files(server, hospital) == on_disk
        assert tmp_files(server) - before_tmp == set()

    def test_a_streamed_upload_over_the_limit_is_413_and_stores_nothing(
        self, server: Server, world: World
    ) -> None:
        """Without a Content-Length (chunked), the limit is enforced while reading."""
        hospital = world.hospital()
        boundary = "radrelay-test-boundary"
        good = part10(study("CT", slices=1)[0])

        def body():  # type: ignore[no-untyped-def]
            yield (
                (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                    f'filename="good.dcm"\r\nContent-Type: application/dicom\r\n\r\n'
                ).encode()
                + good
                + b"\r\n"
            )
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="huge.bin"\r\n\r\n'
            ).encode()
            for _ in range(26):
                yield bytes(MiB)
            yield f"\r\n--{boundary}--\r\n".encode()

        before_tmp = tmp_files(server)
        r = hospital.tech.post(
            "/api/uploads",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert r.status_code == 413, r.text
        assert case_list(hospital.tech)["total"] == 0
        assert stored_files(server, hospital) == []
        assert tmp_files(server) - before_tmp == set()

    def test_an_object_over_the_instance_limit_fails_with_a700(
        self, server: Server, world: World
    ) -> None:
        """One object over RADRELAY_MAX_INSTANCE_BYTES (8 MiB here), loose or in a zip: that
        object fails with 0xA700 (out of resources), the others are stored."""
        hospital = world.hospital()
        big = big_object(9)
        assert 8 * MiB < len(big) < 10 * MiB
        datasets = study("CT", slices=2)
        r = upload(
            hospital.tech,
            [
                ("big.dcm", big),
                ("small.dcm", part10(datasets[0])),
                ("in.zip", zipped([("big-in-zip.dcm", big), ("small.dcm", part10(datasets[1]))])),
            ],
        )
        assert r.status_code == 200, r.text
        by_name = outcomes(r)
        for name in ("big.dcm", "in.zip/big-in-zip.dcm"):
            assert by_name[name]["outcome"] == "failed"
            assert by_name[name]["status"] == OUT_OF_RESOURCES, by_name[name]
        assert by_name["small.dcm"]["outcome"] == "stored"
        assert by_name["in.zip/small.dcm"]["outcome"] == "stored"
        assert len(stored_files(server, hospital)) == 2
        assert get_case(hospital.tech, r.json()["case_ids"][0])["number_of_instances"] == 2


class TestDuplicatesAndConflicts:
    def test_sending_the_same_files_again_changes_nothing(
        self, server: Server, world: World
    ) -> None:
        """A resend (the network failed, the technician clicked again) is reported as
        duplicates: no new file, no new instance, same case."""
        hospital = world.hospital()
        files = [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=3))]
        first = upload(hospital.tech, files)
        case_id = first.json()["case_ids"][0]
        on_disk = stored_files(server, hospital)
        again = upload(hospital.tech, files)
        assert again.status_code == 200, again.text
        body = again.json()
        assert (body["stored"], body["duplicates"], body["conflicts"]) == (0, 3, 0)
        assert body["case_ids"] == [case_id]
        assert {f["outcome"] for f in body["files"]} == {"duplicate"}
        assert all(f["case_id"] == case_id for f in body["files"])
        assert stored_files(server, hospital) == on_disk
        case = get_case(hospital.tech, case_id)
        assert case["number_of_instances"] == 3
        assert case["late_instances"] == 0
        assert case["flags"] == []
        # The same object twice in one request is one object.
        twice = upload(hospital.tech, [files[0], ("copy.dcm", files[0][1])])
        assert twice.json()["duplicates"] == 2
        assert len(stored_files(server, hospital)) == 3

    def test_a_different_object_under_a_known_sop_uid_is_kept_and_flagged(
        self, server: Server, world: World
    ) -> None:
        """Two different objects with one SOP Instance UID: a modality bug or a re-edit. Both
        are kept (neither silently replaces the other) and the case is flagged for a human."""
        hospital = world.hospital()
        datasets = study("CT", slices=2)
        upload(hospital.tech, [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(datasets)])
        edited = copy.deepcopy(datasets[0])
        edited.SeriesDescription = "Edited after sending"
        r = upload(hospital.tech, [("edited.dcm", part10(edited))])
        assert r.status_code == 200, r.text
        (f,) = r.json()["files"]
        assert f["outcome"] == "conflict"
        assert r.json()["conflicts"] == 1
        versions = files_of_sop(server, hospital, datasets[0].SOPInstanceUID)
        assert sorted(p.read_bytes() for p in versions) == sorted(
            [part10(datasets[0]), part10(edited)]
        )
        case = get_case(hospital.tech, f["case_id"])
        assert "sop_conflict" in case["flags"]
        assert "sop_conflict" in [e["kind"] for e in case["events"]]
        # Sending the edited object once more is a duplicate of what is now stored.
        again = upload(hospital.tech, [("edited.dcm", part10(edited))])
        assert again.json()["files"][0]["outcome"] == "duplicate"
        assert len(files_of_sop(server, hospital, datasets[0].SOPInstanceUID)) == 2

    def test_the_same_files_sent_in_parallel_are_stored_once(
        self, server: Server, world: World
    ) -> None:
        """Two browser tabs (or a retry racing the original) send one study at once: every
        request succeeds, each object is stored once and counted once."""
        hospital = world.hospital()
        files = [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(study("CT", slices=4))]
        # The study exists first, so the requests race on its objects, not on creating it.
        upload(hospital.tech, files[:1])
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: upload(hospital.tech, files), range(4)))
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        assert sum(a.json()["stored"] for a in answers) == 3
        assert sum(a.json()["conflicts"] for a in answers) == 0
        case = get_case(hospital.tech, answers[0].json()["case_ids"][0])
        assert case["number_of_instances"] == 4
        assert case["flags"] == []
        assert len(stored_files(server, hospital)) == 4
