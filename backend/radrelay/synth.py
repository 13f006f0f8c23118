"""Synthetic but realistic studies for the demo, the tests and the benchmarks.

CT: a 3D phantom (ellipsoids with Hounsfield values: air, fat, soft tissue, bone, contrast) cut
into axial 512x512 16-bit slices with rescale intercept -1024, proper geometry and a study per
patient. MR: a T1-like head phantom. CR: a chest radiograph (lungs, mediastinum, ribs).
Patients have Chinese names (in the chosen Specific Character Set, with the romanised and
ideographic component groups as Chinese hospitals send them) or Latin names. The same seed gives
the same UIDs and pixels.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

# (romanised, ideographic) as in PN component groups: "Zhang^Wei=张^伟"
CHINESE_NAMES = [
    ("Zhang^Wei", "张^伟"),
    ("Wang^Fang", "王^芳"),
    ("Li^Na", "李^娜"),
    ("Liu^Yang", "刘^洋"),
    ("Chen^Jing", "陈^静"),
    ("Yang^Li", "杨^丽"),
    ("Huang^Qiang", "黄^强"),
    ("Zhao^Lei", "赵^磊"),
    ("Wu^Xiuying", "吴^秀英"),
    ("Zhou^Min", "周^敏"),
    ("Xu^Jun", "徐^军"),
    ("Sun^Yan", "孙^燕"),
]
LATIN_NAMES = ["Smith^John", "Garcia^Maria", "Muller^Anna", "Okafor^Chidi", "Tanaka^Yuki"]

CHARSETS = {
    "GB18030": "GB18030",
    "GBK": "GBK",
    "ISO_IR 192": "ISO_IR 192",
    "ISO 2022 IR 58": ["", "ISO 2022 IR 58"],
}


@dataclass(frozen=True)
class SynthPatient:
    name: str  # the full PN value
    patient_id: str
    birth_date: str
    sex: str


def patient(rng: random.Random, *, chinese: bool = True, hospital: str = "DEMO") -> SynthPatient:
    if chinese:
        roman, ideo = rng.choice(CHINESE_NAMES)
        name = f"{roman}={ideo}"
    else:
        name = rng.choice(LATIN_NAMES)
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
    return SynthPatient(
        name=name,
        patient_id=f"{hospital[:8]}{rng.randrange(10**6, 10**7)}",
        birth_date=born.strftime("%Y%m%d"),
        sex=rng.choice(["M", "F"]),
    )


def iso2022_ir58(text: str) -> bytes:
    """``text`` encoded for Specific Character Set "\\ISO 2022 IR 58" as PS3.5 Annex K shows:
    ASCII as is, GB 2312 characters after ESC $ ) A, designated again after each ^ and = since
    those delimiters return to the initial state. pydicom 3.0 writes these values without the
    escape sequence, which other systems cannot read."""
    out = bytearray()
    designated = False
    for char in text:
        if char in "^=":
            designated = False
        if ord(char) < 0x80:
            out += char.encode("ascii")
            continue
        if not designated:
            out += b"\x1b$)A"
            designated = True
        out += char.encode("gb2312")
    return bytes(out)


def _text(value: str, charset: str) -> str | bytes:
    # Bytes are written unchanged by pydicom; strings are encoded with the Specific Character Set.
    return iso2022_ir58(value) if charset == "ISO 2022 IR 58" else value


def _uid(*parts: object) -> str:
    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def _base(
    sop_class: str,
    p: SynthPatient,
    *,
    charset: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    modality: str,
    study_date: str,
    accession: str,
    study_description: str,
    series_description: str,
    series_number: int,
    instance_number: int,
    body_part: str,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = CHARSETS[charset]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "093000"
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.Manufacturer = "RadRelay Synth"
    ds.InstitutionName = "Synthetic County Hospital"
    ds.ReferringPhysicianName = _text("Li^Ming=李^明", charset)
    ds.StudyDescription = _text(study_description, charset)
    ds.SeriesDescription = _text(series_description, charset)
    ds.PatientName = _text(p.name, charset)
    ds.PatientID = p.patient_id
    ds.IssuerOfPatientID = "SYNTH"
    ds.PatientBirthDate = p.birth_date
    ds.PatientSex = p.sex
    ds.BodyPartExamined = body_part
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = accession[-8:]
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.PatientPosition = "HFS"
    return ds


def _pixels(ds: Dataset, image: np.ndarray, *, bits_stored: int = 12) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = image.shape
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = image.astype("<u2").tobytes()


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float
) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def ct_slice(size: int, z: float) -> np.ndarray:
    """Hounsfield units of an abdomen-like phantom at height z in [-1, 1]."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    hu = np.full((size, size), -1000.0)
    scale = np.sqrt(max(1.0 - (z * 0.9) ** 2, 0.05))
    body = _ellipse(yy, xx, 0, 0, 0.62 * scale + 0.1, 0.85 * scale + 0.1)
    hu[body] = -100  # fat
    hu[_ellipse(yy, xx, 0, 0, 0.55 * scale, 0.78 * scale)] = 40  # soft tissue
    hu[_ellipse(yy, xx, 0.05, -0.35, 0.25 * scale, 0.2 * scale)] = 60  # liver
    hu[_ellipse(yy, xx, 0.1, 0.4, 0.12, 0.1)] = 30  # kidney
    hu[_ellipse(yy, xx, 0.1, -0.6, 0.12, 0.1)] = 30
    hu[_ellipse(yy, xx, 0.4, 0, 0.09, 0.09)] = 700  # vertebra
    hu[_ellipse(yy, xx, 0.4, 0, 0.05, 0.05)] = 250
    hu[_ellipse(yy, xx, 0.2, 0.05, 0.05, 0.05)] = 300  # aorta with contrast
    lesion = 0.15 * np.exp(-(z**2) / 0.02)
    if lesion > 0.02:
        hu[_ellipse(yy, xx, -0.05, -0.3, lesion, lesion)] = 15  # a hypodense liver lesion
    noise = np.random.default_rng(int((z + 1) * 1000)).normal(0, 8, hu.shape)
    return hu + noise * body


