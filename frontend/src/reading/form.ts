// The report form as data: the values the inputs hold (text as typed) from a template and a
// draft's entries, back to entries for an autosave, each field's problems (required, not a
// number, out of range), the "normal" values of a section, the server's `missing` list in words,
// and measurements and key images from the viewer.

import type { KeyImage, Measurement } from "../viewer/types";
import type {
  KeyImageRef,
  Label,
  MeasurementField,
  Template,
  TemplateField,
  TemplateSection,
} from "./types";

/** What an input holds: text as typed, the chosen options, or one text per dimension. */
export type FieldValue = string | string[];
export type FormValues = Record<string, FieldValue>;

export type Lang = "zh-CN" | "en";

/** A label in the reader's language, else in the other. */
export function labelText(label: Label | undefined, lang: Lang): string {
  if (!label) return "";
  return lang === "zh-CN" ? label.zh || label.en || "" : label.en || label.zh || "";
}

export function dimensionsOf(field: MeasurementField): number {
  return Math.min(3, Math.max(1, field.dimensions ?? 1));
}

export function allFields(template: Template): TemplateField[] {
  return template.sections.flatMap((s) => s.fields);
}

function numberText(v: unknown): string {
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "";
  if (typeof v === "string") return v;
  return "";
}

/** The inputs' values for a draft's entries (a field without an entry is empty). */
export function valuesFromEntries(template: Template, entries: Record<string, unknown>): FormValues {
  const out: FormValues = {};
  for (const f of allFields(template)) {
    const v = entries[f.id];
    switch (f.type) {
      case "measurement": {
        const n = dimensionsOf(f);
        const given = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
        out[f.id] = Array.from({ length: n }, (_, i) => numberText(given[i]));
        break;
      }
      case "multichoice":
        out[f.id] = Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
        break;
      case "number":
        out[f.id] = numberText(v);
        break;
      default:
        out[f.id] = typeof v === "string" ? v : "";
    }
  }
  return out;
}

/** A typed number, or null when the text is not one. Both "," and "." are decimal marks. */
export function parseNumber(text: string): number | null {
  const t = text.trim().replace(",", ".");
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/u.test(t)) return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/** The entries of an autosave: empty inputs are left out; a number that does not parse is sent
 * as typed, so that the draft keeps it and the server lists it among what is missing. */
export function entriesFromValues(template: Template, values: FormValues): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of allFields(template)) {
    const v = values[f.id];
    if (v === undefined) continue;
    switch (f.type) {
      case "number": {
        const text = typeof v === "string" ? v.trim() : "";
        if (text) out[f.id] = parseNumber(text) ?? text;
        break;
      }
      case "measurement": {
        const dims = (Array.isArray(v) ? v : [v]).map((x) => x.trim()).filter((x) => x !== "");
        if (dims.length === 0) break;
        const numbers = dims.map((x) => parseNumber(x) ?? x);
        out[f.id] = numbers.length === 1 ? numbers[0] : numbers;
        break;
      }
      case "multichoice":
        if (Array.isArray(v) && v.length > 0) out[f.id] = [...v];
        break;
      default:
        if (typeof v === "string" && v.trim() !== "") out[f.id] = v;
    }
  }
  return out;
}

export type Problem =
  | { code: "required" }
  | { code: "number" }
  | { code: "min"; limit: number }
  | { code: "max"; limit: number };

function rangeProblem(f: { min?: number; max?: number }, n: number): Problem | null {
  if (f.min !== undefined && n < f.min) return { code: "min", limit: f.min };
  if (f.max !== undefined && n > f.max) return { code: "max", limit: f.max };
  return null;
}

/** What is wrong with one field's value now, or null: the same rules the server applies when
 * signing (required, a number, within min and max). */
export function fieldProblem(field: TemplateField, value: FieldValue | undefined): Problem | null {
  const texts = value === undefined ? [] : Array.isArray(value) ? value : [value];
  const filled = texts.filter((x) => x.trim() !== "");
  if (filled.length === 0) return field.required ? { code: "required" } : null;
  if (field.type !== "number" && field.type !== "measurement") return null;
  for (const text of filled) {
    const n = parseNumber(text);
    if (n === null) return { code: "number" };
    const why = rangeProblem(field, n);
    if (why) return why;
  }
  return null;
}

/** Every field's problem, by field id (fields without one are left out). */
export function formProblems(template: Template, values: FormValues): Record<string, Problem> {
  const out: Record<string, Problem> = {};
  for (const f of allFields(template)) {
    const p = fieldProblem(f, values[f.id]);
    if (p) out[f.id] = p;
  }
  return out;
}

/** A section's normal study: its fields' normal values and its narrative (when the template has
 * them). Fields without a normal value are not in `values`. */
