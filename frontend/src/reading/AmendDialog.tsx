import { useId, useState } from "react";

import { useI18n } from "../i18n/context";
import type { Credentials } from "./api";
import { PasswordDialog } from "./PasswordDialog";

/** Signs a correction: the reason (required, printed on the amended version), the username and
 * the password. */
export function AmendDialog({
  supersedes,
  onConfirm,
  onClose,
}: {
  /** The version the amendment replaces. */
  supersedes: number;
  onConfirm: (credentials: Credentials, reason: string) => Promise<void>;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const id = useId();
  const [reason, setReason] = useState("");

  return (
    <PasswordDialog
      title={t("reading.amend.title")}
      confirmLabel={t("reading.amend.confirm")}
      onClose={onClose}
      onConfirm={async (credentials) => {
        if (!reason.trim()) throw new Error(t("reading.amend.reasonRequired"));
        await onConfirm(credentials, reason.trim());
      }}
    >
      <p>{t("reading.amend.explain", { n: supersedes })}</p>
      <div className="field">
        <label htmlFor={`${id}-reason`}>{t("reading.amend.reason")}</label>
        <textarea
          id={`${id}-reason`}
          rows={2}
          required
          maxLength={2000}
          value={reason}
          onChange={(e) => setReason(e.target.value)}
        />
      </div>
    </PasswordDialog>
  );
}