def mr_slice(size: int, z: float) -> np.ndarray:
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    img = np.zeros((size, size))
    scale = np.sqrt(max(1.0 - z**2, 0.05))
    img[_ellipse(yy, xx, 0, 0, 0.9 * scale, 0.72 * scale)] = 300  # scalp
    img[_ellipse(yy, xx, 0, 0, 0.84 * scale, 0.66 * scale)] = 80  # skull (dark on T1)
    img[_ellipse(yy, xx, 0, 0, 0.8 * scale, 0.62 * scale)] = 600  # white matter
    img[_ellipse(yy, xx, 0, -0.22, 0.3 * scale, 0.08 * scale)] = 150  # ventricles
    img[_ellipse(yy, xx, 0, 0.22, 0.3 * scale, 0.08 * scale)] = 150
    noise = np.random.default_rng(int((z + 1) * 1000)).normal(0, 10, img.shape)
    return np.clip(img + noise, 0, 4095)


def cr_chest(size: int) -> np.ndarray:
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    img = np.full((size, size), 3600.0)  # direct exposure is bright in raw CR values
    img[_ellipse(yy, xx, 0.1, 0, 0.95, 0.85)] = 2200  # soft tissue
    img[_ellipse(yy, xx, 0, -0.38, 0.6, 0.3)] = 3000  # lungs
    img[_ellipse(yy, xx, 0, 0.38, 0.6, 0.3)] = 3000
    img[_ellipse(yy, xx, 0.2, 0.08, 0.3, 0.22)] = 1700  # heart
    for rib in np.linspace(-0.5, 0.5, 9):
        img[np.abs(yy - rib - 0.15 * xx**2) < 0.015] -= 400
    return np.clip(img, 0, 4095)


