// What a form can see is wrong before sending it. The server checks everything again and its
// word is shown too: these only save a round trip for the obvious.

import type { MessageKey } from "../i18n/messages";
import type { FormProblem } from "./problems";

/** The DICOM AE value representation (PS3.5 6.2): at most 16 characters of the default
 * repertoire without backslash; leading and trailing spaces are not significant, so the
 * server refuses them and the form trims them. */
export const AE_MAX = 16;

export function aeTitleProblem(value: string): MessageKey | null {
  const ae = value.trim();
  if (ae === "") return "admin.problem.required";
  if (ae.length > AE_MAX) return "admin.check.aeTooLong";
  if (!/^[\x20-\x5B\x5D-\x7E]+$/u.test(ae)) return "admin.check.aeCharacters";
  return null;
}

/** A hospital code: 2-32 letters, digits, "_" or "-" (it appears in paths and reports). */
export function hospitalCodeProblem(value: string): MessageKey | null {
  const code = value.trim();
  if (code === "") return "admin.problem.required";
  if (!/^[A-Za-z0-9_-]{2,32}$/u.test(code)) return "admin.check.code";
  return null;
}

export function usernameProblem(value: string): MessageKey | null {
  const name = value.trim();
  if (name === "") return "admin.problem.required";
  if (!/^[A-Za-z0-9._@-]{2,64}$/u.test(name)) return "admin.check.username";
  return null;
}

export const PASSWORD_MIN = 8;

export function passwordProblem(value: string): MessageKey | null {
  if (value === "") return "admin.problem.required";
  if (value.length < PASSWORD_MIN) return "admin.check.passwordShort";
  return null;
}

/** The webhook's shared HMAC key: shorter than this it can be guessed from one request. */
export const SECRET_MIN = 32;

export function webhookUrlProblem(value: string): MessageKey | null {
  const url = value.trim();
  if (url === "") return "admin.problem.required";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "admin.check.url";
  }
  if (parsed.protocol === "https:") return null;
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(parsed.hostname);
  if (parsed.protocol === "http:" && loopback) return null;
  return parsed.protocol === "http:" ? "admin.check.https" : "admin.check.url";
}

/** Addresses typed as a list: commas, spaces or new lines between them. */
export function splitList(text: string): string[] {
  return text
    .split(/[\s,;]+/u)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** A problem of `field` when `check` finds one. */
export function check(field: string, problem: MessageKey | null): FormProblem[] {
  return problem ? [{ field, words: { key: problem } }] : [];
}
