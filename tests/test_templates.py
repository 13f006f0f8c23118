"""Report templates without a server: the shipped ``reports_templates/``, the schema and its
error messages, choosing a template for a study, checking a reader's entries, the sections the
renderers get, the MRRT import, and the ``radrelay templates`` commands."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import RADRELAY, ROOT, server_env
from radrelay.reporting.document import Code as DocCode
from radrelay.reporting.document import Language, Text
from radrelay.reporting.mrrt import MrrtError, import_mrrt, to_yaml
from radrelay.reporting.templates import (
    SECTION_CODES,
    ChoiceField,
    MeasurementField,
    MultiChoiceField,
    NumberField,
    Template,
    TemplatesError,
    TemplateSet,
    check,
    code_problem,
    default_values,
    load_pick_cases,
    load_templates,
    normal_values,
    to_sections,
    validate_entries,
)

TEMPLATES_DIR = ROOT / "reports_templates"
MRRT_FILE = Path(__file__).parent / "data" / "mrrt" / "ct_chest_mrrt.html"
FAMILIES = (
    "xr-chest",
    "ct-head",
    "ct-chest",
    "ct-abdomen-pelvis",
    "mr-brain",
    "mr-knee",
    "us-abdomen",
    "mg-breast",
)


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    return load_templates(TEMPLATES_DIR)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the shipped templates and golden cases, to break."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` in the file; the 1-based line where it starts."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def line_of(path: Path, line: str) -> int:
    """The 1-based number of the line that is exactly ``line``."""
    return 1 + path.read_text(encoding="utf-8").split("\n").index(line)


# ---------------------------------------------------------------------------------------------
# The shipped templates


class TestShipped:
    def test_every_template_loads_and_the_check_passes(self, templates: TemplateSet) -> None:
        assert check(TEMPLATES_DIR) == []
        ids = {t.id for t in templates.templates}
        assert set(FAMILIES) <= ids
        assert {"generic", "xr-generic", "ct-generic", "mr-generic", "us-generic"} <= ids
        assert len(templates) == len(list(TEMPLATES_DIR.glob("*.yaml")))

    @pytest.mark.parametrize("template_id", FAMILIES)
    def test_a_family_template_is_a_full_bilingual_report(
        self, templates: TemplateSet, template_id: str
    ) -> None:
        t = templates.get(template_id)
        keys = [s.key for s in t.sections]
        assert keys == [
            "clinical_information",
            "technique",
            "comparison",
            "findings",
            "impression",
            "recommendations",
        ]
        assert t.languages == ["zh-CN", "en"]
        for section in t.sections:
            assert section.code == SECTION_CODES[section.key]
            assert section.title.zh and section.title.en
        findings, impression = t.section("findings"), t.section("impression")
        assert findings and findings.required and findings.normal and findings.normal.zh
        assert impression and impression.required and impression.normal
        types = {type(f) for _, f in t.fields()}
        assert ChoiceField in types or MultiChoiceField in types
        coded = [c for _, f in t.fields() for c in f.codes] + [
            c
            for _, f in t.fields()
            if isinstance(f, ChoiceField | MultiChoiceField)
            for o in f.options
            for c in o.codes
        ]
        if template_id != "mg-breast":  # BI-RADS has no code we could verify
            assert coded, "a family template codes its main findings"
        # Defaults, then the "normal" button: a valid report once the reader answers what only
        # the images can tell (breast composition, the side of a knee).
        entries, texts = default_values(t)
        normal_entries, normal_texts = normal_values(t)
        entries, texts = {**entries, **normal_entries}, {**texts, **normal_texts}
        missing = [str(p) for p in validate_entries(t, entries, texts)]
        assert missing == {
            "mg-breast": ["composition: required"],
            "mr-knee": ["side: required"],
        }.get(template_id, [])
        entries.update({"composition": "b"} if template_id == "mg-breast" else {})
        entries.update({"side": "left"} if template_id == "mr-knee" else {})
        shown = {s.key for s in to_sections(t, entries, texts)}
        assert {"technique", "findings", "impression"} <= shown

    def test_the_section_codes_are_loinc_codes(self) -> None:
        assert {k: c.value for k, c in SECTION_CODES.items()} == {
            "clinical_information": "55752-0",
            "technique": "55111-9",
            "comparison": "18834-2",
            "findings": "59776-5",
            "impression": "19005-8",
            "recommendations": "18783-1",
        }
        assert {c.scheme for c in SECTION_CODES.values()} == {"LN"}

    def test_the_golden_cases_cover_every_family(self) -> None:
        cases, problems = load_pick_cases(TEMPLATES_DIR / "cases")
        assert problems == []
        assert set(FAMILIES) <= {c.expect for _, c in cases}


class TestCodes:
    @pytest.mark.parametrize(
        ("scheme", "value"),
        [
            ("LN", "59776-5"),
            ("LN", "19005-8"),
            ("LN", "55752-0"),
            ("LN", "18783-1"),
            ("SCT", "60046008"),
            ("SCT", "432504007"),
            ("SCT", "8186001"),
            ("RADLEX", "RID13166"),
        ],
    )
    def test_real_codes_pass(self, scheme: str, value: str) -> None:
        assert code_problem(scheme, value) is None

    @pytest.mark.parametrize(
        ("scheme", "value", "why"),
        [
            ("LN", "59776-4", "check digit"),
            ("LN", "59776", "a LOINC code is"),
            ("SCT", "60046009", "check digit"),
            ("SCT", "60046", "6 to 18 digits"),
            ("SCT", "1234567021", "partition 02"),
            ("RADLEX", "RIC5825", "RID followed by digits"),
            ("CPT4", "70450", "unknown coding scheme"),
        ],
    )
    def test_mistyped_codes_fail(self, scheme: str, value: str, why: str) -> None:
        problem = code_problem(scheme, value)
        assert problem is not None and why in problem


# ---------------------------------------------------------------------------------------------
# Problems, named by file, path and line


class TestCheck:
    def test_unknown_field_type(self, copy: Path) -> None:
        line = edit(
            copy / "ct-head.yaml",
            "      - id: onset\n        type: text",
            "      - id: onset\n        type: slider",
        )
        assert check(copy) == [
            f"ct-head.yaml: sections[0].fields[1] (line {line}): unknown field type 'slider'; "
            "one of 'text', 'number', 'measurement', 'choice', 'multichoice', 'date'"
        ]

    def test_duplicate_field_ids(self, copy: Path) -> None:
        line = edit(copy / "ct-chest.yaml", "      - id: largest_node", "      - id: nodule_size")
        assert check(copy) == [
            f"ct-chest.yaml: sections[3].fields[11].id (line {line}): 'nodule_size' is also "
            "sections[3].fields[3]: field ids are the keys of the entries, unique in the template"
        ]

    def test_choice_without_options(self, copy: Path) -> None:
        options = (
            "        options:\n"
            "          - {value: anterior_horn, label: {zh: 前角, en: Anterior horn}}\n"
            "          - {value: body, label: {zh: 体部, en: Body}}\n"
            "          - {value: posterior_horn, label: {zh: 后角, en: Posterior horn}}\n"
        )
        edit(copy / "mr-knee.yaml", options, "        options: []\n")
        line = line_of(copy / "mr-knee.yaml", "      - id: tear_location")
        assert check(copy) == [
            f"mr-knee.yaml: sections[3].fields[2] (line {line}): a multichoice field needs "
            "options (a list of value and label)"
        ]

    def test_bad_number_range(self, copy: Path) -> None:
        path = copy / "ct-head.yaml"
        edit(
            path,
            "        unit: mm\n        min: 0.5\n        max: 10",
            "        unit: mm\n        min: 20\n        max: 10",
        )
        line = line_of(path, "      - id: slice_thickness")
        assert check(copy) == [
            f"ct-head.yaml: sections[1].fields[1] (line {line}): min (20) must be below max (10)"
        ]

    def test_default_outside_the_range(self, copy: Path) -> None:
        path = copy / "ct-chest.yaml"
        edit(path, "        default: 1.25", "        default: 12.5")
        line = line_of(path, "      - id: slice_thickness")
        assert check(copy) == [
            f"ct-chest.yaml: sections[1].fields[1] (line {line}): default: 12.5 is above the "
            "maximum 10"
        ]

    def test_missing_chinese_label(self, copy: Path) -> None:
        line = edit(
            copy / "mr-brain.yaml",
            "label: {zh: 场强, en: Field strength}",
            "label: {en: Field strength}",
        )
        assert check(copy) == [
            f"mr-brain.yaml: sections[1].fields[0].label.zh (line {line}): missing the Chinese "
            "text (zh); the template's languages are zh-CN, en"
        ]

    def test_an_english_only_template_may_say_so(self, copy: Path) -> None:
        path = copy / "mr-brain.yaml"
        edit(path, "label: {zh: 场强, en: Field strength}", "label: {en: Field strength}")
        edit(path, "status: active\n", "status: active\nlanguages: [en]\n")
        assert check(copy) == []

    def test_unknown_unit_and_mistyped_code(self, copy: Path) -> None:
        unit = edit(
            copy / "us-abdomen.yaml",
            "unit: mm\n        min: 50",
            "unit: millimetres\n        min: 50",
        )
        code = edit(copy / "xr-chest.yaml", '"60046008"', '"60046009"')
        problems = check(copy)
        assert len(problems) == 2
        assert problems[0].startswith(
            f"us-abdomen.yaml: sections[3].fields[1].unit (line {unit}): 'millimetres' is not a "
            "UCUM unit RadRelay knows; one of mm, cm,"
        )
        assert problems[1] == (
            f"xr-chest.yaml: sections[3].fields[3].codes[1] (line {code}): 60046009 fails the "
            "SNOMED CT check digit: mistyped?"
        )

    def test_misspelt_key_and_option_not_offered(self, copy: Path) -> None:
        typo = edit(
            copy / "mg-breast.yaml",
            "        required: true\n        default: screening",
            "        requried: true\n        default: screening",
        )
        edit(
            copy / "ct-abdomen-pelvis.yaml",
            "        default: [unenhanced]",
            "        default: [venous]",
        )
        field = line_of(copy / "ct-abdomen-pelvis.yaml", "      - id: phases")
        assert check(copy) == [
            f"ct-abdomen-pelvis.yaml: sections[1].fields[0] (line {field}): default: 'venous' is "
            "not one of the options (unenhanced, arterial, portal_venous, delayed)",
            f"mg-breast.yaml: sections[0].fields[0].requried (line {typo}): unknown field (check "
            "the spelling; see reports_templates/README.md)",
        ]

    def test_a_report_needs_findings_and_impression(self, copy: Path) -> None:
        path = copy / "generic.yaml"
        edit(path, "  - key: impression", "  - key: conclusion")
        line = line_of(path, "  - key: clinical_information")
        assert check(copy) == [
            f"generic.yaml: sections (line {line}): every report has findings and an impression: "
            "add a section with key: impression"
        ]

    def test_yaml_syntax_error(self, copy: Path) -> None:
        edit(copy / "ct-head.yaml", "version: 1", "version: [1")
        problems = check(copy)
        assert len(problems) == 1 and problems[0].startswith("ct-head.yaml: line ")
        assert "not valid YAML" in problems[0]

    def test_duplicate_ids_and_fallbacks(self, copy: Path) -> None:
        shutil.copy(copy / "ct-head.yaml", copy / "ct-head-copy.yaml")
        shutil.copy(copy / "ct-generic.yaml", copy / "zz-ct-fallback.yaml")
        edit(copy / "zz-ct-fallback.yaml", "id: ct-generic", "id: ct-fallback-2")
        assert check(copy) == [
            "ct-head.yaml: id: 'ct-head' is also the id of ct-head-copy.yaml",
            "zz-ct-fallback.yaml: applies_to.modalities: CT already falls back to ct-generic.yaml",
        ]

    def test_a_generic_template_is_required(self, copy: Path) -> None:
        (copy / "generic.yaml").unlink()
        edit(copy / "cases" / "picks.yaml", "expect: generic", "expect: ct-generic")
        assert check(copy) == [
            "templates/: applies_to: no active generic template (fallback: true and no "
            "modalities): studies no template matches would have none"
        ]
        with pytest.raises(TemplatesError, match="no active generic template"):
            load_templates(copy)

    def test_a_specific_template_says_which_studies(self, copy: Path) -> None:
        path = copy / "mr-knee.yaml"
        # A mapping's line is where its content starts, the line after its key.
        line = 1 + line_of(path, "applies_to:")
        edit(
            path, "  body_parts: [KNEE]\n  keywords: [膝, 膝关节, knee]\n  subspecialty: msk\n", ""
        )
        assert check(copy) == [
            f"mr-knee.yaml: applies_to (line {line}): say which studies: body_parts, keywords or "
            "subspecialty (or fallback: true)"
        ]

    def test_a_golden_case_that_no_longer_holds(self, copy: Path) -> None:
        edit(copy / "mr-knee.yaml", "status: active", "status: draft")
        problems = check(copy)
        assert problems == [
            "cases/picks.yaml: cases[14] (knee MRI): expected mr-knee, got mr-generic (no MR "
            "template matched: the MR fallback)",
            "cases/picks.yaml: cases[15] (knee MRI by body part): expected mr-knee, got "
            "mr-generic (no MR template matched: the MR fallback)",
        ]

    def test_missing_directory(self, tmp_path: Path) -> None:
        assert check(tmp_path / "nope") == [f"{tmp_path / 'nope'}: (directory): not found"]

    def test_built_in_python_a_template_raises_its_problems(self, templates: TemplateSet) -> None:
        data = templates.get("ct-head").model_dump()
        data["sections"][0]["fields"][0]["label"] = {"en": "History"}
        with pytest.raises(ValueError, match=r"sections\[0\]\.fields\[0\]\.label\.zh: missing"):
            Template.model_validate(data)


# ---------------------------------------------------------------------------------------------
# Choosing a template


class TestPick:
    @pytest.mark.parametrize(
        ("modality", "body_part", "description", "expected"),
        [
            ("CT", "HEAD", "头颅CT平扫", "ct-head"),
            ("CT", "CHEST", "颅脑CT平扫+三维重建", "ct-head"),  # a stale body part loses
            ("CT", "", "胸部低剂量CT", "ct-chest"),
            ("CT", "", "CT CHEST WITHOUT CONTRAST", "ct-chest"),
            ("CT", "ABDOMEN", "上腹部CT增强", "ct-abdomen-pelvis"),
            ("CT", "", "胸椎CT平扫", "ct-generic"),  # the spine is not the chest
            ("ct", "head", "", "ct-head"),
            ("DX", "CHEST", "", "xr-chest"),
            ("CR", "", "胸部正侧位", "xr-chest"),
            ("DX", "", "腰椎正侧位", "xr-generic"),
            ("MR", "BRAIN", "", "mr-brain"),
            ("MR", "", "左膝关节MRI平扫", "mr-knee"),
            ("MR", "", "MRI KNEE RT", "mr-knee"),
            ("MR", "", "腰椎MRI", "mr-generic"),
            ("US", "", "肝胆胰脾双肾彩超", "us-abdomen"),
            ("US", "", "甲状腺彩超", "us-generic"),
            ("MG", "BREAST", "双侧乳腺钼靶", "mg-breast"),
            ("XA", "", "冠脉造影", "generic"),
            ("", "", "", "generic"),
        ],
    )
    def test_pick(
        self,
        templates: TemplateSet,
        modality: str,
        body_part: str,
        description: str,
        expected: str,
    ) -> None:
        assert templates.pick(modality, body_part, description).id == expected

    def test_the_choice_says_why(self, templates: TemplateSet) -> None:
        choice = templates.choose("CT", "HEAD", "头颅CT平扫")
        assert choice.reason == "CT template: '头颅' in the study description, body part HEAD"
        assert templates.choose("CT", "", "", "neuro").reason == ("CT template: subspecialty neuro")
        assert templates.choose("US", "THYROID", "甲状腺").reason == (
            "no US template matched: the US fallback"
        )
        assert templates.choose("NM").reason == "no template for NM: the generic one"

    def test_the_longer_keyword_wins_a_tie(self) -> None:
        base = load_templates(TEMPLATES_DIR).get("ct-chest").model_dump()
        narrow = {
            **base,
            "id": "ct-lung-screening",
            "applies_to": {"modalities": ["CT"], "keywords": ["低剂量"]},
        }
        both = TemplateSet([Template.model_validate(base), Template.model_validate(narrow)])
        assert both.pick("CT", "", "胸部低剂量CT").id == "ct-lung-screening"
        assert both.pick("CT", "", "胸部CT").id == "ct-chest"

    def test_drafts_are_not_offered(self, copy: Path) -> None:
        edit(copy / "ct-head.yaml", "status: active", "status: draft")
        templates = load_templates(copy)
        assert templates.get("ct-head").status == "draft"
        assert templates.pick("CT", "HEAD", "头颅CT").id == "ct-generic"
        assert "ct-head" not in {t.id for t in templates.offered("CT")}

    def test_a_reader_may_switch_to_the_modality_templates(self, templates: TemplateSet) -> None:
        offered = [t.id for t in templates.offered("ct")]
        assert offered == ["ct-abdomen-pelvis", "ct-chest", "ct-head", "ct-generic", "generic"]


# ---------------------------------------------------------------------------------------------
# Entries


class TestEntries:
    def test_valid_entries(self, templates: TemplateSet) -> None:
        t = templates.get("ct-chest")
        entries = {
            "contrast": "none",
            "slice_thickness": 1.25,
            "nodules": "solitary",
            "nodule_size": [8, 6],
            "parenchyma": ["emphysema", "fibrosis"],
            "prior_date": "2024-09-01",
            "lung_rads": "3",
        }
        assert validate_entries(t, entries) == []

    def test_every_kind_of_mistake(self, templates: TemplateSet) -> None:
        t = templates.get("ct-chest")
        entries = {
            "contrast": "iodine",
            "slice_thickness": 12,
            "ctdi_vol": "a lot",
            "nodule_size": [8, 6, 4],
            "largest_node": True,
            "parenchyma": ["emphysema", "emphysema"],
            "pleural_effusion": ["small"],
            "prior_date": "2024-13-01",
            "indication": 42,
            "tumour": "x",
        }
        problems = [str(p) for p in validate_entries(t, entries)]
        assert problems == [
            "tumour: no such field in the template",
            "indication: expected text",
            "contrast: 'iodine' is not one of the options (none, enhanced)",
            "slice_thickness: 12 is above the maximum 10",
            "ctdi_vol: expected a number",
            "prior_date: expected a date (YYYY-MM-DD)",
            "nodule_size: at most 2 dimension(s), got 3",
            "parenchyma: an option is chosen twice",
            "pleural_effusion: ['small'] is not one of the options (none, small, moderate, large)",
            "largest_node: expected a number or a list of numbers",
        ]

    def test_required_fields_and_sections(self, templates: TemplateSet) -> None:
        t = templates.get("mg-breast")
        problems = [str(p) for p in validate_entries(t, {"indication": ""}, texts={})]
        assert problems == [
            "indication: required",
            "views: required",
            "composition: required",
            "birads: required",
            "findings: required section: write it or fill a field",
            "impression: required section: write it or fill a field",
        ]
        # The impression section is filled by its required BI-RADS field.
        entries = {"indication": "screening", "views": ["rcc"], "composition": "b", "birads": "1"}
        assert validate_entries(t, entries, {"findings": "双乳未见异常。"}) == []

    def test_numbers_may_come_as_text(self, templates: TemplateSet) -> None:
        t = templates.get("ct-head")
        required = {"contrast": "none", "hemorrhage": "present"}
        entries = {**required, "hematoma_volume": "12.5", "midline_shift": "4"}
        assert validate_entries(t, entries) == []
        assert [str(p) for p in validate_entries(t, {**required, "hematoma_volume": "-1"})] == [
            "hematoma_volume: -1 is below the minimum 0"
        ]


class TestToSections:
    def test_entries_become_the_renderers_sections(self, templates: TemplateSet) -> None:
        t = templates.get("ct-chest")
        entries = {
            "contrast": "none",
            "nodules": "solitary",
            "nodule_size": [8, 6.5],
            "parenchyma": ["emphysema", "fibrosis"],
            "dlp": 120,
        }
        texts = {"impression": "右肺上叶实性结节。", "findings": ""}
        sections = {s.key: s for s in to_sections(t, entries, texts, Language.zh)}
        assert list(sections) == ["technique", "findings", "impression"]
        technique = sections["technique"]
        assert technique.code == DocCode("55111-9", "LN", "Current imaging procedure descriptions")
        assert technique.text == "自胸廓入口至肺底横断面连续扫描，肺窗及纵隔窗观察。"
        contrast, dlp = technique.entries
        assert (contrast.label, contrast.display) == (Text("Contrast", "对比剂"), "平扫")
        assert (dlp.display, dlp.number, dlp.unit) == ("120 mGy·cm", 120.0, "mGy.cm")
        findings = sections["findings"]
        assert findings.text == ""
        nodules, size, emphysema, fibrosis = findings.entries
        assert nodules.label == Text("Lung nodules: Nodules", "肺结节：结节")
        assert nodules.display == "单发" and nodules.code is None
        assert (size.display, size.number, size.unit) == ("8 × 6.5 mm", 8.0, "mm")
        assert emphysema.display == "肺气肿"
        assert emphysema.code == DocCode("RID4799", "RADLEX", "emphysema")
        assert fibrosis.code is None
        assert sections["impression"].text == "右肺上叶实性结节。"
        assert sections["impression"].code == DocCode("19005-8", "LN", "Radiology Impression")

    def test_languages(self, templates: TemplateSet) -> None:
        t = templates.get("xr-chest")
        entries, texts = normal_values(t, Language.en)
        entries["views"] = "pa"
        sections = {s.key: s for s in to_sections(t, entries, texts, Language.en)}
        assert sections["impression"].text == "No acute cardiopulmonary abnormality."
        heart = next(e for e in sections["findings"].entries if e.label.en == "Cardiac silhouette")
        assert heart.display == "Normal size and shape"
        assert heart.code == DocCode("RID13173", "RADLEX", "normal")
        entries, texts = normal_values(t)  # bilingual: zh first
        entries["views"] = "pa"
        sections = {s.key: s for s in to_sections(t, entries, texts)}
        assert sections["impression"].text == (
            "心、肺、膈未见明确异常。\nNo acute cardiopulmonary abnormality."
        )
        lungs = next(e for e in sections["findings"].entries if e.label.en == "Lungs")
        assert lungs.display == "双肺纹理清晰，双肺野内未见明确实质性病变。 The lungs are clear."

    def test_defaults_start_the_editor(self, templates: TemplateSet) -> None:
        entries, texts = default_values(templates.get("mr-brain"), Language.zh)
        assert entries == {"sequences": ["t1", "t2", "flair", "dwi"], "contrast": "none"}
        assert texts == {}

    def test_invalid_entries_are_refused(self, templates: TemplateSet) -> None:
        with pytest.raises(ValueError, match="birads: '7' is not one of the options"):
            to_sections(templates.get("mg-breast"), {"birads": "7"})


# ---------------------------------------------------------------------------------------------
# MRRT


class TestMrrtImport:
    def test_the_hand_written_template(self) -> None:
        imported = import_mrrt(MRRT_FILE.read_bytes())
        t = imported.template
        assert (t.id, t.version, t.status, t.languages) == ("mrrt-ct-chest", 1, "draft", ["en"])
        assert t.title.en == "CT Chest"
        assert t.source is not None
        assert t.source.identifier == "urn:oid:1.2.826.0.1.3680043.10.1234.1.1"
        assert t.source.publisher == "RadRelay test suite"
        assert t.applies_to.modalities == ["CT"] and t.applies_to.keywords == ["thorax"]
        assert [c.value for c in t.codes] == ["RID10321", "RID1243"]
        assert [(s.key, s.title.en, s.required) for s in t.sections] == [
            ("clinical_information", "Clinical information", False),
            ("technique", "Technique", False),
            ("comparison", "Comparison", False),
            ("findings", "Findings", True),
            ("impression", "Impression", True),
            ("recommendations", "Recommendations", False),
        ]
        technique = t.sections[1]
        assert technique.text and technique.text.en.startswith("Axial CT images of the chest")
        assert technique.code == SECTION_CODES["technique"]  # RadLex section code: ours kept
        assert t.sections[3].code is not None and t.sections[3].code.meaning == "Findings"
        kinds = {f.id: (f.type, f.group.en if f.group else None) for _, f in t.fields()}
        assert kinds == {
            "history": ("text", None),
            "contrast": ("choice", None),
            "ctdivol": ("number", None),
            "scan_time": ("text", None),
            "prior_exam": ("date", None),
            "nodules": ("choice", "Lungs"),
            "nodule_size": ("measurement", "Lungs"),
            "other_lung_findings": ("multichoice", "Lungs"),
            "pleural_effusion": ("choice", "Pleura"),
            "pneumothorax": ("text", "Pleura"),
            "lymph_nodes": ("text", "Mediastinum"),
            "impression": ("text", None),
            "critical_result": ("multichoice", None),
            "follow_up": ("multichoice", None),
        }
        contrast = t.field("contrast")
        assert isinstance(contrast, ChoiceField) and contrast.required
        assert [o.value for o in contrast.options] == ["without_contrast", "with_contrast"]
        assert contrast.default == "without_contrast"
        assert [c.value for c in contrast.codes] == ["RID11582"]
        ctdi = t.field("ctdivol")
        assert isinstance(ctdi, NumberField)
        assert (ctdi.unit, ctdi.min, ctdi.max, ctdi.step) == ("mGy", 0, 100, 0.1)
        size = t.field("nodule_size")
        assert isinstance(size, MeasurementField)
        assert (size.unit, size.min, size.max) == ("mm", 1, 100)
        assert [c.value for c in size.codes] == ["RID50149", "RID10409"]
        effusion = t.field("pleural_effusion")
        assert isinstance(effusion, ChoiceField)
        assert [(c.value, c.scheme) for c in effusion.codes] == [
            ("RID34539", "RADLEX"),
            ("60046008", "SCT"),
        ]
        assert [(o.value, o.label.en, [c.value for c in o.codes]) for o in effusion.options] == [
            ("none", "None", ["RID28454"]),
            ("mild", "Small", ["RID5671"]),
            ("moderate", "Moderate", ["RID5672"]),
            ("severe", "Large", ["RID5673"]),
        ]
        other = t.field("other_lung_findings")
        assert isinstance(other, MultiChoiceField)
        assert [(o.value, [c.value for c in o.codes]) for o in other.options] == [
            ("consolidation", ["95436008"]),
            ("emphysema", ["RID4799"]),
            ("bronchiectasis", []),
        ]
        follow_up = t.field("follow_up")
        assert isinstance(follow_up, MultiChoiceField) and follow_up.default == ["none"]
        assert imported.notes == [
            "field 'F_time': a TIME field, imported as text",
            "imported as a draft (source status ACTIVE): review, add Chinese labels if wanted, "
            "check applies_to, then set status: active",
        ]

    def test_the_yaml_written_is_a_valid_template(self, copy: Path) -> None:
        imported = import_mrrt(MRRT_FILE.read_bytes(), template_id="ct-chest-rsna")
        text = to_yaml(imported.template)
        assert text.startswith("# Imported from the MRRT template urn:oid:")
        assert "title: {en: CT Chest}" in text
        assert "- {value: RID10321, scheme: RADLEX, meaning: computed tomography}" in text
        (copy / "ct-chest-rsna.yaml").write_text(text, encoding="utf-8")
        assert check(copy) == []
        assert load_templates(copy).get("ct-chest-rsna") == imported.template

    def test_radreport_quirks(self) -> None:
        """RadReport wraps the XML in a comment, leaves <code> open, names its schemes, and
        carries codes our check catches."""
        doc = """<!DOCTYPE html><html><head><meta charset="UTF-8"/>
