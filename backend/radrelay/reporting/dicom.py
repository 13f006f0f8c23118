"""DICOM forms of a signed report, for the sending hospital's PACS: the signed PDF as an
Encapsulated PDF object, and the report's content as a structured report (SR) for systems that
import structured results.

Both objects join the study the report reads: the patient and study attributes are copied from
one of the study's stored instances (``source``), so that the PACS files the report with the
images, each object in a new series of its own. Pure functions: no database, no clock; the same
report version always gives the same objects, with the same UIDs.

Standards (DICOM 2025):
- Encapsulated PDF IOD, PS3.3 A.45.1: Patient (C.7.1.1), General Study (C.7.2.1), Patient Study
  (C.7.2.2), Encapsulated Document Series (C.24.1), General Equipment (C.7.5.1), SC Equipment
  (C.8.6.1), Encapsulated Document (C.24.2) and SOP Common (C.12.1) modules.
- Enhanced SR IOD, PS3.3 A.35.2, with the SR Document General (C.17.2) and SR Document Content
  (C.17.3) modules. The content tree follows PS3.16 TID 2000 "Basic Diagnostic Imaging Report",
  with TID 1204 (language), TID 1001 (observation context), TID 2002 (report narrative) and
  TID 2001 (image references and measurements). Enhanced rather than Basic Text SR because
  measurements are NUM content items, which Basic Text SR does not allow (PS3.3 A.35.1).
- UIDs: PS3.5 B.2, "2.25." followed by a UUID, here derived from the report's identity.
- Character sets: PS3.3 C.12.1.1.2, PS3.5 6.1 and Annex J (GB18030, GBK and UTF-8 carry one
  character set for the whole object).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from highdicom import SOPClass
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import (
    CodeContentItem,
    CodedConcept,
    ContainerContentItem,
    ContentItem,
    ContentSequence,
    EnhancedSR,
    ImageContentItem,
    LanguageOfContentItemAndDescendants,
    NumContentItem,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    RelationshipTypeValues,
    TextContentItem,
)
from highdicom.sr.utils import collect_evidence
from pydicom.charset import python_encoding
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.codedict import Collection, codes
from pydicom.sr.coding import Code as DicomCode
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    EncapsulatedPDFStorage,
    EnhancedSRStorage,
    ExplicitVRLittleEndian,
)
from pydicom.valuerep import DT

from radrelay.kit.dicom import ir58_value
from radrelay.reporting.document import (
    Code,
    Entry,
    KeyImage,
    Language,
    Meaning,
    ReportDocument,
    ReportStatus,
    Section,
    Signature,
    Text,
)

CONTAINS = RelationshipTypeValues.CONTAINS
INFERRED_FROM = RelationshipTypeValues.INFERRED_FROM
HAS_CONCEPT_MOD = RelationshipTypeValues.HAS_CONCEPT_MOD

# China has one time zone. DICOM dates and times are local (PS3.5 6.2), so they are written in
# the hospital's time and labelled with Timezone Offset From UTC (SOP Common, PS3.3 C.12.1).
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

# Series numbers after the modality's own series (which count from 1), one series per report
# version: base + version.
PDF_SERIES_BASE = 9000
SR_SERIES_BASE = 9500

# The document title of both forms: CID 7000 "Diagnostic Imaging Report Document Title".
REPORT_TITLE = codes.LN.DiagnosticImagingReport  # (18748-4, LN)

# Our own coding scheme, for a template's section without a standard heading code and for the
# fields that coded answers answer: a local designator starts with "99" (PS3.3 8.2) and is
# declared in the Coding Scheme Identification Sequence (SOP Common, PS3.3 C.12.1).
LOCAL_SCHEME = "99RADRELAY"

# Coding schemes of PS3.16 Table 8-1 that need no declaration; any other is declared.
_STANDARD_SCHEMES = {"DCM", "LN", "SCT", "SRT", "RADLEX", "UCUM", "RFC5646", "NCIt", "UMLS", "FMA"}

# Section key -> (heading, CID 7001 "Diagnostic Imaging Report Heading"; element for its
# narrative, CID 7002 "Diagnostic Imaging Report Element"). The DCM headings (121060 ...) of
# older editions are retired; CID 7001 now holds the LOINC section codes.
_SECTIONS: dict[str, tuple[DicomCode, DicomCode]] = {
    "clinical_information": (codes.LN.ClinicalInformation, codes.LN.History),
    "history": (codes.LN.History, codes.LN.History),
    "indications": (codes.LN.IndicationsForProcedure, codes.LN.History),
    "request": (codes.LN.Request, codes.LN.Request),
    "technique": (codes.LN.CurrentProcedureDescriptions, codes.DCM.ProcedureDescription),
    # LOINC 18834-2 is "Radiology Comparison study" (the comparison section of HL7's
    # Diagnostic Imaging Report); DICOM names it "Previous Findings".
    "comparison": (codes.LN.PreviousFindings, codes.DCM.PreviousFinding),
    "findings": (codes.LN.Findings, codes.DCM.Finding),
    "impression": (codes.LN.Impressions, codes.DCM.Impression),
    "conclusion": (codes.LN.Conclusions, codes.DCM.Conclusion),
    "recommendations": (codes.LN.Recommendations, codes.DCM.Recommendation),
    "summary": (codes.LN.Summary, codes.LN.Summary),
}

# TID 1204: CID 5000 languages are RFC 5646 tags.
_LANGUAGES = {
    Language.zh: CodedConcept("zh-CN", "RFC5646", "Chinese (China)"),
    Language.bilingual: CodedConcept("zh-CN", "RFC5646", "Chinese (China)"),  # Chinese first
    Language.en: CodedConcept("en", "RFC5646", "English"),
}

# The concept name of a measurement (TID 1404 "Numeric Measurement") when the template gave the
# field no code of its own: the quantity its UCUM unit measures.
_QUANTITY_OF_UNIT: dict[str, DicomCode] = {
    **dict.fromkeys(("nm", "um", "mm", "cm", "m"), codes.SCT.Length),
    **dict.fromkeys(("mm2", "cm2", "m2"), codes.SCT.Area),
    **dict.fromkeys(("mm3", "cm3", "mL", "ml", "L", "l"), codes.SCT.Volume),
    "[hnsf'U]": codes.DCM.AttenuationCoefficient,
}
_UCUM_MEANINGS = {
    "mm": "millimeter",
    "cm": "centimeter",
    "mm2": "square millimeter",
    "cm2": "square centimeter",
    "mm3": "cubic millimeter",
    "cm3": "cubic centimeter",
    "mL": "milliliter",
    "[hnsf'U]": "Hounsfield unit",
    "%": "percent",
    "1": "no units",
}

# CID 29 "Acquisition Modality", for TID 2000 row 3 (Acquisition Device Type).
_CID29 = Collection("CID29")
_MODALITIES = {code.value: code for code in (getattr(_CID29, name) for name in _CID29.dir())}

# Value representations whose text the Specific Character Set governs (PS3.5 6.1.2).
_CHARSET_VRS = {"SH", "LO", "ST", "LT", "PN", "UC", "UT"}
_BULK_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_UTF8 = "ISO_IR 192"
_IR58 = "ISO 2022 IR 58"

_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff]+")


# The namespace of our name-based UUIDs (``report_uids``): fixed for good, or every report's
# objects would get new UIDs.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:radrelay:report-dicom")


@dataclass(frozen=True, slots=True)
class ReportUIDs:
    """The series and SOP Instance UIDs of one report version's DICOM forms."""

    pdf_series: UID
    pdf_instance: UID
    sr_series: UID
    sr_instance: UID


