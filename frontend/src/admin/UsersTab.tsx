import { useEffect, useId, useState, type SubmitEvent } from "react";

import { ROLES, type Hospital, type Role } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { linkClick } from "../router";
import { useSession } from "../session";
import { createUser, listUsers } from "./api";
import { check, passwordProblem, PASSWORD_MIN, usernameProblem } from "./checks";
import { FieldProblems, ProblemSummary, TextField, invalidProps } from "./form";
import { placeProblems, type FormProblem } from "./problems";
import type { User } from "./types";
import { HospitalOptions, UserActiveDialog, UserEditDialog } from "./UserDialogs";
import { hospitalProblemsOnField } from "./userForm";

const FIELDS = ["username", "display_name", "password", "role", "hospital_code"];
const HINTS = { username: "admin.check.username" } as const;

export function UsersTab({ hospitals }: { hospitals: Hospital[] | null }) {
  const { t, tv } = useI18n();
  const { client, user: me } = useSession();
  const formId = useId();
  const [users, setUsers] = useState<User[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("radiologist");
  const [hospitalCode, setHospitalCode] = useState("");
  const [problems, setProblems] = useState<FormProblem[]>([]);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState<User | null>(null);
  const [editing, setEditing] = useState<User | null>(null);
  const [toggling, setToggling] = useState<User | null>(null);
  const [changed, setChanged] = useState("");

  useEffect(() => {
    let live = true;
    listUsers(client).then(
      (list) => {
        if (!live) return;
        setUsers(list);
        setLoadError(null);
      },
      (e: unknown) => {
        if (live) setLoadError(errorText(e, t));
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, reload]);

  const hospitalById = new Map((hospitals ?? []).map((h) => [h.id, h]));
  const existing = users?.find((u) => u.username === username.trim());
  const labels: Record<string, string> = {
    username: t("admin.user.username"),
    display_name: t("admin.user.displayName"),
    password: t("admin.user.password"),
    role: t("admin.user.role"),
    hospital_code: t("admin.user.hospital"),
  };

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setSaved(null);
    const local = [
      ...check("username", usernameProblem(username)),
      ...check("password", passwordProblem(password)),
      ...(role === "tech" ? check("hospital_code", hospitalCode ? null : "admin.check.hospitalNeeded") : []),
    ];
    setProblems(local);
    if (local.length > 0) return;
    setSaving(true);
    try {
      const user = await createUser(client, {
        username: username.trim(),
        display_name: displayName.trim(),
        password,
        role,
        hospital_code: role === "tech" ? hospitalCode : null,
      });
      setSaved(user);
      setUsername("");
      setDisplayName("");
      setPassword("");
      setReload((n) => n + 1);
    } catch (e) {
      // "A technician must belong to a hospital" and the like are about the hospital field.
      setProblems(hospitalProblemsOnField(placeProblems(e, { fields: FIELDS, hints: HINTS })));
    } finally {
      setSaving(false);
    }
  };

  const afterChange = (text: string) => {
    setEditing(null);
    setToggling(null);
    setChanged(text);
    setReload((n) => n + 1);
  };

  const roleProps = invalidProps(formId, "role", problems);
  const hospitalProps = invalidProps(formId, "hospital_code", problems);
  const expertPath = saved ? `/admin?tab=experts&user=${saved.id}` : "";

  return (
    <div className="admin-tab">
      <section aria-labelledby={`${formId}-list`} className="card">
        <h2 id={`${formId}-list`}>{t("admin.users.title")}</h2>
        {loadError && (
          <p className="error" role="alert">
            {loadError}
          </p>
        )}
        {users === null && !loadError && <p role="status">{t("app.loading")}</p>}
        <p role="status" className="ok-text">
          {changed}
        </p>
        {users && users.length > 0 && (
          <div className="table-wrap">
            <table className="admin-table">
              <caption className="visually-hidden">{t("admin.users.title")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("admin.user.username")}</th>
                  <th scope="col">{t("admin.user.displayName")}</th>
                  <th scope="col">{t("admin.user.role")}</th>
                  <th scope="col">{t("admin.user.hospital")}</th>
                  <th scope="col">{t("admin.col.status")}</th>
                  <th scope="col">
                    <span className="visually-hidden">{t("admin.col.actions")}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {users.map((u) => (
                  <tr key={u.id} className={u.active ? undefined : "inactive"}>
                    <td className="mono">{u.username}</td>
                    <td>{u.display_name}</td>
                    <td>{tv("role", u.role)}</td>
                    <td>{u.hospital_id !== null ? (hospitalById.get(u.hospital_id)?.code ?? u.hospital_id) : ""}</td>
                    <td>{u.active ? t("admin.active") : t("admin.inactive")}</td>
                    <td className="actions">
                      <button
                        type="button"
                        className="secondary small"
                        aria-label={t("admin.user.editLabel", { username: u.username })}
                        onClick={() => setEditing(u)}
                      >
                        {t("admin.user.edit")}
                      </button>
                      {/* Nobody deactivates their own account (the server refuses it too). */}
                      {u.id !== me.id && (
                        <button
                          type="button"
                          className="secondary small"
                          aria-label={t(u.active ? "admin.user.deactivateLabel" : "admin.user.activateLabel", {
                            username: u.username,
                          })}
                          onClick={() => setToggling(u)}
                        >
                          {t(u.active ? "admin.user.deactivate" : "admin.user.activate")}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {editing && (
          <UserEditDialog
            user={editing}
            hospitals={hospitals ?? []}
            onClose={() => setEditing(null)}
            onSaved={(u) => afterChange(t("admin.user.updated", { username: u.username }))}
          />
        )}
        {toggling && (
          <UserActiveDialog
            user={toggling}
            onClose={() => setToggling(null)}
            onDone={(u) =>
              afterChange(t(u.active ? "admin.user.activated" : "admin.user.deactivated", { username: u.username }))
            }
          />
        )}
      </section>

      <section aria-labelledby={`${formId}-new`} className="card">
        <h2 id={`${formId}-new`}>{t("admin.user.new")}</h2>
        <form noValidate onSubmit={(e) => void submit(e)} aria-labelledby={`${formId}-new`}>
          <ProblemSummary formId={formId} problems={problems} labelOf={(f) => labels[f] ?? f} />
          <div className="field-row">
            <TextField
              formId={formId}
              field="username"
              label={t("admin.user.username")}
              hint={t("admin.user.usernameHint")}
              value={username}
              onChange={setUsername}
              problems={problems}
              maxLength={64}
              autoComplete="off"
            />
            <TextField
              formId={formId}
              field="display_name"
              label={t("admin.user.displayName")}
              optional
              value={displayName}
              onChange={setDisplayName}
              problems={problems}
              maxLength={200}
              autoComplete="off"
            />
          </div>
          <div className="field-row">
            <div className="field">
              <label htmlFor={roleProps.id}>{t("admin.user.role")}</label>
              <select
                {...roleProps}
                value={role}
                onChange={(e) => {
                  setRole(e.target.value as Role);
                }}
              >
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {tv("role", r)}
                  </option>
                ))}
              </select>
              <FieldProblems formId={formId} field="role" problems={problems} />
            </div>
            <div className="field">
              <label htmlFor={hospitalProps.id}>
                {t("admin.user.hospital")}
                {role !== "tech" && <span className="muted"> ({t("admin.user.techOnly")})</span>}
              </label>
              <select
                {...hospitalProps}
                value={role === "tech" ? hospitalCode : ""}
                disabled={role !== "tech"}
                onChange={(e) => setHospitalCode(e.target.value)}
              >
                <HospitalOptions hospitals={hospitals ?? []} />
              </select>
              <FieldProblems formId={formId} field="hospital_code" problems={problems} />
            </div>
          </div>
          <TextField
            formId={formId}
            field="password"
            type="password"
            label={t("admin.user.password")}
            hint={t("admin.user.passwordHint", { n: PASSWORD_MIN })}
            value={password}
            onChange={setPassword}
            problems={problems}
            autoComplete="new-password"
          />
          {existing && <p className="notice">{t("admin.user.exists", { username: existing.username })}</p>}
          <div className="actions">
            <button type="submit" className="primary" disabled={saving}>
              {saving ? t("admin.saving") : existing ? t("admin.user.update") : t("admin.user.create")}
            </button>
            <span role="status" className="ok-text">
              {saved && t("admin.user.saved", { username: saved.username })}
            </span>
            {saved?.role === "radiologist" && (
              <a href={expertPath} onClick={linkClick(expertPath)}>
                {t("admin.user.makeExpert", { username: saved.username })}
              </a>
            )}
          </div>
        </form>
      </section>
    </div>
  );
}
