"""Preparing a received object, away from the event loop: inspect it with pydicom and put its
file in storage under its final key. No database.

This is the CPU-heavy half of ingest (parsing, hashing, fsync), so it runs in the worker pool
(``kit.pool``). Everything passed in and out is small and picklable; the file itself stays on
disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from radrelay.archive.keys import storage_key
from radrelay.ingest.schemas import FileOutcome, Outcome
from radrelay.kit import dicom
from radrelay.kit.storage import (
    Storage,
    StorageError,
    disk_error,
    disk_full,
    open_storage,
)


@dataclass(frozen=True)
class Received:
    """One object as it arrived, before inspection."""

    name: str  # file name in an upload, part number in a STOW request, SOP UID for C-STORE
    path: Path


@dataclass(frozen=True)
class Prepared:
    """An object inspected and safely in storage, waiting for its index row."""

    name: str
    inspected: dicom.Inspected
    key: str


@dataclass(frozen=True)
class PrepareConfig:
    """What a worker process needs to know (picklable, unlike the runtime)."""

    tmp_dir: Path
    storage_url: str
    max_instance_bytes: int


@cache
def _storage(url: str) -> Storage:
    return open_storage(url)


def prepare(
    config: PrepareConfig, hospital_id: int, item: Received, expected_study: str | None = None
) -> Prepared | FileOutcome:
    """Inspect one object and store its file. A refusal is a ``FileOutcome`` that names the
    object's UIDs when they can be read at all; a full disk raises ``InsufficientStorage``."""
    try:
        size = item.path.stat().st_size
        if size == 0:
            raise dicom.InvalidDicom("the file is empty")
        if size > config.max_instance_bytes:
            raise dicom.InvalidDicom(
                f"the object is {size} bytes, over the limit of {config.max_instance_bytes}",
                dicom.OUT_OF_RESOURCES,
            )
        inspected = dicom.inspect_file(item.path, config.tmp_dir)
    except OSError as exc:
        if disk_full(exc):
            # A full disk refuses the whole request (507 / 0xA700), not this object alone.
            raise disk_error(exc, "copy a received object") from exc
        # Our receive area failed us (disk error, file gone): not the sender's fault.
        return FileOutcome(
            name=item.name,
            outcome=Outcome.failed,
            status=dicom.OUT_OF_RESOURCES,
            message=f"the received object could not be read back: {exc.strerror or exc}",
        )
    except dicom.InvalidDicom as exc:
        return _identified(
            FileOutcome(
                name=item.name, outcome=Outcome.failed, message=exc.message, status=exc.status
            ),
            item.path,
        )
    h = inspected.header
    try:
        if expected_study and h.study_instance_uid != expected_study:
            return FileOutcome.of(
                item.name,
                h,
                Outcome.failed,
                dicom.DATASET_DOES_NOT_MATCH,
                f"the instance belongs to study {h.study_instance_uid}, "
                f"not to {expected_study} named in the request",
            )
        key = storage_key(hospital_id, h, inspected.sha256)
        _storage(config.storage_url).put_file(key, inspected.part10_path)
    except StorageError as exc:
        return FileOutcome.of(item.name, h, Outcome.failed, dicom.OUT_OF_RESOURCES, exc.message)
    finally:
        if inspected.part10_path != item.path:
            # A bare data set was copied behind a file meta header; storage links the copy.
            inspected.part10_path.unlink(missing_ok=True)
    return Prepared(item.name, inspected, key)


def _identified(outcome: FileOutcome, path: Path) -> FileOutcome:
    found = dicom.identify(path)
    return outcome.model_copy(
        update={
            "sop_class_uid": found.get("SOPClassUID", ""),
            "sop_instance_uid": found.get("SOPInstanceUID", ""),
            "study_instance_uid": found.get("StudyInstanceUID", ""),
            "series_instance_uid": found.get("SeriesInstanceUID", ""),
        }
    )
