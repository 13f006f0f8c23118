"""Report templates as data: the schema of ``reports_templates/*.yaml``, loading and checking
them, choosing one for a study, and checking a reader's entries against it.

A template has an ``id``, a ``version`` and a ``status`` (only ``active`` templates are
offered), says which studies it is for (``applies_to``: modalities, body parts, keywords in the
study description, subspecialty), and lists sections (clinical information, technique,
comparison, findings, impression, recommendations, each with its LOINC code) holding coded
fields. Every label is bilingual (zh-CN and en) unless the template's ``languages`` say
otherwise, and each section and field may carry the text or value of a normal study.

``load_templates`` raises ``TemplatesError`` listing every problem as
``file: path.to.field (line N): message``; ``check`` returns those problems and the failures of
the golden cases in ``cases/`` for ``radrelay templates check``. Nothing here does I/O except
reading that folder: choosing a template (``TemplateSet.choose``) and checking entries
(``validate_entries``) are pure, and a choice says why it was made.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from radrelay.cases.schemas import Subspecialty
from radrelay.kit.keywords import keyword_pattern
from radrelay.kit.yamlfiles import (
    MESSAGES,
    format_loc,
    problem,
    read_yaml,
    validation_problems,
    yaml_files,
)
from radrelay.reporting import document

__all__ = [
    "SECTION_CODES",
    "UNITS",
    "AnyField",
    "AppliesTo",
    "Choice",
    "ChoiceField",
    "Code",
    "DateField",
    "EntryProblem",
    "FieldType",
    "Label",
    "MeasurementField",
    "MultiChoiceField",
    "NumberField",
    "Option",
    "PickCase",
    "Scheme",
    "SectionKey",
    "Source",
    "Template",
    "TemplateSection",
    "TemplateSet",
    "TemplateStatus",
    "TemplatesError",
    "TextField",
    "check",
    "code_problem",
    "default_values",
    "load_pick_cases",
    "load_templates",
    "normal_values",
    "to_sections",
    "validate_entries",
]


class TemplatesError(Exception):
    """The templates directory is not usable; ``problems`` lists each as ``file: path: message``."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(
            "report templates are invalid:\n" + "\n".join(f"  {p}" for p in self.problems)
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _strip(value: str) -> str:
    return value.strip()


def _upper(value: str) -> str:
    return value.strip().upper()


Modality = Annotated[
    str, AfterValidator(_upper), Field(pattern=r"^[A-Z0-9]{2,16}$", description="DICOM Modality")
]
BodyPart = Annotated[str, AfterValidator(_upper), Field(min_length=1, max_length=64)]
Keyword = Annotated[str, AfterValidator(_strip), Field(min_length=1, max_length=64)]
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
OptionValue = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Languages = Literal["zh-CN", "en"]


# ---------------------------------------------------------------------------------------------
# Codes


class Scheme(StrEnum):
    """DICOM coding scheme designators (PS3.16 section 8)."""

    RADLEX = "RADLEX"
    SCT = "SCT"  # SNOMED CT
    LN = "LN"  # LOINC


_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def _verhoeff_ok(digits: str) -> bool:
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(ch)]]
    return check == 0


