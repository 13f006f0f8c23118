"""Reading what a sender gave us, with pydicom, without trusting it.

``inspect_file`` takes a file as it arrived (a Part 10 file, or a bare data set without the
preamble and file meta header, as some STOW-RS clients send) and returns its header, the digest of
its data set bytes, and a Part 10 file ready to store. It checks that the object is whole:
pydicom reads a truncated file without complaint, so the elements are walked once more with
pydicom's own element generator to find values that run past the end of the file.

Status codes are those of a C-STORE response (PS3.4 Annex B.2.3), which STOW-RS reports as
FailureReason (PS3.18 10.5.3) and our upload API shows per file.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import data_element_generator, read_preamble
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
)

# PS3.4 Table B.2-1 (C-STORE status); PS3.18 Table 10.5.3-? reuses them as FailureReason.
OUT_OF_RESOURCES = 0xA700
DATASET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122

_HASH_CHUNK = 1 << 20
# The first two bytes of a data set without preamble: group 0002 (file meta) or 0008, either
# byte order.
_DATA_SET_STARTS = (b"\x08\x00", b"\x00\x08", b"\x02\x00", b"\x00\x02")


class InvalidDicom(Exception):
    """The object cannot be stored. ``status`` is the DICOM status to report."""

    def __init__(self, message: str, status: int = CANNOT_UNDERSTAND):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Header:
    """The attributes we index, decoded to Unicode through the Specific Character Set."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    accession_number: str
    issuer_of_accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    number_of_frames: int | None
    # From the requested procedure, when the modality worklist filled them in.
    requested_priority: str
    reason_for_request: str
    requested_procedure: str
    patient_history: str


@dataclass(frozen=True)
class Inspected:
    header: Header
    part10_path: Path  # the file to store: the received file itself, or a Part 10 copy of it
    dataset_offset: int  # where the data set starts in part10_path
    sha256: str  # of the data set bytes as received, file meta excluded
    size: int


# ISO 2022 IR 58 (GB 2312 in G1) is designated by ESC $ ) A. pydicom 3.0 encodes it without the
# escape sequence and decodes it leaving the escape sequence in the text, so a name written
# "Chen^Jing=ESC$)A<GB 2312>" reads back as "Chen^Jing=\x1b$)A陈^..." (and one written by pydicom
# as mojibake). With G0 ASCII, every byte with the high bit set belongs to the GB 2312 set, so
# the value decodes whole as EUC-CN once the designations are removed.
_IR58 = "ISO 2022 IR 58"
_IR58_ESCAPES = (b"\x1b$)A", b"\x1b(B")  # designate GB 2312 to G1; ASCII to G0 (a no-op here)
# Only with ASCII as G0 and nothing else in G1 is every high-bit byte GB 2312.
_IR58_ALONE = {"", "ISO 2022 IR 6", _IR58}


def _charsets(ds: Dataset) -> list[str]:
    try:
        value = ds.get("SpecificCharacterSet")
    except Exception:
        return []
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [str(v).strip().upper() for v in values]


def _ir58_only(ds: Dataset) -> bool:
    """The data set declares ISO 2022 IR 58 next to ASCII only."""
    charsets = _charsets(ds)
    return _IR58 in charsets and set(charsets) <= _IR58_ALONE


def _ir58_text(ds: Dataset, keyword: str) -> str | None:
    """The value decoded as ISO 2022 IR 58 (the data set must be ``_ir58_only``) when it uses no
    other code extension; None to let pydicom decode."""
    try:
        elem = ds.get_item(keyword)
    except Exception:
        return None
    if elem is None:
        return None
    raw = elem.value
    if isinstance(raw, pydicom.valuerep.PersonName):
        raw = raw.original_string
    if not isinstance(raw, bytes):
        return None
    for escape in _IR58_ESCAPES:
        raw = raw.replace(escape, b"")
    if b"\x1b" in raw:
        return None
    return raw.decode("gb2312", errors="replace")


