"""DICOM forms of a report (``reporting.dicom``): the signed PDF as Encapsulated PDF and the
content as an Enhanced SR (TID 2000), in the study of the images, read back with pydicom,
highdicom and dcmtk (``dcmdump``, ``dsrdump``; the system's, not the venv's).

No server: these are pure functions. The source is a synthetic CT study of 张伟 sent in GB18030
(or another character set Chinese hospitals use); the report is built here by hand, and the PDF
is a small one drawn with reportlab (the byte-exactness of the encapsulation is what matters).
"""

from __future__ import annotations

import io
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, EncapsulatedPDFStorage, EnhancedSRStorage, ImplicitVRLittleEndian
from reportlab.pdfgen import canvas

from helpers import study
from radrelay import synth
from radrelay.reporting.dicom import (
    LOCAL_SCHEME,
    encapsulated_pdf,
    report_uids,
    structured_report,
)
from radrelay.reporting.document import (
    Addendum,
    Code,
    Entry,
    Exam,
    KeyImage,
    Language,
    Meaning,
    Party,
    Patient,
    ReportDocument,
    ReportStatus,
    Section,
    Signature,
    Text,
)

DCMDUMP = "/usr/bin/dcmdump"
DSRDUMP = "/usr/bin/dsrdump"
ZHANG_WEI = "Zhang^Wei=张^伟"
PATIENT = synth.SynthPatient(ZHANG_WEI, "QSX-000123", "19680412", "M")
# dcmtk 3.6.7's VR checker knows only single-byte sets; it says so, once per file.
DCMTK_CHARSET_NOTICE = "The VR checker does not support this Specific Character Set"

FINDINGS = (
    "右肺上叶尖段见一实性结节，边界清楚。Solid nodule in the right upper lobe, well circumscribed."
)
IMPRESSION = "右肺上叶实性小结节，建议6个月后复查。Solid RUL nodule: follow-up CT in 6 months."
SPICULATED = Code("RID5713", "RADLEX", "spiculated margin")


def _at(hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 3, hour - 8, minute, tzinfo=UTC)  # Beijing time, stored as UTC


def source_study(charset: str = "GB18030") -> list[Dataset]:
    """Two CT instances of 张伟, as the PACS stores them (read back from Part 10 bytes)."""
    return [
        pydicom.dcmread(io.BytesIO(synth.encode(ds)))
        for ds in study("CT", slices=2, size=16, charset=charset, patient=PATIENT)
    ]


def report(
    images: list[Dataset],
    *,
    version: int = 1,
    status: ReportStatus = ReportStatus.final,
    language: Language = Language.bilingual,
    sections: tuple[Section, ...] | None = None,
    addenda: tuple[Addendum, ...] = (),
    report_id: int = 77,
) -> ReportDocument:
    first = images[0]
    signatures = [Signature("李娜 Li Na", "住院医师 Resident", Meaning.author, _at(14, 32))]
    if status != ReportStatus.preliminary:
        signatures.append(
            Signature("王建国 Wang Jianguo", "主任医师 Chief", Meaning.cosigner, _at(15, 5))
        )
    return ReportDocument(
        report_id=report_id,
        version=version,
        status=status,
        language=language,
        center=Party("云影远程影像诊断中心", code="YUNYING"),
        hospital=Party("青石县人民医院", code="QSX"),
        patient=Patient(ZHANG_WEI, PATIENT.patient_id, "SYNTH", PATIENT.birth_date, "M"),
        exam=Exam(
            study_instance_uid=first.StudyInstanceUID,
            accession_number=first.AccessionNumber,
            study_date=first.StudyDate,
            study_time=first.StudyTime,
            modality="CT",
            description="胸部CT平扫 Chest CT",
        ),
        sections=sections
        if sections is not None
        else (
            Section(
                "clinical_information",
                Text("Clinical information", "临床资料"),
                text="咳嗽两周。Cough for two weeks.",
            ),
            Section(
                "findings",
                Text("Findings", "检查所见"),
                text=FINDINGS,
                entries=(
                    Entry(Text("Nodule size", "结节大小"), "8 mm", number=8.0, unit="mm"),
                    Entry(Text("Margin", "边缘"), "毛刺 spiculated", code=SPICULATED),
                    Entry(Text("Lung-RADS", "Lung-RADS 分类"), "3"),
                ),
                code=Code("59776-5", "LN", "Findings"),
            ),
            Section("impression", Text("Impression", "诊断意见"), text=IMPRESSION),
            Section("recommendations", Text("Recommendations", "建议")),  # empty: left out
        ),
        template_id="ct-chest",
        template_version=1,
        signatures=tuple(signatures),
        key_images=tuple(
            KeyImage(
                jpeg=b"",
                caption=f"图像 {ds.InstanceNumber} Image {ds.InstanceNumber}" if i == 0 else "",
                study_instance_uid=ds.StudyInstanceUID,
                series_instance_uid=ds.SeriesInstanceUID,
                sop_instance_uid=ds.SOPInstanceUID,
                sop_class_uid=ds.SOPClassUID,
            )
            for i, ds in enumerate(images)
        ),
        addenda=addenda,
        supersedes_version=version - 1 if status == ReportStatus.amended else None,
        amendment_reason="结节大小更正" if status == ReportStatus.amended else "",
    )


