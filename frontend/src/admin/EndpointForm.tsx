import { useId, useState, type SubmitEvent } from "react";

import { ApiError } from "../api/client";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { addEndpoint } from "./api";
import { AE_MAX, SECRET_MIN } from "./checks";
import { checkEndpointForm, emptyEndpointForm, endpointBody, endpointFields, type EndpointFormValues } from "./endpoints";
import { FieldProblems, ProblemSummary, TextField, fieldId } from "./form";
import { placeProblems, type FormProblem } from "./problems";
import { ENDPOINT_KINDS } from "./types";

const HINTS = {
  "config.ae_title": "admin.check.aeCharacters",
  "config.calling_ae": "admin.check.aeCharacters",
  "config.signature_header": "admin.check.header",
} as const;

export function EndpointForm({ hospitalCode, onSaved }: { hospitalCode: string; onSaved: () => void }) {
  const { t } = useI18n();
  const { client } = useSession();
  const formId = useId();
  const [form, setForm] = useState<EndpointFormValues>(emptyEndpointForm());
  const [problems, setProblems] = useState<FormProblem[]>([]);
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState<string | null>(null);
  const set = <K extends keyof EndpointFormValues>(key: K) => (value: EndpointFormValues[K]) => {
    setForm((f) => ({ ...f, [key]: value }));
  };

  const labels: Record<string, string> = {
    kind: t("admin.endpoint.kind"),
    name: t("admin.endpoint.name"),
    config: t("admin.endpoint.config"),
    "config.url": t("admin.endpoint.url"),
    "config.secret": t("admin.endpoint.secret"),
    "config.signature_header": t("admin.endpoint.signatureHeader"),
    "config.ae_title": t("admin.endpoint.calledAe"),
    "config.host": t("admin.endpoint.host"),
    "config.port": t("admin.endpoint.port"),
    "config.calling_ae": t("admin.endpoint.callingAe"),
    "config.send_sr": t("admin.endpoint.sendSr"),
  };

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setSaved(null);
    const local = checkEndpointForm(form);
    setProblems(local);
    if (local.length > 0) return;
    setSaving(true);
    try {
      const endpoint = await addEndpoint(client, hospitalCode, endpointBody(form));
      setSaved(t("admin.endpoint.saved", { name: endpoint.name }));
      setForm(emptyEndpointForm(form.kind));
      onSaved();
    } catch (e) {
      // The config's own check answers with paths inside the config ("url").
      const inConfig = e instanceof ApiError && e.code === "unprocessable";
      setProblems(
        placeProblems(e, { fields: endpointFields(form.kind), hints: HINTS, prefix: inConfig ? "config" : "" }),
      );
    } finally {
      setSaving(false);
    }
  };

  const common = { formId, problems };
  return (
    <form noValidate onSubmit={(e) => void submit(e)} aria-labelledby={`${formId}-title`} className="subform">
      <h4 id={`${formId}-title`}>{t("admin.endpoint.add")}</h4>
      <ProblemSummary formId={formId} problems={problems} labelOf={(f) => labels[f] ?? f} />
      <fieldset className="priority-choice">
        <legend>{t("admin.endpoint.kind")}</legend>
        {ENDPOINT_KINDS.map((kind) => (
          <label key={kind} className="choice">
            <input
              type="radio"
              name={`${formId}-kind`}
              value={kind}
              checked={form.kind === kind}
              onChange={() => {
                setForm((f) => ({ ...f, kind }));
                setProblems([]);
              }}
            />
            <span>{t(kind === "webhook" ? "admin.endpoint.webhook" : "admin.endpoint.dicom")}</span>
          </label>
        ))}
      </fieldset>
      <TextField {...common} field="name" label={t("admin.endpoint.name")} value={form.name} onChange={set("name")} maxLength={100} />
      {form.kind === "webhook" ? (
        <>
          <TextField
            {...common}
            field="config.url"
            type="url"
            label={t("admin.endpoint.url")}
            hint={t("admin.endpoint.urlHint")}
            value={form.url}
            onChange={set("url")}
            autoComplete="off"
          />
          <div className="field-row">
            <TextField
              {...common}
              field="config.secret"
              type="password"
              label={t("admin.endpoint.secret")}
              hint={t("admin.endpoint.secretHint", { n: SECRET_MIN })}
              value={form.secret}
              onChange={set("secret")}
              autoComplete="new-password"
            />
            <TextField
              {...common}
              field="config.signature_header"
              label={t("admin.endpoint.signatureHeader")}
              hint={t("admin.endpoint.signatureHeaderHint")}
              optional
              value={form.signature_header}
              onChange={set("signature_header")}
              autoComplete="off"
            />
          </div>
        </>
      ) : (
        <>
          <div className="field-row">
            <TextField
              {...common}
              field="config.ae_title"
              label={t("admin.endpoint.calledAe")}
              hint={t("admin.ae.hint", { max: AE_MAX })}
              value={form.ae_title}
              onChange={set("ae_title")}
              autoComplete="off"
            />
            <TextField
              {...common}
              field="config.calling_ae"
              label={t("admin.endpoint.callingAe")}
              hint={t("admin.endpoint.callingAeHint")}
              optional
              value={form.calling_ae}
              onChange={set("calling_ae")}
              autoComplete="off"
            />
          </div>
          <div className="field-row">
            <TextField {...common} field="config.host" label={t("admin.endpoint.host")} value={form.host} onChange={set("host")} autoComplete="off" />
            <TextField
              {...common}
              field="config.port"
              label={t("admin.endpoint.port")}
              inputMode="numeric"
              value={form.port}
              onChange={set("port")}
              autoComplete="off"
            />
          </div>
          <div className="field checkbox">
            <label>
              <input
                type="checkbox"
                id={fieldId(formId, "config.send_sr")}
                checked={form.send_sr}
                onChange={(e) => set("send_sr")(e.target.checked)}
              />{" "}
              {t("admin.endpoint.sendSr")}
            </label>
            <FieldProblems formId={formId} field="config.send_sr" problems={problems} />
          </div>
        </>
      )}
      <FieldProblems formId={formId} field="config" problems={problems} />
      <div className="actions">
        <button type="submit" disabled={saving}>
          {saving ? t("admin.saving") : t("admin.endpoint.addButton")}
        </button>
        <span role="status" className="ok-text">
          {saved}
        </span>
      </div>
    </form>
  );
}
