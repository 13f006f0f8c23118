import { createContext, useContext } from "react";

import type { Language, Vars } from "./core";
import type { MessageKey } from "./messages";

export interface I18n {
  lang: Language;
  setLang: (lang: Language) => void;
  t: (key: MessageKey, vars?: Vars) => string;
  /** The label of an enum value: tv("priority", "stat"). Unknown values show as they are. */
  tv: (prefix: string, value: string) => string;
  dateTime: (iso: string | null | undefined) => string;
  bytes: (n: number) => string;
  number: (n: number) => string;
}

export const I18nContext = createContext<I18n | null>(null);

export function useI18n(): I18n {
  const value = useContext(I18nContext);
  if (!value) throw new Error("useI18n outside I18nProvider");
  return value;
}