<meta content="US Kidneys" name="dcterms.title"/>
<meta content="zh-CN" name="dcterms.language"/>
<script type="text/xml">
<!--
<template_attributes>
<status>ACTIVE</status>
<coding_schemes>
 <coding_scheme name="RadLex" designator="2.16.840.1.113883.6.256" />
 <coding_scheme name="SNOMEDCT" designator="2.16.840.1.113883.6.96" />
</coding_schemes>
<term>
 <code meaning="ultrasound" value="RID10326" scheme="RadLex">
</term>
<procedure-code-list><term><code meaning="US" value="76770" scheme="CPT4"></term>
</procedure-code-list>
<coded_content>
<entry ORIGTXT="K2">
 <term>
  <code meaning="Hydronephrosis" value="43064006" scheme="SNOMEDCT">
 </term>
</entry>
<entry ORIGTXT="K2a">
 <term>
  <code meaning="none" value="RID28454" scheme="RadLex">
 </term>
</entry>
<entry ORIGTXT="K3">
 <term>
  <code meaning="right" value="RIC5825" scheme="RadLex">
 </term>
</entry>
</coded_content>
</template_attributes>
-->
</script></head>
<body>
<section data-section-name="超声所见">
<header class="level1">超声所见</header>
<section data-section-name="右肾"><header class="level2">右肾</header>
<p><label for="K2">肾积水：</label>
<select id="K2" name="Hydronephrosis"><option id="K2a" value="None">无</option>
<option id="K2b" value="Mild">轻度</option></select></p>
<p><label for="K3">长径</label>
<input type="number" id="K3" name="Length" min="0" max="" data-field-units="cm"/></p>
<p><input type="number" id="K4" name="Volume" data-field-units="furlongs"/></p>
</section></section>
</body></html>"""
        imported = import_mrrt(doc)
        t = imported.template
        assert t.languages == ["zh-CN"] and t.title.zh == "US Kidneys"
        assert t.applies_to.modalities == ["US"]
        assert [c.value for c in t.codes] == ["RID10326"]  # not the CPT4 procedure code
        assert [s.key for s in t.sections] == ["findings", "impression"]
        hydro = t.field("hydronephrosis")
        assert isinstance(hydro, ChoiceField)
        assert hydro.group is not None and hydro.group.zh == "右肾"
        assert [c.value for c in hydro.codes] == ["43064006"]
        assert [(o.label.zh, len(o.codes)) for o in hydro.options] == [("无", 1), ("轻度", 0)]
        length = t.field("length")
        assert isinstance(length, MeasurementField) and length.label.zh == "长径"
        assert (length.unit, length.min, length.max) == ("cm", 0, None)
        volume = t.field("volume")
        assert isinstance(volume, NumberField) and volume.unit is None
        assert imported.notes[:3] == [
            "coded entry K3: code RIC5825 left out: a RadLex code is RID followed by digits, "
            "e.g. RID13166 (got 'RIC5825')",
            "field 'K4': unit 'furlongs' is not UCUM we know: left out",
            "the template has no impression section: an empty one was added",
        ]

    def test_not_a_template(self) -> None:
        with pytest.raises(MrrtError, match="no <section>"):
            import_mrrt("<html><head><title>x</title></head><body><p>hi</p></body></html>")


# ---------------------------------------------------------------------------------------------
# The commands


def _run(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RADRELAY, *args],
        env=server_env(tmp_path / "data", None, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


class TestCommands:
    def test_check_passes_on_the_shipped_templates(self, tmp_path: Path) -> None:
        result = _run("templates", "check", tmp_path=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{TEMPLATES_DIR}: templates valid, golden cases pass"

    def test_check_names_what_to_fix(self, copy: Path, tmp_path: Path) -> None:
        line = edit(
            copy / "ct-head.yaml",
            "        unit: mm\n        min: 0.5",
            "        unit: mm\n        min: 0.5\n        colour: red",
        )
        result = _run("templates", "check", str(copy), tmp_path=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"ct-head.yaml: sections[1].fields[1].colour (line {line + 2}): unknown field "
            "(check the spelling; see reports_templates/README.md)"
        )

    def test_import_mrrt(self, copy: Path, tmp_path: Path) -> None:
        result = _run(
            "templates", "import-mrrt", str(MRRT_FILE), "--out", str(copy), tmp_path=tmp_path
        )
        assert result.returncode == 0, result.stderr
        target = copy / "mrrt-ct-chest.yaml"
        assert result.stdout.strip() == (
            f"wrote {target}: 6 sections, 14 fields (draft; run `radrelay templates check "
            f"{copy}` after editing it)"
        )
        assert "note: field 'F_time': a TIME field, imported as text" in result.stderr
        assert _run("templates", "check", str(copy), tmp_path=tmp_path).returncode == 0
        again = _run(
            "templates", "import-mrrt", str(MRRT_FILE), "--out", str(copy), tmp_path=tmp_path
        )
        assert again.returncode == 1 and "exists; pass --force" in again.stderr
        renamed = _run(
            "templates",
            "import-mrrt",
            str(MRRT_FILE),
            "--out",
            str(copy),
            "--id",
            "ct-chest-2",
            tmp_path=tmp_path,
        )
        assert renamed.returncode == 0 and (copy / "ct-chest-2.yaml").exists()
        bad = tmp_path / "page.html"
        bad.write_text("<html><body><p>not a template</p></body></html>")
        refused = _run("templates", "import-mrrt", str(bad), "--out", str(copy), tmp_path=tmp_path)
        assert refused.returncode == 1 and "not an MRRT template" in refused.stderr

    def test_serve_and_worker_refuse_invalid_templates(self, copy: Path, tmp_path: Path) -> None:
        line = edit(
            copy / "ct-head.yaml", "      - id: onset", "      - id: onset\n        type: slider"
        )
        edit(copy / "ct-head.yaml", "type: slider\n        type: text", "type: slider")
        assert _run("migrate", tmp_path=tmp_path).returncode == 0
        for command in (["serve", "--port", "0"], ["worker"]):
            result = _run(*command, tmp_path=tmp_path, RADRELAY_TEMPLATES_DIR=str(copy))
            assert result.returncode == 1, (command, result.stderr)
            assert f"error: the templates in {copy} are not valid:" in result.stderr
            assert (
                f"ct-head.yaml: sections[0].fields[1] (line {line}): unknown field type 'slider'"
                in result.stderr
            )
