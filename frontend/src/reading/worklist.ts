// What "Next case" does with the worklist: the reader's held cases come first (open the first that
// is not the one on screen), else the top offer is claimed.

import type { WorklistItem } from "./types";

export type NextStep = { kind: "open"; caseId: number } | { kind: "claim"; caseId: number } | null;

export function nextStep(items: readonly WorklistItem[], currentId: number | null = null): NextStep {
  const held = items.find(
    (i) => (i.hold === "reading" || i.hold === "assigned") && i.case.id !== currentId,
  );
  if (held) return { kind: held.hold === "reading" ? "open" : "claim", caseId: held.case.id };
  const offer = items.find((i) => i.hold === "offered" && i.case.id !== currentId);
  return offer ? { kind: "claim", caseId: offer.case.id } : null;
}

/** Held cases first (the server's order within each group is kept). */
export function splitWorklist(items: readonly WorklistItem[]): {
  held: WorklistItem[];
  offers: WorklistItem[];
} {
  const held: WorklistItem[] = [];
  const offers: WorklistItem[] = [];
  for (const item of items) (item.hold === "offered" ? offers : held).push(item);
  return { held, offers };
}
