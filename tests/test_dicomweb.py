"""DICOMweb read side (PS3.18): QIDO-RS, WADO-RS, rendered, thumbnails, WADO-URI, priors and
the scope rule, driven by dicomweb-client as a viewer or workstation would, and checked against
the stored files and pydicom's own reading of them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from conftest import Api, Hospital, Server, World, wait_until
from helpers import part10, renamed, study, upload
from helpers import testdata as data_file
from radrelay import synth

DICOM_JSON = "application/dicom+json"
BULK_KEYS = ("BulkDataURI", "InlineBinary")


def client(api: Api) -> DICOMwebClient:
    return DICOMwebClient(
        url=api.server.url + "/dicomweb", headers={"Authorization": f"Bearer {api.token}"}
    )


def send(hospital: Hospital, datasets: list[Dataset]) -> None:
    """Upload as the hospital's technician (the upload completes the case)."""
    r = upload(hospital.tech.http, [(f"{i}.dcm", part10(ds)) for i, ds in enumerate(datasets)])
    assert r.status_code == 200, r.text
    assert all(f["outcome"] == "stored" for f in r.json()["files"]), r.text


def send_files(hospital: Hospital, paths: list[Path]) -> list[Dataset]:
    """Real files with fresh UIDs, one study, as the technician uploads them."""
    study_uid = generate_uid()
    datasets = []
    for path in paths:
        ds = renamed(path)
        ds.StudyInstanceUID = study_uid
        datasets.append(ds)
    send(hospital, datasets)
    return datasets


def person(name: str, patient_id: str) -> synth.SynthPatient:
    return synth.SynthPatient(name, patient_id, "19700101", "F")


def value(result: dict[str, Any], tag: str) -> Any:
    values = result.get(tag, {}).get("Value")
    return values[0] if values else None


def without_bulk(doc: dict[str, Any]) -> dict[str, Any]:
    """A DICOM JSON object with bulk data values reduced to their VR (URIs differ by design)."""
    out: dict[str, Any] = {}
    for tag, elem in doc.items():
        elem = dict(elem)
        for key in BULK_KEYS:
            elem.pop(key, None)
        if elem.get("vr") == "SQ" and "Value" in elem:
            elem["Value"] = [without_bulk(item) for item in elem["Value"]]
        out[tag] = elem
    return out


# --- QIDO-RS ------------------------------------------------------------------------------