def _loinc_check_digit(number: str) -> int:
    """LOINC's mod 10: from the right, odd positions doubled, the digits of all summed."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10


def code_problem(scheme: str, value: str) -> str | None:
    """Why ``value`` cannot be a code of ``scheme``, or None. The check digits of SNOMED CT
    (Verhoeff) and LOINC (mod 10) catch most mistyped codes; a well-formed code can still be
    the wrong concept, so templates cite codes taken from the standards or the RSNA library."""
    if scheme == Scheme.RADLEX:
        if not re.fullmatch(r"RID[1-9][0-9]{0,6}", value):
            return f"a RadLex code is RID followed by digits, e.g. RID13166 (got {value!r})"
    elif scheme == Scheme.SCT:
        if not re.fullmatch(r"[1-9][0-9]{5,17}", value):
            return f"a SNOMED CT concept id has 6 to 18 digits (got {value!r})"
        if value[-3:-1] not in ("00", "10"):
            return f"{value} is not a SNOMED CT concept id (partition {value[-3:-1]})"
        if not _verhoeff_ok(value):
            return f"{value} fails the SNOMED CT check digit: mistyped?"
    elif scheme == Scheme.LN:
        found = re.fullmatch(r"([0-9]{1,7})-([0-9])", value)
        if not found:
            return f"a LOINC code is digits, a dash and a check digit, e.g. 59776-5 (got {value!r})"
        if _loinc_check_digit(found.group(1)) != int(found.group(2)):
            return f"{value} fails the LOINC check digit: mistyped?"
    else:
        return f"unknown coding scheme {scheme!r}; one of RADLEX, SCT, LN"
    return None


class Code(_Strict):
    """A coded concept: ``scheme`` is RADLEX, SCT (SNOMED CT) or LN (LOINC)."""

    value: Annotated[str, AfterValidator(_strip)]
    scheme: Scheme
    meaning: Annotated[str, AfterValidator(_strip), Field(min_length=1)]

    @model_validator(mode="after")
    def _well_formed(self) -> Code:
        why = code_problem(self.scheme, self.value)
        if why:
            raise ValueError(why)
        return self

    def to_document(self) -> document.Code:
        return document.Code(value=self.value, scheme=self.scheme.value, meaning=self.meaning)


def _ln(value: str, meaning: str) -> Code:
    return Code(value=value, scheme=Scheme.LN, meaning=meaning)


class SectionKey(StrEnum):
    clinical_information = "clinical_information"
    technique = "technique"
    comparison = "comparison"
    findings = "findings"
    impression = "impression"
    recommendations = "recommendations"


# LOINC section codes of the HL7 CDA Diagnostic Imaging Report (DIR, Table 5) and of DICOM
# TID 2000 (findings 59776-5); clinical information as the RSNA RadReport templates code it.
SECTION_CODES: Mapping[str, Code] = {
    SectionKey.clinical_information: _ln("55752-0", "Clinical information"),
    SectionKey.technique: _ln("55111-9", "Current imaging procedure descriptions"),
    SectionKey.comparison: _ln("18834-2", "Radiology Comparison study - observation"),
    SectionKey.findings: _ln("59776-5", "Procedure findings"),
    SectionKey.impression: _ln("19005-8", "Radiology Impression"),
    SectionKey.recommendations: _ln("18783-1", "Radiology Study recommendation"),
}

# UCUM codes a field may use, and how each is shown in a report.
UNITS: Mapping[str, str] = {
    "mm": "mm",
    "cm": "cm",
    "mm2": "mm²",
    "cm2": "cm²",
    "mm3": "mm³",
    "cm3": "cm³",
    "mL": "mL",
    "L": "L",
    "[hnsf'U]": "HU",
    "mGy": "mGy",
    "mGy.cm": "mGy·cm",
    "mSv": "mSv",
    "%": "%",
    "ms": "ms",
    "s": "s",
    "min": "min",
    "d": "d",
    "wk": "wk",
    "mo": "mo",
    "a": "a",
    "cm/s": "cm/s",
    "mm[Hg]": "mmHg",
    "g": "g",
    "kg": "kg",
    "{count}": "",
}


def _ucum(value: str) -> str:
    if value not in UNITS:
        raise ValueError(f"{value!r} is not a UCUM unit RadRelay knows; one of {', '.join(UNITS)}")
    return value


Unit = Annotated[str, AfterValidator(_ucum)]


# ---------------------------------------------------------------------------------------------
# Labels


class Label(_Strict):
    """Text shown to readers and in reports, in Chinese (``zh``, zh-CN) and English."""

    en: Annotated[str, AfterValidator(_strip)] = ""
    zh: Annotated[str, AfterValidator(_strip)] = ""

    @model_validator(mode="after")
    def _some_text(self) -> Label:
        if not (self.en or self.zh):
            raise ValueError("a label needs text: en, zh or both")
        return self

    def text(self) -> document.Text:
        return document.Text(en=self.en or self.zh, zh=self.zh)

    def shown(self, language: document.Language, sep: str = " ") -> str:
        """The text in one string: zh-CN, en, or both (zh first, joined by ``sep``) for a
        bilingual report."""
        if language == document.Language.zh:
            return self.zh or self.en
        if language == document.Language.en:
            return self.en or self.zh
        return sep.join(dict.fromkeys(t for t in (self.zh, self.en) if t))


# ---------------------------------------------------------------------------------------------
# Fields


class FieldType(StrEnum):
    text = "text"
    number = "number"
    measurement = "measurement"
    choice = "choice"
    multichoice = "multichoice"
    date = "date"


class _FieldBase(_Strict):
    id: Slug = Field(description="Unique in the template: the key of the entry.")
    label: Label
    group: Label | None = Field(
        default=None, description="A subheading within the section (liver, gallbladder ...)."
    )
    required: bool = False
    codes: list[Code] = Field(
        default_factory=list,
        description="The concept the field records; several codes compose one (intracranial + "
        "hemorrhage), as MRRT allows.",
    )


class TextField(_FieldBase):
    type: Literal["text"]
    multiline: bool = False
    default: Label | None = None
    normal: Label | None = Field(default=None, description="The text of a normal study.")


class _Numeric(_FieldBase):
    unit: Unit | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = Field(default=None, gt=0)

    def out_of_range(self, value: float) -> str | None:
        if self.min is not None and value < self.min:
            return f"{_num(value)} is below the minimum {_num(self.min)}"
        if self.max is not None and value > self.max:
            return f"{_num(value)} is above the maximum {_num(self.max)}"
        return None

    @model_validator(mode="after")
    def _range(self) -> _Numeric:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({_num(self.min)}) must be below max ({_num(self.max)})")
        return self


class NumberField(_Numeric):
    type: Literal["number"]
    default: float | None = None
    normal: float | None = Field(default=None, description="The value of a normal study.")

    @model_validator(mode="after")
    def _defaults_in_range(self) -> NumberField:
        for name in ("default", "normal"):
            value = getattr(self, name)
            why = self.out_of_range(value) if value is not None else None
            if why:
                raise ValueError(f"{name}: {why}")
        return self


class MeasurementField(_Numeric):
    """A size measured on the images: one to three dimensions in one unit (``12 × 8 mm``)."""

    type: Literal["measurement"]
    unit: Unit
    dimensions: int = Field(default=1, ge=1, le=3)


class Option(_Strict):
    value: OptionValue
    label: Label
    codes: list[Code] = Field(default_factory=list)


class _Choices(_FieldBase):
    options: list[Option]

    def option(self, value: str) -> Option | None:
        return next((o for o in self.options if o.value == value), None)

    def _check_options(self, given: Iterable[tuple[str, str]]) -> None:
        if not self.options:
            raise ValueError(f"a {self.type_name} field needs options (a list of value and label)")
        values = [o.value for o in self.options]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"option values must be unique; repeated: {', '.join(twice)}")
        for name, value in given:
            if value not in values:
                raise ValueError(
                    f"{name}: {value!r} is not one of the options ({', '.join(values)})"
                )

    @property
    def type_name(self) -> str:
        return str(getattr(self, "type"))  # noqa: B009 (each subclass declares it as a Literal)


class ChoiceField(_Choices):
    type: Literal["choice"]
    default: str | None = None
    normal: str | None = Field(default=None, description="The option of a normal study.")

    @model_validator(mode="after")
    def _options(self) -> ChoiceField:
        given = [(n, v) for n in ("default", "normal") if (v := getattr(self, n)) is not None]
        self._check_options(given)
        return self


class MultiChoiceField(_Choices):
    type: Literal["multichoice"]
    default: list[str] = Field(default_factory=list)
    normal: list[str] = Field(default_factory=list, description="The options of a normal study.")

    @model_validator(mode="after")
    def _options(self) -> MultiChoiceField:
        self._check_options([(n, v) for n in ("default", "normal") for v in getattr(self, n)])
        return self


class DateField(_FieldBase):
    type: Literal["date"]


TemplateField: TypeAlias = Annotated[
    TextField | NumberField | MeasurementField | ChoiceField | MultiChoiceField | DateField,
    Field(discriminator="type"),
]
AnyField: TypeAlias = (
    TextField | NumberField | MeasurementField | ChoiceField | MultiChoiceField | DateField
)


# ---------------------------------------------------------------------------------------------
# Sections and templates


class TemplateSection(_Strict):
    key: Slug = Field(
        description="clinical_information, technique, comparison, findings, impression, "
        "recommendations, or a key of the template's own."
    )
    title: Label
    code: Code | None = Field(
        default=None, description="Defaults to the LOINC code of the standard section keys."
    )
    required: bool = Field(
        default=False, description="A signed report must fill a field or write text here."
    )
    text: Label | None = Field(default=None, description="Narrative the editor starts with.")
    normal: Label | None = Field(default=None, description="Narrative of a normal study.")
    fields: list[TemplateField] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _standard_code(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("code") is None:
            key = data.get("key")
            if isinstance(key, str) and key in SECTION_CODES:
                data = {**data, "code": SECTION_CODES[key]}
        return data


class AppliesTo(_Strict):
    """Which studies a template is for. A ``fallback`` template takes every study of its
    modalities that no other template matched; one with no modalities takes anything."""

    modalities: list[Modality] = Field(default_factory=list)
    body_parts: list[BodyPart] = Field(default_factory=list)
    keywords: list[Keyword] = Field(default_factory=list)
    subspecialty: Subspecialty | None = None
    fallback: bool = False

    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _sensible(self) -> AppliesTo:
        if self.fallback and (self.body_parts or self.keywords or self.subspecialty):
            raise ValueError(
                "a fallback template takes every study of its modalities: drop body_parts, "
                "keywords and subspecialty, or set fallback: false"
            )
        if not self.fallback:
            if not self.modalities:
                raise ValueError("give the modalities (or set fallback: true for the generic one)")
            if not (self.body_parts or self.keywords or self.subspecialty):
                raise ValueError(
                    "say which studies: body_parts, keywords or subspecialty (or fallback: true)"
                )
        self._pattern = keyword_pattern(self.keywords)
        return self

    def search(self, description: str) -> str | None:
        """The keyword found in ``description`` (already casefolded), if any."""
        if self._pattern is None:
            return None
        found = self._pattern.search(description)
        return found.group(0) if found else None


class TemplateStatus(StrEnum):
    """As in IHE MRRT: only active templates are offered; drafts are checked, not offered."""

    active = "active"
    draft = "draft"
    retired = "retired"


class Source(_Strict):
    """Where an imported template came from (the MRRT Dublin Core metadata)."""

    format: Literal["mrrt"]
    identifier: str = ""
    title: str = ""
    language: str = ""
    publisher: str = ""
    creator: str = ""
    rights: str = ""
    license: str = ""
    date: str = ""


# Validation context key: the loader reports whole-template problems itself, each with its own
# path and line; built in Python, a template raises them as one error instead.
_LOCATED = "radrelay.templates.located_problems"
_BOTH: tuple[Languages, ...] = ("zh-CN", "en")
_LANGUAGE_NAMES = {"zh-CN": ("zh", "Chinese"), "en": ("en", "English")}


class Template(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    version: int = Field(ge=1)
    status: TemplateStatus = TemplateStatus.active
    title: Label
    description: str = ""
    languages: list[Languages] = Field(
        default_factory=lambda: list(_BOTH),
        min_length=1,
        description="Every label must have text in each of these.",
    )
    applies_to: AppliesTo
    codes: list[Code] = Field(
        default_factory=list, description="What the template is about (modality, anatomy)."
    )
    sections: list[TemplateSection] = Field(min_length=1)
    source: Source | None = None

    @model_validator(mode="after")
    def _whole(self, info: ValidationInfo) -> Template:
        if not (info.context or {}).get(_LOCATED):
            found = [f"{format_loc(loc)}: {message}" for loc, message in self.problems()]
            if found:
                raise ValueError("; ".join(found))
        return self

    def problems(self) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """Problems that need the whole template, each with the path it concerns."""
        keys: dict[str, int] = {}
        for i, section in enumerate(self.sections):
            if section.key in keys:
                yield (
                    ("sections", i, "key"),
                    f"{section.key!r} is also sections[{keys[section.key]}]",
                )
            keys.setdefault(section.key, i)
        for needed in (SectionKey.findings, SectionKey.impression):
            if needed not in keys:
                yield (
                    ("sections",),
                    f"every report has findings and an impression: add a section with key: "
                    f"{needed.value}",
                )
        seen: dict[str, tuple[int, int]] = {}
        for i, section in enumerate(self.sections):
            for j, f in enumerate(section.fields):
                if f.id in seen:
                    a, b = seen[f.id]
                    yield (
                        ("sections", i, "fields", j, "id"),
                        f"{f.id!r} is also sections[{a}].fields[{b}]: field ids are the keys of "
                        "the entries, unique in the template",
                    )
                seen.setdefault(f.id, (i, j))
        if len(set(self.languages)) != len(self.languages):
            yield ("languages",), "a language is listed twice"
        for loc, label in self._labels():
            for language in self.languages:
                attr, name = _LANGUAGE_NAMES[language]
                if not getattr(label, attr):
                    yield (
                        (*loc, attr),
                        f"missing the {name} text ({attr}); the template's languages are "
                        f"{', '.join(self.languages)}",
                    )

    def _labels(self) -> Iterator[tuple[tuple[str | int, ...], Label]]:
        yield ("title",), self.title
        for i, section in enumerate(self.sections):
            yield ("sections", i, "title"), section.title
            for name in ("text", "normal"):
                if getattr(section, name) is not None:
                    yield ("sections", i, name), getattr(section, name)
            for j, f in enumerate(section.fields):
                at: tuple[str | int, ...] = ("sections", i, "fields", j)
                yield (*at, "label"), f.label
                for name in ("group", "default", "normal"):
                    if isinstance(getattr(f, name, None), Label):
                        yield (*at, name), getattr(f, name)
                if isinstance(f, ChoiceField | MultiChoiceField):
                    for k, option in enumerate(f.options):
                        yield (*at, "options", k, "label"), option.label

    def fields(self) -> Iterator[tuple[TemplateSection, AnyField]]:
        for section in self.sections:
            for f in section.fields:
                yield section, f

    def field(self, field_id: str) -> AnyField | None:
        return next((f for _, f in self.fields() if f.id == field_id), None)

    def section(self, key: str) -> TemplateSection | None:
        return next((s for s in self.sections if s.key == key), None)

    @property
    def generic(self) -> bool:
        """The last resort: a fallback for any modality."""
        return self.applies_to.fallback and not self.applies_to.modalities


# ---------------------------------------------------------------------------------------------
# Choosing a template


@dataclass(frozen=True)
class Choice:
    template: Template
    reason: str


class TemplateSet:
    """The templates of a folder; ``choose`` picks one for a study, and a reader may switch
    to any other active template (``offered``)."""

    def __init__(self, templates: Iterable[Template]):
        self.templates = tuple(templates)
        self._by_id = {t.id: t for t in self.templates}

    def __len__(self) -> int:
        return len(self.templates)

    def get(self, template_id: str) -> Template:
        return self._by_id[template_id]

    def active(self) -> list[Template]:
        return [t for t in self.templates if t.status == TemplateStatus.active]

    def offered(self, modality: str) -> list[Template]:
        """The active templates a reader may switch to for a study of ``modality``: the
        modality's own, its fallback, then the generic one."""
        modality = modality.strip().upper()
        mine = [t for t in self.active() if modality in t.applies_to.modalities]
        mine.sort(key=lambda t: t.applies_to.fallback)
        return mine + [t for t in self.active() if t.generic]

    def choose(
        self,
        modality: str,
        body_part: str = "",
        description: str = "",
        subspecialty: str | None = None,
    ) -> Choice:
        """The best template for a study, and why. Among the modality's templates a keyword
        in the study description counts most, then DICOM BodyPartExamined (technicians often
        leave the scanner's default), then the case's subspecialty; ties go to the longer
        keyword, then to the first file. No match: the modality's fallback, then the generic."""
        modality = modality.strip().upper()
        body = body_part.strip().upper()
        text = description.casefold()
        best: tuple[tuple[int, int, int], Template, list[str]] | None = None
        for order, t in enumerate(self.active()):
            rule = t.applies_to
            if rule.fallback or modality not in rule.modalities:
                continue
            # Weights such that a keyword alone outweighs body part and subspecialty together.
            score, why = 0, []
            keyword = rule.search(text) if text else None
            if keyword:
                score += 4
                why.append(f"{keyword!r} in the study description")
            if body and body in rule.body_parts:
                score += 2
                why.append(f"body part {body}")
            if subspecialty and rule.subspecialty == subspecialty:
                score += 1
                why.append(f"subspecialty {subspecialty}")
            key = (score, len(keyword or ""), -order)
            if score and (best is None or key > best[0]):
                best = (key, t, why)
        if best is not None:
            return Choice(best[1], f"{modality} template: {', '.join(best[2])}")
        for t in self.active():
            if t.applies_to.fallback and modality in t.applies_to.modalities:
                return Choice(t, f"no {modality} template matched: the {modality} fallback")
        for t in self.active():
            if t.generic:
                return Choice(t, f"no template for {modality or 'this study'}: the generic one")
        raise LookupError("no generic template (load_templates requires one)")

    def pick(
        self,
        modality: str,
        body_part: str = "",
        description: str = "",
        subspecialty: str | None = None,
    ) -> Template:
        return self.choose(modality, body_part, description, subspecialty).template


