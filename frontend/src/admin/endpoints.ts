// Delivery endpoints (docs/delivery.md): the form's values as the API body, the checks the form
// makes before sending, and a one-line "where it goes" for the list.

import { aeTitleProblem, check, SECRET_MIN, webhookUrlProblem } from "./checks";
import type { FormProblem } from "./problems";
import type { Endpoint, EndpointIn, EndpointKind } from "./types";

export interface EndpointFormValues {
  kind: EndpointKind;
  name: string;
  url: string;
  secret: string;
  signature_header: string;
  ae_title: string;
  host: string;
  port: string;
  calling_ae: string;
  send_sr: boolean;
}

export function emptyEndpointForm(kind: EndpointKind = "webhook"): EndpointFormValues {
  return {
    kind,
    name: "",
    url: "",
    secret: "",
    signature_header: "",
    ae_title: "",
    host: "",
    port: "104",
    calling_ae: "",
    send_sr: false,
  };
}

/** The API body. Optional settings left empty are left out, so the server's defaults apply. */
export function endpointBody(form: EndpointFormValues): EndpointIn {
  const config: Record<string, unknown> = {};
  if (form.kind === "webhook") {
    config.url = form.url.trim();
    config.secret = form.secret;
    if (form.signature_header.trim()) config.signature_header = form.signature_header.trim();
  } else {
    config.ae_title = form.ae_title.trim();
    config.host = form.host.trim();
    config.port = form.port.trim() === "" ? null : Number(form.port.trim());
    if (form.calling_ae.trim()) config.calling_ae = form.calling_ae.trim();
    config.send_sr = form.send_sr;
  }
  return { kind: form.kind, name: form.name.trim(), config, active: true };
}

/** The form's field keys: the config's own under "config." as the server's paths name them. */
export function endpointFields(kind: EndpointKind): string[] {
  const config =
    kind === "webhook"
      ? ["url", "secret", "signature_header"]
      : ["ae_title", "host", "port", "calling_ae", "send_sr"];
  return ["kind", "name", "config", ...config.map((f) => `config.${f}`)];
}

export function checkEndpointForm(form: EndpointFormValues): FormProblem[] {
  const problems = check("name", form.name.trim() ? null : "admin.problem.required");
  if (form.kind === "webhook") {
    problems.push(...check("config.url", webhookUrlProblem(form.url)));
    if (form.secret === "") problems.push(...check("config.secret", "admin.problem.required"));
    else if (form.secret.length < SECRET_MIN) {
      problems.push({ field: "config.secret", words: { key: "admin.check.secretShort", vars: { n: SECRET_MIN } } });
    }
  } else {
    problems.push(...check("config.ae_title", aeTitleProblem(form.ae_title)));
    problems.push(...check("config.host", form.host.trim() ? null : "admin.problem.required"));
    const port = Number(form.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push(...check("config.port", "admin.check.port"));
    }
    if (form.calling_ae.trim()) problems.push(...check("config.calling_ae", aeTitleProblem(form.calling_ae)));
  }
  return problems;
}

const text = (value: unknown): string =>
  typeof value === "string" ? value : typeof value === "number" ? String(value) : "";

/** Where an endpoint delivers: the webhook's URL, or AE@host:port of the PACS. */
export function endpointTarget(endpoint: Pick<Endpoint, "kind" | "config">): string {
  const c = endpoint.config;
  if (endpoint.kind === "webhook") return text(c.url);
  return `${text(c.ae_title)}@${text(c.host)}:${text(c.port)}`;
}