def report_uids(doc: ReportDocument, version: int | None = None) -> ReportUIDs:
    """The UIDs of ``doc``'s version (or of another ``version`` of the same report).

    Derived, not random: "2.25." and the integer of a name-based UUID (RFC 4122 version 5) of
    the report's identity, as PS3.5 B.2 allows. Re-delivering a version therefore sends the same
    objects, which a PACS stores once, and an amended version references the objects it
    supersedes without a lookup. The study UID and the center's code are part of the identity
    because report ids are only unique within one RadRelay installation. (pydicom's
    ``generate_uid(prefix=None, entropy_srcs=...)`` would not do: without a prefix it ignores the
    entropy and returns a random UUID.)"""
    v = doc.version if version is None else version

    def uid(kind: str) -> UID:
        identity = [kind, doc.center.code, doc.exam.study_instance_uid, doc.report_id, v]
        return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, json.dumps(identity)).int}")

    return ReportUIDs(
        pdf_series=uid("pdf-series"),
        pdf_instance=uid("pdf"),
        sr_series=uid("sr-series"),
        sr_instance=uid("sr"),
    )


def encapsulated_pdf(
    pdf: bytes,
    doc: ReportDocument,
    source: Dataset,
    *,
    series_uid: str | None = None,
    instance_number: int = 1,
    manufacturer: str = "RadRelay",
    tz: tzinfo = CHINA_STANDARD_TIME,
) -> Dataset:
    """The signed PDF as an Encapsulated PDF Storage object (PS3.3 A.45.1) in ``source``'s study.

    ``pdf`` is stored unchanged: the Encapsulated Document (0042,0011) holds its bytes and one
    trailing NUL when their number is odd (PS3.5 6.2: OB values have even length), and Encapsulated
    Document Length (0042,0015) the true length, so a reader recovers the signed bytes exactly
    (PS3.3 C.24.2). ``source`` is a data set of one of the study's instances, read as stored.
    ``series_uid`` defaults to the version's own series (``report_uids``)."""
    if not pdf.startswith(b"%PDF-"):
        raise ValueError("not a PDF: the bytes do not start with %PDF-")
    _check_same_study(doc, source)
    verified = _verified(doc)
    uids = report_uids(doc)
    when = _content_datetime(doc, tz)
    header = _source_header(source)

    ds = SOPClass(
        study_instance_uid=header.StudyInstanceUID,
        series_instance_uid=series_uid or uids.pdf_series,
        series_number=PDF_SERIES_BASE + doc.version,
        sop_instance_uid=uids.pdf_instance,
        sop_class_uid=EncapsulatedPDFStorage,
        instance_number=instance_number,
        modality="DOC",  # PS3.3 C.7.3.1.1.1: a document
        manufacturer=manufacturer,
        transfer_syntax_uid=ExplicitVRLittleEndian,
        series_description=f"RadRelay report v{doc.version}",
        institution_name=doc.center.name or None,
        content_date=when.date(),
        content_time=when.time(),
        series_date=when.date(),
        series_time=when.time(),
    )
    _copy_patient_and_study(ds, header)
    ds.ConversionType = "WSD"  # C.8.6.1: made on a workstation, not scanned
    # Encapsulated Document module (C.24.2).
    ds.AcquisitionDateTime = DT(when)
    ds.BurnedInAnnotation = "YES"  # the PDF shows the patient's name and identifiers
    ds.DocumentTitle = _title(doc)
    ds.ConceptNameCodeSequence = [CodedConcept.from_code(REPORT_TITLE)]
    ds.VerificationFlag = "VERIFIED" if verified else "UNVERIFIED"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + b"\x00" * (len(pdf) % 2)
    ds.EncapsulatedDocumentLength = len(pdf)
    if doc.key_images:
        # Required when the document was derived from DICOM instances: its key images were.
        ds.SourceInstanceSequence = [_sop_reference(image) for image in _unique(doc.key_images)]
    if (previous := _predecessor(doc)) is not None:
        before = report_uids(doc, previous)
        ds.PredecessorDocumentsSequence = [
            _hierarchical_reference(
                doc.exam.study_instance_uid,
                before.pdf_series,
                EncapsulatedPDFStorage,
                before.pdf_instance,
            )
        ]
    _finish(ds, when, source)
    return ds


