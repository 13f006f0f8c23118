import { useId, useState, type ReactNode } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { CredentialFields } from "../components/CredentialFields";
import { Dialog } from "../components/Dialog";
import type { Credentials } from "./api";

/** Asks for both components of the electronic signature again, the username and the password,
 * before a signature and runs `onConfirm` with them; the server's refusal is shown in the
 * dialog, which stays open. 21 CFR 11.200(a)(1) asks for both when signings are not part of
 * one continuous session; we ask at every signature (the stricter reading). The username is
 * never filled in for the signer: typing it is the point. */
export function PasswordDialog({
  title,
  confirmLabel,
  onConfirm,
  onClose,
  children,
}: {
  title: string;
  confirmLabel: string;
  onConfirm: (credentials: Credentials) => Promise<void>;
  onClose: () => void;
  children?: ReactNode;
}) {
  const { t } = useI18n();
  const id = useId();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  // As on the sign-in page: spaces around a typed username are not part of it.
  const user = username.trim();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  return (
    <Dialog title={title} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!user || !password || busy) return;
          setBusy(true);
          setError(null);
          onConfirm({ username: user, password }).then(
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
        <CredentialFields
          idPrefix={id}
          labels={{ username: t("reading.sign.username"), password: t("reading.sign.password") }}
          username={username}
          password={password}
          onUsername={setUsername}
          onPassword={setPassword}
          describedBy={error ? `${id}-error` : undefined}
        />
        {error && (
          <p id={`${id}-error`} className="error" role="alert">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy || !user || !password}>
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