# ---------------------------------------------------------------------------------------------
# Loading


_TEMPLATE_MESSAGES = {
    **MESSAGES,
    "extra_forbidden": "unknown field (check the spelling; see reports_templates/README.md)",
    "union_tag_invalid": "unknown field type {tag!r}; one of {expected_tags}",
    "union_tag_not_found": "a field needs a type: one of text, number, measurement, choice, "
    "multichoice, date",
}
_FIELD_TYPES = frozenset(FieldType)


def _clean_loc(loc: tuple[Any, ...]) -> list[Any]:
    """Drop the union tag pydantic puts after a field's index (``fields[2].number.unit``)."""
    out: list[Any] = []
    for part in loc:
        if (
            part in _FIELD_TYPES
            and len(out) >= 2
            and isinstance(out[-1], int)
            and out[-2] == "fields"
        ):
            continue
        out.append(part)
    return out


def _parse_template(path: Path, name: str) -> tuple[Template | None, list[str]]:
    data, root, problems = read_yaml(path, name)
    if problems:
        return None, problems
    if not isinstance(data, dict):
        return None, [f"{name}: (top level): expected a mapping with id, version, title ..."]
    try:
        template = Template.model_validate(data, context={_LOCATED: True})
    except ValidationError as exc:
        return None, validation_problems(name, exc, root, _TEMPLATE_MESSAGES, _clean_loc)
    located = [problem(name, loc, message, root) for loc, message in template.problems()]
    return (None, located) if located else (template, [])


