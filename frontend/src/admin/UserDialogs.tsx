import { useId, useState, type SubmitEvent } from "react";

import type { Hospital } from "../api/types";
import { Dialog } from "../components/Dialog";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { updateUser } from "./api";
import { PASSWORD_MIN } from "./checks";
import { FieldProblems, ProblemSummary, TextField, invalidProps } from "./form";
import { placeProblems, type FormProblem } from "./problems";
import type { User } from "./types";
import { checkUserEdit, hospitalProblemsOnField, USER_EDIT_FIELDS, userEditForm, userUpdateBody } from "./userForm";

/** Edits a user's name, a technician's hospital, and sets a new password when one is typed; the
 * problems found by the page or the server are shown at their fields, and the dialog stays open
 * until the save succeeds. */
/** A technician's hospital: none chosen yet, then each hospital by code and name. */
export function HospitalOptions({ hospitals }: { hospitals: readonly Hospital[] }) {
  const { t } = useI18n();
  return (
    <>
      <option value="">{t("admin.user.chooseHospital")}</option>
      {hospitals.map((h) => (
        <option key={h.id} value={h.code}>
          {h.code} · {h.name}
        </option>
      ))}
    </>
  );
}

export function UserEditDialog({
  user,
  hospitals,
  onClose,
  onSaved,
}: {
  user: User;
  hospitals: readonly Hospital[];
  onClose: () => void;
  onSaved: (user: User) => void;
}) {
  const { t, tv } = useI18n();
  const { client } = useSession();
  const formId = useId();
  const [form, setForm] = useState(() => userEditForm(user, hospitals));
  const [problems, setProblems] = useState<FormProblem[]>([]);
  const [unchanged, setUnchanged] = useState(false);
  const [saving, setSaving] = useState(false);
  const title = t("admin.user.editTitle", { username: user.username });
  const labels: Record<string, string> = {
    display_name: t("admin.user.displayName"),
    hospital_code: t("admin.user.hospital"),
    password: t("admin.user.newPassword"),
  };
  const set = (field: keyof typeof form) => (value: string) => {
    setUnchanged(false);
    setForm((f) => ({ ...f, [field]: value }));
  };

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const local = checkUserEdit(user, form);
    setProblems(local);
    if (local.length > 0) return;
    const body = userUpdateBody(user, form, hospitals);
    if (Object.keys(body).length === 0) {
      setUnchanged(true);
      return;
    }
    setSaving(true);
    try {
      onSaved(await updateUser(client, user.id, body));
    } catch (e) {
      setProblems(hospitalProblemsOnField(placeProblems(e, { fields: USER_EDIT_FIELDS })));
      setSaving(false);
    }
  };

  const hospitalProps = invalidProps(formId, "hospital_code", problems);
  return (
    <Dialog title={title} onClose={onClose}>
      <form noValidate onSubmit={(e) => void submit(e)} aria-label={title}>
        <p className="muted">
          {tv("role", user.role)} · <span className="mono">{user.username}</span>
        </p>
        <ProblemSummary formId={formId} problems={problems} labelOf={(f) => labels[f] ?? f} />
        <TextField
          formId={formId}
          field="display_name"
          label={t("admin.user.displayName")}
          value={form.display_name}
          onChange={set("display_name")}
          problems={problems}
          maxLength={200}
          autoComplete="off"
        />
        {user.role === "tech" && (
          <div className="field">
            <label htmlFor={hospitalProps.id}>{t("admin.user.hospital")}</label>
            <select
              {...hospitalProps}
              value={form.hospital_code}
              onChange={(e) => set("hospital_code")(e.target.value)}
            >
              <HospitalOptions hospitals={hospitals} />
            </select>
            <FieldProblems formId={formId} field="hospital_code" problems={problems} />
          </div>
        )}
        <TextField
          formId={formId}
          field="password"
          type="password"
          label={t("admin.user.newPassword")}
          optional
          hint={t("admin.user.newPasswordHint", { n: PASSWORD_MIN })}
          value={form.password}
          onChange={set("password")}
          problems={problems}
          autoComplete="new-password"
        />
        {unchanged && <p className="notice">{t("admin.user.unchanged")}</p>}
        <div className="actions">
          <button type="submit" className="primary" disabled={saving}>
            {saving ? t("admin.saving") : t("admin.user.saveChanges")}
          </button>
          <button type="button" className="secondary" onClick={onClose}>
            {t("admin.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** Asks before deactivating (or activating again) a user; the server's refusal (your own
 * account, the last administrator) is shown in the dialog. Cancel has the focus first. */
export function UserActiveDialog({
  user,
  onClose,
  onDone,
}: {
  user: User;
  onClose: () => void;
  onDone: (user: User) => void;
}) {
  const { t } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const deactivate = user.active;
  const vars = { username: user.username, name: user.display_name || user.username };

  const confirm = () => {
    setBusy(true);
    setError(null);
    updateUser(client, user.id, { active: !deactivate }).then(onDone, (e: unknown) => {
      setBusy(false);
      setError(errorText(e, t));
    });
  };

  return (
    <Dialog title={t(deactivate ? "admin.user.deactivateTitle" : "admin.user.activateTitle", vars)} onClose={onClose}>
      <p id={`${id}-text`}>{t(deactivate ? "admin.user.deactivateText" : "admin.user.activateText", vars)}</p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="actions">
        <button
          type="button"
          className={deactivate ? "danger" : "primary"}
          disabled={busy}
          aria-describedby={`${id}-text`}
          onClick={confirm}
        >
          {busy ? t("admin.saving") : t(deactivate ? "admin.user.deactivate" : "admin.user.activate")}
        </button>
        <button type="button" className="secondary" data-autofocus onClick={onClose}>
          {t("admin.cancel")}
        </button>
      </div>
    </Dialog>
  );
}
