import { useId, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { releaseCase } from "./api";
import { Dialog } from "../components/Dialog";

/** Gives a held case back (it is routed to someone else), or declines an offer, with a reason. */
export function ReleaseDialog({
  caseId,
  decline,
  onClose,
  onDone,
}: {
  caseId: number;
  decline: boolean;
  onClose: () => void;
  onDone: () => void;
}) {
  const { t } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  return (
    <Dialog title={t(decline ? "reading.declineTitle" : "reading.releaseTitle", { id: caseId })} onClose={onClose}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          releaseCase(client, caseId, reason.trim()).then(onDone, (err: unknown) => {
            setBusy(false);
            setError(errorText(err, t));
          });
        }}
      >
        <p>{t(decline ? "reading.declineText" : "reading.releaseText")}</p>
        <div className="field">
          <label htmlFor={`${id}-reason`}>{t("reading.reason")}</label>
          <textarea id={`${id}-reason`} rows={2} maxLength={1000} value={reason} onChange={(e) => setReason(e.target.value)} />
        </div>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {decline ? t("reading.decline") : t("reading.release")}
          </button>
          <button type="button" className="secondary" onClick={onClose}>
            {t("reading.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