def _load(directory: Path) -> tuple[TemplateSet | None, list[str]]:
    directory = Path(directory)
    if not directory.is_dir():
        return None, [f"{directory}: (directory): not found"]
    problems: list[str] = []
    templates: list[Template] = []
    seen: dict[str, str] = {}
    for path in yaml_files(directory):
        template, errs = _parse_template(path, path.name)
        problems += errs
        if template is None:
            continue
        if template.id in seen:
            problems.append(
                f"{path.name}: id: {template.id!r} is also the id of {seen[template.id]}"
            )
            continue
        seen[template.id] = path.name
        templates.append(template)
    names = seen
    active = [t for t in templates if t.status == TemplateStatus.active]
    generic = [t for t in active if t.generic]
    if len(generic) > 1:
        listed = ", ".join(names[t.id] for t in generic)
        problems.append(
            f"{names[generic[1].id]}: applies_to.fallback: more than one active generic template "
            f"({listed}); keep one"
        )
    elif not generic and not problems:
        problems.append(
            f"{directory.name}/: applies_to: no active generic template (fallback: true and no "
            "modalities): studies no template matches would have none"
        )
    by_modality: dict[str, Template] = {}
    for t in active:
        if not t.applies_to.fallback:
            continue
        for modality in t.applies_to.modalities:
            if modality in by_modality:
                problems.append(
                    f"{names[t.id]}: applies_to.modalities: {modality} already falls back to "
                    f"{names[by_modality[modality].id]}"
                )
            by_modality.setdefault(modality, t)
    if problems:
        return None, problems
    return TemplateSet(templates), []