def structured_report(
    doc: ReportDocument,
    source: Dataset,
    *,
    evidence: Iterable[Dataset] = (),
    series_uid: str | None = None,
    instance_number: int = 1,
    manufacturer: str = "RadRelay",
    tz: tzinfo = CHINA_STANDARD_TIME,
) -> Dataset:
    """The report as an Enhanced SR document (PS3.3 A.35.2) following TID 2000 "Basic Diagnostic
    Imaging Report", in ``source``'s study.

    The content tree (PS3.16):
    - the root CONTAINER, (18748-4, LN, "Diagnostic Imaging Report"), TID 2000 row 1;
    - HAS CONCEPT MOD Acquisition Device Type (the exam's modality, CID 29), row 3;
    - HAS CONCEPT MOD Language of Content Item and Descendants (TID 1204), row 5;
    - HAS OBS CONTEXT the signing radiologists, author then co-signer (TID 1001/1002/1003), row 7;
    - one CONTAINER per section with text, headed by its CID 7001 code, row 8, holding the
      report narrative (TID 2002): a TEXT for the section's text; per entry a CODE (coded
      answers, named after their field), a TEXT "label: value" INFERRED FROM a NUM with its
      UCUM unit (measurements, TID 2001/1404), or a TEXT "label: value";
    - a Key Images CONTAINER (55113-5, LN): per key image an IMAGE (121080, DCM, "Best
      illustration of finding"), under a TEXT of its caption when it has one;
    - per addendum an Addendum CONTAINER (55107-7, LN) with its signer as observation context
      (row 9) and its own Observation DateTime.

    Final and amended reports are COMPLETE and VERIFIED, with one Verifying Observer per author
    or co-signer signature; preliminary ones PARTIAL and UNVERIFIED (PS3.3 C.17.2). Version n > 1
    lists version n-1 (or the version it amends) in the Predecessor Documents Sequence.

    ``evidence``: data sets (headers suffice) of other instances the report covers, listed with
    the source and the key images in the Current Requested Procedure Evidence Sequence (or, for
    other studies, the Pertinent Other Evidence Sequence)."""
    _check_same_study(doc, source)
    verified = _verified(doc)
    uids = report_uids(doc)
    when = _content_datetime(doc, tz)
    header = _source_header(source)
    content = _content_tree(doc, tz)
    signers = _signers(doc)
    organisation = doc.center.name or doc.center.code or "RadRelay"
    schemes = _declared_schemes(content)

    # highdicom copies the patient and study modules by the IOD of evidence[0]. Keyed on our own
    # IOD, it copies exactly what the Enhanced SR IOD defines, whatever the source's SOP class
    # (some vendors' are private); the evidence sequences are then built from the real classes.
    carrier = deepcopy(header)
    carrier.SOPClassUID = EnhancedSRStorage
    references = [_reference_dataset(image) for image in _unique(doc.key_images)]
    sr = EnhancedSR(
        evidence=[carrier, *references],
        content=content,
        series_instance_uid=series_uid or uids.sr_series,
        series_number=SR_SERIES_BASE + doc.version,
        sop_instance_uid=uids.sr_instance,
        instance_number=instance_number,
        manufacturer=manufacturer,
        is_complete=doc.status != ReportStatus.preliminary,
        is_final=doc.status != ReportStatus.preliminary,
        is_verified=verified,
        institution_name=doc.center.name or None,
        verifying_observer_name=_person_name(signers[0].name) if verified else None,
        verifying_organization=organisation if verified else None,
        requested_procedures=_requests(header),
        previous_versions=_previous_sr(doc),
        series_description=f"RadRelay structured report v{doc.version}",
        content_date=when.date(),
        content_time=when.time(),
        series_date=when.date(),
        series_time=when.time(),
        coding_schemes=schemes or None,
    )
    current, other = collect_evidence(
        [header, *references, *evidence], content, study_instance_uid=header.StudyInstanceUID
    )
    sr.CurrentRequestedProcedureEvidenceSequence = current
    if other:
        sr.PertinentOtherEvidenceSequence = other
    if verified:
        # highdicom records one verifier at the time of building; the report has its signers,
        # each at the time they signed (C.17.2).
        sr.VerifyingObserverSequence = [
            _verifying_observer(signature, organisation, tz) for signature in signers
        ]
    _finish(sr, when, source)
    return sr


