import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";

import {
  LANGUAGE_KEY,
  detectLanguage,
  formatBytes,
  formatDateTime,
  translate,
  translateValue,
  type Language,
} from "./core";
import { I18nContext, type I18n } from "./context";

function storedLanguage(): string | null {
  try {
    return window.localStorage.getItem(LANGUAGE_KEY);
  } catch {
    return null;
  }
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Language>(() =>
    detectLanguage(storedLanguage(), navigator.languages.length ? navigator.languages : [navigator.language]),
  );

  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  const setLang = useCallback((next: Language) => {
    setLangState(next);
    try {
      window.localStorage.setItem(LANGUAGE_KEY, next);
    } catch {
      // storage refused: the choice lasts for this page only
    }
  }, []);

  const value = useMemo<I18n>(
    () => ({
      lang,
      setLang,
      t: (key, vars) => translate(lang, key, vars),
      tv: (prefix, value) => translateValue(lang, prefix, value),
      dateTime: (iso) => formatDateTime(iso),
      bytes: (n) => formatBytes(lang, n),
      number: (n) => new Intl.NumberFormat(lang).format(n),
    }),
    [lang, setLang],
  );
  return <I18nContext value={value}>{children}</I18nContext>;
}