def load_templates(directory: Path) -> TemplateSet:
    """Read and validate every ``*.yaml`` directly in ``directory`` (not ``cases/``)."""
    templates, problems = _load(directory)
    if templates is None:
        raise TemplatesError(problems)
    return templates


class PickCase(_Strict):
    """A study and the template it must get."""

    name: str
    modality: str
    body_part: str = ""
    description: str = ""
    subspecialty: Subspecialty | None = None
    expect: str


class _PickCases(_Strict):
    cases: list[PickCase] = Field(min_length=1)


def load_pick_cases(directory: Path) -> tuple[list[tuple[str, PickCase]], list[str]]:
    """The golden cases in ``directory`` (``file[i]``, case), and the problems of the files
    that do not validate."""
    cases: list[tuple[str, PickCase]] = []
    problems: list[str] = []
    if not directory.is_dir():
        return cases, problems
    for path in yaml_files(directory):
        name = f"{directory.name}/{path.name}"
        data, root, errs = read_yaml(path, name)
        if errs:
            problems += errs
            continue
        try:
            parsed = _PickCases.model_validate(data)
        except ValidationError as exc:
            problems += validation_problems(name, exc, root, _TEMPLATE_MESSAGES)
            continue
        cases += [(f"{name}: cases[{i}]", c) for i, c in enumerate(parsed.cases)]
    return cases, problems