# --- the content tree (PS3.16 TID 2000) ---


def _content_tree(doc: ReportDocument, tz: tzinfo) -> ContainerContentItem:
    root = ContainerContentItem(name=REPORT_TITLE, template_id="2000", is_content_continuous=False)
    items: list[ContentItem] = []
    if (modality := _MODALITIES.get(doc.exam.modality.upper())) is not None:
        items.append(
            CodeContentItem(
                name=codes.DCM.AcquisitionDeviceType,
                value=modality,
                relationship_type=HAS_CONCEPT_MOD,
            )
        )
    items.extend(_items(LanguageOfContentItemAndDescendants(_LANGUAGES[doc.language])))
    organisation = doc.center.name or None
    for signature in _signers(doc):
        items.extend(
            _items(ObservationContext(observer_person_context=_observer(signature, organisation)))
        )
    for section in doc.sections:
        if (container := _section(section, doc.language)) is not None:
            items.append(container)
    if doc.key_images:
        items.append(_key_images(doc.key_images))
    for addendum in doc.addenda:
        container = ContainerContentItem(
            name=codes.LN.Addendum, relationship_type=CONTAINS, is_content_continuous=False
        )
        # Added after the content date and time, so the item carries its own (C.17.3).
        container.add_new("ObservationDateTime", "DT", DT(_local(addendum.signature.signed_at, tz)))
        narrative = _items(
            ObservationContext(observer_person_context=_observer(addendum.signature, organisation))
        )
        text = addendum.text.strip()
        if addendum.reason.strip():
            text += f"\n{_word('reason', doc.language)}: {addendum.reason.strip()}"
        narrative.append(_text_item(codes.DCM.Addendum, text))
        container.ContentSequence = ContentSequence(narrative)
        items.append(container)
    root.ContentSequence = ContentSequence(items)
    return root