export function sectionNormal(
  section: TemplateSection,
  lang: Lang,
): { values: FormValues; text: string | null } {
  const values: FormValues = {};
  for (const f of section.fields) {
    if (f.type === "text" && f.normal) values[f.id] = labelText(f.normal, lang);
    else if (f.type === "number" && f.normal !== undefined) values[f.id] = String(f.normal);
    else if (f.type === "choice" && f.normal !== undefined) values[f.id] = f.normal;
    else if (f.type === "multichoice" && f.normal && f.normal.length > 0) values[f.id] = [...f.normal];
  }
  return { values, text: section.normal ? labelText(section.normal, lang) : null };
}

export function hasNormal(section: TemplateSection): boolean {
  const { values, text } = sectionNormal(section, "en");
  return text !== null || Object.keys(values).length > 0;
}

/** The server's `missing` ("field_or_section: message") with the field's or section's label. */
export function missingItems(
  missing: readonly string[],
  template: Template | null,
  lang: Lang,
): { key: string; label: string; message: string }[] {
  return missing.map((line) => {
    const at = line.indexOf(": ");
    const key = at >= 0 ? line.slice(0, at) : line;
    const message = at >= 0 ? line.slice(at + 2) : "";
    let label = key;
    if (template) {
      const section = template.sections.find((s) => s.key === key);
      const field = allFields(template).find((f) => f.id === key);
      if (field) label = labelText(field.label, lang);
      else if (section) label = labelText(section.title, lang);
    }
    return { key, label, message };
  });
}

/** Factors from a viewer unit to a template unit (UCUM codes). */
const CONVERSIONS: Record<string, Record<string, number>> = {
  mm: { cm: 0.1 },
  cm: { mm: 10 },
  mm2: { cm2: 0.01 },
  cm2: { mm2: 100 },
};

/** A measurement's value in `unit`, rounded to 0.1; null when it cannot be converted. */
export function convert(value: number, from: string, to: string): number | null {
  const factor = from === to ? 1 : CONVERSIONS[from]?.[to];
  if (factor === undefined) return null;
  return Math.round(value * factor * 10) / 10;
}

export interface FocusedInput {
  fieldId: string;
  /** The dimension of a measurement (0-based). */
  index: number;
}

/** Where a measurement from the viewer goes: into the measurement field that has the focus (in
 * its unit), or as a line at the end of the findings' narrative. */
export function insertMeasurement(
  template: Template,
  values: FormValues,
  texts: Record<string, string>,
  focused: FocusedInput | null,
  m: Measurement,
  findingsKey = "findings",
): { values: FormValues; texts: Record<string, string>; into: "field" | "text" } {
  const field = focused ? allFields(template).find((f) => f.id === focused.fieldId) : undefined;
  if (focused && field?.type === "measurement") {
    const converted = convert(m.value, m.unit, field.unit);
    if (converted !== null) {
      const dims = valuesFromEntries(template, {})[field.id] as string[];
      const current = values[field.id];
      const next = Array.isArray(current) ? [...current] : dims;
      next[Math.min(focused.index, next.length - 1)] = String(converted);
      return { values: { ...values, [field.id]: next }, texts, into: "field" };
    }
  }
  const before = texts[findingsKey] ?? "";
  const text = before.trim() ? `${before.replace(/\s+$/u, "")}\n${m.text}` : m.text;
  return { values, texts: { ...texts, [findingsKey]: text }, into: "text" };
}

export function keyImageRef(image: KeyImage): KeyImageRef {
  return {
    study_instance_uid: image.studyUid,
    series_instance_uid: image.seriesUid,
    sop_instance_uid: image.sopInstanceUid,
    frame: image.frame ?? 1,
    caption: image.label.slice(0, 500),
  };
}

function sameImage(a: KeyImageRef, b: KeyImageRef): boolean {
  return a.sop_instance_uid === b.sop_instance_uid && a.frame === b.frame;
}

/** The report's key images after the viewer marked (or unmarked) one; at most 16, as the server
 * takes. */
export function toggleKeyImage(list: readonly KeyImageRef[], image: KeyImage, marked: boolean): KeyImageRef[] {
  const ref = keyImageRef(image);
  const rest = list.filter((k) => !sameImage(k, ref));
  return marked ? [...rest, ref].slice(0, 16) : rest;
}

/** The viewer's shape of the report's key images (to show them as marked). */
export function keyImagesForViewer(list: readonly KeyImageRef[]): KeyImage[] {
  return list.map((k) => ({
    studyUid: k.study_instance_uid,
    seriesUid: k.series_instance_uid,
    sopInstanceUid: k.sop_instance_uid,
    frame: k.frame,
    label: k.caption,
  }));
}