def ir58_value(ds: Dataset, keyword: str) -> str | None:
    """``keyword``'s value read as ISO 2022 IR 58 when ``ds`` declares that set next to ASCII
    only (pydicom 3.0 misreads such values, see above); None when pydicom's reading stands."""
    return _ir58_text(ds, keyword) if _ir58_only(ds) else None


def _text(ds: Dataset, keyword: str, limit: int = 400, *, ir58: bool | None = None) -> str:
    """A value as text. ``ir58``: whether the data set is ``_ir58_only``, when the caller
    already knows (it reads many values of one data set)."""
    if ir58 is None:
        ir58 = _ir58_only(ds)
    if ir58 and (decoded := _ir58_text(ds, keyword)) is not None:
        return decoded.strip(" \x00").replace("\x00", "")[:limit]
    try:
        value = ds.get(keyword)
    except Exception:  # a value pydicom cannot decode must not sink the whole object
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text.strip().replace("\x00", "")[:limit]


# PS3.5 6.2 bounds an IS value to a signed 32-bit integer, as are our index columns. Some devices
# number instances with a timestamp beyond it; such an object is still kept, without the number.
_INT_RANGE = range(-(2**31), 2**31)


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        number = None if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return None
    return number if number is None or number in _INT_RANGE else None


def _uid(ds: Dataset, keyword: str, required: bool = True) -> str:
    value = _text(ds, keyword, 64)
    if not value:
        if required:
            raise InvalidDicom(f"{keyword} is missing", DATASET_DOES_NOT_MATCH)
        return ""
    if not UID(value).is_valid:
        raise InvalidDicom(f"{keyword} {value!r} is not a valid UID", DATASET_DOES_NOT_MATCH)
    return value


def header_of(ds: Dataset, transfer_syntax: str) -> Header:
    ir58 = _ir58_only(ds)  # once, not for each of the values read below

    def text(keyword: str, limit: int = 400) -> str:
        return _text(ds, keyword, limit, ir58=ir58)

    return Header(
        sop_class_uid=_uid(ds, "SOPClassUID"),
        sop_instance_uid=_uid(ds, "SOPInstanceUID"),
        study_instance_uid=_uid(ds, "StudyInstanceUID"),
        series_instance_uid=_uid(ds, "SeriesInstanceUID"),
        transfer_syntax_uid=transfer_syntax,
        patient_id=text("PatientID", 64),
        issuer_of_patient_id=text("IssuerOfPatientID", 64),
        patient_name=text("PatientName"),
        birth_date=text("PatientBirthDate", 8),
        sex=text("PatientSex", 16),
        study_date=text("StudyDate", 8),
        study_time=text("StudyTime", 16),
        accession_number=text("AccessionNumber", 64),
        issuer_of_accession_number=_issuer_of_accession(ds),
        study_id=text("StudyID", 16),
        study_description=text("StudyDescription", 200),
        referring_physician_name=text("ReferringPhysicianName"),
        modality=text("Modality", 16),
        series_number=_int(ds, "SeriesNumber"),
        series_description=text("SeriesDescription", 200),
        body_part_examined=text("BodyPartExamined", 64),
        instance_number=_int(ds, "InstanceNumber"),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        number_of_frames=_int(ds, "NumberOfFrames"),
        requested_priority=text("RequestedProcedurePriority", 16),
        reason_for_request=text("ReasonForTheRequestedProcedure", 2000),
        requested_procedure=text("RequestedProcedureDescription", 200),
        patient_history=text("AdditionalPatientHistory", 4000),
    )


_IDENTITY = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def identify(path: Path) -> dict[str, str]:
    """Best effort, for objects that could not be stored: whichever of their SOP Class, SOP
    Instance, Study and Series Instance UIDs can be read (valid UIDs only), so that a failure
    names the object. Never raises."""
    found: dict[str, str] = {}
    try:
        with path.open("rb") as fp:
            if not _has_part10_header(fp) and fp.read(2) not in _DATA_SET_STARTS:
                return found
            fp.seek(0)
            ds = pydicom.dcmread(fp, force=True, specific_tags=list(_IDENTITY))
        for keyword in _IDENTITY:
            value = _text(ds, keyword, 64)
            if value and UID(value).is_valid:
                found[keyword] = value
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            for keyword, source in (
                ("SOPClassUID", "MediaStorageSOPClassUID"),
                ("SOPInstanceUID", "MediaStorageSOPInstanceUID"),
            ):
                value = _text(meta, source, 64)
                if keyword not in found and value and UID(value).is_valid:
                    found[keyword] = value
    except Exception:  # anything at all: this only adds detail to a failure already known
        pass
    return found