def _section(section: Section, language: Language) -> ContainerContentItem | None:
    if not section.text.strip() and not section.entries:
        return None
    heading, element = _SECTIONS.get(section.key, (None, codes.DCM.Finding))
    if section.code is not None:
        name = _coded(section.code)
    elif heading is not None:
        name = CodedConcept.from_code(heading)
    else:
        name = CodedConcept(section.key, LOCAL_SCHEME, _label(section.title, language)[:64])
    container = ContainerContentItem(
        name=name, relationship_type=CONTAINS, is_content_continuous=False
    )
    narrative: list[ContentItem] = []
    if section.text.strip():
        narrative.append(_text_item(element, section.text.strip()))
    narrative.extend(_entry(entry, element, language) for entry in section.entries)
    container.ContentSequence = ContentSequence(narrative)
    return container


def _entry(entry: Entry, element: DicomCode, language: Language) -> ContentItem:
    """TID 2002: a measurement as a TEXT inferred from its NUM (rows 3-4, TID 2001 row 5), a
    coded answer as a CODE named after its field (row 1), anything else as a TEXT (row 3)."""
    said = f"{_label(entry.label, language)}: {entry.display}"
    if entry.number is not None:
        unit = entry.unit or "1"
        quantity = (
            _coded(entry.code)
            if entry.code is not None
            else CodedConcept.from_code(_QUANTITY_OF_UNIT.get(unit, codes.SCT.Quantity))
        )
        item = _text_item(element, said)
        item.ContentSequence = ContentSequence(
            [
                NumContentItem(
                    name=quantity,
                    value=entry.number,
                    unit=CodedConcept(unit, "UCUM", _UCUM_MEANINGS.get(unit, unit)),
                    relationship_type=INFERRED_FROM,
                )
            ]
        )
        return item
    if entry.code is not None:
        return CodeContentItem(
            name=_question(entry, language) or element,
            value=_coded(entry.code),
            relationship_type=CONTAINS,
        )
    return _text_item(element, said)


def _question(entry: Entry, language: Language) -> CodedConcept | None:
    """The concept name of a coded answer: the field it answers, so that an importer reads
    "Margin = spiculated", not "Finding = spiculated". The document carries no code for the
    field, so a local one named after its English label; TID 2002 allows it, CID 7002 being a
    baseline group."""
    value = re.sub(r"[^a-z0-9]+", "-", entry.label.en.lower()).strip("-")
    if not value:
        return None
    return CodedConcept(value, LOCAL_SCHEME, _label(entry.label, language)[:64])