def study(
    modality: str,
    *,
    seed: int = 1,
    slices: int = 200,
    size: int | None = None,
    charset: str = "GB18030",
    hospital: str = "DEMO",
    synth_patient: SynthPatient | None = None,
    study_date: str | None = None,
) -> Iterator[Dataset]:
    """The instances of one synthetic study, one at a time (a 200-slice CT is 100 MB)."""
    modality = modality.upper()
    rng = random.Random(f"{hospital}:{modality}:{seed}")
    p = synth_patient or patient(rng, chinese=rng.random() < 0.8, hospital=hospital)
    day = study_date or (date(2026, 1, 1) + timedelta(days=rng.randrange(0, 300))).strftime(
        "%Y%m%d"
    )
    accession = f"A{rng.randrange(10**8, 10**9)}"
    study_uid = _uid("study", hospital, modality, seed)
    series_uid = _uid("series", hospital, modality, seed, 1)
    if modality == "CT":
        size = size or 512
        spec = (CTImageStorage, "CT 腹部增强 ABDOMEN W CONTRAST", "Axial 1.25mm", "ABDOMEN")
    elif modality == "MR":
        size = size or 256
        spec = (MRImageStorage, "MR 头颅平扫 BRAIN WO", "T1 AX", "HEAD")
    elif modality in ("CR", "DX"):
        size = size or 2048
        slices = 1
        spec = (ComputedRadiographyImageStorage, "胸部正位 CHEST PA", "PA", "CHEST")
    else:
        raise ValueError(f"synth makes CT, MR or CR studies, not {modality}")
    sop_class, study_desc, series_desc, body_part = spec
    spacing = 350.0 / size
    for i in range(slices):
        z = -1 + 2 * (i + 0.5) / slices
        ds = _base(
            sop_class,
            p,
            charset=charset,
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=_uid("sop", hospital, modality, seed, i),
            modality="CR" if modality in ("CR", "DX") else modality,
            study_date=day,
            accession=accession,
            study_description=study_desc,
            series_description=series_desc,
            series_number=1,
            instance_number=i + 1,
            body_part=body_part,
        )
        if modality == "CT":
            _pixels(ds, np.clip(ct_slice(size, z) + 1024, 0, 4095))
            ds.RescaleIntercept = -1024
            ds.RescaleSlope = 1
            ds.RescaleType = "HU"
            ds.WindowCenter = 40
            ds.WindowWidth = 400
            ds.KVP = 120
            ds.SliceThickness = 1.25
        elif modality == "MR":
            _pixels(ds, mr_slice(size, z))
            ds.SliceThickness = 5
            ds.MagneticFieldStrength = 1.5
            ds.ScanningSequence = "SE"
            ds.SequenceVariant = "NONE"
            ds.ScanOptions = ""
            ds.MRAcquisitionType = "2D"
            ds.EchoTime = 12
            ds.RepetitionTime = 500
        else:
            _pixels(ds, cr_chest(size))
            ds.ImageType = ["ORIGINAL", "PRIMARY"]
            ds.ViewPosition = "PA"
            ds.PixelSpacing = [0.15, 0.15]
        if modality in ("CT", "MR"):
            ds.PixelSpacing = [spacing, spacing]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-175.0, -175.0, round(i * 1.25, 3)]
            ds.SliceLocation = round(i * 1.25, 3)
            ds.FrameOfReferenceUID = _uid("for", hospital, modality, seed)
        yield ds


def encode(ds: Dataset) -> bytes:
    """The Part 10 bytes of a data set."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_studies(
    out: Path,
    *,
    modality: str = "CT",
    studies: int = 1,
    slices: int = 200,
    size: int | None = None,
    seed: int = 1,
    charset: str = "GB18030",
    hospital: str = "DEMO",
) -> list[Path]:
    paths: list[Path] = []
    for n in range(studies):
        folder = out / f"{hospital}-{modality.upper()}-{seed + n}"
        folder.mkdir(parents=True, exist_ok=True)
        for ds in study(
            modality, seed=seed + n, slices=slices, size=size, charset=charset, hospital=hospital
        ):
            path = folder / f"IM{int(ds.InstanceNumber):05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths
