"""DICOM data for tests: synthetic studies with fresh UIDs, pydicom's real test files, and
small clients for the three ingest paths."""

from __future__ import annotations

import io
import random
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from radrelay import synth

if TYPE_CHECKING:
    from conftest import Hospital, Server


def requests_only(assoc: Any) -> Any:
    """``assoc``, a test SCU's association, with its own thread kept off the DIMSE message queue.

    pynetdicom's ``send_*`` methods pause that thread while they wait for their response, but
    the pause can land just after the thread has passed its checkpoint: it then takes the
    response off the queue and drops it ("Received unexpected C-STORE service message"), and the
    sender waits out the DIMSE timeout. Seen once in CI, on a loaded machine, in the scale-out
    test. Our SCUs only send requests, so that thread has nothing to take: its non-blocking
    looks find nothing, and the ``send_*`` methods' blocking reads are pynetdicom's own."""
    get_msg = assoc.dimse.get_msg
    assoc.dimse.get_msg = lambda block=False: get_msg(block=True) if block else (None, None)
    return assoc


def study(
    modality: str = "CT",
    *,
    slices: int = 4,
    size: int = 32,
    charset: str = "GB18030",
    hospital: str = "TEST",
    patient: synth.SynthPatient | None = None,
) -> list[Dataset]:
    """A small synthetic study with UIDs of its own (a random seed per call)."""
    seed = random.randrange(1, 2**31)
    return list(
        synth.study(
            modality,
            seed=seed,
            slices=slices,
            size=size,
            charset=charset,
            hospital=hospital,
            synth_patient=patient,
        )
    )


def part10(ds: Dataset) -> bytes:
    return synth.encode(ds)


def testdata(name: str) -> Path:
    return Path(get_testdata_file(name))  # type: ignore[arg-type]


def write(datasets: Iterable[Dataset], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        path = folder / f"IM{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def renamed(path: Path) -> Dataset:
    """A real file from elsewhere with new Study/Series/SOP UIDs, so each test owns its copy."""
    ds = pydicom.dcmread(path)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def upload(api: httpx.Client, files: list[tuple[str, bytes]], **fields: str) -> httpx.Response:
    return api.post(
        "/api/uploads",
        files=[
            ("files", (name, io.BytesIO(data), "application/octet-stream")) for name, data in files
        ],
        data=fields,
    )


def stored_files(server: Server, hospital: Hospital) -> list[Path]:
    """Every object file stored for a hospital (storage keys start with h<id>/)."""
    root = server.storage_root / f"h{hospital.id}"
    return sorted(root.rglob("*.dcm")) if root.exists() else []


def files_of_sop(server: Server, hospital: Hospital, sop_uid: str) -> list[Path]:
    return [p for p in stored_files(server, hospital) if p.name.startswith(f"{sop_uid}.")]


def tmp_files(server: Server) -> set[Path]:
    """What is left in the server's receive area."""
    tmp = server.data_dir / "tmp"
    return {p for p in tmp.rglob("*") if p.is_file()} if tmp.exists() else set()


def case_of_study(api: httpx.Client, study_uid: str) -> dict[str, Any] | None:
    """The case (with its timeline) of a study, as the caller sees it; None if not visible."""
    r = api.get("/api/cases", params={"limit": 500})
    assert r.status_code == 200, r.text
    found = [c for c in r.json()["items"] if c["study_instance_uid"] == study_uid]
    if not found:
        return None
    detail = api.get(f"/api/cases/{found[0]['id']}")
    assert detail.status_code == 200, detail.text
    return detail.json()  # type: ignore[no-any-return]
