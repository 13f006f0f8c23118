import { useId, useState, type SubmitEvent } from "react";

import type { Hospital } from "../api/types";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { createHospital } from "./api";
import { aeTitleProblem, AE_MAX, check, hospitalCodeProblem, splitList } from "./checks";
import { ProblemSummary, TextField } from "./form";
import { HospitalPanel } from "./HospitalPanel";
import { placeProblems, type FormProblem } from "./problems";

const FIELDS = ["code", "name", "ae_titles.0.ae_title", "ae_titles.0.source_addresses"];
const HINTS = {
  code: "admin.check.code",
  "ae_titles.ae_title": "admin.check.aeCharacters",
} as const;

export function HospitalsTab({
  hospitals,
  onChanged,
}: {
  hospitals: Hospital[] | null;
  onChanged: () => void;
}) {
  const { t } = useI18n();
  const { client } = useSession();
  const formId = useId();
  const [code, setCode] = useState("");
  const [name, setName] = useState("");
  const [ae, setAe] = useState("");
  const [addresses, setAddresses] = useState("");
  const [problems, setProblems] = useState<FormProblem[]>([]);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);

  const existing = hospitals?.find((h) => h.code === code.trim());
  const labelOf = (field: string): string => {
    if (field === "code") return t("admin.hospital.code");
    if (field === "name") return t("admin.hospital.name");
    if (field.endsWith("source_addresses")) return t("admin.ae.addresses");
    return t("admin.ae.title");
  };

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setSaved(null);
    const local = [
      ...check("code", hospitalCodeProblem(code)),
      ...check("name", name.trim() ? null : "admin.problem.required"),
      ...(ae.trim() ? check("ae_titles.0.ae_title", aeTitleProblem(ae)) : []),
    ];
    setProblems(local);
    if (local.length > 0) return;
    setSaving(true);
    try {
      const hospital = await createHospital(client, {
        code: code.trim(),
        name: name.trim(),
        ae_titles: ae.trim() ? [{ ae_title: ae.trim(), source_addresses: splitList(addresses) }] : [],
      });
      setSaved(t("admin.hospital.saved", { code: hospital.code }));
      setCode("");
      setName("");
      setAe("");
      setAddresses("");
      onChanged();
    } catch (e) {
      setProblems(placeProblems(e, { fields: FIELDS, hints: HINTS }));
    } finally {
      setSaving(false);
    }
  };

  return (
    <div className="admin-tab">
      <section aria-labelledby={`${formId}-list`} className="card">
        <h2 id={`${formId}-list`}>{t("admin.hospitals.title")}</h2>
        {hospitals === null && <p role="status">{t("app.loading")}</p>}
        {hospitals?.length === 0 && <p className="muted">{t("admin.hospitals.empty")}</p>}
        {hospitals && hospitals.length > 0 && (
          <div className="table-wrap">
            <table className="admin-table">
              <caption className="visually-hidden">{t("admin.hospitals.title")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("admin.hospital.code")}</th>
                  <th scope="col">{t("admin.hospital.name")}</th>
                  <th scope="col">{t("admin.hospital.aeTitles")}</th>
                  <th scope="col">{t("admin.col.status")}</th>
                  <th scope="col">
                    <span className="visually-hidden">{t("admin.col.actions")}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {hospitals.map((h) => (
                  <tr key={h.id} className={open === h.code ? "selected" : undefined}>
                    <td className="mono">{h.code}</td>
                    <td>{h.name}</td>
                    <td>
                      {h.ae_titles.length === 0 && <span className="muted">{t("admin.none")}</span>}
                      {h.ae_titles.map((a) => (
                        <span key={a.id} className="badge mono">
                          {a.ae_title}
                        </span>
                      ))}
                    </td>
                    <td>{h.active ? t("admin.active") : t("admin.inactive")}</td>
                    <td>
                      <button
                        type="button"
                        className="secondary small"
                        aria-expanded={open === h.code}
                        aria-controls={open === h.code ? `${formId}-panel` : undefined}
                        onClick={() => setOpen(open === h.code ? null : h.code)}
                      >
                        {t("admin.hospital.manage", { code: h.code })}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {open !== null && hospitals?.some((h) => h.code === open) && (
        <div id={`${formId}-panel`}>
          <HospitalPanel
            key={open}
            hospital={hospitals.find((h) => h.code === open) ?? null}
            onChanged={onChanged}
            onClose={() => setOpen(null)}
          />
        </div>
      )}

      <section aria-labelledby={`${formId}-new`} className="card">
        <h2 id={`${formId}-new`}>{t("admin.hospital.new")}</h2>
        <form noValidate onSubmit={(e) => void submit(e)} aria-labelledby={`${formId}-new`}>
          <ProblemSummary formId={formId} problems={problems} labelOf={labelOf} />
          <div className="field-row">
            <TextField
              formId={formId}
              field="code"
              label={t("admin.hospital.code")}
              hint={t("admin.hospital.codeHint")}
              value={code}
              onChange={setCode}
              problems={problems}
              maxLength={32}
              autoComplete="off"
            />
            <TextField
              formId={formId}
              field="name"
              label={t("admin.hospital.name")}
              value={name}
              onChange={setName}
              problems={problems}
              maxLength={200}
              autoComplete="off"
            />
          </div>
          <div className="field-row">
            <TextField
              formId={formId}
              field="ae_titles.0.ae_title"
              label={t("admin.ae.title")}
              hint={t("admin.ae.hint", { max: AE_MAX })}
              optional
              value={ae}
              onChange={setAe}
              problems={problems}
              autoComplete="off"
            />
            <TextField
              formId={formId}
              field="ae_titles.0.source_addresses"
              label={t("admin.ae.addresses")}
              hint={t("admin.ae.addressesHint")}
              optional
              value={addresses}
              onChange={setAddresses}
              problems={problems}
              autoComplete="off"
            />
          </div>
          {existing && <p className="notice">{t("admin.hospital.exists", { code: existing.code })}</p>}
          <div className="actions">
            <button type="submit" className="primary" disabled={saving}>
              {saving ? t("admin.saving") : existing ? t("admin.hospital.update") : t("admin.hospital.create")}
            </button>
            <span role="status" className="ok-text">
              {saved}
            </span>
          </div>
        </form>
      </section>
    </div>
  );
}