def _key_images(images: Sequence[KeyImage]) -> ContainerContentItem:
    container = ContainerContentItem(
        name=codes.LN.KeyImages, relationship_type=CONTAINS, is_content_continuous=False
    )
    narrative: list[ContentItem] = []
    for image in images:
        caption = image.caption.strip()
        reference = ImageContentItem(
            name=codes.DCM.BestIllustrationOfFinding,
            referenced_sop_class_uid=image.sop_class_uid,
            referenced_sop_instance_uid=image.sop_instance_uid,
            # A frame number only for a multi-frame image; frame 1 may be a single-frame one.
            referenced_frame_numbers=image.frame if image.frame > 1 else None,
            relationship_type=INFERRED_FROM if caption else CONTAINS,
        )
        if caption:
            item = _text_item(codes.DCM.Finding, caption)
            item.ContentSequence = ContentSequence([reference])
            narrative.append(item)
        else:
            narrative.append(reference)
    container.ContentSequence = ContentSequence(narrative)
    return container


def _items(template: ContentSequence) -> list[ContentItem]:
    """A highdicom template's content items, to nest under another item."""
    return [item for item in template if isinstance(item, ContentItem)]


def _text_item(name: DicomCode, value: str) -> TextContentItem:
    return TextContentItem(name=name, value=value, relationship_type=CONTAINS)


def _observer(signature: Signature, organisation: str | None) -> ObserverContext:
    """TID 1002 for a person (TID 1003): the name as a PN, and the reading center."""
    return ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=PersonObserverIdentifyingAttributes(
            name=_person_name(signature.name), organization_name=organisation
        ),
    )


def _declared_schemes(content: Dataset) -> list[CodingSchemeIdentificationItem]:
    """Coding schemes of the tree that PS3.16 Table 8-1 does not define (PS3.3 8.2)."""
    found: set[str] = set()
    for elem in content.iterall():
        if elem.keyword == "CodingSchemeDesignator" and elem.value not in _STANDARD_SCHEMES:
            found.add(str(elem.value))
    return [
        CodingSchemeIdentificationItem(
            designator,
            name="RadRelay report template sections and fields"
            if designator == LOCAL_SCHEME
            else None,
            responsible_organization="RadRelay" if designator == LOCAL_SCHEME else None,
        )
        for designator in sorted(found)
    ]


# --- references, signers, times ---


def _signers(doc: ReportDocument) -> list[Signature]:
    """Who answers for the body of the report: its author and co-signer, in signing order."""
    return sorted(
        (s for s in doc.signatures if s.meaning in (Meaning.author, Meaning.cosigner)),
        key=lambda s: s.signed_at,
    )


def _verified(doc: ReportDocument) -> bool:
    if doc.status == ReportStatus.preliminary:
        return False
    if not _signers(doc):
        raise ValueError(f"report {doc.report_id} v{doc.version} is {doc.status} but unsigned")
    return True


def _verifying_observer(signature: Signature, organisation: str, tz: tzinfo) -> Dataset:
    item = Dataset()
    item.VerifyingObserverName = _person_name(signature.name)
    item.VerifyingObserverIdentificationCodeSequence = []  # type 2: no coded identifier
    item.VerifyingOrganization = organisation
    item.VerificationDateTime = DT(_local(signature.signed_at, tz))
    return item


def _predecessor(doc: ReportDocument) -> int | None:
    """The version this one supersedes: the one it amends, else the one before it (a final
    after a preliminary includes its content: Predecessor Documents Sequence, C.17.2)."""
    if doc.supersedes_version is not None:
        return doc.supersedes_version
    return doc.version - 1 if doc.version > 1 else None


def _previous_sr(doc: ReportDocument) -> list[Dataset] | None:
    if (previous := _predecessor(doc)) is None:
        return None
    before = report_uids(doc, previous)
    ds = Dataset()
    ds.StudyInstanceUID = doc.exam.study_instance_uid
    ds.SeriesInstanceUID = before.sr_series
    ds.SOPClassUID = EnhancedSRStorage
    ds.SOPInstanceUID = before.sr_instance
    return [ds]


def _requests(header: Dataset) -> list[Dataset] | None:
    """The Referenced Request Sequence (C.17.2): required when the evidence belongs to a
    request, which an accession number shows."""
    if not header.get("AccessionNumber"):
        return None
    item = Dataset()
    item.StudyInstanceUID = header.StudyInstanceUID
    item.AccessionNumber = header.AccessionNumber
    if "IssuerOfAccessionNumberSequence" in header:
        item.IssuerOfAccessionNumberSequence = deepcopy(header.IssuerOfAccessionNumberSequence)
    item.PlacerOrderNumberImagingServiceRequest = ""
    item.FillerOrderNumberImagingServiceRequest = ""
    item.RequestedProcedureID = header.get("RequestedProcedureID", "")
    item.RequestedProcedureDescription = header.get(
        "RequestedProcedureDescription", header.get("StudyDescription", "")
    )
    item.RequestedProcedureCodeSequence = []
    return [item]