def a_pdf(odd: bool = False) -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(72, 720, "RadRelay report")
    page.save()
    pdf = buffer.getvalue()
    # Bytes after %%EOF are allowed, which sets the length's parity for the test.
    return pdf + b"\n" if (len(pdf) % 2 == 1) != odd else pdf


def part10(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def reread(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def dcmtk(tool: str, path: Path, *options: str) -> str:
    """The tool's output as UTF-8 (``+U8`` converts from the file's character set); it must
    succeed and report no error, and no warning beyond its character set notice."""
    done = subprocess.run([tool, "+U8", *options, str(path)], capture_output=True, timeout=60)
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr
    assert not re.search(r"^[FE]: ", stderr, re.MULTILINE), stderr
    # Counted, not matched by line: dcmtk may run two warnings into one line.
    assert stderr.count("W: ") == stderr.count(DCMTK_CHARSET_NOTICE), stderr
    return done.stdout.decode("utf-8")


PATIENT_AND_STUDY = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "ReferringPhysicianName",
    "StudyDescription",
)


class TestEncapsulatedPdf:
    @pytest.mark.parametrize("odd", [True, False], ids=["odd-length", "even-length"])
    def test_the_signed_bytes_come_back_unchanged(self, odd: bool) -> None:
        images = source_study()
        pdf = a_pdf(odd)
        ds = reread(encapsulated_pdf(pdf, report(images), images[0]))

        assert ds.SOPClassUID == EncapsulatedPDFStorage
        assert ds.file_meta.MediaStorageSOPClassUID == EncapsulatedPDFStorage
        stored = ds.EncapsulatedDocument
        assert len(stored) % 2 == 0  # PS3.5: values have even length
        assert ds.EncapsulatedDocumentLength == len(pdf)
        assert stored[: ds.EncapsulatedDocumentLength] == pdf
        assert stored[len(pdf) :] == (b"\x00" if odd else b"")
        assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf"

    def test_in_the_study_of_the_images_in_a_series_of_its_own(self) -> None:
        images = source_study()
        source = images[0]
        ds = reread(encapsulated_pdf(a_pdf(), report(images), source))

        for keyword in PATIENT_AND_STUDY:
            assert ds[keyword].value == source[keyword].value, keyword
        assert str(ds.PatientName) == ZHANG_WEI
        assert ds.SpecificCharacterSet == "GB18030"  # as the PACS received the images
        assert ds.SeriesInstanceUID not in {im.SeriesInstanceUID for im in images}
        assert ds.Modality == "DOC"
        assert ds.SeriesDescription == "RadRelay report v1"
        assert ds.SeriesNumber == 9001
        assert ds.InstanceNumber == 1
        assert ds.Manufacturer == "RadRelay"
        assert ds.ConversionType == "WSD"

    def test_document_attributes(self) -> None:
        images = source_study()
        ds = reread(encapsulated_pdf(a_pdf(), report(images), images[0]))

        assert ds.DocumentTitle == "胸部CT平扫 Chest CT 影像诊断报告 Diagnostic Imaging Report"
        (title,) = ds.ConceptNameCodeSequence
        assert (title.CodeValue, title.CodingSchemeDesignator) == ("18748-4", "LN")
        assert title.CodeMeaning == "Diagnostic Imaging Report"
        assert ds.BurnedInAnnotation == "YES"
        assert ds.VerificationFlag == "VERIFIED"
        # The co-signature, in Beijing time, labelled so.
        assert (ds.ContentDate, ds.ContentTime) == ("20260303", "150500")
        assert ds.AcquisitionDateTime == "20260303150500+0800"
        assert ds.TimezoneOffsetFromUTC == "+0800"
        # The key images it shows were derived from these instances.
        assert [item.ReferencedSOPInstanceUID for item in ds.SourceInstanceSequence] == [
            im.SOPInstanceUID for im in images
        ]
        assert "PredecessorDocumentsSequence" not in ds

    def test_dcmdump_reads_the_chinese_name_and_the_title(self, tmp_path: Path) -> None:
        images = source_study()
        path = part10(encapsulated_pdf(a_pdf(), report(images), images[0]), tmp_path / "r.dcm")
        out = dcmtk(DCMDUMP, path)

        assert "=EncapsulatedPDFStorage" in out
        assert "[Zhang^Wei=张^伟]" in out
        assert "[Li^Ming=李^明]" in out
        assert "[CT 腹部增强 ABDOMEN W CONTRAST]" in out
        assert "胸部CT平扫 Chest CT 影像诊断报告" in out
        assert "[application/pdf]" in out

    def test_refuses_what_is_not_a_pdf(self) -> None:
        images = source_study()
        with pytest.raises(ValueError, match="not a PDF"):
            encapsulated_pdf(b"<html>", report(images), images[0])


class TestStructuredReport:
    def test_an_enhanced_sr_in_the_study_of_the_images(self) -> None:
        images = source_study()
        source = images[0]
        ds = reread(structured_report(report(images), source))

        assert ds.SOPClassUID == EnhancedSRStorage
        for keyword in PATIENT_AND_STUDY:
            assert ds[keyword].value == source[keyword].value, keyword
        assert ds.SpecificCharacterSet == "GB18030"
        assert ds.Modality == "SR"
        assert ds.SeriesInstanceUID not in {im.SeriesInstanceUID for im in images}
        assert ds.SeriesDescription == "RadRelay structured report v1"
        assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == (
            "COMPLETE",
            "VERIFIED",
            "FINAL",
        )
        observers = [
            (str(o.VerifyingObserverName), o.VerifyingOrganization, o.VerificationDateTime)
            for o in ds.VerifyingObserverSequence
        ]
        assert observers == [
            ("Li Na^=李娜^", "云影远程影像诊断中心", "20260303143200+0800"),
            ("Wang Jianguo^=王建国^", "云影远程影像诊断中心", "20260303150500+0800"),
        ]
        (request,) = ds.ReferencedRequestSequence
        assert request.AccessionNumber == source.AccessionNumber
        # Evidence: the source and the key images (the same two instances here).
        (evidence,) = ds.CurrentRequestedProcedureEvidenceSequence
        assert evidence.StudyInstanceUID == source.StudyInstanceUID
        (series,) = evidence.ReferencedSeriesSequence
        assert {item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence} == {
            im.SOPInstanceUID for im in images
        }

    def test_the_tid_2000_tree(self) -> None:
        images = source_study()
        sr = hd.sr.EnhancedSR.from_dataset(reread(structured_report(report(images), images[0])))
        (root,) = sr.content
        assert (root.name.value, root.name.scheme_designator) == ("18748-4", "LN")
        assert root.ContentTemplateSequence[0].TemplateIdentifier == "2000"
        assert root.ContentTemplateSequence[0].MappingResource == "DCMR"

        items = list(root.ContentSequence)
        modality, language = items[0], items[1]
        assert (modality.name.value, modality.value.value) == ("122142", "CT")
        assert (language.name.value, language.value.value) == ("121049", "zh-CN")
        observers = [
            str(i.value) for i in items if i.ValueType == "PNAME" and i.name.value == "121008"
        ]
        assert observers == ["Li Na^=李娜^", "Wang Jianguo^=王建国^"]

        sections = {
            i.name.value: list(i.ContentSequence) for i in items if i.ValueType == "CONTAINER"
        }
        # CID 7001 headings, in the report's order; the empty section is left out.
        assert list(sections) == ["55752-0", "59776-5", "19005-8", "55113-5"]
        findings = sections["59776-5"]
        assert [(i.ValueType, i.name.value) for i in findings] == [
            ("TEXT", "121071"),
            ("TEXT", "121071"),
            ("CODE", "margin"),  # named after the field it answers
            ("TEXT", "121071"),
        ]
        assert findings[0].value == FINDINGS
        size = findings[1]
        assert size.value == "结节大小 Nodule size: 8 mm"
        (number,) = size.ContentSequence
        assert number.RelationshipType == "INFERRED FROM"
        assert (number.name.value, number.value, number.unit.value) == ("410668003", 8.0, "mm")
        assert number.unit.scheme_designator == "UCUM"
        assert findings[2].name == hd.sr.CodedConcept("margin", LOCAL_SCHEME, "边缘 Margin")
        assert findings[2].value == hd.sr.CodedConcept("RID5713", "RADLEX", "spiculated margin")
        assert findings[3].value == "Lung-RADS 分类 Lung-RADS: 3"
        (impression,) = sections["19005-8"]
        assert (impression.name.value, impression.value) == ("121073", IMPRESSION)

        captioned, bare = sections["55113-5"]
        assert captioned.value == "图像 1 Image 1"
        (image,) = captioned.ContentSequence
        assert image.name.value == "121080"  # Best illustration of finding
        assert image.referenced_sop_instance_uid == images[0].SOPInstanceUID
        assert bare.ValueType == "IMAGE"
        assert bare.referenced_sop_instance_uid == images[1].SOPInstanceUID

    def test_dsrdump_renders_the_tree(self, tmp_path: Path) -> None:
        images = source_study()
        path = part10(structured_report(report(images), images[0]), tmp_path / "sr.dcm")
        out = dcmtk(DSRDUMP, path, "+Pl", "+Pt", "+Pc")

        assert out.startswith("Enhanced SR Document")
        assert "Patient             : Zhang^Wei=张^伟 (M, 1968-04-12, #QSX-000123:SYNTH)" in out
        assert "Completion Flag     : COMPLETE" in out
        assert "Verification Flag   : VERIFIED" in out
        assert "Li Na^=李娜^, 云影远程影像诊断中心" in out
        assert '<CONTAINER:(18748-4,LN,"Diagnostic Imaging Report")=SEPARATE>  # TID 2000' in out
        for heading in (
            '(55752-0,LN,"Clinical Information")',
            '(59776-5,LN,"Findings")',
            '(19005-8,LN,"Impressions")',
            '(55113-5,LN,"Key Images")',
        ):
            assert f"<contains CONTAINER:{heading}=SEPARATE>" in out
        assert '(121049,DCM,"Language of Content Item and Descendants")=(zh-CN,' in out
        assert f'<contains TEXT:(121071,DCM,"Finding")="{FINDINGS}">' in out
        assert (
            f'<contains CODE:(margin,{LOCAL_SCHEME},"边缘 Margin")'
            '=(RID5713,RADLEX,"spiculated margin")>' in out
        )
        assert '<inferred from NUM:(410668003,SCT,"Length")="8.0" (mm,UCUM,"millimeter")>' in out
        assert (
            '<inferred from IMAGE:(121080,DCM,"Best illustration of finding")=(CT image,)>' in out
        )
        assert f'<contains TEXT:(121073,DCM,"Impression")="{IMPRESSION}">' in out

    def test_preliminary_is_partial_and_unverified(self, tmp_path: Path) -> None:
        images = source_study()
        doc = report(images, status=ReportStatus.preliminary)
        sr = reread(structured_report(doc, images[0]))
        pdf = reread(encapsulated_pdf(a_pdf(), doc, images[0]))

        assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
            "PARTIAL",
            "UNVERIFIED",
            "PRELIMINARY",
        )
        assert "VerifyingObserverSequence" not in sr
        assert pdf.VerificationFlag == "UNVERIFIED"
        assert pdf.DocumentTitle.endswith("(初步报告 preliminary)")
        # The author's signature fixes the content.
        assert (sr.ContentDate, sr.ContentTime) == ("20260303", "143200")
        dcmtk(DSRDUMP, part10(sr, tmp_path / "sr.dcm"))

    def test_a_final_unsigned_report_is_refused(self) -> None:
        images = source_study()
        doc = replace(report(images), signatures=())
        with pytest.raises(ValueError, match="unsigned"):
            structured_report(doc, images[0])

    def test_an_addendum_has_its_signer_and_time(self, tmp_path: Path) -> None:
        images = source_study()
        addendum = Addendum(
            text="结节大小复核为8.5 mm。On review the nodule measures 8.5 mm.",
            reason="测量复核 Measurement review",
            signature=Signature("王建国 Wang Jianguo", "主任医师", Meaning.addendum, _at(16, 40)),
        )
        sr = structured_report(report(images, addenda=(addendum,)), images[0])
        out = dcmtk(DSRDUMP, part10(sr, tmp_path / "sr.dcm"), "+Pl", "+Pc")

        assert (
            '<contains CONTAINER:(55107-7,LN,"Addendum")=SEPARATE> {2026-03-03 16:40:00 +08:00}'
            in out
        )
        assert (
            '<has obs context PNAME:(121008,DCM,"Person Observer Name")="Wang Jianguo^=王建国^">'
            in out
        )
        assert (
            '<contains TEXT:(121078,DCM,"Addendum")="结节大小复核为8.5 mm。On review the nodule '
            'measures 8.5 mm.\\n原因 Reason: 测量复核 Measurement review">' in out
        )
        # The addendum does not move the content time: that is the co-signature's.
        back = reread(sr)
        assert (back.ContentDate, back.ContentTime) == ("20260303", "150500")

    def test_a_section_without_a_standard_heading_gets_a_declared_local_code(
        self, tmp_path: Path
    ) -> None:
        images = source_study()
        sections = (Section("lirads", Text("LI-RADS", "LI-RADS 分类"), text="LR-3"),)
        sr = structured_report(report(images, sections=sections), images[0])
        out = dcmtk(DSRDUMP, part10(sr, tmp_path / "sr.dcm"), "+Pc")

        assert (
            f'<contains CONTAINER:(lirads,{LOCAL_SCHEME},"LI-RADS 分类 LI-RADS")=SEPARATE>' in out
        )
        (scheme,) = reread(sr).CodingSchemeIdentificationSequence
        assert scheme.CodingSchemeDesignator == LOCAL_SCHEME
        assert scheme.CodingSchemeResponsibleOrganization == "RadRelay"

    def test_other_evidence_of_the_study_is_listed(self) -> None:
        images = source_study()
        more = Dataset()
        more.StudyInstanceUID = images[0].StudyInstanceUID
        more.SeriesInstanceUID = images[0].SeriesInstanceUID
        more.SOPClassUID = images[0].SOPClassUID
        more.SOPInstanceUID = UID("2.25.1234")
        sr = structured_report(report(images[:1]), images[0], evidence=[more])

        (evidence,) = sr.CurrentRequestedProcedureEvidenceSequence
        (series,) = evidence.ReferencedSeriesSequence
        assert [item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence] == [
            images[0].SOPInstanceUID,
            "2.25.1234",
        ]


