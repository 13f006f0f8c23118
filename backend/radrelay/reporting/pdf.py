"""The report as a PDF: ``render(doc)`` lays a ``ReportDocument`` out with reportlab's platypus.

One A4 document, read top to bottom as a radiologist's report is: letterheads (the sending
hospital, whose report it is, and the reading center), the title with the status, the patient
with two identifiers, the exam, the sections with their entries, the impression set apart, the
key images, the signatures, the addenda. Every page repeats who the patient is in its header
and carries ``n / N`` with the report id and version in its footer, so a loose printed page
can still be matched to its patient and its report.

Chinese text: by default the CJK font is reportlab's built-in CID font STSong-Light, which needs
no font file and keeps the PDF small, but is not embedded: a viewer draws it with a Chinese font
of its own (Acrobat, Foxit, pdf.js and Chrome ship one; poppler uses fontconfig and needs the
``poppler-data`` CMaps to extract the text). Where the PDF must stand on its own (archives,
PDF/A, viewers without Chinese fonts), pass ``font=EmbeddedFont(path)`` with a TrueType font (a
``.ttf`` or ``.ttc`` with TrueType outlines, such as Debian's fonts-wqy-microhei): reportlab then
embeds the subset of glyphs used, with a ToUnicode map. CJK fonts carry no bold, so emphasis is
made with size, rules and shading.

A preliminary waits for a senior's co-signature: its page 1 starts with an empty band,
``COSIGN_STAMP_BOX``, above the letterheads, where the co-signer's visible signature stamps
"正式报告 FINAL REPORT" when the file is co-signed (``signing.sign(stamp=..., box=...)``); the
band is at the same place whatever the letterheads hold.

A draft's preview (``render(doc, draft=True)``) is the same layout, never signed: every page
carries a red band at its top edge and a faint diagonal watermark saying ``DRAFT_MARK``, and the
signature block says that nothing is signed.

The renderer does no I/O beyond reading that font file once per process; signing is
``signing.sign`` on the bytes returned here.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from radrelay.reporting.document import (
    Entry,
    Exam,
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

CENTER_TIMEZONE = "Asia/Shanghai"
CID_FONT = "STSong-Light"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 16 * mm
# The frame keeps platypus's 6 pt padding on each side; tables this wide align with the text.
FRAME_WIDTH = PAGE_WIDTH - 2 * MARGIN - 12
TOP_MARGIN = 14 * mm
# The band a preliminary keeps free at the top of page 1 for the co-signature stamp: the
# frame's first flowable, so x1, y1, x2, y2 (points, PDF coordinates) do not depend on content.
COSIGN_STAMP_HEIGHT = 15 * mm
_FRAME_TOP = PAGE_HEIGHT - TOP_MARGIN - 6
COSIGN_STAMP_BOX: tuple[int, int, int, int] = (
    round(MARGIN + 6),
    round(_FRAME_TOP - COSIGN_STAMP_HEIGHT + 1),
    round(MARGIN + 6 + FRAME_WIDTH),
    round(_FRAME_TOP),
)

# What marks every page of an unsigned preview: in both languages whatever the report's, since
# a printed draft must not pass for a report in any reader's eyes.
DRAFT_MARK = "草稿 DRAFT — not signed / 未签署"

INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#5f6368")
RULE = colors.HexColor("#9aa0a6")
SHADE = colors.HexColor("#eef2f7")
ACCENT = colors.HexColor("#1f4e79")
CRITICAL = colors.HexColor("#b00020")
AMBER = colors.HexColor("#8a5a00")


@dataclass(frozen=True, slots=True)
class EmbeddedFont:
    """A TrueType font to embed (subset) instead of the non-embedded STSong-Light.

    ``subfont_index`` picks the face in a collection (``.ttc``). OpenType fonts with CFF
    outlines (``.otf``, Noto Sans CJK) are not supported by reportlab."""

    path: Path
    subfont_index: int = 0


# Labels as (zh-CN, en). Bilingual reports show both, Chinese first (Language.bilingual).
LABELS: dict[str, tuple[str, str]] = {
    "title": ("影像诊断报告", "Imaging Report"),
    "reading_center": ("诊断中心", "Reading center"),
    "patient": ("患者信息", "Patient"),
    "name": ("姓名", "Name"),
    "patient_id": ("患者编号", "Patient ID"),
    "issuer": ("发放机构", "issuer"),
    "birth_date": ("出生日期", "Birth date"),
    "age": ("年龄", "Age"),
    "sex": ("性别", "Sex"),
    "exam": ("检查信息", "Examination"),
    "accession": ("检查号", "Accession No."),
    "study_time": ("检查时间", "Study date/time"),
    "modality": ("检查类型", "Modality"),
    "description": ("检查项目", "Exam"),
    "referring": ("申请医生", "Referring physician"),
    "priority": ("优先级", "Priority"),
    "clinical_question": ("临床问题", "Clinical question"),
    "received": ("接收时间", "Received"),
    "key_images": ("关键图像", "Key images"),
    "signatures": ("签名", "Signatures"),
    "signed": ("签名时间", "Signed"),
    "qualification": ("职称", "Qualification"),
    "meaning": ("签名含义", "Meaning"),
    "addenda": ("补充报告", "Addenda"),
    "addendum": ("补充", "Addendum"),
    "reason": ("原因", "Reason"),
    "notes": ("备注", "Notes"),
    "report": ("报告", "Report"),
    "version": ("版本", "version"),
    "created": ("报告时间", "Reported"),
    "critical": ("危急值", "CRITICAL FINDING"),
    "critical_note": (
        "已按危急值流程通知临床",
        "communicated to the care team under the critical results policy",
    ),
    "amends": ("本报告修正第 {v} 版", "Supersedes version {v}"),
    "amend_reason": ("修正原因", "Reason for amendment"),
    "preliminary_note": (
        "初步报告：尚未经审核医师最终签署",
        "Preliminary: not yet signed as final",
    ),
    "esign_note": (
        "本报告已电子签名，签名嵌入本 PDF 文件（PAdES），任何改动均可被检出。",
        "Electronically signed: the signatures are embedded in this PDF (PAdES); any change "
        "to it can be detected.",
    ),
    "draft_note": (
        "草稿预览：未签名，不是可据以诊疗的报告。",
        "Draft preview: not signed, not a report to act on.",
    ),
    "years": ("{n}岁", "{n} y"),
    "months": ("{n}个月", "{n} mo"),
    "days": ("{n}天", "{n} d"),
}

STATUS_LABELS: dict[ReportStatus, tuple[str, str]] = {
    ReportStatus.preliminary: ("初步报告", "PRELIMINARY"),
    ReportStatus.final: ("正式报告", "FINAL"),
    ReportStatus.amended: ("修正报告", "AMENDED"),
}
MEANING_LABELS: dict[Meaning, tuple[str, str]] = {
    Meaning.author: ("报告医师", "Author"),
    Meaning.cosigner: ("审核医师", "Co-signer"),
    Meaning.addendum: ("补充报告医师", "Addendum author"),
}
SEX_LABELS = {"M": ("男", "Male"), "F": ("女", "Female"), "O": ("其他", "Other")}
PRIORITY_LABELS = {
    "stat": ("急诊", "STAT"),
    "urgent": ("加急", "Urgent"),
    "routine": ("常规", "Routine"),
}

_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]")


# --- text helpers ---------------------------------------------------------------------------


def person_name(pn: str) -> tuple[str, str]:
    """``(ideographic, alphabetic)`` display forms of a DICOM PN value.

    ``"Zhang^Wei=张^伟"`` gives ``("张伟", "Zhang, Wei")``. A group written in Chinese
    characters is joined without spaces, family name first, as Chinese is written; a Latin
    group puts a comma after the family name so it cannot be mistaken for the given name. Many
    Chinese senders put the characters in the first (alphabetic) group: they are recognised
    by their script, not their position. Either form may be empty."""
    ideographic = alphabetic = ""
    for group in pn.split("=")[:2]:
        parts = [p.strip() for p in group.split("^")]
        if not any(parts):
            continue
        family, given, middle, prefix, suffix = (parts + [""] * 5)[:5]
        if _CJK.search(group):
            ideographic = ideographic or "".join(p for p in (prefix, family, given, middle) if p)
        else:
            rest = " ".join(p for p in (prefix, given, middle) if p)
            formatted = f"{family}, {rest}" if family and rest else family or rest
            if suffix:
                formatted = f"{formatted}, {suffix}"
            alphabetic = alphabetic or formatted
    return ideographic, alphabetic


def _da(value: str) -> date | None:
    try:
        return datetime.strptime(value.strip()[:8], "%Y%m%d").date()
    except ValueError:
        return None


def _study_datetime(exam: Exam) -> str:
    day = _da(exam.study_date)
    if day is None:
        return exam.study_date
    digits = exam.study_time.strip().split(".")[0]
    if len(digits) >= 4 and digits[:4].isdigit():
        return f"{day.isoformat()} {digits[:2]}:{digits[2:4]}"
    return day.isoformat()


def _age(birth: date, on: date) -> tuple[str, int]:
    """The age as DICOM Patient's Age counts it: days under a month, months under two years."""
    months = (on.year - birth.year) * 12 + on.month - birth.month - (on.day < birth.day)
    if months < 1:
        return "days", (on - birth).days
    if months < 24:
        return "months", months
    return "years", months // 12


