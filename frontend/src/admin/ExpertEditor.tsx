import { useId, useState, type SubmitEvent } from "react";

import { ApiError } from "../api/client";
import { SUBSPECIALTIES, type Hospital, type Subspecialty } from "../api/types";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { putExpert } from "./api";
import {
  bodyOf,
  checkExpertForm,
  emptyExpertForm,
  expertFieldOf,
  expertFields,
  formOf,
  unknownHospitalRows,
  type ExpertForm,
} from "./expertForm";
import { FieldProblems, ProblemSummary, TextField, invalidProps } from "./form";
import { placeProblems, type FormProblem } from "./problems";
import { EMPLOYMENTS, LEVELS, QUALIFICATIONS, type Employment, type Expert, type Qualification, type User } from "./types";

const WEEKDAYS = [0, 1, 2, 3, 4, 5, 6] as const;

function timeZones(): string[] {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["Asia/Shanghai", "UTC"];
  }
}

export function ExpertEditor({
  user,
  expert,
  hospitals,
  onSaved,
  onClose,
}: {
  user: User;
  expert: Expert | null;
  hospitals: Hospital[];
  onSaved: (expert: Expert) => void;
  onClose: () => void;
}) {
  const { t, tv } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [form, setForm] = useState<ExpertForm>(() => (expert ? formOf(expert) : emptyExpertForm()));
  const [problems, setProblems] = useState<FormProblem[]>([]);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const [zones] = useState(timeZones);
  const name = user.display_name || user.username;

  const update = (change: (f: ExpertForm) => ExpertForm) => {
    setForm(change);
    setSaved(false);
  };
  const setRow = <K extends "subspecialties" | "credentials" | "shifts">(
    list: K,
    index: number,
    patch: Partial<ExpertForm[K][number]>,
  ) => {
    update((f) => ({ ...f, [list]: f[list].map((row, i) => (i === index ? { ...row, ...patch } : row)) }));
  };
  const removeRow = (list: "subspecialties" | "credentials" | "shifts", index: number) => {
    update((f) => ({ ...f, [list]: f[list].filter((_, i) => i !== index) }));
    setProblems([]);
  };

  const labelOf = (field: string): string => {
    const [list, index, part] = field.split(".");
    const n = Number(index) + 1;
    if (list === "subspecialties" && part) {
      return `${t("admin.expert.subspecialtyN", { n })} · ${t(part === "level" ? "admin.expert.level" : "admin.expert.subspecialty")}`;
    }
    if (list === "credentials" && part) {
      return `${t("admin.expert.credentialN", { n })} · ${t(part === "expires" ? "admin.expert.expires" : "admin.expert.hospital")}`;
    }
    if (list === "shifts" && part) {
      const key = part === "weekday" ? "admin.expert.weekday" : part === "start" ? "admin.expert.start" : "admin.expert.end";
      return `${t("admin.expert.shiftN", { n })} · ${t(key)}`;
    }
    const plain: Record<string, string> = {
      employment: t("admin.expert.employment"),
      qualification: t("admin.expert.qualification"),
      subspecialties: t("admin.expert.subspecialties"),
      credentials: t("admin.expert.credentials"),
      shifts: t("admin.expert.shifts"),
      timezone: t("admin.expert.timezone"),
      cap_open_cases: t("admin.expert.capOpen"),
      cap_daily_units: t("admin.expert.capUnits"),
    };
    return plain[field] ?? field;
  };

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setSaved(false);
    const local = checkExpertForm(form);
    setProblems(local);
    if (local.length > 0) return;
    setSaving(true);
    try {
      const answer = await putExpert(client, user.id, bodyOf(form));
      setForm(formOf(answer));
      setSaved(true);
      onSaved(answer);
    } catch (e) {
      const rows = e instanceof ApiError ? unknownHospitalRows(e.detail, form) : [];
      const placed = placeProblems(e, { fields: expertFields(form), rename: (path) => expertFieldOf(path, form) });
      setProblems([...placed, ...rows]);
    } finally {
      setSaving(false);
    }
  };

  const hospitalCodes = new Set(hospitals.map((h) => h.code));
  const common = { formId: id, problems };

  return (
    <section className="card expert-editor" aria-labelledby={`${id}-title`}>
      <div className="section-head">
        <h2 id={`${id}-title`}>{t(expert ? "admin.expert.editTitle" : "admin.expert.createTitle", { name })}</h2>
        <button type="button" className="secondary small" onClick={onClose}>
          {t("admin.close")}
        </button>
      </div>
      <form noValidate onSubmit={(e) => void submit(e)} aria-labelledby={`${id}-title`}>
        <ProblemSummary formId={id} problems={problems} labelOf={labelOf} />
        <div className="field-row">
          <Choice
            formId={id}
            field="employment"
            label={t("admin.expert.employment")}
            value={form.employment}
            options={EMPLOYMENTS.map((e) => ({ value: e, label: t(`admin.employment.${e}`) }))}
            onChange={(v) => update((f) => ({ ...f, employment: v as Employment }))}
            problems={problems}
          />
          <Choice
            formId={id}
            field="qualification"
            label={t("admin.expert.qualification")}
            value={form.qualification}
            options={QUALIFICATIONS.map((q) => ({ value: q, label: t(`admin.qualification.${q}`) }))}
            onChange={(v) => update((f) => ({ ...f, qualification: v as Qualification }))}
            problems={problems}
          />
        </div>

        <fieldset className="rows">
          <legend>{t("admin.expert.subspecialties")}</legend>
          <p className="muted field-hint">{t("admin.expert.levelHint")}</p>
          {form.subspecialties.map((row, i) => (
            <div key={i} role="group" aria-label={t("admin.expert.subspecialtyN", { n: i + 1 })} className="row-group">
              <Choice
                formId={id}
                field={`subspecialties.${i}.subspecialty`}
                label={t("admin.expert.subspecialty")}
                value={row.subspecialty}
                options={[
                  { value: "", label: t("admin.expert.choose") },
                  ...SUBSPECIALTIES.map((s) => ({ value: s, label: tv("subspecialty", s) })),
                ]}
                onChange={(v) => setRow("subspecialties", i, { subspecialty: v as Subspecialty | "" })}
                problems={problems}
              />
              <Choice
                formId={id}
                field={`subspecialties.${i}.level`}
                label={t("admin.expert.level")}
                value={row.level}
                options={LEVELS.map((l) => ({ value: String(l), label: t(`admin.level.${l}`) }))}
                onChange={(v) => setRow("subspecialties", i, { level: v })}
                problems={problems}
              />
              <RemoveRow
                label={t("admin.expert.removeSubspecialty", { n: i + 1 })}
                disabled={form.subspecialties.length <= 1}
                onClick={() => removeRow("subspecialties", i)}
              />
            </div>
          ))}
          <FieldProblems formId={id} field="subspecialties" problems={problems} />
          <button
            type="button"
            className="secondary small"
            onClick={() => update((f) => ({ ...f, subspecialties: [...f.subspecialties, { subspecialty: "", level: "2" }] }))}
          >
            {t("admin.expert.addSubspecialty")}
          </button>
        </fieldset>

        <fieldset className="rows">
          <legend>{t("admin.expert.credentials")}</legend>
          <p className="muted field-hint">{t("admin.expert.credentialsHint")}</p>
          {form.credentials.map((row, i) => (
            <div key={i} role="group" aria-label={t("admin.expert.credentialN", { n: i + 1 })} className="row-group">
              <Choice
                formId={id}
                field={`credentials.${i}.hospital_code`}
                label={t("admin.expert.hospital")}
                value={row.hospital_code}
                options={[
                  { value: "", label: t("admin.expert.choose") },
                  ...(row.hospital_code && !hospitalCodes.has(row.hospital_code)
                    ? [{ value: row.hospital_code, label: row.hospital_code }]
                    : []),
                  ...hospitals.map((h) => ({ value: h.code, label: `${h.code} · ${h.name}` })),
                ]}
                onChange={(v) => setRow("credentials", i, { hospital_code: v })}
                problems={problems}
              />
              <TextField
                {...common}
                field={`credentials.${i}.expires`}
                type="datetime-local"
                label={t("admin.expert.expires")}
                hint={t("admin.expert.expiresHint")}
                optional
                value={row.expires}
                onChange={(v) => setRow("credentials", i, { expires: v })}
              />
              <RemoveRow label={t("admin.expert.removeCredential", { n: i + 1 })} onClick={() => removeRow("credentials", i)} />
            </div>
          ))}
          <FieldProblems formId={id} field="credentials" problems={problems} />
          <button
            type="button"
            className="secondary small"
            onClick={() => update((f) => ({ ...f, credentials: [...f.credentials, { hospital_code: "", expires: "" }] }))}
          >
            {t("admin.expert.addCredential")}
          </button>
        </fieldset>

        <fieldset className="rows">
          <legend>{t("admin.expert.shifts")}</legend>
          <p className="muted field-hint">{t("admin.expert.shiftsHint")}</p>
          <div className="field zone-field">
            <label htmlFor={invalidProps(id, "timezone", problems).id}>{t("admin.expert.timezone")}</label>
            <input
              {...invalidProps(id, "timezone", problems)}
              list={`${id}-zones`}
              value={form.timezone}
              onChange={(e) => update((f) => ({ ...f, timezone: e.target.value }))}
              autoComplete="off"
              spellCheck={false}
            />
            <datalist id={`${id}-zones`}>
              {zones.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
            <FieldProblems formId={id} field="timezone" problems={problems} />
          </div>
          {form.shifts.map((row, i) => (
            <div key={i} role="group" aria-label={t("admin.expert.shiftN", { n: i + 1 })} className="row-group">
              <Choice
                formId={id}
                field={`shifts.${i}.weekday`}
                label={t("admin.expert.weekday")}
                value={row.weekday}
                options={WEEKDAYS.map((d) => ({ value: String(d), label: t(`admin.weekday.${d}`) }))}
                onChange={(v) => setRow("shifts", i, { weekday: v })}
                problems={problems}
              />
              <TextField
                {...common}
                field={`shifts.${i}.start`}
                type="time"
                label={t("admin.expert.start")}
                value={row.start}
                onChange={(v) => setRow("shifts", i, { start: v })}
              />
              <TextField
                {...common}
                field={`shifts.${i}.end`}
                type="time"
                label={t("admin.expert.end")}
                value={row.end}
                onChange={(v) => setRow("shifts", i, { end: v })}
              />
              <RemoveRow label={t("admin.expert.removeShift", { n: i + 1 })} onClick={() => removeRow("shifts", i)} />
            </div>
          ))}
          <FieldProblems formId={id} field="shifts" problems={problems} />
          <button
            type="button"
            className="secondary small"
            onClick={() =>
              update((f) => ({ ...f, shifts: [...f.shifts, { weekday: "0", start: "08:00", end: "17:00" }] }))
            }
          >
            {t("admin.expert.addShift")}
          </button>
        </fieldset>

        <div className="field-row">
          <TextField
            {...common}
            field="cap_open_cases"
            label={t("admin.expert.capOpen")}
            hint={t("admin.expert.capHint")}
            optional
            inputMode="numeric"
            value={form.cap_open_cases}
            onChange={(v) => update((f) => ({ ...f, cap_open_cases: v }))}
          />
          <TextField
            {...common}
            field="cap_daily_units"
            label={t("admin.expert.capUnits")}
            hint={t("admin.expert.capHint")}
            optional
            inputMode="decimal"
            value={form.cap_daily_units}
            onChange={(v) => update((f) => ({ ...f, cap_daily_units: v }))}
          />
        </div>

        <div className="actions">
          <button type="submit" className="primary" disabled={saving}>
            {saving ? t("admin.saving") : t("admin.expert.save")}
          </button>
          <span role="status" className="ok-text">
            {saved && t("admin.expert.saved", { name })}
          </span>
        </div>
      </form>
    </section>
  );
}

function Choice({
  formId,
  field,
  label,
  value,
  options,
  onChange,
  problems,
}: {
  formId: string;
  field: string;
  label: string;
  value: string;
  options: { value: string; label: string }[];
  onChange: (value: string) => void;
  problems: readonly FormProblem[];
}) {
  const props = invalidProps(formId, field, problems);
  return (
    <div className="field">
      <label htmlFor={props.id}>{label}</label>
      <select {...props} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <FieldProblems formId={formId} field={field} problems={problems} />
    </div>
  );
}

function RemoveRow({ label, onClick, disabled = false }: { label: string; onClick: () => void; disabled?: boolean }) {
  const { t } = useI18n();
  return (
    <button type="button" className="secondary small remove-row" aria-label={label} disabled={disabled} onClick={onClick}>
      {t("admin.remove")}
    </button>
  );
}
