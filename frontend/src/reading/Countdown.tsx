import { useI18n } from "../i18n/context";
import { slaView } from "./sla";

/** Time left to the deadline, ticking, coloured ok / warning / breached. */
export function Countdown({
  deadline,
  state,
  now,
}: {
  deadline: string | null;
  state: string | null;
  now: number;
}) {
  const { t, tv, dateTime } = useI18n();
  const view = slaView(deadline, state, now);
  if (!deadline || view.colour === "none") return <span className="muted">{t("case.none")}</span>;
  const text = view.late ? t("reading.sla.late", { time: view.clock }) : t("reading.sla.left", { time: view.clock });
  return (
    <span className={`countdown sla-${view.colour}`} title={dateTime(deadline)}>
      <time dateTime={deadline}>{text}</time>
      {view.colour !== "ok" && <span className="visually-hidden"> ({tv("sla", view.colour)})</span>}
    </span>
  );
}
