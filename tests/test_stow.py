"""DICOMweb STOW-RS, ``POST /dicomweb/studies[/{StudyInstanceUID}]`` (PS3.18 10.5): what PACS
and viewers send, with or without the Part 10 header, answered with the Store Instances Response
as DICOM JSON. Driven both by dicomweb-client, as real callers are, and by hand-made requests
for the edge cases a client library would never produce."""

from __future__ import annotations

import copy
import io
import uuid

import httpx
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from conftest import Api, Server, World
from helpers import case_of_study, files_of_sop, part10, renamed, stored_files, study, tmp_files
from helpers import testdata as data_file

# Bare data sets are made the way the issue describes (is_little_endian / is_implicit_VR), which
# pydicom 3 deprecates in favour of arguments dicomweb-client does not pass.
pytestmark = pytest.mark.filterwarnings("ignore:'Dataset.is_:DeprecationWarning")

MiB = 1024 * 1024
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
DICOM_JSON = "application/dicom+json"

# DICOM JSON keys of the Store Instances Response (PS3.18 Table 10.5.3-3).
RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_CLASS = "00081150"
REFERENCED_SOP_INSTANCE = "00081155"


# --- small tools ---------------------------------------------------------------------------


def client(api: Api) -> DICOMwebClient:
    return DICOMwebClient(
        url=api.server.url + "/dicomweb", headers={"Authorization": f"Bearer {api.token}"}
    )


def related(
    parts: list[bytes | tuple[str, bytes]], *, type_: str = "application/dicom"
) -> tuple[bytes, str]:
    """A multipart/related body: bare bytes are application/dicom parts, (type, bytes) others."""
    boundary = f"stow-{uuid.uuid4().hex}"
    body = b""
    for part in parts:
        ctype, data = part if isinstance(part, tuple) else ("application/dicom", part)
        body += f"--{boundary}\r\nContent-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="{type_}"; boundary="{boundary}"'


def stow(
    api: httpx.Client,
    parts: list[bytes | tuple[str, bytes]],
    *,
    study_uid: str | None = None,
    **params: str,
) -> httpx.Response:
    body, content_type = related(parts)
    url = "/dicomweb/studies" + (f"/{study_uid}" if study_uid else "")
    return api.post(
        url,
        content=body,
        params=params,
        headers={"Content-Type": content_type, "Accept": DICOM_JSON},
    )


def values(item: dict, key: str) -> list:
    return item.get(key, {}).get("Value", [])


def referenced(r: httpx.Response) -> dict[str, dict]:
    return {
        values(i, REFERENCED_SOP_INSTANCE)[0]: i for i in values(r.json(), REFERENCED_SOP_SEQUENCE)
    }


def failure_reasons(r: httpx.Response) -> list[tuple[str, int]]:
    return [
        ((values(i, REFERENCED_SOP_INSTANCE) or [""])[0], values(i, FAILURE_REASON)[0])
        for i in values(r.json(), FAILED_SOP_SEQUENCE)
    ]


def bare(ds: Dataset, *, implicit: bool) -> Dataset:
    """The data set as a viewer builds it in memory: no file meta, only an encoding, so that
    pydicom (and dicomweb-client through it) writes a bare data set."""
    out = copy.deepcopy(ds)
    del out.file_meta
    out.is_little_endian = True
    out.is_implicit_VR = implicit
    return out


def bare_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds)
    return buffer.getvalue()


# --- behaviours ----------------------------------------------------------------------------


