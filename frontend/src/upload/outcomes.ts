// What the server said about each file, added up over a group's requests and put plainly.

import type { FileOutcome, Outcome, UploadResponse } from "../api/types";

export interface OutcomeTotals {
  stored: number;
  duplicate: number;
  conflict: number;
  failed: number;
  skipped: number;
}

export const EMPTY_TOTALS: OutcomeTotals = {
  stored: 0,
  duplicate: 0,
  conflict: 0,
  failed: 0,
  skipped: 0,
};

export interface GroupOutcome {
  totals: OutcomeTotals;
  caseIds: number[];
  /** Per file; a file sent again (after a retry) keeps its latest outcome. */
  files: FileOutcome[];
}

export const EMPTY_OUTCOME: GroupOutcome = { totals: EMPTY_TOTALS, caseIds: [], files: [] };

/** Adds one request's answer to what a group has so far. */
export function addResponse(soFar: GroupOutcome, response: UploadResponse): GroupOutcome {
  const byName = new Map(soFar.files.map((f) => [f.name, f]));
  for (const f of response.files) byName.set(f.name, f);
  const files = [...byName.values()];
  const totals: OutcomeTotals = { ...EMPTY_TOTALS };
  for (const f of files) {
    if (f.outcome in totals) totals[f.outcome] += 1;
  }
  const caseIds = [...new Set([...soFar.caseIds, ...response.case_ids])].sort((a, b) => a - b);
  return { totals, caseIds, files };
}

/** The order outcomes are listed in: problems first. */
const ORDER: Record<Outcome, number> = { failed: 0, conflict: 1, skipped: 2, duplicate: 3, stored: 4 };

export function sortForDisplay(files: readonly FileOutcome[]): FileOutcome[] {
  return [...files].sort(
    (a, b) => ORDER[a.outcome] - ORDER[b.outcome] || a.name.localeCompare(b.name),
  );
}

/** Files that need a person's attention (anything but stored or duplicate). */
export function problems(files: readonly FileOutcome[]): FileOutcome[] {
  return sortForDisplay(files.filter((f) => f.outcome !== "stored" && f.outcome !== "duplicate"));
}

export type Verdict = "ok" | "warning" | "error";

/** ok: every file stored or already there; warning: something stored, something not (or a
 * conflict); error: nothing stored. */
export function verdict(t: OutcomeTotals): Verdict {
  const good = t.stored + t.duplicate + t.conflict;
  if (good === 0) return "error";
  if (t.failed > 0 || t.conflict > 0) return "warning";
  return "ok";
}

export type Translate = (key: OutcomeKey, vars: { n: number }) => string;
export type OutcomeKey =
  | "outcome.count.stored"
  | "outcome.count.duplicate"
  | "outcome.count.conflict"
  | "outcome.count.failed"
  | "outcome.count.skipped";

/** "38 stored, 2 already there, 1 failed": the non-zero counts, in a fixed order. */
export function summarize(t: OutcomeTotals, translate: Translate, separator = ", "): string {
  const parts: string[] = [];
  for (const key of ["stored", "duplicate", "conflict", "failed", "skipped"] as const) {
    if (t[key] > 0) parts.push(translate(`outcome.count.${key}`, { n: t[key] }));
  }
  return parts.join(separator);
}
