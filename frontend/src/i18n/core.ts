// Looking texts up, filling in placeholders, choosing the language, and locale formatting.

import { en, zhCN, type MessageKey, type Messages } from "./messages";

export const LANGUAGES = ["zh-CN", "en"] as const;
export type Language = (typeof LANGUAGES)[number];

/** Each language's name in itself, for the switch. */
export const LANGUAGE_NAMES: Record<Language, string> = { "zh-CN": "中文", en: "English" };

export const TABLES: Record<Language, Messages> = { en, "zh-CN": zhCN };

export const LANGUAGE_KEY = "radrelay.lang";

export type Vars = Record<string, string | number>;

export function format(template: string, vars?: Vars): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/gu, (whole, name: string) =>
    name in vars ? String(vars[name]) : whole,
  );
}

export function translate(lang: Language, key: MessageKey, vars?: Vars): string {
  return format(TABLES[lang][key], vars);
}

export function isMessageKey(key: string): key is MessageKey {
  return Object.hasOwn(en, key);
}

/** The label of an enum value ("priority", "stat"), or the value itself when unknown. */
export function translateValue(lang: Language, prefix: string, value: string): string {
  const key = `${prefix}.${value}`;
  return isMessageKey(key) ? translate(lang, key) : value;
}

/** A remembered choice wins; else the browser's languages (any Chinese is zh-CN); else English. */
export function detectLanguage(stored: string | null, browser: readonly string[]): Language {
  if (stored === "en" || stored === "zh-CN") return stored;
  for (const tag of browser) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

export function placeholders(template: string): string[] {
  return [...template.matchAll(/\{(\w+)\}/gu)].map((m) => m[1] ?? "").sort();
}

/** "2024-01-31 17:30" in the browser's time zone: the same unambiguous form in both languages
 * (DICOM dates are shown as YYYY-MM-DD too). */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const two = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}`
  );
}

export function formatBytes(lang: Language, bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  const number = new Intl.NumberFormat(lang, {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  }).format(value);
  return `${number} ${units[unit] ?? "B"}`;
}
