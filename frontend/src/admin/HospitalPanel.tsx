import { useEffect, useId, useRef, useState, type SubmitEvent } from "react";

import type { Hospital } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { addAETitle, listEndpoints, removeAETitle, removeEndpoint, updateEndpoint } from "./api";
import { aeTitleProblem, AE_MAX, check, splitList } from "./checks";
import { EndpointForm } from "./EndpointForm";
import { endpointTarget } from "./endpoints";
import { ProblemSummary, TextField } from "./form";
import { placeProblems, type FormProblem } from "./problems";
import type { Endpoint } from "./types";

const AE_FIELDS = ["ae_title", "source_addresses"];

export function HospitalPanel({
  hospital,
  onChanged,
  onClose,
}: {
  hospital: Hospital | null;
  onChanged: () => void;
  onClose: () => void;
}) {
  const { t } = useI18n();
  const { client } = useSession();
  const id = useId();
  const heading = useRef<HTMLHeadingElement>(null);
  const [ae, setAe] = useState("");
  const [addresses, setAddresses] = useState("");
  const [problems, setProblems] = useState<FormProblem[]>([]);
  const [working, setWorking] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [removingEndpoint, setRemovingEndpoint] = useState<number | null>(null);
  const [endpoints, setEndpoints] = useState<Endpoint[] | null>(null);
  const [endpointsError, setEndpointsError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const code = hospital?.code ?? "";

  useEffect(() => {
    heading.current?.focus();
  }, []);

  useEffect(() => {
    if (!code) return;
    let live = true;
    listEndpoints(client, code).then(
      (list) => {
        if (!live) return;
        setEndpoints(list);
        setEndpointsError(null);
      },
      (e: unknown) => {
        if (live) setEndpointsError(errorText(e, t));
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, code, reload]);

  if (!hospital) return null;

  const addAe = async (event: SubmitEvent) => {
    event.preventDefault();
    setMessage(null);
    const local = check("ae_title", aeTitleProblem(ae));
    setProblems(local);
    if (local.length > 0) return;
    setWorking(true);
    try {
      await addAETitle(client, code, { ae_title: ae.trim(), source_addresses: splitList(addresses) });
      setMessage(t("admin.ae.added", { ae: ae.trim() }));
      setAe("");
      setAddresses("");
      onChanged();
    } catch (e) {
      // A 409 (the title belongs to another hospital) concerns the title: put it there.
      const placed = placeProblems(e, { fields: AE_FIELDS, hints: { ae_title: "admin.check.aeCharacters" } });
      setProblems(placed.map((p) => (p.field === null ? { ...p, field: "ae_title" } : p)));
    } finally {
      setWorking(false);
    }
  };

  const removeAe = async (title: string) => {
    setWorking(true);
    setMessage(null);
    try {
      await removeAETitle(client, code, title);
      setMessage(t("admin.ae.removed", { ae: title }));
      setRemoving(null);
      onChanged();
    } catch (e) {
      setMessage(errorText(e, t));
    } finally {
      setWorking(false);
    }
  };

  const toggleEndpoint = async (endpoint: Endpoint) => {
    setEndpointsError(null);
    try {
      await updateEndpoint(client, code, endpoint.id, {
        kind: endpoint.kind,
        name: endpoint.name,
        config: endpoint.config,
        active: !endpoint.active,
      });
      setReload((n) => n + 1);
    } catch (e) {
      setEndpointsError(errorText(e, t));
    }
  };

  const dropEndpoint = async (endpoint: Endpoint) => {
    setEndpointsError(null);
    try {
      await removeEndpoint(client, code, endpoint.id);
      setRemovingEndpoint(null);
      setReload((n) => n + 1);
    } catch (e) {
      setEndpointsError(errorText(e, t));
    }
  };

  return (
    <section className="card hospital-panel" aria-labelledby={`${id}-title`}>
      <div className="section-head">
        <h2 id={`${id}-title`} ref={heading} tabIndex={-1}>
          {hospital.name} <span className="muted mono">({hospital.code})</span>
        </h2>
        <button type="button" className="secondary small" onClick={onClose}>
          {t("admin.close")}
        </button>
      </div>

      <h3>{t("admin.hospital.aeTitles")}</h3>
      {hospital.ae_titles.length === 0 ? (
        <p className="muted">{t("admin.ae.none")}</p>
      ) : (
        <ul className="admin-list" aria-label={t("admin.hospital.aeTitles")}>
          {hospital.ae_titles.map((a) => (
            <li key={a.id}>
              <span className="mono">{a.ae_title}</span>{" "}
              <span className="muted">
                {a.source_addresses.length > 0 ? a.source_addresses.join(", ") : t("admin.ae.anyAddress")}
              </span>
              {removing === a.ae_title ? (
                <span className="actions inline-confirm">
                  <span>{t("admin.ae.confirmRemove", { ae: a.ae_title })}</span>
                  <button type="button" className="small danger" disabled={working} onClick={() => void removeAe(a.ae_title)}>
                    {t("admin.remove")}
                  </button>
                  <button type="button" className="secondary small" onClick={() => setRemoving(null)}>
                    {t("admin.keep")}
                  </button>
                </span>
              ) : (
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => setRemoving(a.ae_title)}
                  aria-label={t("admin.ae.remove", { ae: a.ae_title })}
                >
                  {t("admin.remove")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}

      <form noValidate onSubmit={(e) => void addAe(e)} aria-labelledby={`${id}-add-ae`} className="subform">
        <h4 id={`${id}-add-ae`}>{t("admin.ae.add")}</h4>
        <ProblemSummary
          formId={`${id}-ae`}
          problems={problems}
          labelOf={(f) => (f === "ae_title" ? t("admin.ae.title") : t("admin.ae.addresses"))}
        />
        <div className="field-row">
          <TextField
            formId={`${id}-ae`}
            field="ae_title"
            label={t("admin.ae.title")}
            hint={t("admin.ae.hint", { max: AE_MAX })}
            value={ae}
            onChange={setAe}
            problems={problems}
            autoComplete="off"
          />
          <TextField
            formId={`${id}-ae`}
            field="source_addresses"
            label={t("admin.ae.addresses")}
            hint={t("admin.ae.addressesHint")}
            optional
            value={addresses}
            onChange={setAddresses}
            problems={problems}
            autoComplete="off"
          />
        </div>
        <div className="actions">
          <button type="submit" disabled={working}>
            {t("admin.ae.addButton")}
          </button>
          <span role="status" className="ok-text">
            {message}
          </span>
        </div>
      </form>

      <h3>{t("admin.endpoints.title")}</h3>
      <p className="muted">{t("admin.endpoints.intro")}</p>
      {endpointsError && (
        <p className="error" role="alert">
          {endpointsError}
        </p>
      )}
      {endpoints === null && !endpointsError && <p role="status">{t("app.loading")}</p>}
      {endpoints?.length === 0 && <p className="muted">{t("admin.endpoints.none")}</p>}
      {endpoints && endpoints.length > 0 && (
        <div className="table-wrap">
          <table className="admin-table">
            <caption className="visually-hidden">{t("admin.endpoints.title")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("admin.endpoint.name")}</th>
                <th scope="col">{t("admin.endpoint.kind")}</th>
                <th scope="col">{t("admin.endpoint.target")}</th>
                <th scope="col">{t("admin.col.status")}</th>
                <th scope="col">
                  <span className="visually-hidden">{t("admin.col.actions")}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {endpoints.map((ep) => (
                <tr key={ep.id}>
                  <td>{ep.name}</td>
                  <td>{t(ep.kind === "webhook" ? "admin.endpoint.webhook" : "admin.endpoint.dicom")}</td>
                  <td className="mono wrap">
                    {endpointTarget(ep)}
                    {ep.has_secret && <span className="badge">{t("admin.endpoint.hasSecret")}</span>}
                  </td>
                  <td>{ep.active ? t("admin.active") : t("admin.inactive")}</td>
                  <td className="actions">
                    <button type="button" className="secondary small" onClick={() => void toggleEndpoint(ep)}>
                      {ep.active ? t("admin.endpoint.deactivate") : t("admin.endpoint.activate")}
                    </button>
                    {removingEndpoint === ep.id ? (
                      <>
                        <span>{t("admin.endpoint.confirmRemove", { name: ep.name })}</span>
                        <button type="button" className="small danger" onClick={() => void dropEndpoint(ep)}>
                          {t("admin.remove")}
                        </button>
                        <button type="button" className="secondary small" onClick={() => setRemovingEndpoint(null)}>
                          {t("admin.keep")}
                        </button>
                      </>
                    ) : (
                      <button
                        type="button"
                        className="secondary small"
                        onClick={() => setRemovingEndpoint(ep.id)}
                        aria-label={t("admin.endpoint.remove", { name: ep.name })}
                      >
                        {t("admin.remove")}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <EndpointForm hospitalCode={code} onSaved={() => setReload((n) => n + 1)} />
    </section>
  );
}
