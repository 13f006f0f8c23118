// The expert profile as the form holds it (text in inputs, rows that can be added and removed)
// and as the API takes it (experts/schemas.py ExpertUpdate), both ways, and the form's checks.

import { SUBSPECIALTIES, type Subspecialty } from "../api/types";
import type { FormProblem } from "./problems";
import type { Employment, Expert, ExpertUpdate, Qualification } from "./types";

export interface SubspecialtyRow {
  subspecialty: Subspecialty | "";
  level: string;
}

export interface CredentialRow {
  hospital_code: string;
  /** A datetime-local value ("2027-06-30T23:59") in the browser's zone, or "" for no expiry. */
  expires: string;
}

export interface ShiftRow {
  weekday: string;
  start: string;
  end: string;
}

export interface ExpertForm {
  employment: Employment;
  qualification: Qualification;
  subspecialties: SubspecialtyRow[];
  credentials: CredentialRow[];
  timezone: string;
  shifts: ShiftRow[];
  cap_open_cases: string;
  cap_daily_units: string;
}

export const DEFAULT_TIMEZONE = "Asia/Shanghai";

export function emptyExpertForm(): ExpertForm {
  return {
    employment: "full_time",
    qualification: "final",
    subspecialties: [{ subspecialty: "", level: "2" }],
    credentials: [],
    timezone: DEFAULT_TIMEZONE,
    shifts: [],
    cap_open_cases: "",
    cap_daily_units: "",
  };
}

const two = (n: number) => String(n).padStart(2, "0");

