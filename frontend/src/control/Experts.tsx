import { useId } from "react";

import { useI18n } from "../i18n/context";
import type { Expert } from "./types";
import { TableWrap } from "./TableWrap";

/** The roster as a coordinator needs it: who is online and on duty, and how much they hold. */
export function Experts({ experts, loaded }: { experts: Expert[]; loaded: boolean }) {
  const { t, tv, number, dateTime } = useI18n();
  const id = useId();
  const list = [...experts].sort(
    (a, b) =>
      ["online", "away", "offline"].indexOf(a.state) - ["online", "away", "offline"].indexOf(b.state) ||
      (a.name || a.username).localeCompare(b.name || b.username),
  );
  return (
    <section aria-labelledby={`${id}-title`} className="control-experts">
      <h2 id={`${id}-title`}>{t("control.experts")}</h2>
      {loaded && list.length === 0 && <p className="muted">{t("control.experts.empty")}</p>}
      {list.length > 0 && (
        <TableWrap label={t("control.experts.caption")}>
          <table className="cases-table control-table">
            <caption className="visually-hidden">{t("control.experts.caption")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("control.col.expert")}</th>
                <th scope="col">{t("control.col.state")}</th>
                <th scope="col">{t("control.col.availability")}</th>
                <th scope="col" className="num">
                  {t("control.col.load")}
                </th>
                <th scope="col">{t("control.col.subspecialties")}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((e) => (
                <tr key={e.user_id}>
                  <th scope="row">{e.name || e.username}</th>
                  <td data-label={t("control.col.state")}>
                    <span className={`expert-state state-${e.state}`}>
                      <span className="dot" aria-hidden="true" />
                      {tv("control.state", e.state)}
                    </span>
                  </td>
                  <td data-label={t("control.col.availability")}>
                    {e.available_now
                      ? e.available_until
                        ? t("control.expert.until", { time: dateTime(e.available_until) })
                        : t("control.expert.onDuty")
                      : e.next_window_start
                        ? t("control.expert.next", { time: dateTime(e.next_window_start) })
                        : t("control.expert.offDuty")}
                  </td>
                  <td data-label={t("control.col.load")} className="num">
                    {e.cap_open_cases !== null
                      ? t("control.expert.loadCap", { n: number(e.open_cases), cap: number(e.cap_open_cases) })
                      : t("control.expert.load", { n: number(e.open_cases) })}
                  </td>
                  <td data-label={t("control.col.subspecialties")}>
                    {Object.entries(e.subspecialties)
                      .map(([s, level]) => t("control.expert.level", { subspecialty: tv("subspecialty", s), level }))
                      .join(t("list.separator"))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </section>
  );
}
