"""QIDO-RS (PS3.18 10.6): which attributes can be matched and returned at each level, how the
query string reads, and how an index row becomes a DICOM JSON result.

Matching follows PS3.4 C.2.2.2: single value (wildcards ``*`` and ``?`` in text values), UID
lists, date and time ranges; person names match case-insensitively on any of their groups
(alphabetic, ideographic, phonetic), so a Chinese name is found by its characters or its
pinyin. ``fuzzymatching=true`` also matches a name by the start of any of its components.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from radrelay.errors import BadRequest
from radrelay.models import Instance, InstanceMetadata, Patient, Series, Study


class Level(StrEnum):
    study = "study"
    series = "series"
    instance = "instance"


class Match(StrEnum):
    text = "text"  # single value, wildcards allowed
    name = "name"  # person name: any group, case-insensitive, wildcards
    uid = "uid"  # list of UIDs
    date = "date"  # DA, single or range
    time = "time"  # TM, single or range
    modality = "modality"  # one of a multi-valued list (ModalitiesInStudy)
    number = "number"  # IS / US


@dataclass(frozen=True)
class Attr:
    keyword: str
    vr: str
    level: Level
    column: Any  # the indexed column the value comes from
    match: Match | None  # None: returned, not matchable
    default: bool  # returned without includefield (PS3.18 Tables 10.6.3-3 to -5)
    search: Any = None  # a column prepared for matching, when it is not ``column`` itself
    tag: str = field(init=False)  # "00100010", the DICOM JSON key

    def __post_init__(self) -> None:
        object.__setattr__(self, "tag", f"{tag_for_keyword(self.keyword):08X}")

    @property
    def search_patients(self) -> bool:
        """Matched on the patients table (as a set of patients, see the repository)."""
        return bool(self.column.class_ is Patient)


_S, _SE, _I = Level.study, Level.series, Level.instance
ATTRS: dict[str, Attr] = {
    a.keyword: a
    for a in (
        Attr("StudyDate", "DA", _S, Study.study_date, Match.date, True),
        Attr("StudyTime", "TM", _S, Study.study_time, Match.time, True),
        Attr("AccessionNumber", "SH", _S, Study.accession_number, Match.text, True),
        Attr("ModalitiesInStudy", "CS", _S, Study.modalities_in_study, Match.modality, True),
        Attr("ReferringPhysicianName", "PN", _S, Study.referring_physician_name, Match.name, True),
        Attr("PatientName", "PN", _S, Patient.patient_name, Match.name, True, Patient.name_search),
        Attr("PatientID", "LO", _S, Patient.patient_id, Match.text, True),
        Attr("IssuerOfPatientID", "LO", _S, Patient.issuer_of_patient_id, Match.text, False),
        Attr("PatientBirthDate", "DA", _S, Patient.birth_date, Match.date, True),
        Attr("PatientSex", "CS", _S, Patient.sex, Match.text, True),
        Attr("StudyInstanceUID", "UI", _S, Study.study_instance_uid, Match.uid, True),
        Attr("StudyID", "SH", _S, Study.study_id, Match.text, True),
        Attr("StudyDescription", "LO", _S, Study.study_description, Match.text, True),
        Attr("NumberOfStudyRelatedSeries", "IS", _S, Study.number_of_series, None, True),
        Attr("NumberOfStudyRelatedInstances", "IS", _S, Study.number_of_instances, None, True),
        Attr("Modality", "CS", _SE, Series.modality, Match.text, True),
        Attr("SeriesInstanceUID", "UI", _SE, Series.series_instance_uid, Match.uid, True),
        Attr("SeriesNumber", "IS", _SE, Series.series_number, Match.number, True),
        Attr("SeriesDescription", "LO", _SE, Series.series_description, Match.text, True),
        Attr("BodyPartExamined", "CS", _SE, Series.body_part_examined, Match.text, False),
        Attr("NumberOfSeriesRelatedInstances", "IS", _SE, Series.number_of_instances, None, True),
        Attr("SOPClassUID", "UI", _I, Instance.sop_class_uid, Match.uid, True),
        Attr("SOPInstanceUID", "UI", _I, Instance.sop_instance_uid, Match.uid, True),
        Attr("InstanceNumber", "IS", _I, Instance.instance_number, Match.number, True),
        Attr("Rows", "US", _I, Instance.rows, Match.number, True),
        Attr("Columns", "US", _I, Instance.columns, Match.number, True),
        Attr("NumberOfFrames", "IS", _I, Instance.number_of_frames, Match.number, True),
        Attr("BitsAllocated", "US", _I, InstanceMetadata.bits_allocated, None, True),
        Attr(
            "AvailableTransferSyntaxUID", "UI", _I, Instance.transfer_syntax_uid, Match.uid, False
        ),
    )
}
# The levels whose attributes a result of each level carries.
LEVELS = {_S: (_S,), _SE: (_S, _SE), _I: (_S, _SE, _I)}

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Condition:
    attr: Attr
    values: tuple[str, ...]  # several for UID lists and repeated keys


@dataclass
class Query:
    level: Level
    conditions: list[Condition] = field(default_factory=list)
    include: list[Attr] = field(default_factory=list)
    fuzzy: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    ignored: list[str] = field(default_factory=list)  # keys we cannot match on: a Warning


def _keyword(key: str) -> str:
    """A keyword from a keyword or an 8-digit tag (``00100010``); nested paths are not
    supported for matching and come back as given."""
    if len(key) == 8:
        try:
            return str(keyword_for_tag(int(key, 16)) or key)
        except ValueError:
            return key
    return key


def parse(level: Level, params: Sequence[tuple[str, str]], scoped: Sequence[str] = ()) -> Query:
    """The query of ``params`` (the query string as pairs). ``scoped``: keywords already fixed
    by the URL (e.g. StudyInstanceUID in /studies/{uid}/series), which are not returned again
    as matching keys."""
    query = Query(level)
    allowed = LEVELS[level]
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        name = key.strip()
        lowered = name.lower()
        if lowered == "limit":
            query.limit = _bounded_int(name, value, 1, MAX_LIMIT)
        elif lowered == "offset":
            query.offset = _bounded_int(name, value, 0, 1 << 31)
        elif lowered == "fuzzymatching":
            query.fuzzy = value.strip().lower() == "true"
        elif lowered == "includefield":
            for item in value.replace(",", " ").split():
                query.include.extend(_includes(level, item))
        elif lowered in ("accept", "charset", "token"):
            continue
        else:
            grouped.setdefault(_keyword(name), []).append(value)
    for keyword, values in grouped.items():
        attr = ATTRS.get(keyword)
        if attr is None or attr.match is None or attr.level not in allowed:
            if keyword in scoped:
                continue
            if tag_for_keyword(keyword) is None:
                raise BadRequest(f"{keyword!r} is not a DICOM attribute keyword or tag.")
            query.ignored.append(keyword)
            continue
        query.conditions.append(Condition(attr, tuple(_split_values(attr, values))))
    return query


def _split_values(attr: Attr, values: list[str]) -> list[str]:
    if attr.match == Match.uid:
        # PS3.18 8.3.4.1: a UID list is comma (or backslash) separated.
        return [u.strip() for v in values for u in v.replace("\\", ",").split(",") if u.strip()]
    if attr.match == Match.modality:
        return [m.strip() for v in values for m in v.replace("\\", ",").split(",") if m.strip()]
    return [values[-1]]


def _includes(level: Level, item: str) -> list[Attr]:
    if item.lower() == "all":
        return [a for a in ATTRS.values() if a.level in LEVELS[level]]
    keyword = _keyword(item)
    attr = ATTRS.get(keyword)
    if attr is not None:
        return [attr] if attr.level in LEVELS[level] else []
    if not tag_for_keyword(keyword):
        raise BadRequest(f"includefield {item!r} is not a DICOM attribute keyword or tag.")
    return []  # a real attribute we do not index: PS3.18 lets us leave it out


def _bounded_int(name: str, value: str, low: int, high: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}.") from None
    if not low <= n <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, not {n}.")
    return n


def like_pattern(value: str) -> tuple[str, bool]:
    """A DICOM wildcard value as a LIKE pattern with ``!`` as the escape character, and whether
    it had wildcards at all (else it is an exact match)."""
    escaped = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    has_wildcards = "*" in value or "?" in value
    return escaped.replace("*", "%").replace("?", "_"), has_wildcards


def date_range(attr: Attr, value: str) -> tuple[str | None, str | None]:
    """(low, high) of a DA or TM single value or range; None for an open end."""
    text = value.strip()
    if attr.match == Match.date:
        text = text.replace(".", "")  # the old ACR-NEMA form 2020.01.31
    low: str | None = text
    high: str | None = text
    if "-" in text:
        first, _, second = text.partition("-")
        low, high = first.strip() or None, second.strip() or None
    for bound in (low, high):
        if bound is not None and not _valid_bound(attr, bound):
            raise BadRequest(f"{attr.keyword}={value!r} is not a DICOM {attr.vr} value or range.")
    if attr.match == Match.time and high is not None:
        # A time bound names a whole unit: 1030 reaches to 103059.999999.
        high = high.replace(":", "").ljust(6, "9") + ("" if "." in high else ".999999")
    if low is not None:
        low = low.replace(":", "")
    return low, high


def _valid_bound(attr: Attr, bound: str) -> bool:
    digits = bound.replace(":", "").split(".")[0]
    if not digits.isdigit():
        return False
    return len(digits) == 8 if attr.match == Match.date else len(digits) in (2, 4, 6)


def element(attr: Attr, value: Any) -> dict[str, Any]:
    """One DICOM JSON element (PS3.18 F.2) from an indexed value; empty values have no Value."""
    out: dict[str, Any] = {"vr": attr.vr}
    if value is None or value == "":
        return out
    if attr.vr == "PN":
        groups = str(value).split("=")
        name = {"Alphabetic": groups[0]}
        if len(groups) > 1 and groups[1]:
            name["Ideographic"] = groups[1]
        if len(groups) > 2 and groups[2]:
            name["Phonetic"] = groups[2]
        out["Value"] = [name]
    elif attr.vr in ("IS", "US"):
        out["Value"] = [int(value)]
    elif attr.keyword == "ModalitiesInStudy":
        out["Value"] = [m for m in str(value).split("\\") if m]
    else:
        out["Value"] = [str(value)]
    return out


def returned(query: Query, scoped: Sequence[str] = ()) -> list[Attr]:
    """Attributes of each result: the level's defaults, matching keys, included fields."""
    levels = LEVELS[query.level]
    chosen = {a.keyword: a for a in ATTRS.values() if a.default and a.level in levels}
    if query.level == Level.series and "StudyInstanceUID" in scoped:
        # /studies/{uid}/series: study attributes are not repeated in every series (10.6.3-4).
        chosen = {k: a for k, a in chosen.items() if a.level != _S or k == "StudyInstanceUID"}
    if query.level == Level.instance and scoped:
        chosen = {
            k: a
            for k, a in chosen.items()
            if a.level == _I or k in ("StudyInstanceUID", "SeriesInstanceUID")
        }
    for c in query.conditions:
        chosen.setdefault(c.attr.keyword, c.attr)
    for a in query.include:
        chosen.setdefault(a.keyword, a)
    return list(chosen.values())


def result(attrs: Sequence[Attr], values: Mapping[str, Any], retrieve_url: str) -> dict[str, Any]:
    out = {a.tag: element(a, values.get(a.keyword)) for a in attrs}
    out["00081190"] = {"vr": "UR", "Value": [retrieve_url]}  # RetrieveURL
    out["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}  # InstanceAvailability
    return dict(sorted(out.items()))