def check(directory: Path) -> list[str]:
    """Every problem in the templates directory, for ``radrelay templates check`` (empty: all
    good): invalid files, duplicate ids, missing or doubled fallbacks, invalid golden cases,
    and golden cases that get another template than they expect."""
    directory = Path(directory)
    templates, problems = _load(directory)
    cases, case_problems = load_pick_cases(directory / "cases")
    problems += case_problems
    if templates is None:
        return problems
    for name, case in cases:
        got = templates.choose(case.modality, case.body_part, case.description, case.subspecialty)
        if got.template.id != case.expect:
            problems.append(
                f"{name} ({case.name}): expected {case.expect}, got {got.template.id} "
                f"({got.reason})"
            )
    return problems


# ---------------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True)
class EntryProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _num(value: float) -> str:
    return f"{value:.10g}"


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == ()


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _as_numbers(value: Any) -> list[float] | None:
    items = value if isinstance(value, list | tuple) else [value]
    numbers = [_as_number(v) for v in items]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _value_problem(f: AnyField, value: Any) -> str | None:
    """Why ``value`` (not empty) cannot be the entry of ``f``, or None."""
    if isinstance(f, TextField):
        return None if isinstance(value, str) else "expected text"
    if isinstance(f, NumberField):
        number = _as_number(value)
        return "expected a number" if number is None else f.out_of_range(number)
    if isinstance(f, MeasurementField):
        numbers = _as_numbers(value)
        if numbers is None or not numbers:
            return "expected a number or a list of numbers"
        if len(numbers) > f.dimensions:
            return f"at most {f.dimensions} dimension(s), got {len(numbers)}"
        for n in numbers:
            why = f.out_of_range(n)
            if why:
                return why
        return None
    if isinstance(f, ChoiceField):
        if not isinstance(value, str) or f.option(value) is None:
            return f"{value!r} is not one of the options ({', '.join(o.value for o in f.options)})"
        return None
    if isinstance(f, MultiChoiceField):
        chosen = [value] if isinstance(value, str) else value
        if not isinstance(chosen, list | tuple):
            return "expected a list of options"
        unknown = [v for v in chosen if not isinstance(v, str) or f.option(v) is None]
        if unknown:
            return f"not among the options: {', '.join(map(repr, unknown))}"
        if len(set(chosen)) != len(chosen):
            return "an option is chosen twice"
        return None
    return None if _as_date(value) else "expected a date (YYYY-MM-DD)"


