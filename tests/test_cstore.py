"""The DICOM gateway as modalities and PACS use it: C-ECHO and C-STORE from pynetdicom and
dcmtk's storescu/echoscu against the real ``radrelay serve``, checked through the API (cases,
timelines, tenant scope) and on disk (every stored file byte for byte)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)
from pynetdicom import AE, _config
from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode, split_dataset
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy.exc import DBAPIError

import helpers
from conftest import Hospital, Server, World, wait_until
from radrelay import synth
from radrelay.cases.schemas import Source
from radrelay.config import Settings
from radrelay.hospitals.service import CallingAE, hospitals
from radrelay.ingest.gateway import _GroupCommit
from radrelay.ingest.prepare import Prepared, Received
from radrelay.ingest.schemas import Outcome
from radrelay.ingest.service import Origin, ingest
from radrelay.kit.runtime import Runtime

CALLED_AE = "RADRELAY"
# dcmtk's tools by path: pynetdicom installs its own storescu and echoscu into the venv's bin.
DCMTK_STORESCU = "/usr/bin/storescu"
DCMTK_ECHOSCU = "/usr/bin/echoscu"
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

DicomObject = Dataset | Path


# --- sending ------------------------------------------------------------------------------------


@pytest.fixture
def send_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    """pynetdicom sends a file's data set bytes exactly as they are (no decode and re-encode), so
    what the gateway stores can be compared with the file, and broken files reach it broken.
    monkeypatch puts the process-wide setting back for the tests that follow."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)


def _context_of(obj: DicomObject) -> tuple[str, str]:
    if isinstance(obj, Dataset):
        return str(obj.SOPClassUID), str(obj.file_meta.TransferSyntaxUID)
    meta, _ = split_dataset(obj)
    return str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)


def _scu(calling: str, contexts: dict[str, set[str]]) -> AE:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for sop_class, syntaxes in contexts.items():
        # Exactly the syntaxes the objects are encoded in: the gateway must take them as they are.
        ae.add_requested_context(sop_class, sorted(syntaxes))
    return ae


@contextlib.contextmanager
def association(
    server: Server, calling: str, objects: Sequence[DicomObject] = ()
) -> Iterator[Association]:
    """An established association able to send ``objects`` (each in its own transfer syntax)."""
    contexts: dict[str, set[str]] = {}
    for obj in objects:
        sop_class, syntax = _context_of(obj)
        contexts.setdefault(sop_class, set()).add(syntax)
    if not contexts:
        contexts = {Verification: {ImplicitVRLittleEndian}}
    ae = _scu(calling, contexts)
    assoc = helpers.requests_only(ae.associate("127.0.0.1", server.dicom_port, ae_title=CALLED_AE))
    try:
        assert assoc.is_established, f"association from {calling} was not accepted"
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
        ae.shutdown()


def status_of(rsp: Dataset) -> int | None:
    """The C-STORE response status, None when no response came (aborted association)."""
    return int(rsp.Status) if "Status" in rsp else None


def store(server: Server, calling: str, objects: Sequence[DicomObject]) -> list[int | None]:
    """Send the objects over one association; one status per object, in order."""
    with association(server, calling, objects) as assoc:
        return [status_of(assoc.send_c_store(obj)) for obj in objects]


