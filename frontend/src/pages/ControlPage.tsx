import { useEffect, useId, useRef } from "react";

import { LiveBadge } from "../components/LiveBadge";
import { Board } from "../control/Board";
import { TABS, tabOf, type Tab } from "../control/board";
import { Critical } from "../control/Critical";
import { Deliveries } from "../control/Deliveries";
import { Turnaround } from "../control/Turnaround";
import "../control/control.css";
import { useI18n } from "../i18n/context";
import { linkClick, useSearch } from "../router";
import { canControl, useSession } from "../session";

/** The section of the control room, from ?tab= (the router matches paths only). */
function useTab(): Tab {
  return tabOf(useSearch());
}

/** The coordinators' control room: the live board, turnaround, critical results and failed
 * deliveries, one section at a time (?tab=board|turnaround|critical|deliveries). */
export function ControlPage() {
  const { t } = useI18n();
  const { user } = useSession();
  const id = useId();
  const tab = useTab();
  const heading = useRef<HTMLHeadingElement>(null);
  const first = useRef(true);

  useEffect(() => {
    // a section chosen from the tabs: its heading takes the focus (not on arrival)
    if (first.current) {
      first.current = false;
      return;
    }
    heading.current?.focus();
  }, [tab]);

  if (!canControl(user.role)) {
    return (
      <section className="page">
        <h1>{t("control.title")}</h1>
        <p className="notice">{t("notFound.body")}</p>
      </section>
    );
  }

  return (
    <section className="page control-page" aria-labelledby={`${id}-title`}>
      <div className="page-head row">
        <h1 id={`${id}-title`}>{t("control.title")}</h1>
        <LiveBadge />
      </div>
      <nav className="control-tabs" aria-label={t("control.sections")}>
        <ul>
          {TABS.map((name) => {
            const path = `/control?tab=${name}`;
            return (
              <li key={name}>
                <a href={path} aria-current={tab === name ? "page" : undefined} onClick={linkClick(path)}>
                  {t(`control.tab.${name}`)}
                </a>
              </li>
            );
          })}
        </ul>
      </nav>
      <h2 className="visually-hidden" ref={heading} tabIndex={-1}>
        {t(`control.tab.${tab}`)}
      </h2>
      {tab === "board" && <Board />}
      {tab === "turnaround" && <Turnaround />}
      {tab === "critical" && <Critical />}
      {tab === "deliveries" && <Deliveries />}
    </section>
  );
}