class TestVersions:
    def test_the_same_version_is_the_same_object(self) -> None:
        images = source_study()
        doc = report(images)
        pdf = a_pdf()

        assert report_uids(doc) == report_uids(report(images))
        # Byte for byte: a re-delivery sends what the PACS already has.
        assert synth.encode(encapsulated_pdf(pdf, doc, images[0])) == synth.encode(
            encapsulated_pdf(pdf, doc, images[1])
        )
        assert synth.encode(structured_report(doc, images[0])) == synth.encode(
            structured_report(doc, images[0])
        )

    def test_uids_per_version_report_and_form(self) -> None:
        images = source_study()
        doc = report(images)
        uids = report_uids(doc)
        every = [
            uids.pdf_series,
            uids.pdf_instance,
            uids.sr_series,
            uids.sr_instance,
            *vars_of(report_uids(report(images, version=2))),
            *vars_of(report_uids(report(images, report_id=78))),
        ]
        assert len(set(every)) == len(every)
        assert all(uid.is_valid and uid.startswith("2.25.") for uid in every)

        assert encapsulated_pdf(a_pdf(), doc, images[0]).SOPInstanceUID == uids.pdf_instance
        assert structured_report(doc, images[0]).SOPInstanceUID == uids.sr_instance

    def test_an_amended_report_references_the_version_it_supersedes(self, tmp_path: Path) -> None:
        images = source_study()
        first = report(images)
        amended = report(images, version=2, status=ReportStatus.amended)
        sr_v1 = structured_report(first, images[0])
        pdf_v1 = encapsulated_pdf(a_pdf(), first, images[0])
        sr = reread(structured_report(amended, images[0]))
        pdf = reread(encapsulated_pdf(a_pdf(), amended, images[0]))

        for new, old in ((sr, sr_v1), (pdf, pdf_v1)):
            (study_item,) = new.PredecessorDocumentsSequence
            assert study_item.StudyInstanceUID == old.StudyInstanceUID
            (series,) = study_item.ReferencedSeriesSequence
            assert series.SeriesInstanceUID == old.SeriesInstanceUID
            (sop,) = series.ReferencedSOPSequence
            assert (sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID) == (
                old.SOPClassUID,
                old.SOPInstanceUID,
            )
            assert new.SeriesInstanceUID != old.SeriesInstanceUID
            assert new.SeriesNumber == old.SeriesNumber + 1
        assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")
        assert pdf.DocumentTitle.endswith("(更正报告 amended)")
        assert sr.SeriesDescription == "RadRelay structured report v2"
        dcmtk(DSRDUMP, part10(sr, tmp_path / "sr.dcm"))

    def test_a_final_after_a_preliminary_references_it(self) -> None:
        images = source_study()
        preliminary = report(images, status=ReportStatus.preliminary)
        final = report(images, version=2)
        sr = structured_report(final, images[0])

        (study_item,) = sr.PredecessorDocumentsSequence
        (sop,) = study_item.ReferencedSeriesSequence[0].ReferencedSOPSequence
        assert sop.ReferencedSOPInstanceUID == report_uids(preliminary).sr_instance


