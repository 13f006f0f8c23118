import type { Case } from "../api/types";
import { slaBadgeClass } from "../cases/reading";
import { useI18n } from "../i18n/context";

/** When the report is due, with a badge once it is due soon or overdue; a dash before routing
 * set a deadline. One wrapping element, so that it stays one cell in the narrow card layout. */
export function Deadline({ c }: { c: Pick<Case, "deadline" | "sla_state"> }) {
  const { t, tv, dateTime } = useI18n();
  if (!c.deadline) return <>{t("case.none")}</>;
  const badge = slaBadgeClass(c.sla_state);
  return (
    <span className="deadline">
      <time dateTime={c.deadline}>{dateTime(c.deadline)}</time>
      {badge && <span className={badge}>{tv("sla", c.sla_state)}</span>}
    </span>
  );
}
