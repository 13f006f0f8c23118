// Editing a case's clinical information: the form's values, and what to PATCH (changes only).

import type { Case, CaseEvent, ClinicalInfo } from "../api/types";
import type { MessageKey } from "../i18n/messages";
import type { CaseFields } from "../upload/send";

export function fieldsOf(c: Case): CaseFields {
  return {
    priority: c.priority,
    clinical_question: c.clinical_question,
    clinical_history: c.clinical_history,
    requested_exam: c.requested_exam,
    requested_subspecialty: c.requested_subspecialty ?? "",
  };
}

/** The fields that differ from the case. Text is trimmed; an emptied text is sent as "" (the
 * server keeps fields that are left out); "No preference" for the subspecialty is sent as null,
 * which clears it. */
export function changes(c: Case, fields: CaseFields): ClinicalInfo {
  const out: ClinicalInfo = {};
  if (fields.priority !== c.priority) out.priority = fields.priority;
  for (const key of ["clinical_question", "clinical_history", "requested_exam"] as const) {
    const value = fields[key].trim();
    if (value !== c[key].trim()) out[key] = value;
  }
  const subspecialty = fields.requested_subspecialty || null;
  if (subspecialty !== c.requested_subspecialty) out.requested_subspecialty = subspecialty;
  return out;
}

/** The label of a case field named in an event ("fields": ["priority", ...]). */
export const FIELD_LABELS: Record<string, MessageKey> = {
  priority: "field.priority",
  clinical_question: "field.clinicalQuestion",
  clinical_history: "field.clinicalHistory",
  requested_exam: "field.requestedExam",
  requested_subspecialty: "field.subspecialty",
};

type T = (key: MessageKey) => string;
type TVars = (key: MessageKey, vars: Record<string, string | number>) => string;

/** Who acted, e.g. "by Dr Wang"; "by user 7" when the user has no display name (or is gone);
 * null for what the system did by itself. */
export function actorText(event: Pick<CaseEvent, "actor_id" | "actor_name">, t: TVars): string | null {
  const name = event.actor_name?.trim();
  if (name) return t("event.byName", { name });
  if (event.actor_id !== null) return t("event.by", { id: event.actor_id });
  return null;
}
type TV = (prefix: string, value: string) => string;

/** Detail keys whose string values are enum values with labels of their own. "previous" is the
 * former priority on a priority change (on a pause it lists user ids, left as they are). */
const VALUE_PREFIXES: Record<string, string> = {
  reason: "reason",
  source: "source",
  trigger: "trigger",
  mode: "mode",
  priority: "priority",
  previous: "priority",
};

/** A routing decision that gave the case to nobody says so in "mode": its null reader and empty
 * list of offers would only add noise. */
function isEmpty(value: unknown): boolean {
  return value === null || (Array.isArray(value) && value.length === 0);
}

/** One line per detail of a timeline event, e.g. "reason: upload complete". Times (the deadline
 * of an SLA event) go through `dateTime` when it is given. */
export function eventDetails(
  detail: Record<string, unknown>,
  t: T,
  tv: TV,
  dateTime?: (iso: string) => string,
): string[] {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(detail)) {
    if (isEmpty(value)) continue;
    let text: string;
    const prefix = VALUE_PREFIXES[key];
    if (key === "fields" && Array.isArray(value)) {
      text = value.map((f) => (typeof f === "string" && f in FIELD_LABELS ? t(FIELD_LABELS[f] as MessageKey) : String(f))).join(", ");
    } else if (prefix && typeof value === "string") {
      text = tv(prefix, value);
    } else if (key === "deadline" && typeof value === "string" && dateTime) {
      text = dateTime(value);
    } else if (typeof value === "boolean") {
      text = t(value ? "eventDetail.yes" : "eventDetail.no");
    } else if (Array.isArray(value)) {
      text = value.map(String).join(", ");
    } else if (typeof value === "object" && value !== null) {
      text = JSON.stringify(value);
    } else {
      text = String(value);
    }
    lines.push(`${tv("eventDetail", key)}${t("list.colon")}${text}`);
  }
  return lines;
}