class TestStoreWithDicomwebClient:
    def test_datasets_are_stored_and_referenced_in_the_response(
        self, server: Server, world: World
    ) -> None:
        """The common caller: dicomweb-client's store_instances with data sets that carry their
        file meta. The response names each stored instance with a RetrieveURL, and the study
        becomes a case of the caller's hospital."""
        hospital = world.hospital()
        datasets = study("CT", slices=3)
        study_uid = datasets[0].StudyInstanceUID
        before_tmp = tmp_files(server)
        result = client(hospital.tech).store_instances(datasets)
        refs = {item.ReferencedSOPInstanceUID: item for item in result.ReferencedSOPSequence}
        assert set(refs) == {ds.SOPInstanceUID for ds in datasets}
        for ds in datasets:
            item = refs[ds.SOPInstanceUID]
            assert item.ReferencedSOPClassUID == ds.SOPClassUID
            # dicomweb-client sends a Host header without the port, and URLs are built from
            # the Host the client used: compare from the path on.
            assert item.RetrieveURL.endswith(
                f"/dicomweb/studies/{study_uid}/series/{ds.SeriesInstanceUID}"
                f"/instances/{ds.SOPInstanceUID}"
            )
        assert result.RetrieveURL.endswith(f"/dicomweb/studies/{study_uid}")
        assert "FailedSOPSequence" not in result

        case = case_of_study(hospital.tech, study_uid)
        assert case is not None
        assert case["source"] == "stow"
        assert case["hospital_id"] == hospital.id
        assert case["number_of_instances"] == 3
        assert case["status"] == "receiving"  # STOW has no "complete": the stable age decides
        assert len(stored_files(server, hospital)) == 3
        for ds in datasets:
            (path,) = files_of_sop(server, hospital, ds.SOPInstanceUID)
            stored = pydicom.dcmread(path)
            assert stored.SOPInstanceUID == ds.SOPInstanceUID
            assert stored.PixelData == ds.PixelData
        assert tmp_files(server) - before_tmp == set()

    @pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
    def test_bare_data_sets_without_part10_header_are_stored(
        self, server: Server, world: World, implicit: bool
    ) -> None:
        """A data set made in memory has no file meta: it arrives bare, without preamble. The
        server gives it a file meta header naming the encoding it arrived in, and keeps the
        data set bytes exactly as sent."""
        hospital = world.hospital()
        datasets = [bare(ds, implicit=implicit) for ds in study("MR", slices=2)]
        sent = {ds.SOPInstanceUID: bare_bytes(ds) for ds in datasets}
        assert all(not data.startswith(b"\x02\x00") for data in sent.values())
        before_tmp = tmp_files(server)
        result = client(hospital.tech).store_instances(datasets)
        assert len(result.ReferencedSOPSequence) == 2
        for sop_uid, data in sent.items():
            (path,) = files_of_sop(server, hospital, sop_uid)
            stored = path.read_bytes()
            assert stored[128:132] == b"DICM"
            assert stored.endswith(data)
            ds = pydicom.dcmread(path)
            assert ds.file_meta.TransferSyntaxUID == (
                ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
            )
            assert ds.file_meta.MediaStorageSOPInstanceUID == sop_uid
            assert ds.SOPInstanceUID == sop_uid
        case = case_of_study(hospital.tech, datasets[0].StudyInstanceUID)
        assert case is not None and case["number_of_instances"] == 2
        # The Part 10 copies made in the receive area are removed once stored.
        assert tmp_files(server) - before_tmp == set()

    def test_real_files_read_from_disk_are_stored_byte_for_byte(
        self, server: Server, world: World
    ) -> None:
        """Data sets read from files keep their preamble: they arrive as Part 10 files and are
        stored as sent (big endian and implicit VR included)."""
        hospital = world.hospital()
        datasets = [
            renamed(data_file(name))
            for name in ("CT_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm")
        ]
        result = client(hospital.tech).store_instances(datasets)
        assert len(result.ReferencedSOPSequence) == 3
        for ds in datasets:
            (path,) = files_of_sop(server, hospital, ds.SOPInstanceUID)
            buffer = io.BytesIO()
            pydicom.dcmwrite(buffer, ds)
            assert path.read_bytes() == buffer.getvalue()

    def test_the_study_url_refuses_instances_of_another_study_with_a900(
        self, server: Server, world: World
    ) -> None:
        """POST /studies/{uid}: instances of another study fail with 0xA900, the others are
        stored (202 for the mix), and the stray one leaves nothing behind."""
        hospital = world.hospital()
        mine, stray = study("CT", slices=2), study("CT", slices=1)[0]
        study_uid = mine[0].StudyInstanceUID
        before_tmp = tmp_files(server)
        result = client(hospital.tech).store_instances(
            [*mine, stray, bare(study("CT", slices=1)[0], implicit=False)],
            study_instance_uid=study_uid,
        )
        assert {i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence} == {
            ds.SOPInstanceUID for ds in mine
        }
        failed = {i.ReferencedSOPInstanceUID: i.FailureReason for i in result.FailedSOPSequence}
        assert len(failed) == 2
        assert failed[stray.SOPInstanceUID] == DATASET_DOES_NOT_MATCH
        assert set(failed.values()) == {DATASET_DOES_NOT_MATCH}
        assert result.RetrieveURL.endswith(f"/dicomweb/studies/{study_uid}")
        assert len(stored_files(server, hospital)) == 2
        assert case_of_study(hospital.tech, stray.StudyInstanceUID) is None
        assert tmp_files(server) - before_tmp == set()

    def test_a_coordinator_sends_with_the_hospital_parameter(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        coordinator = world.signed_in("coordinator")
        datasets = study("CR", slices=1)
        with pytest.raises(requests.HTTPError) as missing:
            client(coordinator).store_instances(datasets)
        assert missing.value.response.status_code == 400
        client(coordinator).store_instances(datasets, additional_params={"hospital": hospital.code})
        case = case_of_study(hospital.tech, datasets[0].StudyInstanceUID)
        assert case is not None and case["hospital_id"] == hospital.id


class TestStoreResponse:
    def test_all_stored_is_200_dicom_json(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        datasets = study("CT", slices=2)
        r = stow(hospital.tech, [part10(ds) for ds in datasets])
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(DICOM_JSON)
        assert "warning" not in r.headers
        refs = referenced(r)
        assert set(refs) == {ds.SOPInstanceUID for ds in datasets}
        for ds in datasets:
            item = refs[ds.SOPInstanceUID]
            assert item[REFERENCED_SOP_CLASS] == {"vr": "UI", "Value": [ds.SOPClassUID]}
            assert values(item, RETRIEVE_URL)[0].endswith(f"/instances/{ds.SOPInstanceUID}")
        assert values(r.json(), RETRIEVE_URL) == [
            f"{server.url}/dicomweb/studies/{datasets[0].StudyInstanceUID}"
        ]
        assert FAILED_SOP_SEQUENCE not in r.json()

    def test_some_failed_is_202_with_reasons_and_a_warning_per_failure(
        self, server: Server, world: World
    ) -> None:
        """Each broken part fails on its own with its FailureReason and a Warning header that
        says why in words; the valid parts of the same request are stored and counted."""
        hospital = world.hospital()
        good = study("CT", slices=3)
        real = data_file("CT_small.dcm").read_bytes()
        no_sop = copy.deepcopy(good[2])
        del no_sop.StudyInstanceUID
        parts: list[bytes | tuple[str, bytes]] = [
            part10(good[0]),
            b"this is not DICOM",
            b"",
            real[: len(real) - 4000],
            part10(no_sop),
            ("application/pdf", b"%PDF-1.4 not an image"),
            data_file("DICOMDIR").read_bytes(),
            part10(good[1]),
        ]
        before_tmp = tmp_files(server)
        r = stow(hospital.tech, parts)
        assert r.status_code == 202, r.text
        assert set(referenced(r)) == {good[0].SOPInstanceUID, good[1].SOPInstanceUID}
        reasons = failure_reasons(r)
        assert len(reasons) == 6
        assert sorted(code for _, code in reasons) == sorted(
            [
                CANNOT_UNDERSTAND,  # not DICOM
                CANNOT_UNDERSTAND,  # empty
                CANNOT_UNDERSTAND,  # truncated
                DATASET_DOES_NOT_MATCH,  # no Study Instance UID
                CANNOT_UNDERSTAND,  # not application/dicom
                SOP_CLASS_NOT_SUPPORTED,  # a DICOMDIR
            ]
        )
        assert (no_sop.SOPInstanceUID, DATASET_DOES_NOT_MATCH) in reasons
        warnings = r.headers.get_list("warning")
        assert len(warnings) == 6
        assert all(w.startswith("299 ") for w in warnings)
        text = " ".join(warnings)
        for words in ("not a DICOM", "empty", "truncated", "StudyInstanceUID", "pdf", "DICOMDIR"):
            assert words in text, (words, warnings)
        assert len(stored_files(server, hospital)) == 2
        case = case_of_study(hospital.tech, good[0].StudyInstanceUID)
        assert case is not None and case["number_of_instances"] == 2
        assert tmp_files(server) - before_tmp == set()

    def test_none_stored_is_409(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        r = stow(hospital.tech, [b"garbage", b"\x08\x00\x05\x00CS\x0a\x00ISO_IR"])
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith(DICOM_JSON)
        assert len(failure_reasons(r)) == 2
        assert REFERENCED_SOP_SEQUENCE not in r.json()
        assert len(r.headers.get_list("warning")) == 2
        assert stored_files(server, hospital) == []

    def test_a_resend_is_200_and_changes_nothing(self, server: Server, world: World) -> None:
        """A retry after a lost response must succeed without storing anything twice."""
        hospital = world.hospital()
        datasets = study("CT", slices=2)
        parts = [part10(ds) for ds in datasets]
        assert stow(hospital.tech, parts).status_code == 200
        on_disk = stored_files(server, hospital)
        again = stow(hospital.tech, parts)
        assert again.status_code == 200, again.text
        assert set(referenced(again)) == {ds.SOPInstanceUID for ds in datasets}
        assert stored_files(server, hospital) == on_disk
        case = case_of_study(hospital.tech, datasets[0].StudyInstanceUID)
        assert case is not None and case["number_of_instances"] == 2
        # The same objects as bare data sets are the same objects.
        bare_parts = [bare_bytes(bare(ds, implicit=False)) for ds in datasets]
        assert stow(hospital.tech, bare_parts).status_code == 200
        assert stored_files(server, hospital) == on_disk

    def test_a_conflicting_object_is_kept_and_flags_the_case(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        ds = study("CT", slices=1)[0]
        assert stow(hospital.tech, [part10(ds)]).status_code == 200
        edited = copy.deepcopy(ds)
        edited.ImageComments = "re-sent after editing"
        r = stow(hospital.tech, [part10(edited)])
        assert r.status_code == 200, r.text
        assert set(referenced(r)) == {ds.SOPInstanceUID}
        assert len(files_of_sop(server, hospital, ds.SOPInstanceUID)) == 2
        case = case_of_study(hospital.tech, ds.StudyInstanceUID)
        assert case is not None and "sop_conflict" in case["flags"]

    def test_a_series_of_another_modality_sent_later_joins_the_study(
        self, server: Server, world: World
    ) -> None:
        """A PET/CT: the CT series first, the PET series of the same study in a later request.
        The study's counts and its ModalitiesInStudy take in the new series."""
        hospital = world.hospital()
        ct = study("CT", slices=2)
        pet = copy.deepcopy(ct[0])
        pet.SOPClassUID = "1.2.840.10008.5.1.4.1.1.128"  # Positron Emission Tomography Image
        pet.file_meta.MediaStorageSOPClassUID = pet.SOPClassUID
        pet.Modality = "PT"
        pet.SeriesInstanceUID = pydicom.uid.generate_uid()
        pet.SOPInstanceUID = pydicom.uid.generate_uid()
        pet.file_meta.MediaStorageSOPInstanceUID = pet.SOPInstanceUID
        study_uid = ct[0].StudyInstanceUID
        assert stow(hospital.tech, [part10(ds) for ds in ct]).status_code == 200
        first = case_of_study(hospital.tech, study_uid)
        assert first is not None
        assert (first["number_of_series"], first["number_of_instances"]) == (1, 2)
        assert first["modalities"] == ["CT"]

        r = stow(hospital.tech, [part10(pet)])
        assert r.status_code == 200, r.text
        case = case_of_study(hospital.tech, study_uid)
        assert case is not None and case["id"] == first["id"]
        assert (case["number_of_series"], case["number_of_instances"]) == (2, 3)
        assert case["modalities"] == ["CT", "PT"]
        found = hospital.tech.get(
            "/dicomweb/studies",
            params={"StudyInstanceUID": study_uid},
            headers={"Accept": DICOM_JSON},
        )
        assert found.status_code == 200, found.text
        (item,) = found.json()
        assert item["00080061"]["Value"] == ["CT", "PT"]  # ModalitiesInStudy
        assert item["00201206"]["Value"] == [2]  # NumberOfStudyRelatedSeries
        assert item["00201208"]["Value"] == [3]  # NumberOfStudyRelatedInstances

    def test_an_object_over_the_instance_limit_fails_with_a700(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        big, small = study("CT", slices=2, size=16)
        big.Rows = big.Columns = 2100
        big.PixelData = bytes(2100 * 2100 * 2)
        r = stow(hospital.tech, [part10(big), part10(small)])
        assert r.status_code == 202, r.text
        assert set(referenced(r)) == {small.SOPInstanceUID}
        assert [code for _, code in failure_reasons(r)] == [OUT_OF_RESOURCES]
        assert len(stored_files(server, hospital)) == 1

    def test_a_request_over_the_upload_limit_is_413(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        r = stow(hospital.tech, [part10(study("CT", slices=1)[0]), bytes(25 * MiB)])
        assert r.status_code == 413, r.text
        assert stored_files(server, hospital) == []


class TestStoreRequestErrors:
    def test_wrong_content_type_or_type_parameter_is_415(
        self, server: Server, world: World
    ) -> None:
        """Only multipart/related with type application/dicom; metadata-and-bulk-data STOW is
        not supported, and says so rather than storing nothing silently."""
        hospital = world.hospital()
        data = part10(study("CT", slices=1)[0])
        body, _ = related([data])
        boundary = body.split(b"\r\n", 1)[0][2:].decode()
        for content_type in (
            "application/dicom",
            f"multipart/form-data; boundary={boundary}",
            f'multipart/related; type="application/dicom+json"; boundary={boundary}',
            f'multipart/related; type="application/dicom+xml"; boundary={boundary}',
            f"multipart/related; type=image/jpeg; boundary={boundary}",
        ):
            r = hospital.tech.post(
                "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
            )
            assert r.status_code == 415, (content_type, r.text)
        assert hospital.tech.post("/dicomweb/studies", content=body).status_code == 415
        assert stored_files(server, hospital) == []

    def test_malformed_multipart_is_400(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        data = part10(study("CT", slices=1)[0])
        typed = 'multipart/related; type="application/dicom"'
        cases = [
            # no boundary parameter
            (typed, data),
            # the body does not start with the boundary
            (f"{typed}; boundary=abc", b"garbage before any boundary\r\n" + data),
            # cut inside the part: no closing boundary
            (f"{typed}; boundary=abc", b"--abc\r\nContent-Type: application/dicom\r\n\r\n" + data),
            # one whole part, then cut inside the next part's headers
            (
                f"{typed}; boundary=abc",
                b"--abc\r\nContent-Type: application/dicom\r\n\r\n"
                + data
                + b"\r\n--abc\r\nContent-Type: applic",
            ),
            # one whole part, then cut right after the next boundary
            (
                f"{typed}; boundary=abc",
                b"--abc\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--abc\r\n",
            ),
            # no parts at all
            (f"{typed}; boundary=abc", b"--abc--\r\n"),
            # empty body
            (f"{typed}; boundary=abc", b""),
        ]
        for content_type, body in cases:
            r = hospital.tech.post(
                "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
            )
            assert r.status_code == 400, (content_type, body[:60], r.status_code, r.text)
        assert stored_files(server, hospital) == []

    def test_an_unacceptable_response_type_is_refused(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        body, content_type = related([part10(study("CT", slices=1)[0])])
        r = hospital.tech.post(
            "/dicomweb/studies",
            content=body,
            headers={"Content-Type": content_type, "Accept": "application/dicom+xml"},
        )
        assert r.status_code == 406, r.text
        assert stored_files(server, hospital) == []


class TestWhoStoresForWhom:
    def test_a_tech_stores_for_their_own_hospital_whatever_the_parameter(
        self, server: Server, world: World
    ) -> None:
        mine, other = world.hospital(), world.hospital()
        datasets = study("CT", slices=2)
        client(mine.tech).store_instances(datasets, additional_params={"hospital": other.code})
        case = case_of_study(mine.tech, datasets[0].StudyInstanceUID)
        assert case is not None and case["hospital_id"] == mine.id
        assert len(stored_files(server, mine)) == 2
        assert stored_files(server, other) == []
        assert case_of_study(other.tech, datasets[0].StudyInstanceUID) is None
        assert other.tech.get(f"/api/cases/{case['id']}").status_code == 404

    def test_radiologists_and_strangers_cannot_store(self, server: Server, world: World) -> None:
        hospital = world.hospital()
        radiologist = world.signed_in("radiologist")
        data = part10(study("CT", slices=1)[0])
        assert stow(radiologist, [data]).status_code == 403
        assert stow(radiologist, [data], hospital=hospital.code).status_code == 403
        assert stow(httpx.Client(base_url=server.url), [data]).status_code == 401
        coordinator = world.signed_in("coordinator")
        assert stow(coordinator, [data], hospital="NO-SUCH-HOSPITAL").status_code == 404
        assert stored_files(server, hospital) == []

    def test_the_same_study_in_two_hospitals_stays_apart(
        self, server: Server, world: World
    ) -> None:
        """Two hospitals may send objects with the same UIDs (a shared PACS, a copied CD): each
        gets its own case and files, and neither is a duplicate of the other's."""
        first, second = world.hospital(), world.hospital()
        datasets = study("CT", slices=2)
        parts = [part10(ds) for ds in datasets]
        assert stow(first.tech, parts).status_code == 200
        assert stow(second.tech, parts).status_code == 200
        a = case_of_study(first.tech, datasets[0].StudyInstanceUID)
        b = case_of_study(second.tech, datasets[0].StudyInstanceUID)
        assert a is not None and b is not None and a["id"] != b["id"]
        assert a["number_of_instances"] == b["number_of_instances"] == 2
        assert len(stored_files(server, first)) == len(stored_files(server, second)) == 2