def _issuer_of_accession(ds: Dataset) -> str:
    seq = ds.get("IssuerOfAccessionNumberSequence")
    if not seq:
        return ""
    return _text(seq[0], "LocalNamespaceEntityID", 64) or _text(seq[0], "UniversalEntityID", 64)


def _has_part10_header(fp: BinaryIO) -> bool:
    fp.seek(128)
    magic = fp.read(4)
    fp.seek(0)
    return magic == b"DICM"


def _check_complete(fp: BinaryIO, offset: int, size: int, implicit: bool, little: bool) -> None:
    """Walk the top-level elements with pydicom's generator; a value that runs past the end of
    the file, or an undefined length without its delimiter, means the object was cut short."""
    fp.seek(offset)
    end = offset  # where the last whole element ended
    try:
        for elem in data_element_generator(fp, implicit, little, defer_size=256):
            # Sequences come back parsed (DataElement), everything else raw with its position.
            if isinstance(elem, RawDataElement) and elem.length != 0xFFFFFFFF:
                if elem.value_tell + elem.length > size:
                    raise InvalidDicom(
                        f"the file is truncated: element {elem.tag} needs {elem.length} bytes, "
                        f"{max(size - elem.value_tell, 0)} remain"
                    )
            # The generator has just read (or skipped) this element's value.
            end = fp.tell()
    except EOFError as exc:
        raise InvalidDicom(f"the file is truncated: {exc}") from exc
    except InvalidDicom:
        raise
    except Exception as exc:  # pydicom raises OSError, struct.error ... on broken structure
        raise InvalidDicom(f"the data set is malformed: {exc}") from exc
    # The generator ends quietly when fewer than 8 bytes are left: a file cut inside an element's
    # tag and length looks whole to it. Bytes after the last whole element that are not zero
    # padding are the start of an element that was cut off.
    if end < size:
        fp.seek(end)
        rest = fp.read(8)
        if len(rest) < 8 and rest.strip(b"\x00"):
            raise InvalidDicom(
                f"the file is truncated: it ends {len(rest)} bytes into an element's header"
            )


