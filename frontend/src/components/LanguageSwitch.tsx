import { useId } from "react";

import { LANGUAGES, LANGUAGE_NAMES, type Language } from "../i18n/core";
import { useI18n } from "../i18n/context";

export function LanguageSwitch() {
  const { t, lang, setLang } = useI18n();
  const id = useId();
  return (
    <span className="lang-switch">
      <label htmlFor={id}>{t("nav.language")}</label>
      <select id={id} value={lang} onChange={(e) => setLang(e.target.value as Language)}>
        {LANGUAGES.map((l) => (
          <option key={l} value={l} lang={l}>
            {LANGUAGE_NAMES[l]}
          </option>
        ))}
      </select>
    </span>
  );
}
