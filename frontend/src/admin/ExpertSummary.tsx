import { useId } from "react";

import { useI18n } from "../i18n/context";
import type { Expert } from "./types";

/** The profile as the server has it stored (the answer to the last save, or the roster's). */
export function ExpertSummary({ expert }: { expert: Expert }) {
  const { t, tv, dateTime, number } = useI18n();
  const id = useId();
  const none = t("admin.none");
  return (
    <section className="card expert-summary" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{t("admin.expert.stored", { name: expert.name || expert.username })}</h2>
      <dl className="facts stacked">
        <div className="fact">
          <dt>{t("admin.expert.employment")}</dt>
          <dd>{t(`admin.employment.${expert.employment}`)}</dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.qualification")}</dt>
          <dd>{t(`admin.qualification.${expert.qualification}`)}</dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.subspecialties")}</dt>
          <dd>
            <ul className="plain-list">
              {Object.entries(expert.subspecialties).map(([s, level]) => (
                <li key={s}>
                  {tv("subspecialty", s)} · {tv("admin.level", String(level))}
                </li>
              ))}
            </ul>
          </dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.credentials")}</dt>
          <dd>
            {expert.credentials.length === 0 ? (
              none
            ) : (
              <ul className="plain-list">
                {expert.credentials.map((c) => (
                  <li key={c.hospital_id}>
                    <span className="mono">{c.hospital_code}</span> ·{" "}
                    {c.expires_at ? t("admin.expert.until", { when: dateTime(c.expires_at) }) : t("admin.expert.noExpiry")}
                    {c.expired && <span className="badge sla-breached">{t("admin.expert.expired")}</span>}
                  </li>
                ))}
              </ul>
            )}
          </dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.shifts")}</dt>
          <dd>
            {expert.shifts.length === 0 ? (
              none
            ) : (
              <ul className="plain-list">
                {expert.shifts.map((s, i) => (
                  <li key={i}>
                    {tv("admin.weekday", String(s.weekday))} {s.start}–{s.end}
                  </li>
                ))}
              </ul>
            )}
            <span className="muted">{expert.timezone}</span>
          </dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.caps")}</dt>
          <dd>
            {t("admin.expert.capsValue", {
              open: expert.cap_open_cases === null ? t("admin.expert.policy") : number(expert.cap_open_cases),
              units: expert.cap_daily_units === null ? t("admin.expert.policy") : number(expert.cap_daily_units),
            })}
          </dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.state")}</dt>
          <dd>
            {tv("admin.state", expert.state)} ·{" "}
            {expert.available_now ? t("admin.expert.availableNow") : t("admin.expert.notAvailable")}
          </dd>
        </div>
        <div className="fact">
          <dt>{t("admin.expert.updated")}</dt>
          <dd>{dateTime(expert.updated_at)}</dd>
        </div>
      </dl>
    </section>
  );
}
