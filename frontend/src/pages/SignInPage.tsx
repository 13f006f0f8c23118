import { useId, useState, type SubmitEvent } from "react";

import { ApiError, type ApiClient } from "../api/client";
import { CredentialFields } from "../components/CredentialFields";
import { LanguageSwitch } from "../components/LanguageSwitch";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";

export function SignInPage({ client, notice }: { client: ApiClient; notice: string | null }) {
  const { t } = useI18n();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = useId();

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await client.signIn(username.trim(), password);
      // The app shows the signed-in page when the client reports the new tokens.
    } catch (e) {
      let text = errorText(e, t);
      if (e instanceof ApiError && e.status === 429 && e.retryAfter) {
        text += ` ${t("signIn.retryAfter", { minutes: Math.ceil(e.retryAfter / 60) })}`;
      }
      setError(text);
      setPassword("");
      setBusy(false);
    }
  };

  return (
    <div className="sign-in-page">
      <div className="sign-in-top">
        <LanguageSwitch />
      </div>
      <main id="main" className="center-page">
        <form className="card narrow sign-in" onSubmit={(e) => void submit(e)} aria-describedby={`${id}-intro`}>
          <div className="brand large">
            <span className="brand-name">{t("app.name")}</span>
            <span className="brand-tagline">{t("app.tagline")}</span>
          </div>
          <h1>{t("signIn.title")}</h1>
          <p id={`${id}-intro`} className="muted">
            {t("signIn.intro")}
          </p>
          {notice && !error && (
            <p className="notice" role="status">
              {notice}
            </p>
          )}
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
          <CredentialFields
            idPrefix={id}
            labels={{ username: t("signIn.username"), password: t("signIn.password") }}
            username={username}
            password={password}
            onUsername={setUsername}
            onPassword={setPassword}
          />
          <button type="submit" className="primary wide" disabled={busy}>
            {busy ? t("signIn.working") : t("signIn.submit")}
          </button>
        </form>
      </main>
    </div>
  );
}
