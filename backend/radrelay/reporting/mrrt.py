"""Import IHE MRRT report templates (the HTML5 format of the RSNA RadReport library) as ours.

An MRRT template is an HTML5 file (IHE Radiology TF Supplement "Management of Radiology Report
Templates", volume 3, section 8.1):

- ``<meta name="dcterms.*">`` Dublin Core metadata: title, identifier, language, publisher ...
- a ``<script type="text/xml">`` block holding ``<template_attributes>``: the status, the
  ``<coding_schemes>`` (name -> designator OID), the template's own ``<term>``s (modality,
  anatomy) and ``<coded_content>``, whose ``<entry ORIGTXT="id">`` elements tie ``<term>``s
  (``<code meaning= value= scheme=>``) to the element of the body with that id;
- a ``<body>`` of ``<section data-section-name>`` elements (nested for subsections) holding
  ``<input>`` (text, number with ``data-field-units``/``min``/``max``/``step``, date, time,
  checkbox), ``<select>`` of ``<option>``s (``multiple`` for several) and ``<textarea>``.

RadReport files bend the profile: the XML block sits in an HTML comment, and ``<code>`` tags are
left open. The block is parsed as XML first and, if that fails, with the forgiving HTML parser,
which closes those tags where the profile means them closed. The HTML itself is only ever read
by lxml's parser, never by pattern matching.

The result is a ``draft``: MRRT has no Chinese labels, no notion of which studies a template is
for beyond its coded modality and anatomy, and fields our schema words differently. ``notes``
says what was left out or changed; a person reviews, translates, then sets ``status: active``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from lxml import etree, html
from pydantic import ValidationError

from radrelay.reporting.templates import (
    SECTION_CODES,
    UNITS,
    Code,
    Scheme,
    SectionKey,
    Template,
    code_problem,
)

__all__ = ["Imported", "MrrtError", "import_mrrt", "to_yaml"]


class MrrtError(ValueError):
    """The file is not an MRRT template we can read."""


@dataclass
class Imported:
    template: Template
    notes: list[str] = field(default_factory=list)


# Coding scheme designators (HL7 OIDs, as MRRT's <coding_scheme designator=>) and the names
# templates use for them.
_OIDS = {
    "2.16.840.1.113883.6.256": Scheme.RADLEX,
    "2.16.840.1.113883.6.96": Scheme.SCT,
    "2.16.840.1.113883.6.1": Scheme.LN,
}
_NAMES = {
    "radlex": Scheme.RADLEX,
    "snomedct": Scheme.SCT,
    "snomed": Scheme.SCT,
    "sct": Scheme.SCT,
    "loinc": Scheme.LN,
    "ln": Scheme.LN,
}

# The template-level RadLex terms that name a modality (as RadReport codes them).
_MODALITY_CODES = {
    "RID10321": ["CT"],  # computed tomography
    "RID10312": ["MR"],  # magnetic resonance imaging
    "RID10326": ["US"],  # ultrasound
    "RID10345": ["CR", "DX"],  # projection radiography
}
_MODALITY_WORDS = {
    "ct": ["CT"],
    "mr": ["MR"],
    "mri": ["MR"],
    "us": ["US"],
    "ultrasound": ["US"],
    "xray": ["CR", "DX"],
    "x-ray": ["CR", "DX"],
    "radiograph": ["CR", "DX"],
    "radiography": ["CR", "DX"],
    "mammography": ["MG"],
    "mammogram": ["MG"],
}

# Section codes (RadReport codes sections with RadLex) and names -> our standard keys.
_SECTION_BY_CODE = {
    **{code.value: key for key, code in SECTION_CODES.items()},
    "RID13166": SectionKey.clinical_information,
    "RID28482": SectionKey.technique,
    "RID28483": SectionKey.comparison,
    "RID28486": SectionKey.findings,
    "RID13170": SectionKey.impression,
}
_SECTION_BY_WORD = (
    (("clinical", "history", "indication", "临床", "病史"), SectionKey.clinical_information),
    (("technique", "procedure", "protocol", "技术", "方法"), SectionKey.technique),
    (("comparison", "prior", "对比", "比较"), SectionKey.comparison),
    (("finding", "observation", "所见"), SectionKey.findings),
    (("impression", "conclusion", "诊断", "印象", "提示"), SectionKey.impression),
    (("recommendation", "建议"), SectionKey.recommendations),
)
_SECTION_TITLES = {
    SectionKey.findings: ("Findings", "检查所见"),
    SectionKey.impression: ("Impression", "诊断意见"),
}

# Units as templates write them -> UCUM.
_UNIT_SPELLINGS = {"ml": "mL", "cc": "mL", "hu": "[hnsf'U]", "mgy": "mGy", "mgy-cm": "mGy.cm"}
_LENGTHS = {"mm", "cm"}
_FIELD_TAGS = ("input", "select", "textarea")


def _attr(el: Any, name: str) -> str:
    """An attribute whatever its case (the HTML parser lower-cases ``ORIGTXT``)."""
    for key in (name, name.lower(), name.upper()):
        value = el.get(key)
        if value is not None:
            return str(value).strip()
    return ""


def _text(el: Any) -> str:
    return " ".join("".join(el.itertext()).split())


def _slug(text: str, pattern: str = r"[^a-z0-9]+", sep: str = "_") -> str:
    return re.sub(pattern, sep, text.casefold()).strip(sep)


class _Reader:
    def __init__(self, data: bytes | str, template_id: str | None):
        self.notes: list[str] = []
        self._wanted_id = template_id
        try:
            self.doc = html.document_fromstring(data)
        except (etree.ParserError, ValueError) as exc:
            raise MrrtError(f"not an HTML document: {exc}") from None
        self.meta = self._meta()
        language = self.meta.get("language", "en").casefold()
        self.lang = "zh" if language.startswith("zh") else "en"
        if not (language.startswith("zh") or language.startswith("en")):
            self.notes.append(f"dcterms.language is {language!r}: its text is kept as en")
        self.attributes = self._attributes_root()
        self.schemes = {
            _attr(s, "name").casefold(): _attr(s, "designator")
            for s in self.attributes.iter("coding_scheme")
        }
        self.coded = self._coded_content()
        self._ids: set[str] = set()

    # -- metadata and coded content ------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for m in self.doc.iter("meta"):
            name = _attr(m, "name").casefold()
            if name.startswith("dcterms."):
                key = name.removeprefix("dcterms.")
                content = _attr(m, "content")
                out[key] = f"{out[key]}; {content}" if key in out else content
        return out

    def _attributes_root(self) -> Any:
        scripts = self.doc.xpath('//script[@type="text/xml"]')
        if not scripts:
            # Early drafts of the profile put the blocks in the document itself.
            return self.doc
        text = (scripts[0].text or "").strip()
        if text.startswith("<!--") and text.endswith("-->"):
            text = text[4:-3]
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            return etree.fromstring(f"<mrrt>{text}</mrrt>", parser)
        except etree.XMLSyntaxError:
            # RadReport leaves <code ...> open; the HTML parser closes it at </term>.
            return html.fragment_fromstring(text, create_parent="mrrt")

    def _scheme(self, name: str) -> Scheme | None:
        key = name.strip().casefold()
        designator = self.schemes.get(key, name.strip())
        return _OIDS.get(designator) or _NAMES.get(key.replace("-", "").replace(" ", ""))

    def _codes(self, terms: Iterable[Any], where: str) -> list[Code]:
        out = []
        for term in terms:
            for code in term.iter("code"):
                found = (_attr(code, "value"), _attr(code, "scheme"), _attr(code, "meaning"))
                out.append(found)
            parts = [term.find(t) for t in ("code_value", "coding_scheme_designator")]
            if all(p is not None for p in parts):
                meaning = term.find("code_meaning")
                out.append(
                    (
                        _text(parts[0]),
                        _text(parts[1]),
                        _text(meaning) if meaning is not None else "",
                    )
                )
        codes = []
        for value, scheme_name, meaning in out:
            scheme = self._scheme(scheme_name)
            if scheme is None:
                self.notes.append(f"{where}: {scheme_name} code {value} left out (scheme not used)")
                continue
            why = code_problem(scheme, value) or (None if meaning else "no meaning")
            if why:
                self.notes.append(f"{where}: code {value} left out: {why}")
                continue
            code = Code(value=value, scheme=scheme, meaning=meaning)
            if code not in codes:
                codes.append(code)
        return codes

    def _coded_content(self) -> dict[str, list[Code]]:
        out: dict[str, list[Code]] = {}
        for entry in self.attributes.iter("entry"):
            target = _attr(entry, "ORIGTXT")
            if target:
                out[target] = out.get(target, []) + self._codes(
                    entry.iter("term"), f"coded entry {target}"
                )
        return out

    def template_codes(self) -> list[Code]:
        terms = [
            t
            for t in self.attributes.iter("term")
            if not any(a.tag in ("coded_content", "procedure-code-list") for a in t.iterancestors())
        ]
        return self._codes(terms, "template_attributes")

    # -- the body -------------------------------------------------------------------------

    def label(self, text: str) -> dict[str, str]:
        return {self.lang: text}

    def unique_id(self, *candidates: str) -> str:
        base = next((s for c in candidates if (s := _slug(c))), "field")
        if not base[0].isalpha():
            base = f"f_{base}"
        base = base[:60]
        name, n = base, 2
        while name in self._ids:
            name, n = f"{base}_{n}", n + 1
        self._ids.add(name)
        return name

    def field_label(self, el: Any) -> str:
        el_id = _attr(el, "id")
        if el_id:
            for lab in self.doc.xpath("//label[@for=$id]", id=el_id):
                text = _text(lab).rstrip(":：").strip()
                if text:
                    return text
        return (_attr(el, "title") or _attr(el, "name") or el_id or "field").rstrip(":：").strip()

    def sections(self) -> list[dict[str, Any]]:
        body = self.doc.find("body")
        if body is None:
            raise MrrtError("the document has no <body>")
        tops = [
            s
            for s in body.iter("section")
            if not any(a.tag == "section" for a in s.iterancestors())
        ]
        if not tops:
            raise MrrtError("the body has no <section>: not an MRRT template")
        used: set[str] = set()
        out = [self.section(s, used) for s in tops]
        for key, (en, zh) in _SECTION_TITLES.items():
            if key not in used:
                self.notes.append(
                    f"the template has no {key.value} section: an empty one was added"
                )
                out.append(
                    {"key": key.value, "title": {"en": en} if self.lang == "en" else {"zh": zh}}
                )
        return out

    def section(self, el: Any, used: set[str]) -> dict[str, Any]:
        name = (_attr(el, "data-section-name") or self._header(el) or "section").rstrip(":：")
        title = (self._header(el) or name).rstrip(":：").strip()
        codes = self.coded.get(_attr(el, "id"), [])
        key = self._section_key(name, codes, used)
        used.add(key)
        data: dict[str, Any] = {"key": key, "title": self.label(title)}
        section_code = next((c for c in codes if c.scheme == Scheme.LN), None)
        if section_code is not None:
            data["code"] = section_code.model_dump(mode="json")
        if _attr(el, "data-section-required").casefold() == "true":
            data["required"] = True
        texts, fields = [], []
        for block, group in self._blocks(el, None):
            if isinstance(block, str):
                texts.append(block)
                continue
            made = self.field(block, group)
            if made is not None:
                fields.append(made)
        text = "\n".join(t for t in texts if t)
        if text:
            data["text"] = self.label(text)
        if fields:
            data["fields"] = fields
        return data

    def _header(self, el: Any) -> str:
        header = el.find("header")
        return _text(header) if header is not None else ""

    def _section_key(self, name: str, codes: list[Code], used: set[str]) -> str:
        for code in codes:
            key = _SECTION_BY_CODE.get(code.value)
            if key is not None and key not in used:
                return str(key)
        folded = name.casefold()
        for words, key in _SECTION_BY_WORD:
            if key not in used and any(w in folded for w in words):
                return str(key)
        base = _slug(name) or "section"
        if not base[0].isalpha():
            base = f"s_{base}"
        key, n = base[:60], 2
        while key in used:
            key, n = f"{base[:57]}_{n}", n + 1
        return key

    def _blocks(self, el: Any, group: dict[str, str] | None) -> Iterator[tuple[Any, Any]]:
        """The fields of a section in document order, and the text of its paragraphs that hold
        no field; a nested section's fields get its header as their group."""
        for child in el:
            if not isinstance(child.tag, str) or child.tag == "header":
                continue
            if child.tag == "section":
                title = (self._header(child) or _attr(child, "data-section-name")).rstrip(":：")
                yield from self._blocks(child, self.label(title.strip()) if title else group)
            elif child.tag in _FIELD_TAGS:
                yield child, group
            elif any(d.tag in _FIELD_TAGS or d.tag == "section" for d in child.iterdescendants()):
                yield from self._blocks(child, group)
            elif child.tag in ("p", "div", "span", "ol", "ul", "li", "table"):
                text = "\n".join(_text(li) for li in child.iter("li")) or _text(child)
                if text:
                    yield text, group

    # -- fields ---------------------------------------------------------------------------

    def field(self, el: Any, group: dict[str, str] | None) -> dict[str, Any] | None:
        el_id = _attr(el, "id")
        label = self.field_label(el)
        where = f"field {el_id or label!r}"
        kind = _attr(el, "data-field-type").upper()
        data: dict[str, Any] = {"id": "", "type": "text", "label": self.label(label)}
        if group:
            data["group"] = group
        if el.get("required") is not None:
            data["required"] = True
        codes = self.coded.get(el_id, [])
        if codes:
            data["codes"] = [c.model_dump(mode="json") for c in codes]
        if el.tag == "textarea":
            data["multiline"] = True
            value = (el.text or "").strip()
            if value:
                data["default"] = self.label(value)
        elif el.tag == "select":
            if not self._select(el, data, where):
                return None
        else:
            # data-field-type (MRRT) says what the field is; else the HTML input type does.
            kind = (kind or _attr(el, "type") or "text").casefold()
            if kind in ("hidden", "button", "submit", "reset", "radio", "file", "image"):
                self.notes.append(f"{where}: input type {kind} left out")
                return None
            if kind in ("number", "numeric", "integer"):
                self._number(el, data, where)
            elif kind == "date":
                data["type"] = "date"
            elif kind == "checkbox":
                value = _attr(el, "value") or "yes"
                option = {
                    "value": _slug(value, r"[^a-z0-9.-]+") or "yes",
                    "label": self.label(value),
                }
                data.update(type="multichoice", options=[option])
                if el.get("checked") is not None:
                    data["default"] = [option["value"]]
            else:
                if kind == "time":
                    self.notes.append(f"{where}: a TIME field, imported as text")
                value = _attr(el, "value")
                if value:
                    data["default"] = self.label(value)
        if _attr(el, "data-field-merge-flag").casefold() in ("y", "true"):
            source = _attr(el, "data-field-merge-identifier") or "the RIS"
            self.notes.append(f"{where}: filled from {source} in MRRT; not imported")
        data["id"] = self.unique_id(_attr(el, "name"), el_id, label)
        return data

    def _number(self, el: Any, data: dict[str, Any], where: str) -> None:
        raw_unit = _attr(el, "data-field-units")
        unit = _UNIT_SPELLINGS.get(raw_unit.casefold(), raw_unit)
        if unit and unit not in UNITS:
            self.notes.append(f"{where}: unit {raw_unit!r} is not UCUM we know: left out")
            unit = ""
        data["type"] = "measurement" if unit in _LENGTHS else "number"
        if unit:
            data["unit"] = unit
        bounds = {}
        for name in ("min", "max", "step"):
            number = _float(_attr(el, name))
            if number is not None:
                bounds[name] = number
        if "min" in bounds and "max" in bounds and bounds["min"] >= bounds["max"]:
            self.notes.append(
                f"{where}: min {bounds['min']} not below max {bounds['max']}: dropped"
            )
            bounds.pop("min"), bounds.pop("max")
        if bounds.get("step", 1) <= 0:
            bounds.pop("step")
        data.update(bounds)
        value = _float(_attr(el, "value"))
        if value is not None and data["type"] == "number":
            inside = bounds.get("min", value) <= value <= bounds.get("max", value)
            if inside:
                data["default"] = value

    def _select(self, el: Any, data: dict[str, Any], where: str) -> bool:
        options, chosen, values = [], [], set()
        for n, opt in enumerate(el.iter("option"), 1):
            raw = _attr(opt, "value") if opt.get("value") is not None else _text(opt)
            text = _text(opt) or raw
            if not raw or not text:
                continue  # a placeholder ("--select--")
            value = _slug(raw, r"[^a-z0-9.-]+")[:60] or f"o{n}"
            if not value[0].isalnum():
                value = f"o{value}"
            base, k = value, 2
            while value in values:
                value, k = f"{base}_{k}", k + 1
            values.add(value)
            option: dict[str, Any] = {"value": value, "label": self.label(text)}
            codes = self.coded.get(_attr(opt, "id"), [])
            if codes:
                option["codes"] = [c.model_dump(mode="json") for c in codes]
            options.append(option)
            if opt.get("selected") is not None:
                chosen.append(value)
        if not options:
            self.notes.append(f"{where}: a list without options left out")
            return False
        multiple = el.get("multiple") is not None
        data.update(type="multichoice" if multiple else "choice", options=options)
        if chosen:
            data["default"] = chosen if multiple else chosen[0]
        return True

    # -- the template ---------------------------------------------------------------------

    def template(self) -> Template:
        title_el = self.doc.find(".//title")
        title = self.meta.get("title") or (_text(title_el) if title_el is not None else "")
        if not title:
            raise MrrtError("no dcterms.title or <title>: not an MRRT template")
        sections = self.sections()
        codes = self.template_codes()
        status = ""
        status_el = self.attributes.find(".//status")
        if status_el is not None:
            status = _text(status_el)
        self.notes.append(
            f"imported as a draft (source status {status or 'unknown'}): review, add "
            f"{'Chinese' if self.lang == 'en' else 'English'} labels if wanted, check applies_to, "
            "then set status: active"
        )
        data: dict[str, Any] = {
            "id": self._template_id(title),
            "version": 1,
            "status": "draft",
            "title": self.label(title),
            "description": self.meta.get("description", ""),
            "languages": ["en" if self.lang == "en" else "zh-CN"],
            "applies_to": self._applies_to(title, codes),
            "codes": [c.model_dump(mode="json") for c in codes],
            "sections": sections,
            "source": {
                "format": "mrrt",
                **{
                    k: self.meta[k]
                    for k in (
                        "identifier",
                        "title",
                        "language",
                        "publisher",
                        "creator",
                        "rights",
                        "license",
                        "date",
                    )
                    if self.meta.get(k)
                },
            },
        }
        try:
            return Template.model_validate(data)
        except ValidationError as exc:
            raise MrrtError(f"the imported template does not validate: {exc}") from None

    def _template_id(self, title: str) -> str:
        if self._wanted_id:
            return self._wanted_id
        slug = _slug(title, r"[^a-z0-9]+", "-")
        if not slug:
            digits = re.findall(r"[0-9]+", self.meta.get("identifier", ""))
            slug = digits[-1] if digits else "template"
        return f"mrrt-{slug}"[:64].rstrip("-.")

    def _applies_to(self, title: str, codes: list[Code]) -> dict[str, Any]:
        modalities: list[str] = []
        anatomy: list[str] = []
        for code in codes:
            if code.value in _MODALITY_CODES:
                modalities += [m for m in _MODALITY_CODES[code.value] if m not in modalities]
            else:
                anatomy.append(code.meaning.casefold())
        words = [w for w in re.split(r"[\s/,()_]+", title.casefold()) if w]
        if not modalities:
            for w in words:
                modalities += [m for m in _MODALITY_WORDS.get(w, []) if m not in modalities]
        if not modalities:
            self.notes.append("no modality found: applies_to.modalities set to OT, correct it")
            modalities = ["OT"]
        keywords = anatomy or [w for w in words if w not in _MODALITY_WORDS] or [title]
        return {"modalities": modalities, "keywords": list(dict.fromkeys(keywords))}


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def import_mrrt(data: bytes | str, template_id: str | None = None) -> Imported:
    """Our template (a draft) from an MRRT file's bytes, and notes on what was left out."""
    reader = _Reader(data, template_id)
    template = reader.template()
    return Imported(template, reader.notes)


