"""Patient names in the character sets Chinese hospitals send (GB18030, GBK, UTF-8, ISO 2022 with
GB 2312), by browser upload and by STOW-RS, must come back from the API as exactly the Unicode
that pydicom decodes from the same bytes: a reader who sees mojibake cannot match the patient.

ISO 2022 IR 58 is the exception: pydicom 3.0 writes GB 2312 without its escape sequence and
reads a conforming value with the escape sequence left in the text, so for it the API must give
the name as written, not as pydicom reads it.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.data import get_charset_files
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from conftest import Api, World
from helpers import case_of_study as visible_case
from helpers import part10, renamed, study, upload
from radrelay.synth import SynthPatient
from radrelay.synth import iso2022_ir58 as iso_2022_ir_58
from test_stow import client, stow

pytestmark = pytest.mark.filterwarnings("ignore:'Dataset.is_:DeprecationWarning")

NAMES = {
    "GB18030": "Zhang^Wei=张^伟",
    "GBK": "Wu^Xiuying=吴^秀英",
    "ISO_IR 192": "Huang^Qiang=黄^强",
    "ISO 2022 IR 58": "Chen^Jing=陈^静",
}


IR58 = "ISO 2022 IR 58"


def decoded(data: bytes) -> tuple[str, str]:
    """Patient name and study description as pydicom decodes them from the bytes sent."""
    ds = pydicom.dcmread(io.BytesIO(data))
    return str(ds.PatientName), str(ds.StudyDescription)


def expected(data: bytes, charset: str, written: tuple[str, str]) -> tuple[str, str]:
    """What the API must show: pydicom's reading, except for ISO 2022 IR 58 (see above)."""
    return written if charset == IR58 else decoded(data)


def ir58_text(value: object) -> str:
    """Our reading of a value synth wrote in the standard ISO 2022 IR 58 form."""
    raw = value.original_string if hasattr(value, "original_string") else value
    assert isinstance(raw, bytes)
    return raw.replace(b"\x1b$)A", b"").decode("gb2312")


def as_pydicom_writes_ir58(ds: Dataset) -> None:
    """pydicom 3.0's own encoding: GB 2312 bytes without the escape sequence."""
    for tag, vr in ((0x00100010, "PN"), (0x00081030, "LO")):
        raw = ds[tag].value
        raw = raw.original_string if hasattr(raw, "original_string") else raw
        ds[tag] = DataElement(tag, vr, raw.replace(b"\x1b$)A", b""))


def case_of_study(api: Api, study_uid: str) -> dict:
    case = visible_case(api, study_uid)
    assert case is not None, f"no case for study {study_uid}"
    return case


def chinese_study(charset: str, modality: str) -> list[Dataset]:
    patient = SynthPatient(NAMES[charset], "P" + charset[:3], "19600101", "F")
    return study(modality, slices=2, charset=charset, patient=patient)


class TestChineseNames:
    @pytest.mark.parametrize("charset", list(NAMES))
    def test_names_come_back_as_pydicom_decodes_them(self, world: World, charset: str) -> None:
        """One study by upload and another by STOW-RS, in the same character set: both cases
        show the patient name (and the study description, which mixes Chinese and Latin)
        exactly as pydicom reads them from the bytes sent."""
        hospital = world.hospital()
        by_upload, by_stow = chinese_study(charset, "CT"), chinese_study(charset, "MR")
        if charset == IR58:
            # synth writes the standard's form (escape sequences); pydicom cannot read it back.
            written = [
                (ir58_text(s[0].PatientName), ir58_text(s[0].StudyDescription))
                for s in (by_upload, by_stow)
            ]
            assert bytes(by_upload[0].PatientName.original_string) == iso_2022_ir_58(NAMES[IR58])
            # One study as the standard writes it, the other as pydicom does: both must read.
            for ds in by_stow:
                as_pydicom_writes_ir58(ds)
        else:
            written = [(str(s[0].PatientName), s[0].StudyDescription) for s in (by_upload, by_stow)]
        assert written[0][0] == written[1][0] == NAMES[charset]

        files = [(f"患者 张伟/IM{i}.dcm", part10(ds)) for i, ds in enumerate(by_upload)]
        r = upload(hospital.tech, files)
        assert r.status_code == 200, r.text
        assert [f["name"] for f in r.json()["files"]] == [name for name, _ in files]
        case = case_of_study(hospital.tech, by_upload[0].StudyInstanceUID)
        name, description = expected(files[0][1], charset, written[0])
        assert name == NAMES[charset]
        assert (case["patient_name"], case["study_description"]) == (name, description)

        sent = [part10(ds) for ds in by_stow]
        assert stow(hospital.tech, sent).status_code == 200
        case = case_of_study(hospital.tech, by_stow[0].StudyInstanceUID)
        name, description = expected(sent[0], charset, written[1])
        assert name == NAMES[charset]
        assert (case["patient_name"], case["study_description"]) == (name, description)

    def test_bare_data_sets_from_dicomweb_client_keep_their_names(self, world: World) -> None:
        """A viewer's in-memory data sets (no file meta) in GB18030 through dicomweb-client."""
        hospital = world.hospital()
        datasets = chinese_study("GB18030", "CT")
        for ds in datasets:
            del ds.file_meta
            ds.is_little_endian = True
            ds.is_implicit_VR = True
        client(hospital.tech).store_instances(datasets)
        case = case_of_study(hospital.tech, datasets[0].StudyInstanceUID)
        assert case["patient_name"] == NAMES["GB18030"]


class TestPydicomCharsetFiles:
    @pytest.mark.parametrize(
        "route", ["upload", "stow", "dicomweb-client"], ids=lambda route: route
    )
    def test_real_files_in_chinese_and_other_sets(self, world: World, route: str) -> None:
        """pydicom's own character set test files (chrX1: UTF-8 Chinese, chrX2: GB18030, and
        the Japanese and Korean ISO 2022 ones), each with new UIDs, by each route."""
        hospital = world.hospital()
        names = ["chrX1.dcm", "chrX2.dcm", "chrH31.dcm", "chrI2.dcm"]
        datasets = {name: renamed(get_charset_files(name)[0]) for name in names}
        sent = {}
        for name, ds in datasets.items():
            buffer = io.BytesIO()
            ds.save_as(buffer)
            sent[name] = buffer.getvalue()
        if route == "upload":
            r = upload(hospital.tech, list(sent.items()))
            assert r.status_code == 200, r.text
            assert r.json()["stored"] == len(names)
        elif route == "stow":
            assert stow(hospital.tech, list(sent.values())).status_code == 200
        else:
            client(hospital.tech).store_instances(list(datasets.values()))
        for name, ds in datasets.items():
            expected = str(pydicom.dcmread(io.BytesIO(sent[name])).PatientName)
            assert "=" in expected and not expected.isascii()
            case = case_of_study(hospital.tech, ds.StudyInstanceUID)
            assert case["patient_name"] == expected, name
        assert (
            case_of_study(hospital.tech, datasets["chrX2.dcm"].StudyInstanceUID)["patient_name"]
            == "Wang^XiaoDong=王^小东"
        )
        assert (
            case_of_study(hospital.tech, datasets["chrX1.dcm"].StudyInstanceUID)["patient_name"]
            == "Wang^XiaoDong=王^小東"
        )