def _unique(images: Sequence[KeyImage]) -> list[KeyImage]:
    """One per instance (two frames of one image are one evidence item)."""
    seen: dict[str, KeyImage] = {}
    for image in images:
        seen.setdefault(image.sop_instance_uid, image)
    return list(seen.values())


def _reference_dataset(image: KeyImage) -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID = image.study_instance_uid
    ds.SeriesInstanceUID = image.series_instance_uid
    ds.SOPClassUID = image.sop_class_uid
    ds.SOPInstanceUID = image.sop_instance_uid
    return ds


def _sop_reference(image: KeyImage) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = image.sop_class_uid
    item.ReferencedSOPInstanceUID = image.sop_instance_uid
    return item


def _hierarchical_reference(study: str, series: str, sop_class: str, instance: str) -> Dataset:
    """PS3.3 Table C.17-3 Hierarchical SOP Instance Reference Macro."""
    sop = Dataset()
    sop.ReferencedSOPClassUID = sop_class
    sop.ReferencedSOPInstanceUID = instance
    series_item = Dataset()
    series_item.SeriesInstanceUID = series
    series_item.ReferencedSOPSequence = [sop]
    item = Dataset()
    item.StudyInstanceUID = study
    item.ReferencedSeriesSequence = [series_item]
    return item


def _content_datetime(doc: ReportDocument, tz: tzinfo) -> datetime:
    """When the content was fixed: its last author or co-signer signature (addenda carry their
    own time), else when the document was made."""
    signers = _signers(doc)
    moment = signers[-1].signed_at if signers else doc.created_at
    if moment is None:
        raise ValueError(f"report {doc.report_id} v{doc.version} has no signature and no time")
    return _local(moment, tz)


def _local(moment: datetime, tz: tzinfo) -> datetime:
    """``moment`` in the hospital's time; a naive one is taken to be in it already."""
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


# --- the study, the patient and the character set ---


def _check_same_study(doc: ReportDocument, source: Dataset) -> None:
    """A report filed in another patient's study is a patient-safety incident: refuse it."""
    study = str(source.get("StudyInstanceUID", ""))
    if study != doc.exam.study_instance_uid:
        raise ValueError(
            f"source is of study {study!r}, the report of {doc.exam.study_instance_uid}"
        )
    patient_id = str(source.get("PatientID", "") or "")
    if patient_id and doc.patient.patient_id and patient_id != doc.patient.patient_id:
        raise ValueError(f"source is of patient {patient_id!r}, the report of another patient")


def _source_header(source: Dataset) -> Dataset:
    """``source``'s standard top-level attributes without bulk data, its text as Unicode (so
    without a Specific Character Set: ``_finish`` chooses the one to write).

    Values in ISO 2022 IR 58 are read as RadRelay reads them on arrival (``kit.dicom``), from
    their raw bytes, since pydicom 3.0 misreads them: ``source`` should come as read from
    storage. It is left as it came (pydicom converts an element in place when it is read, and
    the raw bytes would be gone for the next caller)."""
    wanted: dict[BaseTag, DataElement | RawDataElement] = {}
    for tag in source.keys():
        keyword = keyword_for_tag(tag)
        if keyword and tag.group not in (0x0002, 0x7FE0):
            wanted[tag] = source.get_item(tag)
    view = Dataset(wanted)  # a dict of its own: conversions stay in it
    header = Dataset()
    for tag, raw in wanted.items():
        keyword = keyword_for_tag(tag)
        # Implicit VR files leave the VR to the dictionary.
        vr = raw.VR or dictionary_VR(tag)
        if vr in _BULK_VRS or keyword == "SpecificCharacterSet":
            continue
        text = ir58_value(view, keyword) if vr in _CHARSET_VRS else None  # before conversion
        elem = deepcopy(view[tag])
        if text is not None:
            elem.value = text.rstrip(" \x00")  # the value's padding
        header.add(elem)
    return header


