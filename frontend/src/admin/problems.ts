// What the server said was wrong with a form, placed next to the field it concerns and put in
// plain words. A 422 carries {field, problem} pairs whose field is pydantic's loc path joined
// with dots ("ae_titles.0.ae_title"); the delivery endpoint's config check gives paths inside
// the config ("url"). Any other error is a message for the whole form.

import { ApiError } from "../api/client";
import type { MessageKey } from "../i18n/messages";

export interface Problem {
  field: string;
  problem: string;
}

/** A sentence to show: one of our texts (with values), or the server's own words. */
export type Words = { key: MessageKey; vars?: Record<string, string | number> } | { text: string };

/** One problem of a form: `field` is the form's field key, or null for the form as a whole. */
export interface FormProblem {
  field: string | null;
  words: Words;
}

function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.field === "string" && typeof v.problem === "string";
}

/** The per-field problems an error carries (a 422's detail), or none. */
export function serverProblems(error: unknown): Problem[] {
  if (!(error instanceof ApiError) || !Array.isArray(error.detail)) return [];
  return (error.detail as unknown[]).filter(isProblem);
}

const QUOTED = /'([^']*)'/gu;

/** Pydantic's messages in plain words; `patternHint` explains a pattern mismatch for this field
 * (a regular expression means nothing to a person). Messages we do not know are shown as the
 * server wrote them, less pydantic's "Value error, " prefix. */
export function plainWords(problem: string, patternHint?: MessageKey): Words {
  const text = problem.trim();
  if (text === "Field required") return { key: "admin.problem.required" };
  let m = /^String should have at least (\d+) characters?/u.exec(text);
  if (m?.[1]) return { key: "admin.problem.minLength", vars: { n: Number(m[1]) } };
  m = /^String should have at most (\d+) characters?/u.exec(text);
  if (m?.[1]) return { key: "admin.problem.maxLength", vars: { n: Number(m[1]) } };
  m = /^Input should be greater than or equal to (-?[\d.]+)/u.exec(text);
  if (m?.[1]) return { key: "admin.problem.atLeast", vars: { n: m[1] } };
  m = /^Input should be greater than (-?[\d.]+)/u.exec(text);
  if (m?.[1]) return { key: "admin.problem.above", vars: { n: m[1] } };
  m = /^Input should be less than or equal to (-?[\d.]+)/u.exec(text);
  if (m?.[1]) return { key: "admin.problem.atMost", vars: { n: m[1] } };
  if (text.startsWith("Input should be a valid integer")) return { key: "admin.problem.integer" };
  if (text.startsWith("Input should be a valid number")) return { key: "admin.problem.number" };
  if (text.startsWith("String should match pattern")) {
    return { key: patternHint ?? "admin.problem.pattern" };
  }
  if (text === "Input should have timezone info") return { key: "admin.problem.dateTime" };
  if (/^Input should be a valid datetime/u.test(text)) return { key: "admin.problem.dateTime" };
  m = /^(?:Dictionary|List) should have at least (\d+) items?/u.exec(text);
  if (m?.[1]) return { key: "admin.problem.minItems", vars: { n: Number(m[1]) } };
  if (/^Input should be '/u.test(text)) {
    const choices = [...text.matchAll(QUOTED)].map((q) => q[1] ?? "");
    return { key: "admin.problem.choice", vars: { choices: choices.join(", ") } };
  }
  const value = /^Value error, (.*)$/su.exec(text);
  const words = value?.[1] ?? text;
  return { text: words.charAt(0).toUpperCase() + words.slice(1) };
}

/** The form field a server path belongs to: the longest of `fields` that is the path or a
 * dotted prefix of it ("ae_titles.0.source_addresses.1" → "ae_titles.0.source_addresses"), or
 * null when none is. `prefix` is put before the path first (a config's "url" →
 * "config.url"). */
export function fieldOf(path: string, fields: readonly string[], prefix = ""): string | null {
  const full = prefix && path ? `${prefix}.${path}` : prefix || path;
  let best: string | null = null;
  for (const field of fields) {
    if (full === field || full.startsWith(`${field}.`)) {
      if (best === null || field.length > best.length) best = field;
    }
  }
  return best;
}

export interface PlaceOptions {
  /** The form's field keys. */
  fields: readonly string[];
  /** Maps a server path to a field key first (a dict key to a row, say); null: use `fields`. */
  rename?: (path: string) => string | null;
  /** Put before each path (the endpoint config's problems: "config"). */
  prefix?: string;
  /** A field's pattern hint, for plain words. */
  hints?: Readonly<Record<string, MessageKey>>;
}

/** The problems of a failed request, each on its field where one fits; an error without
 * per-field problems (a 400, 404 or 409) is one problem of the whole form, in the server's
 * words. */
export function placeProblems(error: unknown, options: PlaceOptions): FormProblem[] {
  const problems = serverProblems(error);
  if (problems.length === 0) {
    if (error instanceof ApiError && error.isNetwork) {
      return [{ field: null, words: { key: "error.network" } }];
    }
    const text = error instanceof Error ? error.message : String(error);
    return [{ field: null, words: { text } }];
  }
  return problems.map((p) => {
    const renamed = options.rename?.(p.field) ?? null;
    const field = renamed ?? fieldOf(p.field, options.fields, options.prefix);
    const hint = field !== null ? options.hints?.[baseField(field)] : undefined;
    return { field, words: plainWords(p.problem, hint) };
  });
}

/** "ae_titles.0.ae_title" → "ae_titles.ae_title": the field without row numbers, for hints. */
export function baseField(field: string): string {
  return field
    .split(".")
    .filter((part) => !/^\d+$/u.test(part))
    .join(".");
}

/** The problems of one field. */
export function problemsOf(problems: readonly FormProblem[], field: string): FormProblem[] {
  return problems.filter((p) => p.field === field);
}
