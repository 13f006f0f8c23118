// When a signed report may be corrected (POST /api/reports/{id}/amend) and what the editor tells
// the reader about it. The backend's rules (reporting/service.py amend and _editable): a final or
// amended report, a reader qualified for final reports, who signed one of its versions.

import type { ReportRead, VersionRead } from "./types";

/** Whether `userId` may write an amendment of `report`; `senior` is the final qualification. */
export function canAmend(report: ReportRead, userId: number, senior: boolean): boolean {
  if (report.status !== "final" && report.status !== "amended") return false;
  if (report.awaiting_cosign || report.draft === null || !senior) return false;
  return report.versions.some((v) => v.signatures.some((s) => s.user_id === userId));
}

/** The version an amendment signed now would supersede: the latest one. */
export function supersededVersion(report: ReportRead): VersionRead | null {
  return report.versions.at(-1) ?? null;
}

/** The draft was saved after the latest version was signed: an earlier correction was started
 * and kept on the server (or cancelled after edits). Only autosaves and signatures move
 * `updated_at`, and a signature stamps its version with the same instant. */
export function editedSinceSigned(report: ReportRead): boolean {
  const latest = report.versions.at(-1);
  if (!latest) return false;
  return Date.parse(report.updated_at) > Date.parse(latest.created_at);
}

/** The latest version carries addenda, which the draft does not hold: the amendment carries them
 * over (the server adds them to the amended version), and the banner says so. */
export function hasAddenda(report: ReportRead): boolean {
  const latest = report.versions.at(-1);
  return latest?.signatures.some((s) => s.meaning === "addendum") ?? false;
}