def _copy_patient_and_study(ds: SOPClass, header: Dataset) -> None:
    # Keyed on the new object's own IOD, so that exactly its Patient and Study modules are
    # copied, whatever the source's SOP class.
    carrier = deepcopy(header)
    carrier.SOPClassUID = ds.SOPClassUID
    ds.copy_patient_and_study_information(carrier)


def _charset_for(source: Dataset) -> str:
    """The source's Specific Character Set when pydicom writes it correctly and it is a single
    set; GB18030 for GB 2312 in ISO 2022 (IR 58), which pydicom writes without its escape
    sequences (GB18030 encodes GB 2312's characters with the same bytes, without escapes);
    else UTF-8. ``_finish`` falls back to UTF-8 when the report's text does not fit."""
    value = source.get("SpecificCharacterSet")
    values = [] if value is None else [value] if isinstance(value, str) else list(value)
    declared = [str(v).strip().upper() for v in values if str(v).strip()]
    if not declared:
        return ""  # the default repertoire
    if len(declared) == 1 and not declared[0].startswith("ISO 2022"):
        return declared[0]
    if _IR58 in declared and set(declared) <= {"ISO 2022 IR 6", _IR58}:
        return "GB18030"
    return _UTF8


def _encodable(ds: Dataset, charset: str) -> bool:
    codec = "ascii" if charset == "" else python_encoding.get(charset)
    if codec is None:
        return False
    for elem in ds.iterall():
        if elem.VR not in _CHARSET_VRS or elem.value is None:
            continue
        for value in elem.value if isinstance(elem.value, MultiValue) else [elem.value]:
            if isinstance(value, bytes):
                continue
            try:
                str(value).encode(codec)
            except UnicodeEncodeError:
                return False
    return True


def _finish(ds: Dataset, when: datetime, source: Dataset) -> None:
    """Character set, time zone, and no build-time values: the same version, the same bytes."""
    charset = _charset_for(source)
    if not _encodable(ds, charset):
        charset = _UTF8
    if charset:
        ds.SpecificCharacterSet = charset
    elif "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet
    if (offset := when.utcoffset()) is not None:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        ds.TimezoneOffsetFromUTC = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    # Type 3 attributes highdicom fills from the clock.
    for keyword in ("InstanceCreationDate", "InstanceCreationTime"):
        if keyword in ds:
            delattr(ds, keyword)
    for item in ds.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            del item.ContributionDateTime


# --- words ---


def _person_name(name: str) -> str:
    """A printed name as a PN value (PS3.5 6.2.1.2). A value with component separators is kept;
    "李娜 Li Na" becomes "Li Na^=李娜^" (alphabetic group first, then ideographic, PS3.5 J.1),
    a single-script name one family-name component."""
    name = " ".join(name.split())
    if "^" in name or "=" in name:
        return name
    ideographic = " ".join(_CJK.findall(name))
    alphabetic = " ".join(_CJK.sub(" ", name).split())
    if ideographic and alphabetic:
        return f"{alphabetic}^={ideographic}^"
    return f"{name}^"


def _label(text: Text, language: Language) -> str:
    if language == Language.en or not text.zh:
        return text.en
    if language == Language.zh:
        return text.zh
    return f"{text.zh} {text.en}"


_WORDS = {
    "reason": Text("Reason", "原因"),
    "title": Text("Diagnostic Imaging Report", "影像诊断报告"),
    "preliminary": Text("preliminary", "初步报告"),
    "amended": Text("amended", "更正报告"),
}


def _word(key: str, language: Language) -> str:
    return _label(_WORDS[key], language)


def _title(doc: ReportDocument) -> str:
    """Document Title (0042,0010): the exam and the kind of report, e.g. "胸部CT平扫 Chest CT
    影像诊断报告 Diagnostic Imaging Report (更正报告 amended)"."""
    title = f"{doc.exam.description} {_word('title', doc.language)}".strip()
    if doc.status != ReportStatus.final:
        title += f" ({_word(doc.status.value, doc.language)})"
    return title


def _coded(code: Code) -> CodedConcept:
    return CodedConcept(code.value, code.scheme, code.meaning)
