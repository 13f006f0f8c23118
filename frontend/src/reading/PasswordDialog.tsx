import { useId, useState, type ReactNode } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { Dialog } from "../components/Dialog";

/** Asks for the password again before a signature (21 CFR 11.200) and runs `onConfirm` with it;
 * the server's refusal is shown in the dialog, which stays open. */
export function PasswordDialog({
  title,
  confirmLabel,
  onConfirm,
  onClose,
  children,
}: {
  title: string;
  confirmLabel: string;
  onConfirm: (password: string) => Promise<void>;
  onClose: () => void;
  children?: ReactNode;
}) {
  const { t } = useI18n();
  const id = useId();
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  return (
    <Dialog title={title} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!password || busy) return;
          setBusy(true);
          setError(null);
          onConfirm(password).then(
            () => {
              setBusy(false);
            },
            (err: unknown) => {
              setBusy(false);
              setError(errorText(err, t));
            },
          );
        }}
      >
        {children}
        <div className="field">
          <label htmlFor={`${id}-password`}>{t("reading.sign.password")}</label>
          <input
            id={`${id}-password`}
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-describedby={error ? `${id}-error` : undefined}
          />
        </div>
        {error && (
          <p id={`${id}-error`} className="error" role="alert">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || !password}>
            {busy ? t("reading.working") : confirmLabel}
          </button>
          <button type="button" className="secondary" onClick={onClose}>
            {t("reading.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