def _digest(fp: BinaryIO, offset: int) -> str:
    fp.seek(offset)
    h = hashlib.sha256()
    while chunk := fp.read(_HASH_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def inspect_file(path: Path, tmp_dir: Path) -> Inspected:
    """Validate and describe one received object. Raises ``InvalidDicom``.

    A bare data set is rewritten once as a Part 10 file in ``tmp_dir`` (the data set bytes are
    copied unchanged behind a new file meta header); the caller removes both files when done.
    """
    size = path.stat().st_size
    with path.open("rb") as fp:
        if _has_part10_header(fp):
            return _inspect_part10(path, fp, size)
    return _inspect_bare(path, size, tmp_dir)


def _inspect_part10(path: Path, fp: BinaryIO, size: int) -> Inspected:
    try:
        read_preamble(fp, False)
        meta = pydicom.filereader._read_file_meta_info(fp)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise InvalidDicom(f"the file meta header cannot be read: {exc}") from exc
    offset = fp.tell()
    ts = _text(meta, "TransferSyntaxUID", 64)
    if not ts or not UID(ts).is_valid:
        raise InvalidDicom("the file meta header has no valid Transfer Syntax UID")
    ts_uid = UID(ts)
    if not ts_uid.is_transfer_syntax:
        raise InvalidDicom(f"unknown transfer syntax {ts}", 0xC122)
    fp.seek(0)
    ds = _read(fp, stop_before_pixels=True)
    if ts_uid == DeflatedExplicitVRLittleEndian:
        _check_deflated(fp, offset)
    else:
        # pydicom stops right before Pixel Data: if it got there, every element before it was
        # read whole, and only Pixel Data and what follows need checking. If it reached the end
        # instead, the object has no pixel data or was cut short: check all of it.
        stop = fp.tell()
        start = stop if stop < size else offset
        _check_complete(fp, start, size, ts_uid.is_implicit_VR, ts_uid.is_little_endian)
    # A DICOMDIR names its SOP class only in the file meta header: check before the data set's
    # UIDs, which it does not have, are required.
    if _text(meta, "MediaStorageSOPClassUID", 64) == MediaStorageDirectoryStorage:
        _refuse_dicomdir()
    _check_not_dicomdir(ds)
    header = header_of(ds, ts)
    return Inspected(header, path, offset, _digest(fp, offset), size)


def _refuse_dicomdir() -> None:
    raise InvalidDicom("a DICOMDIR is an index of files, not an image", SOP_CLASS_NOT_SUPPORTED)


def _check_not_dicomdir(ds: Dataset) -> None:
    if "DirectoryRecordSequence" in ds or _text(ds, "SOPClassUID", 64) == (
        MediaStorageDirectoryStorage
    ):
        _refuse_dicomdir()


def _check_deflated(fp: BinaryIO, offset: int) -> None:
    # Inflate in bounded steps and throw the output away: only completeness is checked here, and a
    # small deflated stream may expand enormously.
    fp.seek(offset)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        while chunk := fp.read(_HASH_CHUNK):
            while chunk:
                inflater.decompress(chunk, _HASH_CHUNK)
                chunk = inflater.unconsumed_tail
        if not inflater.eof:
            raise InvalidDicom("the deflated data set is truncated")
    except zlib.error as exc:
        raise InvalidDicom(f"the deflated data set is corrupt: {exc}") from exc


def _read(path: Path | BinaryIO, **kw: Any) -> Dataset:
    try:
        return pydicom.dcmread(path, **kw)
    except Exception as exc:  # pydicom signals broken input with many exception types
        raise InvalidDicom(f"the object cannot be parsed as DICOM: {exc}") from exc


def _inspect_bare(path: Path, size: int, tmp_dir: Path) -> Inspected:
    """No preamble. Either a file meta group without the preamble, or a bare data set whose
    encoding pydicom has to guess (dicomweb-client sends datasets made in memory this way)."""
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".dcm")
    out = Path(name)
    try:
        with path.open("rb") as fp, os.fdopen(fd, "wb") as dst:
            if fp.read(2) == b"\x02\x00":
                dst.write(b"\x00" * 128 + b"DICM")
                fp.seek(0)
                shutil.copyfileobj(fp, dst, _HASH_CHUNK)
            else:
                fp.seek(0)
                _write_with_new_meta(fp, size, dst)
        with out.open("rb") as fp:
            inspected = _inspect_part10(out, fp, out.stat().st_size)
        return inspected
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _write_with_new_meta(fp: BinaryIO, size: int, dst: BinaryIO) -> None:
    # A data set starts with a low group (0008 usually) in either byte order; anything else is
    # some other kind of file, and saying so beats a confusing parse error.
    if fp.read(2) not in _DATA_SET_STARTS:
        raise InvalidDicom("not a DICOM file: no DICM prefix and no DICOM data set")
    fp.seek(0)
    ds = _read(fp, force=True, stop_before_pixels=True)
    if len(ds) == 0:
        raise InvalidDicom("the object is not DICOM: no data set could be read")
    implicit, little = ds.original_encoding
    _check_complete(fp, 0, size, bool(implicit), bool(little))
    _check_not_dicomdir(ds)
    if not little:
        ts = ExplicitVRBigEndian
    else:
        ts = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(_uid(ds, "SOPClassUID"))
    meta.MediaStorageSOPInstanceUID = UID(_uid(ds, "SOPInstanceUID"))
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    buffer = io.BytesIO()
    write_file_meta_info(buffer, meta, enforce_standard=True)  # type: ignore[arg-type]
    dst.write(b"\x00" * 128 + b"DICM" + buffer.getvalue())
    fp.seek(0)
    shutil.copyfileobj(fp, dst, _HASH_CHUNK)
