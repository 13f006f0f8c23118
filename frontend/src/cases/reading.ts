// How a case's reading shows in the list and the detail: who holds it, and its deadline.

import { SLA_STATES, type Case } from "../api/types";
import type { MessageKey } from "../i18n/messages";

type TVars = (key: MessageKey, vars?: Record<string, string | number>) => string;

/** The radiologist holding the case; "User 7" when they have no display name; null when nobody
 * holds it (not routed yet, or offered to a pool). */
export function readerText(c: Pick<Case, "reader_id" | "reader_name">, t: TVars): string | null {
  const name = c.reader_name?.trim();
  if (name) return name;
  if (c.reader_id !== null) return t("case.readerId", { id: c.reader_id });
  return null;
}

/** The classes of the badge that goes with a deadline, or null for none: a case on time shows
 * its deadline alone, so that the ones running late stand out. A state a later backend adds gets
 * a plain badge, so it is still seen. */
export function slaBadgeClass(state: string): string | null {
  if (state === "ok") return null;
  return (SLA_STATES as readonly string[]).includes(state) ? `badge sla-${state}` : "badge";
}
