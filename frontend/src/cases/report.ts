// What the case page says about a case's signed report: which versions to offer (newest first),
// their file names, and who signed them.

import type { ReportSignature, ReportVersion } from "../api/types";

/** Newest first; a superseded version stays listed (a hospital may need what it was sent). */
export function versionsToShow(versions: readonly ReportVersion[]): ReportVersion[] {
  return [...versions].sort((a, b) => b.version - a.version);
}

/** The file name a download gets when the server's Content-Disposition cannot be read (a Blob
 * fetched by script has no name of its own). */
export function pdfFileName(caseId: number, version: number): string {
  return `report-case${caseId}-v${version}.pdf`;
}

/** "Li Ming (主治医师)", author first, then co-signers and addenda in signing order. */
export function signersText(signatures: readonly ReportSignature[]): string {
  const order = { author: 0, cosigner: 1, addendum: 2 } as const;
  return [...signatures]
    .sort((a, b) => order[a.meaning] - order[b.meaning] || a.signed_at.localeCompare(b.signed_at))
    .map((s) => (s.qualification ? `${s.printed_name} (${s.qualification})` : s.printed_name))
    .join(", ");
}
