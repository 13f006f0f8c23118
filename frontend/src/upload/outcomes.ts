// What the server said about each file, added up over a group's requests and put plainly.

import type { FileOutcome, Outcome, UploadResponse } from "../api/types";

/** The server's outcomes, and one of the page's own: "present", a file of a study that the
 * archive already held when the study was sent (or sent again), so it was not sent (resume.ts). */
export type ShownOutcome = Outcome | "present";

export interface ShownFile extends Omit<FileOutcome, "outcome"> {
  outcome: ShownOutcome;
}

export interface OutcomeTotals {
  stored: number;
  present: number;
  duplicate: number;
  conflict: number;
  failed: number;
  skipped: number;
}

export const EMPTY_TOTALS: OutcomeTotals = {
  stored: 0,
  present: 0,
  duplicate: 0,
  conflict: 0,
  failed: 0,
  skipped: 0,
};

export interface GroupOutcome {
  totals: OutcomeTotals;
  caseIds: number[];
  /** Per file; a file sent again (after a retry) keeps its latest outcome. */
  files: ShownFile[];
}

export const EMPTY_OUTCOME: GroupOutcome = { totals: EMPTY_TOTALS, caseIds: [], files: [] };

function withFiles(soFar: GroupOutcome, added: readonly ShownFile[], caseIds: readonly number[]): GroupOutcome {
  const byName = new Map(soFar.files.map((f) => [f.name, f]));
  for (const f of added) byName.set(f.name, f);
  const files = [...byName.values()];
  const totals: OutcomeTotals = { ...EMPTY_TOTALS };
  for (const f of files) {
    if (f.outcome in totals) totals[f.outcome] += 1;
  }
  const ids = [...new Set([...soFar.caseIds, ...caseIds])].sort((a, b) => a - b);
  return { totals, caseIds: ids, files };
}

/** Adds one request's answer to what a group has so far. */
export function addResponse(soFar: GroupOutcome, response: UploadResponse): GroupOutcome {
  return withFiles(soFar, response.files, response.case_ids);
}

/** Adds the files the archive already held (not sent). A file this page already has an outcome
 * for (stored by an earlier request of the same send) keeps it: it says more. */
export function addPresent(
  soFar: GroupOutcome,
  present: readonly { path: string; sopInstanceUid: string; studyInstanceUid: string }[],
): GroupOutcome {
  const known = new Set(soFar.files.map((f) => f.name));
  const added: ShownFile[] = present
    .filter((f) => !known.has(f.path))
    .map((f) => ({
      name: f.path,
      outcome: "present",
      message: "",
      status: 0,
      sop_class_uid: "",
      sop_instance_uid: f.sopInstanceUid,
      study_instance_uid: f.studyInstanceUid,
      series_instance_uid: "",
      case_id: null,
    }));
  return withFiles(soFar, added, []);
}

/** The order outcomes are listed in: problems first. */
const ORDER: Record<ShownOutcome, number> = {
  failed: 0,
  conflict: 1,
  skipped: 2,
  duplicate: 3,
  present: 4,
  stored: 5,
};

export function sortForDisplay<T extends ShownFile>(files: readonly T[]): T[] {
  return [...files].sort(
    (a, b) => ORDER[a.outcome] - ORDER[b.outcome] || a.name.localeCompare(b.name),
  );
}

/** Files that need a person's attention (anything but stored, duplicate or already present). */
export function problems<T extends ShownFile>(files: readonly T[]): T[] {
  return sortForDisplay(
    files.filter((f) => f.outcome !== "stored" && f.outcome !== "duplicate" && f.outcome !== "present"),
  );
}

export type Verdict = "ok" | "warning" | "error";

/** ok: every file stored or already there; warning: something stored, something not (or a
 * conflict); error: nothing stored. */
export function verdict(t: OutcomeTotals): Verdict {
  const good = t.stored + t.present + t.duplicate + t.conflict;
  if (good === 0) return "error";
  if (t.failed > 0 || t.conflict > 0) return "warning";
  return "ok";
}

export type Translate = (key: OutcomeKey, vars: { n: number }) => string;
export type OutcomeKey =
  | "outcome.count.stored"
  | "outcome.count.present"
  | "outcome.count.duplicate"
  | "outcome.count.conflict"
  | "outcome.count.failed"
  | "outcome.count.skipped";

/** "38 stored, 2 already there, 1 failed": the non-zero counts, in a fixed order. */
export function summarize(t: OutcomeTotals, translate: Translate, separator = ", "): string {
  const parts: string[] = [];
  for (const key of ["stored", "present", "duplicate", "conflict", "failed", "skipped"] as const) {
    if (t[key] > 0) parts.push(translate(`outcome.count.${key}`, { n: t[key] }));
  }
  return parts.join(separator);
}