/** An ISO instant as a datetime-local value in the browser's zone. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return (
    `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}` +
    `T${two(d.getHours())}:${two(d.getMinutes())}`
  );
}

/** A datetime-local value (the browser's zone) as an ISO instant, or null when empty or bad. */
export function fromLocalInput(value: string): string | null {
  if (!value.trim()) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** A saved profile in the form, to edit it. */
export function formOf(expert: Expert): ExpertForm {
  const subspecialties = SUBSPECIALTIES.flatMap((s) => {
    const level = expert.subspecialties[s];
    return level === undefined ? [] : [{ subspecialty: s, level: String(level) }];
  });
  return {
    employment: expert.employment,
    qualification: expert.qualification,
    subspecialties: subspecialties.length > 0 ? subspecialties : [{ subspecialty: "", level: "2" }],
    credentials: expert.credentials.map((c) => ({
      hospital_code: c.hospital_code,
      expires: toLocalInput(c.expires_at),
    })),
    timezone: expert.timezone,
    // "24:00" (midnight) is "00:00" to a time input: an end at or before the start runs past
    // midnight, so both mean the same shift.
    shifts: expert.shifts.map((s) => ({
      weekday: String(s.weekday),
      start: s.start,
      end: s.end === "24:00" ? "00:00" : s.end,
    })),
    cap_open_cases: expert.cap_open_cases === null ? "" : String(expert.cap_open_cases),
    cap_daily_units: expert.cap_daily_units === null ? "" : String(expert.cap_daily_units),
  };
}

/** A number field: "" is null (no cap); anything else as typed, for the server to judge. */
function optionalNumber(text: string): number | null {
  const value = text.trim();
  return value === "" ? null : Number(value);
}

/** The body of PUT /api/experts/{id}. Rows keep their order, so that a server problem at
 * "credentials.1.expires_at" lands on the second row. */
export function bodyOf(form: ExpertForm): ExpertUpdate {
  const subspecialties: ExpertUpdate["subspecialties"] = {};
  for (const row of form.subspecialties) {
    if (row.subspecialty) subspecialties[row.subspecialty] = Number(row.level);
  }
  return {
    employment: form.employment,
    qualification: form.qualification,
    subspecialties,
    credentials: form.credentials.map((c) => ({
      hospital_code: c.hospital_code.trim(),
      expires_at: fromLocalInput(c.expires),
    })),
    cap_open_cases: optionalNumber(form.cap_open_cases),
    cap_daily_units: optionalNumber(form.cap_daily_units),
    timezone: form.timezone.trim(),
    shifts: form.shifts.map((s) => ({ weekday: Number(s.weekday), start: s.start, end: s.end })),
  };
}

/** The form's field keys, for placing the server's problems. */
export function expertFields(form: ExpertForm): string[] {
  const fields = [
    "employment",
    "qualification",
    "subspecialties",
    "credentials",
    "shifts",
    "timezone",
    "cap_open_cases",
    "cap_daily_units",
  ];
  form.subspecialties.forEach((_, i) => fields.push(`subspecialties.${i}.subspecialty`, `subspecialties.${i}.level`));
  form.credentials.forEach((_, i) => fields.push(`credentials.${i}.hospital_code`, `credentials.${i}.expires`));
  form.shifts.forEach((_, i) => fields.push(`shifts.${i}.weekday`, `shifts.${i}.start`, `shifts.${i}.end`));
  return fields;
}

/** Server paths that name something other than the form's rows: the subspecialties are a map
 * keyed by name ("subspecialties.neuro" is the row that chose neuro), and a credential's
 * "expires_at" is the form's "expires". */
export function expertFieldOf(path: string, form: ExpertForm): string | null {
  const parts = path.split(".");
  if (parts[0] === "subspecialties" && parts[1] && !/^\d+$/u.test(parts[1])) {
    const i = form.subspecialties.findIndex((r) => r.subspecialty === parts[1]);
    return i >= 0 ? `subspecialties.${i}.${parts.length > 2 ? "subspecialty" : "level"}` : "subspecialties";
  }
  if (parts[0] === "credentials" && parts[2] === "expires_at") return `credentials.${parts[1] ?? ""}.expires`;
  return null;
}

/** A 400 naming unknown hospital codes: each on its credential row. */
export function unknownHospitalRows(detail: unknown, form: ExpertForm): FormProblem[] {
  if (typeof detail !== "object" || detail === null) return [];
  const codes = (detail as Record<string, unknown>).unknown_hospital_codes;
  if (!Array.isArray(codes)) return [];
  const unknown = new Set(codes.filter((c): c is string => typeof c === "string"));
  return form.credentials.flatMap((c, i) =>
    unknown.has(c.hospital_code.trim())
      ? [{ field: `credentials.${i}.hospital_code`, words: { key: "admin.check.unknownHospital" as const } }]
      : [],
  );
}

const TIME = /^([01]\d|2[0-3]):[0-5]\d$/u;

/** What is plainly wrong before sending: empty rows, a subspecialty twice, a hospital twice, a
 * time not "HH:MM". */
export function checkExpertForm(form: ExpertForm): FormProblem[] {
  const problems: FormProblem[] = [];
  const add = (field: string, name: CheckName) => {
    problems.push({ field, words: { key: checkKey(name) } });
  };
  const chosen = form.subspecialties.filter((r) => r.subspecialty !== "");
  if (chosen.length === 0) add("subspecialties", "subspecialtyNeeded");
  const seen = new Set<string>();
  form.subspecialties.forEach((row, i) => {
    if (row.subspecialty === "") {
      if (form.subspecialties.length > 1) add(`subspecialties.${i}.subspecialty`, "required");
    } else if (seen.has(row.subspecialty)) add(`subspecialties.${i}.subspecialty`, "twice");
    seen.add(row.subspecialty);
  });
  const codes = new Set<string>();
  form.credentials.forEach((c, i) => {
    const code = c.hospital_code.trim();
    if (code === "") add(`credentials.${i}.hospital_code`, "required");
    else if (codes.has(code)) add(`credentials.${i}.hospital_code`, "twice");
    codes.add(code);
    if (c.expires.trim() !== "" && fromLocalInput(c.expires) === null) add(`credentials.${i}.expires`, "dateTime");
  });
  form.shifts.forEach((s, i) => {
    if (!TIME.test(s.start)) add(`shifts.${i}.start`, "time");
    if (!TIME.test(s.end) && s.end !== "24:00") add(`shifts.${i}.end`, "time");
  });
  if (form.timezone.trim() === "") add("timezone", "required");
  return problems;
}

type CheckName = "required" | "subspecialtyNeeded" | "twice" | "dateTime" | "time";

function checkKey(name: CheckName) {
  switch (name) {
    case "required":
      return "admin.problem.required" as const;
    case "subspecialtyNeeded":
      return "admin.check.subspecialtyNeeded" as const;
    case "twice":
      return "admin.check.twice" as const;
    case "dateTime":
      return "admin.problem.dateTime" as const;
    case "time":
      return "admin.check.time" as const;
  }
}