def validate_entries(
    template: Template, entries: Mapping[str, Any], texts: Mapping[str, str] | None = None
) -> list[EntryProblem]:
    """What is wrong with a reader's entries (field id -> value): unknown fields, required
    fields left empty, values of the wrong kind, numbers out of range, options that are not
    the field's. Empty (None, "", []) counts as not filled. Given the sections' ``texts``
    too (section key -> narrative), a required section with neither text nor a filled field
    is a problem named by the section key."""
    out = [
        EntryProblem(key, "no such field in the template")
        for key in entries
        if template.field(key) is None
    ]
    for _, f in template.fields():
        value = entries.get(f.id)
        if _empty(value):
            if f.required:
                out.append(EntryProblem(f.id, "required"))
            continue
        why = _value_problem(f, value)
        if why:
            out.append(EntryProblem(f.id, why))
    if texts is not None:
        for section in template.sections:
            filled = any(not _empty(entries.get(f.id)) for f in section.fields)
            if section.required and not filled and not texts.get(section.key, "").strip():
                out.append(EntryProblem(section.key, "required section: write it or fill a field"))
    return out


def _values(
    template: Template, language: document.Language, which: Literal["default", "normal"]
) -> tuple[dict[str, Any], dict[str, str]]:
    entries: dict[str, Any] = {}
    for _, f in template.fields():
        value = getattr(f, which, None)
        if isinstance(value, Label):
            entries[f.id] = value.shown(language)
        elif not _empty(value):
            entries[f.id] = list(value) if isinstance(value, list) else value
    texts = {}
    for s in template.sections:
        text = s.text if which == "default" else s.normal
        if text is not None:
            texts[s.key] = text.shown(language, "\n")
    return entries, texts