def vars_of(uids: object) -> list[UID]:
    return [
        getattr(uids, name) for name in ("pdf_series", "pdf_instance", "sr_series", "sr_instance")
    ]


class TestSafety:
    def test_a_report_goes_only_into_its_own_study(self) -> None:
        images = source_study()
        other = source_study()[0]
        doc = report(images)
        with pytest.raises(ValueError, match="study"):
            encapsulated_pdf(a_pdf(), doc, other)
        with pytest.raises(ValueError, match="study"):
            structured_report(doc, other)

    def test_and_only_for_its_own_patient(self) -> None:
        images = source_study()
        doc = replace(report(images), patient=replace(report(images).patient, patient_id="OTHER"))
        with pytest.raises(ValueError, match="patient"):
            structured_report(doc, images[0])


class TestCharacterSets:
    @pytest.mark.parametrize(
        ("sent", "written"),
        [
            ("GB18030", "GB18030"),
            ("GBK", "GBK"),
            ("ISO_IR 192", "ISO_IR 192"),
            # pydicom cannot write ISO 2022 GB 2312 (no escape sequences): GB18030 has the same
            # characters with the same bytes.
            ("ISO 2022 IR 58", "GB18030"),
        ],
    )
    def test_the_names_as_the_hospital_sent_them(
        self, sent: str, written: str, tmp_path: Path
    ) -> None:
        images = source_study(sent)
        doc = report(images)
        # Both forms from the same source: reading it must not spoil it for the next.
        forms = {
            "pdf": encapsulated_pdf(a_pdf(), doc, images[0]),
            "sr": structured_report(doc, images[0]),
        }
        for name, ds in forms.items():
            back = reread(ds)
            assert back.SpecificCharacterSet == written
            assert str(back.PatientName) == ZHANG_WEI
            assert str(back.ReferringPhysicianName) == "Li^Ming=李^明"
            assert back.StudyDescription == "CT 腹部增强 ABDOMEN W CONTRAST"
            out = dcmtk(DCMDUMP, part10(ds, tmp_path / f"{name}.dcm"))
            assert "[Zhang^Wei=张^伟]" in out
            assert "[CT 腹部增强 ABDOMEN W CONTRAST]" in out

    def test_an_implicit_vr_header_in_iso_2022_ir_58(self) -> None:
        """Many PACS store Implicit VR: the raw elements have no VR, the dictionary gives it."""
        images = source_study("ISO 2022 IR 58")
        buffer = io.BytesIO()
        images[0].file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        images[0].save_as(buffer, implicit_vr=True, little_endian=True)
        header = pydicom.dcmread(io.BytesIO(buffer.getvalue()), stop_before_pixels=True)
        assert header.get_item("StudyDescription").VR is None

        back = reread(structured_report(report(images), header))
        assert back.SpecificCharacterSet == "GB18030"
        assert str(back.PatientName) == ZHANG_WEI
        assert back.StudyDescription == "CT 腹部增强 ABDOMEN W CONTRAST"

    def test_a_latin_study_gets_utf8_only_when_the_report_needs_it(self) -> None:
        images = source_study()
        for ds in images:
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.PatientName = "Müller^Anna"
            ds.ReferringPhysicianName = "Li^Ming"
            ds.StudyDescription = "CT ABDOMEN"
        images = [reread(ds) for ds in images]
        chinese = report(images)
        english = replace(
            chinese,
            language=Language.en,
            center=Party("Cloud Reading Center", code="CRC"),
            exam=replace(chinese.exam, description="Chest CT"),
            sections=(Section("impression", Text("Impression"), text="No acute findings."),),
            signatures=(Signature("Li^Na", "Attending", Meaning.author, _at(14, 32)),),
            key_images=(),
        )

        assert reread(structured_report(chinese, images[0])).SpecificCharacterSet == "ISO_IR 192"
        kept = reread(structured_report(english, images[0]))
        assert kept.SpecificCharacterSet == "ISO_IR 100"
        assert str(kept.PatientName) == "Müller^Anna"