_FIRST = ("key", "id", "version", "status", "format", "type", "value", "title", "label", "group")
_FLOW_KEYS = ({"en"}, {"zh"}, {"en", "zh"}, {"value", "scheme", "meaning"})


class _Flow(dict[str, Any]):
    """A label or a code: written on one line, as the shipped templates write them."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _ordered(value: Any) -> Any:
    """Readable YAML: keys that say what a thing is first, labels and codes on one line,
    standard section codes left out (the schema fills them in)."""
    if isinstance(value, dict):
        standard = SECTION_CODES.get(str(value.get("key", "")))
        if standard is not None and value.get("code") == standard.model_dump(mode="json"):
            value = {k: v for k, v in value.items() if k != "code"}
        head = [k for k in _FIRST if k in value]
        out = {k: _ordered(value[k]) for k in [*head, *(k for k in value if k not in head)]}
        return _Flow(out) if set(out) in _FLOW_KEYS else out
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def to_yaml(template: Template) -> str:
    """The template as a YAML file of ``reports_templates/``."""
    data = _ordered(template.model_dump(mode="json", exclude_defaults=True))
    source = template.source.identifier if template.source else ""
    header = (
        f"# Imported from the MRRT template {source or template.title.en or template.id} by\n"
        "# `radrelay templates import-mrrt`. A draft: review it, then set status: active.\n"
    )
    body = yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    return header + body