def default_values(
    template: Template, language: document.Language = document.Language.bilingual
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entries and section texts the editor starts a report with."""
    return _values(template, language, "default")


def normal_values(
    template: Template, language: document.Language = document.Language.bilingual
) -> tuple[dict[str, Any], dict[str, str]]:
    """The entries and section texts of a normal study, for the editor's "normal" button."""
    return _values(template, language, "normal")


def _entry_label(f: AnyField) -> document.Text:
    if f.group is None:
        return f.label.text()
    group, label = f.group.text(), f.label.text()
    zh = f"{group.zh}：{label.zh}" if group.zh and label.zh else ""
    return document.Text(en=f"{group.en}: {label.en}", zh=zh)


def _unit(code: str | None) -> str:
    shown = UNITS.get(code or "", "")
    return f" {shown}" if shown else ""


def _entries(f: AnyField, value: Any, language: document.Language) -> list[document.Entry]:
    label = _entry_label(f)
    if isinstance(f, TextField):
        return [document.Entry(label, str(value).strip())]
    if isinstance(f, NumberField):
        number = _as_number(value)
        assert number is not None
        return [document.Entry(label, _num(number) + _unit(f.unit), number=number, unit=f.unit)]
    if isinstance(f, MeasurementField):
        numbers = _as_numbers(value) or []
        shown = " × ".join(_num(n) for n in numbers) + _unit(f.unit)
        # The largest dimension is the number an SR measurement or a follow-up compares
        # (the long axis, as RECIST and Lung-RADS measure).
        return [document.Entry(label, shown, number=max(numbers), unit=f.unit)]
    if isinstance(f, ChoiceField | MultiChoiceField):
        chosen = [value] if isinstance(value, str) else list(value)
        out = []
        for v in chosen:
            option = f.option(v)
            assert option is not None
            code = option.codes[0].to_document() if option.codes else None
            out.append(document.Entry(label, option.label.shown(language), code=code))
        return out
    day = _as_date(value)
    assert day is not None
    return [document.Entry(label, day.isoformat())]


def to_sections(
    template: Template,
    entries: Mapping[str, Any],
    texts: Mapping[str, str] | None = None,
    language: document.Language = document.Language.bilingual,
    *,
    partial: bool = False,
) -> tuple[document.Section, ...]:
    """The report's sections for the renderers, from valid entries (``validate_entries``
    first) and each section's narrative (``texts``; a section not given keeps the template's
    starting text). Empty fields and sections with neither entries nor text are left out;
    a multiple choice gives one entry per chosen option. ``partial`` (a draft's preview):
    required fields may be empty; the values given must still be valid."""
    problems = validate_entries(template, entries)
    if partial:
        problems = [p for p in problems if p.message != "required"]
    if problems:
        raise ValueError("; ".join(map(str, problems)))
    texts = texts or {}
    out = []
    for section in template.sections:
        shown: list[document.Entry] = []
        for f in section.fields:
            value = entries.get(f.id)
            if not _empty(value):
                shown += _entries(f, value, language)
        if section.key in texts:
            text = texts[section.key].strip()
        else:
            text = section.text.shown(language, "\n") if section.text else ""
        if not (shown or text):
            continue
        out.append(
            document.Section(
                key=section.key,
                title=section.title.text(),
                entries=tuple(shown),
                text=text,
                code=section.code.to_document() if section.code else None,
            )
        )
    return tuple(out)
