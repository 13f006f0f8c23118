import { useI18n } from "../i18n/context";
import { useLiveState } from "../live/context";

export function LiveBadge() {
  const { t } = useI18n();
  const state = useLiveState();
  const text = state === "open" ? t("live.open") : state === "connecting" ? t("live.connecting") : t("live.closed");
  return (
    <span className={`live-badge live-${state}`} role="status" aria-label={t("live.label", { state: text })}>
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}
