import { useI18n } from "../i18n/context";
import { countdown, slaTone } from "./board";
import type { WorklistItem } from "./types";

/** Time left to the deadline (or past it), with the SLA state as a badge once it is at risk. */
export function DueCell({ item, now }: { item: WorklistItem; now: number }) {
  const { t, tv, dateTime } = useI18n();
  const deadline = item.case.deadline;
  if (!deadline) return <span className="muted">{t("control.noDeadline")}</span>;
  const left = countdown(deadline, now);
  const tone = slaTone(item);
  let text = "";
  if (left) {
    const time =
      left.days > 0
        ? t("control.duration.days", { d: left.days, h: left.hours })
        : left.hours > 0
          ? t("control.duration.hours", { h: left.hours, m: String(left.minutes).padStart(2, "0") })
          : t("control.duration.minutes", { m: left.minutes });
    text = left.overdue ? t("control.overdue", { time }) : t("control.left", { time });
  }
  return (
    <span className={`due due-${tone}`}>
      <time dateTime={deadline} title={dateTime(deadline)}>
        {text}
      </time>
      {(tone === "warning" || tone === "breached") && (
        <span className={`badge sla-${tone}`}>{tv("sla", tone)}</span>
      )}
      {item.sla?.overdue_wait && <span className="badge flag">{t("control.overdueWait")}</span>}
    </span>
  );
}