class TestSearch:
    def test_studies_series_instances_with_dicomweb_client(self, world: World) -> None:
        hospital = world.hospital()
        datasets = study("CT", slices=3)
        send(hospital, datasets)
        web = client(hospital.tech)
        first = datasets[0]
        found = web.search_for_studies(search_filters={"StudyInstanceUID": first.StudyInstanceUID})
        assert len(found) == 1
        result = found[0]
        assert value(result, "0020000D") == first.StudyInstanceUID
        assert value(result, "00100020") == first.PatientID
        assert value(result, "00080050") == first.AccessionNumber
        assert value(result, "00201206") == 1  # NumberOfStudyRelatedSeries
        assert value(result, "00201208") == 3  # NumberOfStudyRelatedInstances
        assert result["00080061"]["Value"] == ["CT"]  # ModalitiesInStudy
        assert value(result, "00081190").endswith(f"/dicomweb/studies/{first.StudyInstanceUID}")

        series = web.search_for_series(first.StudyInstanceUID)
        assert [value(s, "0020000E") for s in series] == [first.SeriesInstanceUID]
        assert value(series[0], "00201209") == 3  # NumberOfSeriesRelatedInstances
        assert value(series[0], "00080060") == "CT"

        instances = web.search_for_instances(first.StudyInstanceUID, first.SeriesInstanceUID)
        assert sorted(value(i, "00080018") for i in instances) == sorted(
            ds.SOPInstanceUID for ds in datasets
        )
        assert {value(i, "00280010") for i in instances} == {first.Rows}
        assert {value(i, "00080016") for i in instances} == {first.SOPClassUID}

        everywhere = web.search_for_instances(
            search_filters={"SOPInstanceUID": datasets[1].SOPInstanceUID}
        )
        assert [value(i, "0020000D") for i in everywhere] == [first.StudyInstanceUID]
        all_series = web.search_for_series(search_filters={"Modality": "CT"})
        assert first.SeriesInstanceUID in {value(s, "0020000E") for s in all_series}

    def test_matching_keys(self, world: World) -> None:
        hospital = world.hospital()
        patient = person("Zhang^Wei=张^伟", "P-MATCH-1")
        ct = study("CT", slices=1, patient=patient)
        for ds in ct:
            ds.StudyDate, ds.StudyTime = "20240105", "101500"
            ds.StudyDescription = "CT HEAD 颅脑急诊筛查"
        mr = study("MR", slices=1, patient=patient)
        for ds in mr:
            ds.StudyDate, ds.StudyTime = "20250620", "080000"
        send(hospital, ct)
        send(hospital, mr)
        ct_uid, mr_uid = ct[0].StudyInstanceUID, mr[0].StudyInstanceUID
        web = client(hospital.tech)

        def uids(**filters: Any) -> set[str]:
            return {value(s, "0020000D") for s in web.search_for_studies(search_filters=filters)}

        assert uids(PatientID="P-MATCH-1") == {ct_uid, mr_uid}
        assert uids(PatientName="zhang^wei") == {ct_uid, mr_uid}  # case-insensitive
        assert uids(PatientName="ZHA*") == {ct_uid, mr_uid}
        assert uids(PatientName="Zh?ng^W*") == {ct_uid, mr_uid}
        assert uids(PatientName="张^伟") == {ct_uid, mr_uid}  # the ideographic group
        assert uids(PatientName="张*") == {ct_uid, mr_uid}
        assert uids(PatientName="wei") == set()
        assert uids(PatientName="wei", fuzzymatching="true") == {ct_uid, mr_uid}
        assert uids(PatientName="伟", fuzzymatching="true") == {ct_uid, mr_uid}
        assert uids(PatientName="Li*") == set()
        assert uids(StudyDate="20240101-20241231") == {ct_uid}
        assert uids(StudyDate="20250101-", PatientID="P-MATCH-1") == {mr_uid}
        assert uids(StudyDate="-20240105", PatientID="P-MATCH-1") == {ct_uid}
        assert uids(StudyDate="20240105", StudyTime="1000-1100") == {ct_uid}
        assert uids(StudyDate="20240105", StudyTime="1100-") == set()
        assert uids(ModalitiesInStudy="MR", PatientID="P-MATCH-1") == {mr_uid}
        assert uids(ModalitiesInStudy="CT,MR", PatientID="P-MATCH-1") == {ct_uid, mr_uid}
        assert uids(AccessionNumber=ct[0].AccessionNumber) == {ct_uid}
        assert uids(StudyInstanceUID=f"{ct_uid},{mr_uid}") == {ct_uid, mr_uid}
        assert uids(StudyDescription="*急诊筛查*") == {ct_uid}
        assert uids(StudyDescription="CT HEAD*") == {ct_uid}

    def test_chinese_name_comes_back_as_unicode_groups(self, world: World) -> None:
        hospital = world.hospital()
        patient = person("Chen^Jing=陈^静", "P-ZH-2")
        send(hospital, study("CR", slices=1, patient=patient, charset="GB18030"))
        found = client(hospital.tech).search_for_studies(search_filters={"PatientName": "陈*"})
        assert len(found) == 1
        name = found[0]["00100010"]["Value"][0]
        assert name["Alphabetic"] == "Chen^Jing"
        assert name["Ideographic"] == "陈^静"

    def test_includefield_limit_offset_and_warnings(self, world: World) -> None:
        hospital = world.hospital()
        patient = person("Li^Na=李^娜", "P-PAGE-3")
        for _ in range(3):
            send(hospital, study("CR", slices=1, patient=patient))
        api = hospital.tech
        r = api.get(
            "/dicomweb/studies",
            params={"PatientID": "P-PAGE-3", "limit": 2, "includefield": "BodyPartExamined"},
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith(DICOM_JSON)
        assert len(r.json()) == 2
        assert any("offset=2" in w for w in r.headers.get_list("warning"))
        rest = api.get("/dicomweb/studies", params={"PatientID": "P-PAGE-3", "offset": 2})
        assert len(rest.json()) == 1
        page = {value(s, "0020000D") for s in r.json()} | {value(rest.json()[0], "0020000D")}
        assert len(page) == 3
        with_all = api.get(
            "/dicomweb/studies", params={"PatientID": "P-PAGE-3", "includefield": "all"}
        ).json()
        assert "00081030" in with_all[0] and "00100021" in with_all[0]
        ignored = api.get(
            "/dicomweb/studies", params={"PatientID": "P-PAGE-3", "PatientWeight": "70"}
        )
        assert ignored.status_code == 200 and len(ignored.json()) == 3
        assert any("PatientWeight" in w for w in ignored.headers.get_list("warning"))
        for bad in ({"limit": "x"}, {"limit": "0"}, {"StudyDate": "2024"}, {"Nonsense": "1"}):
            r = api.get("/dicomweb/studies", params=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["message"]
        assert api.get("/dicomweb/studies", headers={"Accept": "text/html"}).status_code == 406

    def test_search_needs_a_token(self, server: Server) -> None:
        assert httpx.get(f"{server.url}/dicomweb/studies").status_code == 401


# --- WADO-RS ------------------------------------------------------------------------------


class TestRetrieve:
    def test_instances_series_and_study_byte_for_byte(self, world: World) -> None:
        hospital = world.hospital()
        datasets = study("CT", slices=3)
        send(hospital, datasets)
        web = client(hospital.tech)
        first = datasets[0]
        as_stored = [("application/dicom", "*")]
        got = web.retrieve_instance(
            first.StudyInstanceUID,
            first.SeriesInstanceUID,
            first.SOPInstanceUID,
            media_types=as_stored,
        )
        assert got.SOPInstanceUID == first.SOPInstanceUID
        assert got.PixelData == first.PixelData
        series = web.retrieve_series(
            first.StudyInstanceUID, first.SeriesInstanceUID, media_types=as_stored
        )
        assert sorted(ds.SOPInstanceUID for ds in series) == sorted(
            ds.SOPInstanceUID for ds in datasets
        )
        whole = web.retrieve_study(first.StudyInstanceUID, media_types=as_stored)
        sent = {ds.SOPInstanceUID: part10(ds) for ds in datasets}
        for ds in whole:
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            assert pydicom.dcmread(io.BytesIO(sent[ds.SOPInstanceUID])).PixelData == ds.PixelData

    def test_raw_multipart_is_the_stored_file(self, world: World, server: Server) -> None:
        hospital = world.hospital()
        datasets = study("CR", slices=1)
        send(hospital, datasets)
        ds = datasets[0]
        url = (
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        r = hospital.tech.get(
            url,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("multipart/related")
        stored = next((server.storage_root / f"h{hospital.id}").rglob(f"{ds.SOPInstanceUID}.*"))
        assert stored.read_bytes() in r.content
        single = hospital.tech.get(url, headers={"Accept": "application/dicom"})
        assert single.status_code == 200
        # An explicit application/dicom without transfer-syntax means Explicit VR Little Endian
        # (PS3.18), which is how synth stores it: the file as is, with byte ranges.
        assert single.content == stored.read_bytes()
        part = hospital.tech.get(
            url, headers={"Accept": "application/dicom", "Range": "bytes=128-131"}
        )
        assert part.status_code == 206 and part.content == b"DICM"

    def test_transcoding_when_asked_for_another_syntax(self, world: World) -> None:
        hospital = world.hospital()
        [ds] = send_files(hospital, [data_file("JPEG2000.dcm")])
        web = client(hospital.tech)
        got = web.retrieve_instance(
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
            media_types=[("application/dicom", ExplicitVRLittleEndian)],
        )
        assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        original = pydicom.dcmread(data_file("JPEG2000.dcm"))
        assert (got.pixel_array == original.pixel_array).all()

    def test_metadata_matches_pydicom(self, world: World, server: Server) -> None:
        hospital = world.hospital()
        datasets = study("MR", slices=2)
        send(hospital, datasets)
        web = client(hospital.tech)
        first = datasets[0]
        metadata = web.retrieve_series_metadata(first.StudyInstanceUID, first.SeriesInstanceUID)
        assert len(metadata) == 2
        by_sop = {value(m, "00080018"): m for m in metadata}
        for ds in datasets:
            stored = pydicom.dcmread(io.BytesIO(part10(ds)))
            expected = without_bulk(stored.to_json_dict(bulk_data_threshold=1024))
            got = dict(by_sop[ds.SOPInstanceUID])
            assert got.pop("00083002")["Value"] == [str(stored.file_meta.TransferSyntaxUID)]
            assert without_bulk(got) == expected
            uri = got["7FE00010"]["BulkDataURI"]
            assert uri.startswith(f"{server.url}/dicomweb/studies/{ds.StudyInstanceUID}/series/")
        study_meta = web.retrieve_study_metadata(first.StudyInstanceUID)
        assert len(study_meta) == 2
        one = web.retrieve_instance_metadata(
            first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID
        )
        assert value(one, "00080018") == first.SOPInstanceUID

    def test_pixel_bulk_data(self, world: World) -> None:
        hospital = world.hospital()
        datasets = study("CT", slices=1)
        send(hospital, datasets)
        ds = datasets[0]
        web = client(hospital.tech)
        meta = web.retrieve_instance_metadata(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        )
        uri = meta["7FE00010"]["BulkDataURI"]
        [data] = web.retrieve_bulkdata(uri)
        assert data == ds.PixelData

    def test_metadata_is_gzipped_and_cached(self, world: World) -> None:
        hospital = world.hospital()
        datasets = study("CT", slices=4)
        send(hospital, datasets)
        first = datasets[0]
        url = f"/dicomweb/studies/{first.StudyInstanceUID}/metadata"
        raw = httpx.get(
            hospital.tech.server.url + url,
            headers={
                "Authorization": f"Bearer {hospital.tech.token}",
                "Accept-Encoding": "gzip",
            },
        )
        assert raw.headers["content-encoding"] == "gzip"
        assert len(json.loads(raw.content)) == 4  # httpx inflates it
        tag = raw.headers["etag"]
        assert tag.startswith('"')  # strong
        again = hospital.tech.get(url, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == tag


# --- frames -------------------------------------------------------------------------------


def _frames_of(path: Path) -> tuple[Dataset, list[bytes]]:
    ds = pydicom.dcmread(path)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return ds, list(generate_frames(ds.PixelData, number_of_frames=n))


class TestFrames:
    @pytest.mark.parametrize(
        ("name", "syntax", "media"),
        [
            ("SC_rgb_jpeg_dcmtk.dcm", JPEGBaseline8Bit, "image/jpeg"),
            ("JPEG2000.dcm", JPEG2000, "image/jp2"),
            ("MR_small_jp2klossless.dcm", JPEG2000Lossless, "image/jp2"),
            ("emri_small_jpeg_ls_lossless.dcm", JPEGLSLossless, "image/jls"),
            ("emri_small_RLE.dcm", RLELossless, "image/dicom-rle"),
        ],
    )
    def test_compressed_frames_as_stored(
        self, world: World, name: str, syntax: str, media: str
    ) -> None:
        hospital = world.hospital()
        [ds] = send_files(hospital, [data_file(name)])
        original, frames = _frames_of(data_file(name))
        assert original.file_meta.TransferSyntaxUID == syntax
        web = client(hospital.tech)
        numbers = [1, len(frames)] if len(frames) > 1 else [1]
        got = web.retrieve_instance_frames(
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
            frame_numbers=numbers,
            media_types=[("application/octet-stream", "*")],
        )
        assert got == [frames[n - 1] for n in numbers]
        as_image = web.retrieve_instance_frames(
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.SOPInstanceUID,
            frame_numbers=[1],
            media_types=[(media,)],
        )
        assert as_image == [frames[0]]
        # Uncompressed on request: decoded with pydicom's codecs.
        [native] = web.retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
        )
        expected = original.pixel_array
        first = expected[0] if len(frames) > 1 else expected
        if original.PhotometricInterpretation.startswith("YBR") or original.SamplesPerPixel == 3:
            assert len(native) == first.size * first.itemsize
        else:
            assert native == first.astype(first.dtype.newbyteorder("<")).tobytes()

    def test_uncompressed_frames_and_errors(self, world: World) -> None:
        hospital = world.hospital()
        [ds] = send_files(hospital, [data_file("emri_small.dcm")])
        original = pydicom.dcmread(data_file("emri_small.dcm"))
        web = client(hospital.tech)
        got = web.retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[2, 10]
        )
        assert got == [original.pixel_array[1].tobytes(), original.pixel_array[9].tobytes()]
        base = (
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/frames"
        )
        api = hospital.tech
        assert api.get(f"{base}/11").status_code == 404
        assert api.get(f"{base}/0").status_code == 400
        assert api.get(f"{base}/x").status_code == 400
        r = api.get(f"{base}/1", headers={"Accept": 'multipart/related; type="image/jpeg"'})
        assert r.status_code == 406 and "application/octet-stream" in r.json()["message"]
        ok = api.get(f"{base}/1")
        tag = ok.headers["etag"]
        assert "immutable" in ok.headers["cache-control"]
        assert api.get(f"{base}/1", headers={"If-None-Match": tag}).status_code == 304

    def test_big_endian_frames_come_little_endian(self, world: World) -> None:
        hospital = world.hospital()
        [ds] = send_files(hospital, [data_file("MR_small_bigendian.dcm")])
        original = pydicom.dcmread(data_file("MR_small_bigendian.dcm"))
        [frame] = client(hospital.tech).retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
        )
        assert frame == original.pixel_array.astype("<i2").tobytes()


# --- rendered, thumbnails, WADO-URI -------------------------------------------------------


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


class TestRendered:
    def test_rendered_frame_window_and_viewport(self, world: World) -> None:
        hospital = world.hospital()
        datasets = study("CT", slices=1, size=64)
        send(hospital, datasets)
        ds = datasets[0]
        web = client(hospital.tech)
        jpeg = web.retrieve_instance_frames_rendered(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
        )
        assert jpeg[:2] == b"\xff\xd8" and _image(jpeg).size == (64, 64)
        base = (
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )
        api = hospital.tech
        png = api.get(
            f"{base}/rendered",
            params={"viewport": "32,16"},
            headers={"Accept": "image/png"},
        )
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert _image(png.content).size == (16, 16)
        black = api.get(
            f"{base}/frames/1/rendered",
            params={"window": "100000,10"},
            headers={"Accept": "image/png"},
        )
        assert _image(black.content).getextrema() == (0, 0)
        white = api.get(
            f"{base}/frames/1/rendered",
            params={"window": "-100000,10"},
            headers={"Accept": "image/png"},
        )
        assert _image(white.content).getextrema() == (255, 255)
        assert api.get(f"{base}/rendered", params={"window": "a,b"}).status_code == 400
        assert api.get(f"{base}/rendered", params={"quality": "0"}).status_code == 400
        assert api.get(f"{base}/rendered", headers={"Accept": "text/plain"}).status_code == 406

    def test_monochrome1_renders_inverted(self, world: World) -> None:
        hospital = world.hospital()
        mono2 = study("CR", slices=1, size=32)[0]
        mono1 = pydicom.dcmread(io.BytesIO(part10(mono2)))
        mono1.PhotometricInterpretation = "MONOCHROME1"
        mono1.SOPInstanceUID = generate_uid()
        mono1.file_meta.MediaStorageSOPInstanceUID = mono1.SOPInstanceUID
        send(hospital, [mono2, mono1])
        images = []
        for ds in (mono2, mono1):
            r = hospital.tech.get(
                f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                f"/instances/{ds.SOPInstanceUID}/rendered",
                params={"window": "500,1000"},
                headers={"Accept": "image/png"},
            )
            assert r.status_code == 200
            images.append(_image(r.content).convert("L").tobytes())
        assert images[0] != images[1]
        assert all(a + b == 255 for a, b in zip(*images, strict=True))

    def test_thumbnails_and_series_rendered(self, world: World) -> None:
        hospital = world.hospital()
        datasets = study("MR", slices=3, size=48)
        send(hospital, datasets)
        ds = datasets[0]
        api = hospital.tech
        for url in (
            f"/dicomweb/studies/{ds.StudyInstanceUID}/thumbnail",
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/thumbnail",
            f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}/thumbnail",
        ):
            r = api.get(url, params={"viewport": "24,24"})
            assert r.status_code == 200, (url, r.text)
            assert r.headers["content-type"] == "image/jpeg"
            assert _image(r.content).size == (24, 24)
        rendered = client(api).retrieve_series_rendered(ds.StudyInstanceUID, ds.SeriesInstanceUID)
        assert rendered[:2] == b"\xff\xd8"

    def test_wado_uri(self, world: World, server: Server) -> None:
        hospital = world.hospital()
        datasets = study("CR", slices=1, size=40)
        send(hospital, datasets)
        ds = datasets[0]
        params = {
            "requestType": "WADO",
            "studyUID": ds.StudyInstanceUID,
            "seriesUID": ds.SeriesInstanceUID,
            "objectUID": ds.SOPInstanceUID,
        }
        api = hospital.tech
        jpeg = api.get("/wado", params=params)
        assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
        small = api.get("/wado", params={**params, "rows": "20", "columns": "20"})
        assert _image(small.content).size == (20, 20)
        dicom = api.get("/wado", params={**params, "contentType": "application/dicom"})
        stored = next((server.storage_root / f"h{hospital.id}").rglob(f"{ds.SOPInstanceUID}.*"))
        assert dicom.content == stored.read_bytes()
        assert api.get("/wado", params={**params, "requestType": "X"}).status_code == 400
        assert api.get("/wado", params={**params, "contentType": "text/html"}).status_code == 406
        other = world.hospital()
        assert other.tech.get("/wado", params=params).status_code == 404


# --- scope and priors ---------------------------------------------------------------------


def _paths(ds: Dataset) -> list[str]:
    instance = (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    return [
        f"/dicomweb/studies/{ds.StudyInstanceUID}",
        f"/dicomweb/studies/{ds.StudyInstanceUID}/metadata",
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series",
        instance,
        f"{instance}/metadata",
        f"{instance}/frames/1",
        f"{instance}/rendered",
        f"/dicomweb/studies/{ds.StudyInstanceUID}/thumbnail",
    ]


def _case_id(api: Api, study_uid: str) -> int:
    r = api.get("/api/cases", params={"limit": 500})
    return next(c["id"] for c in r.json()["items"] if c["study_instance_uid"] == study_uid)


class TestScope:
    def test_each_role(self, world: World, server: Server) -> None:
        hospital, other = world.hospital(), world.hospital()
        patient = person("Li^Na=李^娜", "P-SCOPE-1")
        prior = study("CT", slices=1, patient=patient)
        current = study("CT", slices=1, patient=patient)
        later = study("CT", slices=1, patient=patient)
        for ds, date in ((prior, "20230101"), (current, "20240101"), (later, "20250101")):
            for d in ds:
                d.StudyDate = date
            send(hospital, ds)
        uids = [s[0].StudyInstanceUID for s in (prior, current, later)]
        coordinator = world.signed_in("coordinator")
        reader, bystander = world.signed_in("radiologist"), world.signed_in("radiologist")

        def visible(api: Api) -> set[str]:
            found = client(api).search_for_studies(search_filters={"PatientID": "P-SCOPE-1"})
            return {value(s, "0020000D") for s in found}

        assert visible(hospital.tech) == set(uids)
        assert visible(coordinator) == set(uids)
        assert visible(world.admin) == set(uids)
        assert visible(other.tech) == set()
        assert visible(reader) == set()
        for path in _paths(current[0]):
            assert other.tech.get(path).status_code == 404, path
            assert reader.get(path).status_code == 404, path
            assert coordinator.get(path).status_code == 200, path

        case_id = _case_id(coordinator, uids[1])
        me = reader.get("/api/me").json()
        r = coordinator.post(
            f"/api/cases/{case_id}/assignments", json={"reader_id": me["id"], "reason": "test"}
        )
        assert r.status_code == 200, r.text
        # The assigned case and its prior, not the patient's later study nor other readers.
        assert visible(reader) == {uids[0], uids[1]}
        assert visible(bystander) == set()
        for path in _paths(current[0]) + _paths(prior[0]):
            assert reader.get(path).status_code == 200, path
        for path in _paths(later[0]):
            assert reader.get(path).status_code == 404, path
        assert reader.get(f"/api/cases/{case_id}").status_code == 200
        priors = reader.get(f"/api/cases/{case_id}/priors")
        assert [p["study_instance_uid"] for p in priors.json()] == [uids[0]]

        # Reassigned: the first reader loses the case and its priors at once.
        them = bystander.get("/api/me").json()
        r = coordinator.post(f"/api/cases/{case_id}/assignments", json={"reader_id": them["id"]})
        assert r.status_code == 200
        assert visible(reader) == set()
        assert visible(bystander) == {uids[0], uids[1]}
        assert tech_cannot_assign(hospital.tech, case_id, them["id"])

    def test_priors_api(self, world: World) -> None:
        hospital = world.hospital()
        patient = person("Li^Na=李^娜", "P-PRIOR-2")
        studies = []
        for date in ("20200101", "20220101", "20240101"):
            datasets = study("MR", slices=1, patient=patient)
            for d in datasets:
                d.StudyDate = date
            send(hospital, datasets)
            studies.append(datasets[0].StudyInstanceUID)
        someone_else = study("MR", slices=1)
        send(hospital, someone_else)
        api = hospital.tech
        r = api.get(f"/api/cases/{_case_id(api, studies[2])}/priors")
        assert r.status_code == 200
        assert [p["study_instance_uid"] for p in r.json()] == [studies[1], studies[0]]
        assert r.json()[0]["case_id"] == _case_id(api, studies[1])
        first = api.get(f"/api/cases/{_case_id(api, studies[0])}/priors")
        assert first.json() == []
        assert (
            world.hospital().tech.get(f"/api/cases/{_case_id(api, studies[2])}/priors").status_code
            == 404
        )

    def test_reads_are_audited(self, world: World, server: Server) -> None:
        hospital = world.hospital()
        datasets = study("CR", slices=1)
        send(hospital, datasets)
        ds = datasets[0]
        for path in _paths(ds):
            assert hospital.tech.get(path).status_code == 200
        admin = world.admin
        # The access log is written in the background every couple of seconds.

        def audited() -> set[str]:
            r = admin.get("/api/audit", params={"hospital_id": hospital.id, "limit": 200})
            assert r.status_code == 200, r.text
            return {e["action"] for e in r.json()["items"]}

        wait_until(
            lambda: (
                {
                    "dicomweb.retrieve",
                    "dicomweb.metadata",
                    "dicomweb.frames",
                    "dicomweb.rendered",
                }
                <= audited()
            ),
            what="DICOMweb reads in the audit trail",
        )


def tech_cannot_assign(tech: Api, case_id: int, reader_id: int) -> bool:
    r = tech.post(f"/api/cases/{case_id}/assignments", json={"reader_id": reader_id})
    return r.status_code == 403


def test_index_job_fills_metadata_ahead_of_the_reader(world: World) -> None:
    """The upload completes the case; its case_ready job queues index_study, which computes
    the metadata before anyone asks: the first metadata read is then not audited as computing
    anything, and the admin trail shows no on-demand work. Observable through the index: the
    instance search returns BitsAllocated only for objects whose metadata is stored."""
    hospital = world.hospital()
    datasets = study("CT", slices=3)
    send(hospital, datasets)
    web = client(hospital.tech)
    first = datasets[0]

    def indexed() -> bool:
        found = web.search_for_instances(first.StudyInstanceUID, first.SeriesInstanceUID)
        return len(found) == 3 and all(value(i, "00280100") == 16 for i in found)

    wait_until(indexed, timeout=30, what="metadata indexed by the job")