def storescu(server: Server, hospital: Hospital, *args: str) -> None:
    """dcmtk's storescu from the hospital's AE title, as a site's script runs it."""
    r = subprocess.run(
        [
            *(DCMTK_STORESCU, "-aec", CALLED_AE, "-aet", hospital.ae_title),
            *("127.0.0.1", str(server.dicom_port), *args),
        ],
        env={**os.environ, "TCP_NODELAY": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def store_pdus(
    assoc: Association, ds: Dataset, data: bytes, message_id: int, max_pdu: int
) -> Iterator[Any]:
    """The P-DATA PDUs of one C-STORE request, for a test to send at its own pace."""
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = ds.SOPClassUID
    request.AffectedSOPInstanceUID = ds.SOPInstanceUID
    request.Priority = 2
    request.DataSet = io.BytesIO(data)
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    (cx,) = assoc.accepted_contexts
    return message.encode_msg(cx.context_id, max_pdu)  # type: ignore[no-any-return]


@contextlib.contextmanager
def reactor_paused(assoc: Association) -> Iterator[None]:
    """Keep the association's own thread off its message queue, as pynetdicom's ``send_*``
    methods do, while a test reads a response itself: else that thread may take the response
    first and drop it ("Received unexpected C-STORE service message")."""
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.0001)
    try:
        yield
    finally:
        assoc._reactor_checkpoint.set()


# --- what was stored ---------------------------------------------------------------------------


def dataset_bytes(path: Path) -> bytes:
    """The bytes after the file meta header: what the sender's C-STORE carried."""
    _, offset = split_dataset(path)
    with path.open("rb") as fp:
        fp.seek(offset)
        return fp.read()


def expected_key(server: Server, hospital: Hospital, source: Path) -> Path:
    """Where the gateway must keep ``source``: h{hospital}/{study}/{series}/{sop}.{sha[:16]}.dcm,
    the digest taken over the data set bytes as sent."""
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    sha = hashlib.sha256(dataset_bytes(source)).hexdigest()
    return (
        server.storage_root
        / f"h{hospital.id}"
        / ds.StudyInstanceUID
        / ds.SeriesInstanceUID
        / f"{ds.SOPInstanceUID}.{sha[:16]}.dcm"
    )


def assert_stored_exactly(server: Server, hospital: Hospital, sources: Sequence[Path]) -> None:
    """Each source is stored under its key with its data set bytes unchanged, and the hospital's
    storage holds nothing else."""
    expected = []
    for source in sources:
        key = expected_key(server, hospital, source)
        assert key.is_file(), f"{source.name} is not stored as {key}"
        assert dataset_bytes(key) == dataset_bytes(source), f"{key.name} differs from what was sent"
        expected.append(key)
    assert helpers.stored_files(server, hospital) == sorted(expected)


# --- what the API shows ------------------------------------------------------------------------


def cases_of(hospital: Hospital) -> list[dict[str, Any]]:
    r = hospital.tech.get("/api/cases", params={"limit": 500})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["items"])
    return body["items"]  # type: ignore[no-any-return]


