"""A made-up but realistic report (a chest CT of 张伟 from a county hospital), for tests, the
benchmark and trying the PDF layout: ``sample_document()``.

The key images are drawn with Pillow (a grey disc on black, like a CT slice), so nothing here
needs a DICOM file.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from PIL import Image, ImageDraw

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

STUDY_UID = "1.2.826.0.1.3680043.8.498.10000000000000000000000000000000001"
SERIES_UID = STUDY_UID + ".1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

FINDINGS_TEXT = (
    "双肺纹理清晰。右肺上叶尖段见一实性结节，边界清楚，边缘光整，未见分叶及毛刺。"
    "左肺下叶背段见少许条索影。气管及主支气管通畅。纵隔内未见肿大淋巴结。心脏大小正常，"
    "心包未见积液。双侧胸膜未见增厚，胸腔未见积液。所见骨质未见破坏。\n"
    "Right upper lobe apical segment: a solid, well-circumscribed nodule without lobulation "
    "or spiculation. Linear opacities in the superior segment of the left lower lobe. Airways "
    "patent; no mediastinal lymphadenopathy; heart size normal; no pleural effusion."
)


def ct_jpeg(seed: int, size: int = 512, quality: int = 85) -> bytes:
    """A ``size`` x ``size`` greyscale JPEG that looks roughly like an axial chest slice."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    m = size // 16
    draw.ellipse((m, 3 * m, size - m, size - 3 * m), fill=170)
    draw.ellipse((3 * m, 5 * m, 7 * m, 12 * m), fill=40)
    draw.ellipse((9 * m, 5 * m, 13 * m, 12 * m), fill=40)
    draw.ellipse((7 * m, 8 * m, 9 * m, 10 * m), fill=230)
    nodule = 4 * m + (seed % 5) * m // 2
    draw.ellipse((nodule, 6 * m, nodule + m // 2, 6 * m + m // 2), fill=200)
    draw.text((m // 2, m // 2), f"IM {seed}", fill=255)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _at(hour: int, minute: int) -> datetime:
    # 2025-03-03 in Beijing (UTC+8).
    return datetime(2025, 3, 3, hour - 8, minute, tzinfo=UTC)


def sample_document(
    *,
    language: Language = Language.bilingual,
    key_images: int = 4,
    status: ReportStatus = ReportStatus.final,
    cosigned: bool = True,
    addendum: bool = False,
    critical: bool = False,
    report_id: int = 1024,
    version: int = 1,
) -> ReportDocument:
    """A chest CT report for 张伟 (``Zhang^Wei=张^伟``, patient ID QSX-000123 issued by QSX),
    impression "右肺上叶实性小结节", signed by 李娜 (author) and, when ``cosigned``, 王建国."""
    signatures = [
        Signature("李娜 Li Na", "住院医师 Resident radiologist", Meaning.author, _at(14, 32)),
    ]
    if cosigned:
        signatures.append(
            Signature(
                "王建国 Wang Jianguo", "主任医师 Chief radiologist", Meaning.cosigner, _at(15, 5)
            )
        )
    sections = (
        Section(
            "clinical_information",
            Text("Clinical information", "临床资料"),
            text="咳嗽两周，吸烟史20年。Cough for two weeks; smoker for 20 years.",
            code=Code("55752-0", "LN", "Clinical information"),
        ),
        Section(
            "technique",
            Text("Technique", "检查技术"),
            text="胸部CT平扫，层厚1.25 mm。Non-contrast chest CT, 1.25 mm slices.",
        ),
        Section(
            "comparison",
            Text("Comparison", "对比"),
            text="无既往检查。None available.",
        ),
        Section(
            "findings",
            Text("Findings", "检查所见"),
            entries=(
                Entry(Text("Nodule location", "结节位置"), "右肺上叶尖段 RUL apical"),
                Entry(Text("Nodule size", "结节大小"), "8 mm", number=8.0, unit="mm"),
                Entry(Text("Nodule density", "结节密度"), "实性 Solid"),
                Entry(Text("Lung-RADS", "Lung-RADS 分类"), "3"),
            ),
            text=FINDINGS_TEXT,
            code=Code("59776-5", "LN", "Findings"),
        ),
        Section(
            "impression",
            Text("Impression", "诊断意见"),
            text="1. 右肺上叶实性小结节（8 mm），Lung-RADS 3，建议6个月后低剂量CT复查。\n"
            "2. 左肺下叶少许纤维条索。\n"
            "1. Solid 8 mm nodule, right upper lobe (Lung-RADS 3): low-dose CT in 6 months.\n"
            "2. Minor fibrous strands, left lower lobe.",
            code=Code("19005-8", "LN", "Impressions"),
        ),
        Section(
            "recommendations",
            Text("Recommendations", "建议"),
            text="6个月后低剂量CT复查。Low-dose CT follow-up in 6 months.",
        ),
    )
    images = tuple(
        KeyImage(
            jpeg=ct_jpeg(n),
            caption=f"序列 3 图像 {40 + n} Series 3, image {40 + n}",
            study_instance_uid=STUDY_UID,
            series_instance_uid=SERIES_UID,
            sop_instance_uid=f"{SERIES_UID}.{40 + n}",
            sop_class_uid=CT_IMAGE_STORAGE,
        )
        for n in range(1, key_images + 1)
    )
    addenda = (
        (
            Addendum(
                text="复核原始图像，结节大小修正为8.5 mm。On review the nodule measures 8.5 mm.",
                reason="测量复核 Measurement review",
                signature=Signature(
                    "王建国 Wang Jianguo",
                    "主任医师 Chief radiologist",
                    Meaning.addendum,
                    _at(16, 40),
                ),
            ),
        )
        if addendum
        else ()
    )
    return ReportDocument(
        report_id=report_id,
        version=version,
        status=status,
        language=language,
        center=Party("云影远程影像诊断中心", code="YUNYING", address="杭州市西湖区文三路 100 号"),
        hospital=Party("青石县人民医院", code="QSX", address="青石县人民路 1 号"),
        patient=Patient(
            name="Zhang^Wei=张^伟",
            patient_id="QSX-000123",
            issuer_of_patient_id="QSX",
            birth_date="19680412",
            sex="M",
        ),
        exam=Exam(
            study_instance_uid=STUDY_UID,
            accession_number="A20250303-0042",
            study_date="20250303",
            study_time="140512",
            modality="CT",
            description="胸部CT平扫 Chest CT without contrast",
            referring_physician="Chen^Ming=陈^明",
            clinical_question="咳嗽两周，排除肺部占位。Cough for two weeks: mass?",
            priority="routine",
            received_at=_at(14, 10),
        ),
        sections=sections,
        template_id="chest-ct",
        template_version=3,
        signatures=tuple(signatures),
        key_images=images,
        addenda=addenda,
        critical=critical,
        supersedes_version=version - 1 if status == ReportStatus.amended else None,
        amendment_reason="结节大小测量更正 Nodule size corrected"
        if status == ReportStatus.amended
        else "",
        created_at=_at(15, 5),
    )
