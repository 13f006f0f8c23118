import { useI18n } from "../i18n/context";
import { Dialog } from "../components/Dialog";
import { SHORTCUTS } from "./keymap";

/** The keyboard shortcuts of the reading loop ("?"). */
export function ShortcutHelp({ onClose }: { onClose: () => void }) {
  const { t } = useI18n();
  return (
    <Dialog title={t("reading.keys.title")} onClose={onClose}>
      <table className="shortcut-table">
        <caption className="visually-hidden">{t("reading.keys.title")}</caption>
        <thead>
          <tr>
            <th scope="col">{t("reading.keys.key")}</th>
            <th scope="col">{t("reading.keys.action")}</th>
          </tr>
        </thead>
        <tbody>
          {SHORTCUTS.map((s) => (
            <tr key={s.action}>
              <td>
                <kbd>{s.keys}</kbd>
              </td>
              <td>{t(`reading.keys.${s.action}`)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="actions">
        <button type="button" onClick={onClose}>
          {t("reading.close")}
        </button>
      </div>
    </Dialog>
  );
}