def case_of(hospital: Hospital, study_uid: str) -> dict[str, Any]:
    """The hospital's one case for the study, with its timeline."""
    found = [c for c in cases_of(hospital) if c["study_instance_uid"] == study_uid]
    assert len(found) == 1, f"expected one case for {study_uid}, got {found}"
    r = hospital.tech.get(f"/api/cases/{found[0]['id']}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def kinds(case: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in case["events"]]


# --- tests -------------------------------------------------------------------------------------


class TestEcho:
    """Verification is how a site checks its configuration before sending anything; it must pass
    for registered AE titles and name the reason for everyone else."""

    def test_registered_ae_echoes_with_pynetdicom_and_echoscu(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        with association(server, hospital.ae_title) as assoc:
            assert status_of(assoc.send_c_echo()) == SUCCESS
        r = echoscu(server, hospital.ae_title)
        assert r.returncode == 0, r.stderr
        assert "Received Echo Response (Success)" in r.stderr

    def test_unknown_calling_ae_is_rejected_with_the_reason(self, server: Server) -> None:
        # PS3.8 9.3.4: rejected-permanent, by the service user, calling AE not recognised.
        assert rejection(server, f"NOBODY{generate_uid()[-6:]}") == CALLING_AE_NOT_RECOGNISED

    def test_unknown_calling_ae_is_rejected_for_echoscu(self, server: Server) -> None:
        r = echoscu(server, "NOBODY")
        assert r.returncode != 0
        assert "Association Rejected" in r.stderr
        assert "Result: Rejected Permanent, Source: Service User" in r.stderr
        assert "Reason: Calling AE Title Not Recognized" in r.stderr

    def test_wrong_called_ae_is_rejected(self, server: Server, world: World) -> None:
        """A sender configured with another destination's AE title must find out at once rather
        than deliver studies to the wrong place."""
        hospital = world.hospital()
        assert rejection(server, hospital.ae_title, called="NOTRADRELAY") == (0x01, 0x01, 0x07)


CALLING_AE_NOT_RECOGNISED = (0x01, 0x01, 0x03)


def rejection(server: Server, calling: str, called: str = CALLED_AE) -> tuple[int, int, int] | None:
    """(result, source, diagnostic) of the A-ASSOCIATE-RJ, None if the association was accepted."""
    ae = _scu(calling, {Verification: {ImplicitVRLittleEndian}})
    try:
        assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=called)
        if assoc.is_established:
            assoc.release()
            return None
        assert assoc.is_rejected, "neither accepted nor rejected (aborted?)"
        rj = assoc.acceptor.primitive
        return (rj.result, rj.result_source, rj.diagnostic)
    finally:
        ae.shutdown()


def echoscu(server: Server, calling: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            DCMTK_ECHOSCU,
            "-v",
            "-aec",
            CALLED_AE,
            "-aet",
            calling,
            "127.0.0.1",
            str(server.dicom_port),
        ],
        env={**os.environ, "TCP_NODELAY": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestSourceAddresses:
    """An AE title is easily copied; a hospital that registers its networks is only accepted
    from them."""

    def test_ae_outside_its_registered_networks_is_rejected(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital(source_addresses=["10.99.0.0/16"])
        assert rejection(server, hospital.ae_title) == CALLING_AE_NOT_RECOGNISED

    def test_ae_inside_its_registered_network_is_accepted(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital(source_addresses=["127.0.0.1/32"])
        assert rejection(server, hospital.ae_title) is None
        with association(server, hospital.ae_title) as assoc:
            assert status_of(assoc.send_c_echo()) == SUCCESS


class TestStoreWithPynetdicom:
    """The common case: a PACS pushes a series; a case opens with exact counts and the images
    are kept exactly as sent (they are diagnostic material)."""

    def test_ct_series_opens_a_case_and_is_stored_byte_exact(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=4, size=32)
        # pynetdicom encodes each data set as pydicom writes it: the files are the reference.
        sources = helpers.write(datasets, tmp_path)
        assert store(server, hospital.ae_title, datasets) == [SUCCESS] * 4

        case = case_of(hospital, datasets[0].StudyInstanceUID)
        assert case["hospital_id"] == hospital.id
        assert case["source"] == "cstore"
        assert case["status"] in ("receiving", "ready")
        assert (case["number_of_series"], case["number_of_instances"]) == (1, 4)
        assert case["modalities"] == ["CT"]
        assert case["flags"] == []
        assert "received" in kinds(case)
        assert_stored_exactly(server, hospital, sources)


class TestStorescu:
    """dcmtk's storescu is what many sites script their sends with."""

    def test_folder_is_stored_and_indexed(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=3, size=32) + helpers.study("MR", slices=2, size=32)
        sources = helpers.write(datasets[:3], tmp_path / "ct") + helpers.write(
            datasets[3:], tmp_path / "mr"
        )
        storescu(server, hospital, "+sd", "+r", str(tmp_path))

        ct = case_of(hospital, datasets[0].StudyInstanceUID)
        mr = case_of(hospital, datasets[3].StudyInstanceUID)
        assert (ct["number_of_instances"], ct["modalities"]) == (3, ["CT"])
        assert (mr["number_of_instances"], mr["modalities"]) == (2, ["MR"])
        assert len(cases_of(hospital)) == 2
        assert_stored_exactly(server, hospital, sources)

    def test_objects_in_small_pdus_are_stored_exactly(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        """Some PACS cap their PDUs at a few KiB: each object then arrives as dozens of PDUs,
        one read of the gateway's transport loop each, back to back."""
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=6, size=256)  # 128 KiB of pixels: 33 PDUs each
        sources = helpers.write(datasets, tmp_path / "ct")
        storescu(server, hospital, "--max-send-pdu", "4096", "+sd", str(tmp_path / "ct"))
        assert case_of(hospital, datasets[0].StudyInstanceUID)["number_of_instances"] == 6
        assert_stored_exactly(server, hospital, sources)


class TestSlowLink:
    """A township hospital's uplink stalls: the gateway waits for each piece instead of polling
    for it, and a stall longer than its waits must not lose, reorder or end anything."""

    def test_object_arriving_in_pieces_with_pauses_is_stored(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        ds, second = helpers.study("CT", slices=2, size=128)
        sources = helpers.write([ds, second], tmp_path)
        with association(server, hospital.ae_title, [ds]) as assoc:
            pdus = list(store_pdus(assoc, ds, dataset_bytes(sources[0]), 7, 8 * 1024))
            assert len(pdus) > 4
            with reactor_paused(assoc):
                for i, pdu in enumerate(pdus):
                    if i in (1, 2, len(pdus) - 1):  # after the command, mid-data, before the last
                        time.sleep(0.3)
                    assoc.dul.send_pdu(pdu)
                _, response = assoc.dimse.get_msg(block=True)
            assert response is not None, "no C-STORE response"
            assert (response.MessageIDBeingRespondedTo, response.Status) == (7, SUCCESS)
            # The association goes on after a quiet spell.
            time.sleep(0.3)
            assert status_of(assoc.send_c_store(second)) == SUCCESS
        assert case_of(hospital, ds.StudyInstanceUID)["number_of_instances"] == 2
        assert_stored_exactly(server, hospital, sources)


TRANSFER_SYNTAXES = [
    ("SC_rgb_jpeg_dcmtk.dcm", JPEGBaseline8Bit),
    ("SC_rgb_jpeg_gdcm.dcm", JPEGLosslessSV1),
    ("JPEGLSNearLossless_16.dcm", JPEGLSNearLossless),
    ("emri_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    ("JPEG2000.dcm", JPEG2000),
    ("MR_small_RLE.dcm", RLELossless),
    ("image_dfl.dcm", DeflatedExplicitVRLittleEndian),
    ("MR_small_implicit.dcm", ImplicitVRLittleEndian),
    ("MR_small_bigendian.dcm", ExplicitVRBigEndian),
]


class TestTransferSyntaxes:
    """Hospitals send what their modality produced, often compressed; recompressing or
    decompressing would alter diagnostic images, so each syntax is accepted and kept as sent."""

    @pytest.mark.parametrize(
        ("name", "syntax"), TRANSFER_SYNTAXES, ids=[n for n, _ in TRANSFER_SYNTAXES]
    )
    def test_object_is_stored_in_its_own_syntax_byte_exact(
        self,
        server: Server,
        world: World,
        tmp_path: Path,
        send_raw: None,
        name: str,
        syntax: str,
    ) -> None:
        hospital = world.hospital()
        ds = helpers.renamed(helpers.testdata(name))
        assert ds.file_meta.TransferSyntaxUID == syntax
        source = tmp_path / name
        ds.save_as(source, enforce_file_format=True)

        with association(server, hospital.ae_title, [source]) as assoc:
            (cx,) = assoc.accepted_contexts
            assert cx.transfer_syntax == [syntax]
            assert status_of(assoc.send_c_store(source)) == SUCCESS

        case = case_of(hospital, ds.StudyInstanceUID)
        assert case["number_of_instances"] == 1
        assert_stored_exactly(server, hospital, [source])
        stored = pydicom.dcmread(expected_key(server, hospital, source))
        assert stored.file_meta.TransferSyntaxUID == syntax
        assert stored.SOPInstanceUID == ds.SOPInstanceUID


class TestResend:
    """Senders resend after timeouts and operators push a study twice; that must not double
    anything. A different object under a known UID is a sender bug that a radiologist should
    know about, and neither version may be thrown away."""

    def test_identical_resend_is_success_without_duplicate(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=3, size=32)
        sources = helpers.write(datasets, tmp_path)
        assert store(server, hospital.ae_title, datasets) == [SUCCESS] * 3
        # Again, on a new association, and once more within one association.
        assert store(server, hospital.ae_title, datasets) == [SUCCESS] * 3
        assert store(server, hospital.ae_title, datasets[:1] * 2) == [SUCCESS] * 2

        case = case_of(hospital, datasets[0].StudyInstanceUID)
        assert case["number_of_instances"] == 3
        assert "sop_conflict" not in case["flags"]
        assert len(cases_of(hospital)) == 1
        assert_stored_exactly(server, hospital, sources)

    def test_different_object_under_same_uid_is_kept_and_flagged(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=2, size=32)
        sources = helpers.write(datasets, tmp_path / "first")
        assert store(server, hospital.ae_title, datasets) == [SUCCESS] * 2

        changed = pydicom.dcmread(sources[0])
        changed.SeriesDescription = "re-sent with another description"
        pixels = bytearray(changed.PixelData)
        pixels[0] ^= 0xFF
        changed.PixelData = bytes(pixels)
        (other,) = helpers.write([changed], tmp_path / "second")
        assert store(server, hospital.ae_title, [changed]) == [SUCCESS]

        case = case_of(hospital, datasets[0].StudyInstanceUID)
        assert "sop_conflict" in case["flags"]
        assert "sop_conflict" in kinds(case)
        conflict = next(e for e in case["events"] if e["kind"] == "sop_conflict")
        assert conflict["detail"]["sop_instance_uids"] == [datasets[0].SOPInstanceUID]
        assert_stored_exactly(server, hospital, [*sources, other])


class TestOddValues:
    """Values real devices send although the standard bounds them: the object is kept."""

    def test_instance_number_beyond_32_bits_is_stored_without_it(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        """PS3.5 bounds IS to a signed 32-bit integer, and so are the index columns; some
        modalities number instances with a timestamp. Refusing the object, or failing to index it
        (a "retry" the sender would repeat for ever), would lose it."""
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=2, size=32)
        datasets[0].InstanceNumber = "20261207123"
        datasets[1].InstanceNumber = "-2147483649"
        sources = helpers.write(datasets, tmp_path)
        assert store(server, hospital.ae_title, sources) == [SUCCESS] * 2

        study_uid = datasets[0].StudyInstanceUID
        assert case_of(hospital, study_uid)["number_of_instances"] == 2
        assert_stored_exactly(server, hospital, sources)
        r = hospital.tech.get(f"/dicomweb/studies/{study_uid}/instances")
        assert r.status_code == 200, r.text
        assert [i["00200013"].get("Value") for i in r.json()] == [None, None]


class TestBadData:
    """A refused object gets the status that tells the sender whether to fix or retry it, and
    leaves nothing behind: no case, no row, no file."""

    # The invalid UID is on purpose; pydicom warns when it is set and written.
    @pytest.mark.filterwarnings("ignore:Invalid value for VR UI:UserWarning")
    def test_data_set_without_a_valid_required_uid_is_a900(
        self, server: Server, world: World, tmp_path: Path, send_raw: None
    ) -> None:
        """Files are sent raw, so the command still names the SOP class and instance (from the
        file meta) while the data set lacks them: the data set is what gets indexed."""
        hospital = world.hospital()
        objects: dict[str, DicomObject] = {}
        for keyword in ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"):
            ds = helpers.study("CT", slices=1, size=32)[0]
            delattr(ds, keyword)
            (objects[f"no {keyword}"],) = helpers.write([ds], tmp_path / keyword)
        invalid = helpers.study("CT", slices=1, size=32)[0]
        invalid.StudyInstanceUID = "1.2.840.not-a-uid"
        objects["invalid StudyInstanceUID"] = invalid
        # And one encoded by pynetdicom itself, as most SCUs send.
        encoded = helpers.study("CT", slices=1, size=32)[0]
        del encoded.StudyInstanceUID
        objects["no StudyInstanceUID, encoded by the SCU"] = encoded

        statuses = store(server, hospital.ae_title, list(objects.values()))
        assert dict(zip(objects, statuses, strict=True)) == dict.fromkeys(
            objects, DATASET_DOES_NOT_MATCH
        )
        assert cases_of(hospital) == []
        assert helpers.stored_files(server, hospital) == []

    def test_unreadable_object_is_c000_and_the_association_goes_on(
        self, server: Server, world: World, tmp_path: Path, send_raw: None
    ) -> None:
        """pydicom reads a cut-off file without complaint; the gateway must not store half an
        image as if it were whole. One bad object must not cost the sender the rest."""
        hospital = world.hospital()
        bad: dict[str, Path] = {}
        for name in ("CT_small.dcm", "MR_small_implicit.dcm", "JPEG2000.dcm"):
            source = tmp_path / name
            helpers.renamed(helpers.testdata(name)).save_as(source, enforce_file_format=True)
            # Pixel Data is the last element of each and longer than this: the cut is inside its
            # value (inside the last fragment, before the delimiter, when encapsulated).
            source.write_bytes(source.read_bytes()[:-100])
            bad[f"{name} cut in Pixel Data"] = source
        header_cut = tmp_path / "header_cut.dcm"
        helpers.renamed(helpers.testdata("CT_small.dcm")).save_as(
            header_cut, enforce_file_format=True
        )
        whole = header_cut.read_bytes()
        # Only the tag and VR of Rows (0028,0010) are left: pydicom's element generator stops
        # quietly when fewer than 8 bytes remain.
        header_cut.write_bytes(whole[: whole.index(b"\x28\x00\x10\x00US") + 6])
        bad["CT_small.dcm cut in a header"] = header_cut
        datasets = helpers.study("CT", slices=1, size=32)
        (good,) = helpers.write(datasets, tmp_path / "good")
        garbage = tmp_path / "garbage.dcm"
        _, offset = split_dataset(good)
        # A valid file meta header (so the command can be built), then bytes that are no DICOM.
        garbage.write_bytes(good.read_bytes()[:offset] + b"\xff" * 64)
        bad["garbage after the file meta"] = garbage

        statuses = store(server, hospital.ae_title, [*bad.values(), good])
        assert dict(zip([*bad, "good"], statuses, strict=True)) == {
            **dict.fromkeys(bad, CANNOT_UNDERSTAND),
            "good": SUCCESS,
        }
        (case,) = cases_of(hospital)
        assert case["study_instance_uid"] == datasets[0].StudyInstanceUID
        assert case["number_of_instances"] == 1
        assert_stored_exactly(server, hospital, [good])


class TestOurFailure:
    """When we cannot keep an object, the sender must hear "out of resources, retry" (0xA700),
    not success and not "your object is bad": it keeps the object and sends it again."""

    def test_storage_failure_is_a700_and_a_retry_succeeds(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=2, size=32)
        sources = helpers.write(datasets, tmp_path)
        # A file where the hospital's storage folder belongs: every write for it fails, as on a
        # full or read-only disk, and no other hospital is affected.
        blocker = server.storage_root / f"h{hospital.id}"
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_bytes(b"")
        try:
            assert store(server, hospital.ae_title, datasets) == [OUT_OF_RESOURCES] * 2
            # Nothing indexed that has no file: no case either.
            assert cases_of(hospital) == []
        finally:
            blocker.unlink()

        assert store(server, hospital.ae_title, datasets) == [SUCCESS] * 2
        assert case_of(hospital, datasets[0].StudyInstanceUID)["number_of_instances"] == 2
        assert_stored_exactly(server, hospital, sources)


class TestAbortedTransfer:
    """Links to remote hospitals drop mid-transfer; each half-received object must vanish with its
    association instead of piling up on the server's disk, and nothing of it may be indexed."""

    def test_partial_object_is_discarded_when_the_association_aborts(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        ds = helpers.study("CT", slices=1, size=256)[0]
        receiving = server.data_dir / "tmp"

        def partial_files() -> list[Path]:
            return sorted(receiving.glob("cstore-*"))

        assert partial_files() == []
        with association(server, hospital.ae_title, [ds]) as assoc:
            # The command and the first 16 KiB of the data set, then the link "drops".
            pdus = store_pdus(assoc, ds, encode(ds, False, True), 1, 16 * 1024)
            for pdu in (next(pdus), next(pdus)):
                assoc.dul.send_pdu(pdu)
            wait_until(partial_files, timeout=10, what="the gateway to start receiving")
            assoc.abort()

        wait_until(lambda: partial_files() == [], timeout=10, what="the partial file to go")
        assert cases_of(hospital) == []
        assert helpers.stored_files(server, hospital) == []
        # The gateway itself is unharmed.
        assert store(server, hospital.ae_title, [ds]) == [SUCCESS]


class TestStableStudy:
    """A C-STORE sender never says a study is complete; quiet for the stable age means complete.
    Stragglers after that are real and must reach the same case, visibly."""

    def test_case_becomes_ready_then_counts_late_instances(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=4, size=32)
        study_uid = datasets[0].StudyInstanceUID
        assert store(server, hospital.ae_title, datasets[:3]) == [SUCCESS] * 3

        def ready() -> dict[str, Any] | None:
            case = case_of(hospital, study_uid)
            return case if case["status"] == "ready" else None

        case = wait_until(ready, timeout=20, what="the case to become ready")
        assert case["ready_at"] is not None
        assert kinds(case).count("ready") == 1
        assert case["late_instances"] == 0
        assert case["number_of_instances"] == 3

        assert store(server, hospital.ae_title, datasets[3:]) == [SUCCESS]
        late = case_of(hospital, study_uid)
        assert late["id"] == case["id"]
        assert late["status"] == "ready"
        assert late["late_instances"] == 1
        assert late["number_of_instances"] == 4
        assert kinds(late).count("late_instances") == 1
        assert kinds(late).count("ready") == 1
        assert len(cases_of(hospital)) == 1


NAME = "Zhang^Wei=张^伟"

# ISO 2022 IR 58 as PS3.5 (Annex K) encodes it: each ideographic component starts with the
# escape sequence that designates GB 2312 to G1. pydicom does not write these escapes, so the
# value is set as raw bytes.
IR58_NAME = b"Zhang^Wei=\x1b$)A\xd5\xc5^\x1b$)A\xce\xb0"


class TestChineseNames:
    """Most of our hospitals write names in Chinese with one of these character sets; a garbled
    name on a worklist risks a report on the wrong patient."""

    @pytest.mark.parametrize(
        ("charset", "raw_name"),
        [
            ("GB18030", None),
            ("GBK", None),
            ("ISO_IR 192", None),
            pytest.param("ISO 2022 IR 58", IR58_NAME, id="ISO 2022 IR 58"),
            # What synth (through pydicom) writes, and some devices send: GB 2312 bytes without
            # the escape sequence.
            pytest.param("ISO 2022 IR 58", None, id="ISO 2022 IR 58-bare"),
        ],
    )
    def test_patient_name_arrives_as_unicode(
        self, server: Server, world: World, charset: str, raw_name: bytes | None
    ) -> None:
        hospital = world.hospital()
        patient = synth.SynthPatient(
            name=NAME, patient_id=f"P{generate_uid()[-10:]}", birth_date="19650412", sex="M"
        )
        datasets = helpers.study("CT", slices=2, size=32, charset=charset, patient=patient)
        if raw_name is not None:
            for ds in datasets:
                ds.PatientName = raw_name
        assert store(server, hospital.ae_title, datasets) == [SUCCESS] * 2
        case = case_of(hospital, datasets[0].StudyInstanceUID)
        assert case["patient_name"] == NAME
        assert case["study_description"] == "CT 腹部增强 ABDOMEN W CONTRAST"


class TestTenantIsolation:
    """Hospitals share the gateway but never see each other's patients."""

    def test_instances_reach_only_the_calling_hospital(self, server: Server, world: World) -> None:
        a, b = world.hospital(), world.hospital()
        datasets = helpers.study("CT", slices=2, size=32)
        study_uid = datasets[0].StudyInstanceUID
        assert store(server, a.ae_title, datasets) == [SUCCESS] * 2

        case = case_of(a, study_uid)
        assert case["hospital_id"] == a.id
        assert cases_of(b) == []
        assert b.tech.get(f"/api/cases/{case['id']}").status_code == 404
        assert helpers.stored_files(server, b) == []

    def test_same_study_uid_from_two_hospitals_stays_apart(
        self, server: Server, world: World
    ) -> None:
        """UIDs are not always unique in practice (cloned phantoms, bad modality software); one
        hospital's send must not land in, or be deduplicated against, another's study."""
        a, b = world.hospital(), world.hospital()
        datasets = helpers.study("CT", slices=2, size=32)
        study_uid = datasets[0].StudyInstanceUID
        assert store(server, a.ae_title, datasets) == [SUCCESS] * 2
        assert store(server, b.ae_title, datasets[:1]) == [SUCCESS]

        case_a, case_b = case_of(a, study_uid), case_of(b, study_uid)
        assert case_a["id"] != case_b["id"]
        assert (case_a["number_of_instances"], case_b["number_of_instances"]) == (2, 1)
        assert len(helpers.stored_files(server, a)) == 2
        assert len(helpers.stored_files(server, b)) == 1
        assert a.tech.get(f"/api/cases/{case_b['id']}").status_code == 404


def in_parallel(
    server: Server, calling: str, batches: Sequence[Sequence[DicomObject]]
) -> list[list[int | None]]:
    """Send each batch over its own association, all at once; the statuses, batch by batch."""
    results: dict[int, list[int | None]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(batches))

    def send(i: int) -> None:
        try:
            with association(server, calling, batches[i]) as assoc:
                # Every association is up before anyone sends, so the stores overlap.
                start.wait(timeout=30)
                results[i] = [status_of(assoc.send_c_store(obj)) for obj in batches[i]]
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return [results[i] for i in range(len(batches))]


class TestConcurrentAssociations:
    """A hospital's modalities and PACS send at the same time, sometimes parts of one study over
    several associations, and a sender retries while its first attempt is still running; every
    instance counts exactly once."""

    def test_parallel_senders_all_succeed_with_exact_counts(
        self, server: Server, world: World
    ) -> None:
        hospital = world.hospital()
        senders = 4
        own = [helpers.study("CT", slices=3, size=32) for _ in range(senders)]
        shared = helpers.study("CT", slices=2 * senders, size=32)
        # Each sender: its own study, interleaved with its part of the shared one.
        batches = [
            [own[i][0], shared[2 * i], own[i][1], shared[2 * i + 1], own[i][2]]
            for i in range(senders)
        ]
        assert in_parallel(server, hospital.ae_title, batches) == [[SUCCESS] * 5] * senders

        for study in own:
            assert case_of(hospital, study[0].StudyInstanceUID)["number_of_instances"] == 3
        assert case_of(hospital, shared[0].StudyInstanceUID)["number_of_instances"] == 2 * senders
        assert len(cases_of(hospital)) == senders + 1
        assert len(helpers.stored_files(server, hospital)) == 3 * senders + 2 * senders

    def test_same_study_from_two_hospitals_at_once_stays_apart(
        self, server: Server, world: World
    ) -> None:
        """Objects that arrive at the same moment are indexed together (one transaction for
        whatever is waiting); they must still land in their own hospital's study and case."""
        a, b = world.hospital(), world.hospital()
        datasets = helpers.study("CT", slices=6, size=32)
        results: dict[str, list[list[int | None]]] = {}

        def send(hospital: Hospital, part: slice) -> None:
            results[hospital.code] = in_parallel(
                server, hospital.ae_title, [datasets[part][::2], datasets[part][1::2]]
            )

        threads = [
            threading.Thread(target=send, args=(a, slice(0, 6))),
            threading.Thread(target=send, args=(b, slice(0, 4))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert results == {a.code: [[SUCCESS] * 3] * 2, b.code: [[SUCCESS] * 2] * 2}

        study_uid = datasets[0].StudyInstanceUID
        case_a, case_b = case_of(a, study_uid), case_of(b, study_uid)
        assert (case_a["number_of_instances"], case_b["number_of_instances"]) == (6, 4)
        assert (len(cases_of(a)), len(cases_of(b))) == (1, 1)
        assert len(helpers.stored_files(server, a)) == 6
        assert len(helpers.stored_files(server, b)) == 4

    def test_modality_and_pacs_of_one_hospital_send_one_study_at_once(
        self, server: Server, world: World
    ) -> None:
        """Two AE titles of one hospital (its CT and its PACS forwarding the same series) are
        two origins that may share a batch, and a transaction, in the same study: one study,
        one case, each instance once."""
        hospital = world.hospital()
        pacs = f"{hospital.ae_title[:12]}PACS"
        r = world.admin.post(f"/api/hospitals/{hospital.code}/ae-titles", json={"ae_title": pacs})
        assert r.status_code == 201, r.text
        datasets = helpers.study("CT", slices=6, size=32)
        results: dict[str, list[list[int | None]]] = {}

        def send(calling: str) -> None:
            results[calling] = in_parallel(server, calling, [datasets[::2], datasets[1::2]])

        threads = [threading.Thread(target=send, args=(ae,)) for ae in (hospital.ae_title, pacs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert results == dict.fromkeys((hospital.ae_title, pacs), [[SUCCESS] * 3] * 2)

        case = case_of(hospital, datasets[0].StudyInstanceUID)
        assert case["number_of_instances"] == 6
        assert case["flags"] == []
        assert len(cases_of(hospital)) == 1
        assert len(helpers.stored_files(server, hospital)) == 6

    def test_same_instances_from_parallel_senders_are_stored_once(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        """The instances race into a study that already exists, where nothing serializes them
        but the database's unique index; the losers must hear "success", not "retry"."""
        hospital = world.hospital()
        datasets = helpers.study("CT", slices=4, size=32)
        sources = helpers.write(datasets, tmp_path)
        assert store(server, hospital.ae_title, datasets[:1]) == [SUCCESS]
        assert in_parallel(server, hospital.ae_title, [datasets[1:]] * 4) == [[SUCCESS] * 3] * 4

        case = case_of(hospital, datasets[0].StudyInstanceUID)
        assert case["number_of_instances"] == 4
        assert case["flags"] == []
        assert_stored_exactly(server, hospital, sources)

    def test_different_objects_under_one_uid_in_parallel_are_flagged(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        first, contested = helpers.study("CT", slices=2, size=32)
        assert store(server, hospital.ae_title, [first]) == [SUCCESS]
        versions = []
        for i in range(4):
            version = pydicom.dcmread(io.BytesIO(helpers.part10(contested)))
            version.SeriesDescription = f"version {i}"
            versions.append(version)
        assert in_parallel(server, hospital.ae_title, [[v] for v in versions]) == [[SUCCESS]] * 4

        case = case_of(hospital, first.StudyInstanceUID)
        assert case["number_of_instances"] == 5
        assert "sop_conflict" in case["flags"]
        assert len(helpers.stored_files(server, hospital)) == 5


class TestGroupCommit:
    """The gateway indexes whatever objects of all its associations are waiting in one unit of
    work. Driven here directly, on the server's own database, to make a batch with an object
    whose row the database refuses: the others of its batch must not pay for it."""

    def test_an_object_the_database_refuses_fails_alone(
        self, server: Server, world: World, tmp_path: Path
    ) -> None:
        hospital = world.hospital()
        settings = Settings(
            data_dir=server.data_dir,
            database_url=server.database_url,
            redis_url=server.env.get("RADRELAY_REDIS_URL"),
            queue_name=server.env.get("RADRELAY_QUEUE_NAME", "radrelay"),
            secret_key="unused",
        )
        own, shared = helpers.study("CT", slices=2, size=32), helpers.study("CT", slices=3, size=32)
        paths = helpers.write([*own, *shared], tmp_path)
        loop = asyncio.new_event_loop()
        runtime = Runtime(settings)
        try:
            loop.run_until_complete(runtime.start(run_jobs_here=True))
            found = loop.run_until_complete(self._calling(runtime, hospital.ae_title))
            assert found is not None
            prepared = [
                ingest.prepare(runtime, found.hospital_id, Received(p.name, p), here=True)
                for p in paths
            ]
            assert all(isinstance(p, Prepared) for p in prepared)
            items = cast(list[Prepared], prepared)
            # A row that breaks a NOT NULL constraint, in the middle of the shared study's batch.
            bad = items[3]
            items[3] = replace(
                bad,
                inspected=replace(
                    bad.inspected, header=replace(bad.inspected.header, transfer_syntax_uid=None)
                ),
            )
            origin = Origin(Source.cstore, found.hospital_id, calling_ae=found.ae_title)
            group = _GroupCommit(runtime, loop)
            # Submitted before the loop runs: all five are waiting when the first batch starts.
            futures = [group.submit(origin, item) for item in items]
            waited = asyncio.gather(
                *(asyncio.wrap_future(f, loop=loop) for f in futures), return_exceptions=True
            )
            outcomes = loop.run_until_complete(asyncio.wait_for(waited, 60))
        finally:
            loop.run_until_complete(runtime.close())
            loop.close()

        assert [getattr(o, "outcome", None) for o in outcomes] == [Outcome.stored] * 3 + [
            None,
            Outcome.stored,
        ]
        assert isinstance(outcomes[3], DBAPIError)
        assert case_of(hospital, own[0].StudyInstanceUID)["number_of_instances"] == 2
        assert case_of(hospital, shared[0].StudyInstanceUID)["number_of_instances"] == 2

    @staticmethod
    async def _calling(runtime: Runtime, ae_title: str) -> CallingAE | None:
        async with runtime.db.unit_of_work() as session:
            return await hospitals.resolve_calling_ae(session, ae_title, "127.0.0.1")