class _Words:
    """Labels and values in the report's language."""

    def __init__(self, language: Language) -> None:
        self.language = language

    def pick(self, zh: str, en: str) -> str:
        if self.language == Language.zh:
            return zh or en
        if self.language == Language.en or not zh or zh == en:
            return en
        return f"{zh} {en}"

    def __call__(self, key: str, **values: object) -> str:
        zh, en = LABELS[key]
        return self.pick(zh.format(**values), en.format(**values))

    def of(self, labels: tuple[str, str]) -> str:
        return self.pick(*labels)

    def text(self, label: Text) -> str:
        return self.pick(label.zh, label.en)


def _para_text(value: str) -> str:
    """Free text (a reader's findings, a hospital's clinical question) as paragraph markup:
    escaped, since a ``<`` in "结节 < 5 mm" must not be read as a tag, line breaks kept."""
    return "<br/>".join(escape(line) for line in value.strip().splitlines())


def _local(moment: datetime, tz: ZoneInfo) -> str:
    """Minutes and the UTC offset: the time a signature shows (21 CFR 11.50)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = aware.astimezone(tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


# --- fonts ----------------------------------------------------------------------------------


@functools.cache
def _register(font: EmbeddedFont | None) -> str:
    """Register the font with reportlab (a process-wide registry) once; its name."""
    if font is None:
        pdfmetrics.registerFont(UnicodeCIDFont(CID_FONT))
        return CID_FONT
    name = f"RR-{font.path.stem}-{font.subfont_index}"
    pdfmetrics.registerFont(TTFont(name, str(font.path), subfontIndex=font.subfont_index))
    return name


@dataclass(frozen=True, slots=True)
class _Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    muted: ParagraphStyle
    label: ParagraphStyle
    heading: ParagraphStyle
    letterhead: ParagraphStyle
    center: ParagraphStyle
    title: ParagraphStyle
    status: ParagraphStyle
    impression: ParagraphStyle
    caption: ParagraphStyle


@functools.cache
def _styles(font: str) -> _Styles:
    base = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13.5, textColor=INK)

    def style(name: str, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, parent=base, **kw)

    return _Styles(
        body=base,
        small=style("small", fontSize=8, leading=10.5),
        muted=style("muted", fontSize=7.5, leading=10, textColor=MUTED),
        label=style("label", fontSize=8, leading=10.5, textColor=MUTED),
        heading=style(
            "heading", fontSize=11, leading=15, textColor=ACCENT, spaceBefore=7, spaceAfter=2
        ),
        letterhead=style("letterhead", fontSize=14, leading=18),
        center=style("center", fontSize=9, leading=12, alignment=TA_RIGHT, textColor=MUTED),
        title=style("title", fontSize=17, leading=22, alignment=TA_CENTER, spaceBefore=2),
        status=style("status", fontSize=11, leading=14, alignment=TA_CENTER, textColor=ACCENT),
        impression=style("impression", fontSize=11.5, leading=16.5),
        caption=style("caption", fontSize=8, leading=10.5, alignment=TA_CENTER),
    )


# --- the blocks of the report ---------------------------------------------------------------


class _Builder:
    def __init__(self, doc: ReportDocument, tz: ZoneInfo, font: str, draft: bool) -> None:
        self.doc = doc
        self.draft = draft
        self.tz = tz
        self.w = _Words(doc.language)
        self.s = _styles(font)

    def p(self, markup: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(markup, style or self.s.body)

    def t(self, value: str, style: ParagraphStyle | None = None) -> Paragraph:
        return self.p(_para_text(value), style)

    def flowables(self) -> list[Flowable]:
        doc = self.doc
        story: list[Flowable] = []
        if doc.status == ReportStatus.preliminary:
            # Room for the co-signer's stamp (COSIGN_STAMP_BOX), and a little gap below it.
            story.append(Spacer(FRAME_WIDTH, COSIGN_STAMP_HEIGHT + 2 * mm))
        story += [*self.letterhead(), *self.title()]
        story += [self.patient(doc.patient), Spacer(1, 2 * mm), self.exam(doc.exam)]
        for section in doc.sections:
            story += self.section(section)
        if doc.key_images:
            story += self.key_images()
        story += self.signatures()
        if doc.addenda:
            story += self.addenda()
        if doc.notes:
            story += [self.p(escape(self.w("notes")), self.s.heading)]
            story += [self.t(note, self.s.small) for note in doc.notes]
        return story

    def _logo(self, party: Party) -> Flowable | None:
        if not party.logo_png:
            return None
        width, height = ImageReader(io.BytesIO(party.logo_png)).getSize()
        # Within 40 x 13 mm: a wide banner must not squeeze the names out of the letterhead.
        scale = min(13 * mm / height, 40 * mm / width)
        return Image(io.BytesIO(party.logo_png), width=width * scale, height=height * scale)

    def letterhead(self) -> list[Flowable]:
        hospital, center = self.doc.hospital, self.doc.center
        left: list[Flowable] = [self.t(hospital.name, self.s.letterhead)]
        if hospital.address:
            left.append(self.t(hospital.address, self.s.muted))
        right: list[Flowable] = [
            self.p(
                f"{escape(self.w('reading_center'))}<br/>{_para_text(center.name)}", self.s.center
            )
        ]
        if center.address:
            right.append(self.t(center.address, self.s.center))
        hospital_logo, center_logo = self._logo(hospital), self._logo(center)
        row = [hospital_logo or "", left, right, center_logo or ""]
        widths = [
            (hospital_logo.drawWidth + 3 * mm) if isinstance(hospital_logo, Image) else 0,
            None,
            62 * mm,
            (center_logo.drawWidth + 3 * mm) if isinstance(center_logo, Image) else 0,
        ]
        fixed = sum(w for w in widths if w)
        widths[1] = FRAME_WIDTH - fixed
        table = Table([row], colWidths=widths)
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                    ("ALIGN", (-1, 0), (-1, 0), "RIGHT"),  # the 3 mm of its column: a gap
                    ("LINEBELOW", (0, 0), (-1, 0), 1.2, ACCENT),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
        return [table, Spacer(1, 2 * mm)]

    def title(self) -> list[Flowable]:
        doc, w = self.doc, self.w
        out: list[Flowable] = [
            self.p(escape(w("title")), self.s.title),
            self.p(escape(w.of(STATUS_LABELS[doc.status])), self.s.status),
        ]
        notices: list[tuple[str, colors.Color]] = []
        if doc.critical:
            notices.append(
                (
                    f"<font size=11>{escape(w('critical'))}</font>  {escape(w('critical_note'))}",
                    CRITICAL,
                )
            )
        if doc.status == ReportStatus.amended:
            text = escape(w("amends", v=doc.supersedes_version or "?"))
            if doc.amendment_reason:
                stop = ". " if doc.language == Language.en else "。"
                text += f"{stop}{escape(w('amend_reason'))}: {_para_text(doc.amendment_reason)}"
            notices.append((text, AMBER))
        if doc.status == ReportStatus.preliminary:
            notices.append((escape(w("preliminary_note")), AMBER))
        for markup, colour in notices:
            style = ParagraphStyle("notice", parent=self.s.body, textColor=colour)
            box = Table([[self.p(markup, style)]], colWidths=[FRAME_WIDTH])
            box.setStyle(
                TableStyle(
                    [
                        ("BOX", (0, 0), (-1, -1), 1.2, colour),
                        ("TOPPADDING", (0, 0), (-1, -1), 3),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                    ]
                )
            )
            out += [Spacer(1, 1.5 * mm), box]
        out.append(Spacer(1, 3 * mm))
        return out

    def _grid(self, cells: Sequence[tuple[str, str]], columns: int = 2) -> Table:
        """Label/value pairs, ``columns`` pairs a row; a pair whose label starts with ``*``
        takes the whole row."""
        rows: list[list[Any]] = []
        spans: list[int] = []
        row: list[Any] = []
        for label, value in cells:
            if label.startswith("*"):
                if row:
                    rows.append(row + [""] * (2 * columns - len(row)))
                    row = []
                spans.append(len(rows))
                rows.append(
                    [self.t(label[1:], self.s.label), self.t(value)] + [""] * (2 * columns - 2)
                )
                continue
            row += [self.t(label, self.s.label), self.t(value)]
            if len(row) == 2 * columns:
                rows.append(row)
                row = []
        if row:
            rows.append(row + [""] * (2 * columns - len(row)))
        label_width = 33 * mm
        value_width = FRAME_WIDTH / columns - label_width
        table = Table(rows, colWidths=[label_width, value_width] * columns)
        commands: list[tuple[Any, ...]] = [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (-1, -1), SHADE),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]
        commands += [("SPAN", (1, r), (-1, r)) for r in spans]
        table.setStyle(TableStyle(commands))
        return table

    def patient(self, patient: Patient) -> Flowable:
        w = self.w
        ideographic, alphabetic = person_name(patient.name)
        if self.doc.language == Language.en:
            name = (
                f"{alphabetic} ({ideographic})"
                if alphabetic and ideographic
                else alphabetic or ideographic
            )
        else:
            name = (
                f"{ideographic} ({alphabetic})"
                if alphabetic and ideographic
                else ideographic or alphabetic
            )
        pid = patient.patient_id
        if patient.issuer_of_patient_id:
            pid += f" ({w('issuer')}: {patient.issuer_of_patient_id})"
        birth = _da(patient.birth_date)
        study_day = _da(self.doc.exam.study_date)
        birth_text = birth.isoformat() if birth else patient.birth_date or "-"
        if birth and study_day and study_day >= birth:
            unit, n = _age(birth, study_day)
            birth_text += f" ({w(unit, n=n)})"
        sex = w.of(SEX_LABELS[patient.sex]) if patient.sex in SEX_LABELS else patient.sex or "-"
        return KeepTogether(
            [
                self.p(escape(w("patient")), self.s.heading),
                self._grid(
                    [
                        (w("name"), name or "-"),
                        (w("patient_id"), pid or "-"),
                        (f"{w('birth_date')} / {w('age')}", birth_text),
                        (w("sex"), sex),
                    ]
                ),
            ]
        )

    def exam(self, exam: Exam) -> Flowable:
        w = self.w
        priority = PRIORITY_LABELS.get(exam.priority.lower())
        referring = " ".join(n for n in person_name(exam.referring_physician) if n)
        cells = [
            (w("accession"), exam.accession_number or "-"),
            (w("study_time"), _study_datetime(exam) or "-"),
            (w("modality"), exam.modality or "-"),
            (w("description"), exam.description or "-"),
            (w("referring"), referring or "-"),
            (w("priority"), w.of(priority) if priority else exam.priority),
        ]
        if exam.received_at:
            cells.append((w("received"), _local(exam.received_at, self.tz)))
        if self.doc.created_at:
            cells.append((w("created"), _local(self.doc.created_at, self.tz)))
        if exam.clinical_question:
            cells.append(("*" + w("clinical_question"), exam.clinical_question))
        return KeepTogether([self.p(escape(w("exam")), self.s.heading), self._grid(cells)])

    def _entry(self, entry: Entry) -> str:
        value = entry.display
        if entry.unit and not value.rstrip().endswith(entry.unit):
            value = f"{value} {entry.unit}"
        return value

    def section(self, section: Section) -> list[Flowable]:
        heading = self.p(escape(self.w.text(section.title)), self.s.heading)
        impression = section.key == "impression"
        body: list[Flowable] = []
        style = self.s.impression if impression else self.s.body
        if section.text.strip():
            body.append(self.t(section.text, style))
        if section.entries:
            rows = [
                [self.t(self.w.text(e.label), self.s.label), self.t(self._entry(e), style)]
                for e in section.entries
            ]
            table = Table(
                rows, colWidths=[48 * mm, FRAME_WIDTH - 48 * mm - (8 if impression else 0)]
            )
            table.setStyle(
                TableStyle(
                    [
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("LEFTPADDING", (0, 0), (-1, -1), 0),
                        ("TOPPADDING", (0, 0), (-1, -1), 1),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                        ("LINEBELOW", (0, 0), (-1, -2), 0.25, SHADE),
                    ]
                )
            )
            body.append(table)
        if not body:
            return []
        if not impression:
            return [heading, *body]
        # The impression is what the referring physician reads first: a shaded box with a
        # strong rule on its left and a larger size (CJK fonts have no bold face).
        box = Table([[body]], colWidths=[FRAME_WIDTH])
        box.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, -1), SHADE),
                    ("LINEBEFORE", (0, 0), (0, -1), 3, ACCENT),
                    ("LEFTPADDING", (0, 0), (-1, -1), 8),
                    ("TOPPADDING", (0, 0), (-1, -1), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        return [KeepTogether([heading, box])]

    def key_images(self) -> list[Flowable]:
        columns = 2
        gap = 4 * mm
        cell_width = (FRAME_WIDTH - gap * (columns - 1)) / columns
        max_height = 62 * mm
        cells: list[list[Flowable]] = []
        for image in self.doc.key_images:
            width, height = ImageReader(io.BytesIO(image.jpeg)).getSize()
            scale = min(cell_width / width, max_height / height)
            cells.append(
                [
                    Image(io.BytesIO(image.jpeg), width=width * scale, height=height * scale),
                    Spacer(1, 1 * mm),
                    self.t(image.caption, self.s.caption),
                ]
            )
        rows: list[list[Any]] = []
        for start in range(0, len(cells), columns):
            row: list[Any] = list(cells[start : start + columns])
            rows.append(row + [""] * (columns - len(row)))
        table = Table(rows, colWidths=[cell_width + gap / 2] * columns)
        table.setStyle(
            TableStyle(
                [
                    ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                ]
            )
        )
        # A heading alone at the foot of a page, its images on the next, reads as a mistake.
        return [
            CondPageBreak(max_height + 20 * mm),
            self.p(escape(self.w("key_images")), self.s.heading),
            table,
        ]

    def _signature_rows(self, signatures: Sequence[Signature]) -> Table:
        w = self.w
        header = [w("meaning"), w("name"), w("qualification"), w("signed")]
        rows: list[list[Any]] = [[self.t(h, self.s.label) for h in header]]
        for sig in signatures:
            rows.append(
                [
                    self.t(w.of(MEANING_LABELS[sig.meaning])),
                    self.t(sig.name, self.s.impression),
                    self.t(sig.qualification),
                    self.t(_local(sig.signed_at, self.tz)),
                ]
            )
        table = Table(rows, colWidths=[30 * mm, 42 * mm, FRAME_WIDTH - 114 * mm, 42 * mm])
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.5, RULE),
                    ("LINEBELOW", (0, -1), (-1, -1), 0.5, RULE),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ]
            )
        )
        return table

    def signatures(self) -> list[Flowable]:
        block: list[Flowable] = [self.p(escape(self.w("signatures")), self.s.heading)]
        if self.doc.signatures:
            block.append(self._signature_rows(self.doc.signatures))
        note = self.w("draft_note" if self.draft else "esign_note")
        block += [Spacer(1, 1.5 * mm), self.p(escape(note), self.s.muted)]
        return [KeepTogether(block)]

    def addenda(self) -> list[Flowable]:
        w = self.w
        out: list[Flowable] = [self.p(escape(w("addenda")), self.s.heading)]
        for n, addendum in enumerate(self.doc.addenda, 1):
            out.append(
                KeepTogether(
                    [
                        self.p(f"{escape(w('addendum'))} {n}", self.s.label),
                        self.t(addendum.text),
                        self.p(
                            f"{escape(w('reason'))}: {_para_text(addendum.reason)}", self.s.small
                        ),
                        Spacer(1, 1 * mm),
                        self._signature_rows([addendum.signature]),
                        Spacer(1, 2 * mm),
                    ]
                )
            )
        return out


# --- pages ----------------------------------------------------------------------------------


class _NumberedCanvas(Canvas):
    """Holds every page until the end, so each footer can say ``n / N``."""

    def __init__(self, *args: Any, footer: Callable[[Canvas, int, int], None], **kw: Any):
        super().__init__(*args, **kw)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, 1):
            self.__dict__.update(state)
            self._footer(self, number, total)
            super().showPage()
        super().save()


def render(
    doc: ReportDocument,
    *,
    timezone: str = CENTER_TIMEZONE,
    font: EmbeddedFont | None = None,
    draft: bool = False,
) -> bytes:
    """The report as PDF bytes, ready for ``signing.sign``.

    Times (signatures, received, reported) are shown in ``timezone``, the center's zone; naive
    datetimes are taken as UTC. ``font`` embeds a TrueType CJK font instead of the built-in,
    non-embedded STSong-Light (see the module docstring). ``draft``: an unsigned preview, each
    page marked ``DRAFT_MARK``; not for signing."""
    font_name = _register(font)
    tz = ZoneInfo(timezone)
    builder = _Builder(doc, tz, font_name, draft)
    w = builder.w
    ideographic, alphabetic = person_name(doc.patient.name)
    who = " ".join(n for n in (ideographic, alphabetic) if n)
    running = f"{who} | {w('patient_id')} {doc.patient.patient_id} | {w('accession')} " + (
        doc.exam.accession_number
    )
    report_label = f"{w('report')} {doc.report_id} | {w('version')} {doc.version}"
    status = w.of(STATUS_LABELS[doc.status])

    def header(canvas: Canvas, _doc: object) -> None:
        # Later pages say whose report they belong to: a page is sometimes printed alone.
        canvas.saveState()
        canvas.setFont(font_name, 8)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, PAGE_HEIGHT - 10 * mm, f"{doc.hospital.name} | {running}")
        canvas.drawRightString(PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 10 * mm, status)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN, PAGE_HEIGHT - 11.5 * mm, PAGE_WIDTH - MARGIN, PAGE_HEIGHT - 11.5 * mm)
        canvas.restoreState()

    def footer(canvas: Canvas, number: int, total: int) -> None:
        canvas.saveState()
        canvas.setFont(font_name, 8)
        canvas.setFillColor(MUTED)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.4)
        canvas.line(MARGIN, 12.5 * mm, PAGE_WIDTH - MARGIN, 12.5 * mm)
        canvas.drawString(MARGIN, 8.5 * mm, f"{report_label} | {status}")
        canvas.drawCentredString(PAGE_WIDTH / 2, 8.5 * mm, doc.center.name)
        # Latin digits with wide gaps: with single spaces pdftotext (and so search and screen
        # readers) reads "1/2", which nobody searches for.
        canvas.setFont("Helvetica", 8)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, 8.5 * mm, f"{number}  /  {total}")
        canvas.restoreState()
        if draft:
            _draft_mark(canvas, font_name)

    out = io.BytesIO()
    template = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=TOP_MARGIN,
        bottomMargin=18 * mm,
        title=f"RadRelay report {doc.report_id} v{doc.version}"
        + (" (draft, not signed)" if draft else ""),
        author=", ".join(s.name for s in doc.signatures),
        subject=f"{doc.exam.modality} {doc.exam.description}".strip(),
        creator="RadRelay",
        lang="zh-CN" if doc.language != Language.en else "en",
    )
    template.build(
        builder.flowables(),
        onFirstPage=lambda canvas, d: None,
        onLaterPages=header,
        canvasmaker=functools.partial(_NumberedCanvas, footer=footer),
    )
    return out.getvalue()


def _draft_mark(canvas: Canvas, font_name: str) -> None:
    """A red band along the top edge, above anything the layout draws there (the letterheads,
    the co-sign band, later pages' running header), and a faint watermark across the page."""
    canvas.saveState()
    canvas.setFillColor(CRITICAL)
    canvas.rect(0, PAGE_HEIGHT - 7 * mm, PAGE_WIDTH, 7 * mm, stroke=0, fill=1)
    canvas.setFillColor(colors.white)
    canvas.setFont(font_name, 10)
    canvas.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT - 5 * mm, DRAFT_MARK)
    canvas.setFillColor(CRITICAL)
    canvas.setFillAlpha(0.12)
    canvas.translate(PAGE_WIDTH / 2, PAGE_HEIGHT / 2)
    canvas.rotate(45)
    canvas.setFont(font_name, 96)
    canvas.drawCentredString(0, -32, "草稿 DRAFT")
    canvas.restoreState()
