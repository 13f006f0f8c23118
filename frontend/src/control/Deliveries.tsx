import { useEffect, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { deliveries, retryDelivery } from "./api";
import type { Delivery } from "./types";
import { TableWrap } from "./TableWrap";

/** Reports that could not be delivered back to the hospital, each retried by hand once its cause
 * (an endpoint, a peer) is fixed. */
export function Deliveries() {
  const { t, tv, dateTime, number } = useI18n();
  const { client } = useSession();
  const [list, setList] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [busy, setBusy] = useState<number | null>(null);
  const [done, setDone] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    deliveries(client, ["failed"], controller.signal).then(
      (next) => {
        setList(next);
        setError(null);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError(errorText(e, t));
      },
    );
    return () => {
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, reload]);

  const retry = async (d: Delivery) => {
    setBusy(d.id);
    setError(null);
    setDone(null);
    try {
      await retryDelivery(client, d.id);
      setDone(t("control.deliveries.retried", { id: d.id }));
      setReload((n) => n + 1);
    } catch (e) {
      setError(errorText(e, t));
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="control-deliveries">
      <div className="actions">
        <button type="button" className="secondary" onClick={() => setReload((n) => n + 1)}>
          {t("control.refresh")}
        </button>
      </div>
      <p className="ok-text" role="status">
        {done}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {!list && !error && <p role="status">{t("app.loading")}</p>}
      {list?.length === 0 && <p className="muted empty">{t("control.deliveries.empty")}</p>}
      {list && list.length > 0 && (
        <TableWrap label={t("control.deliveries.caption")}>
          <table className="cases-table control-table">
            <caption className="visually-hidden">{t("control.deliveries.caption")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("control.col.case")}</th>
                <th scope="col">{t("control.col.endpoint")}</th>
                <th scope="col">{t("control.col.version")}</th>
                <th scope="col" className="num">
                  {t("control.col.attempts")}
                </th>
                <th scope="col">{t("control.col.error")}</th>
                <th scope="col">{t("control.col.updated")}</th>
                <th scope="col">{t("control.col.actions")}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id}>
                  <th scope="row">{t("control.caseId", { id: d.case_id })}</th>
                  <td>
                    {d.endpoint_name} <span className="muted">({d.kind})</span>
                  </td>
                  <td>
                    {t("control.deliveries.version", { version: d.version, status: tv("status", d.report_status) })}
                  </td>
                  <td className="num">{number(d.attempts)}</td>
                  <td className="delivery-error">
                    {d.last_error}
                    {d.last_code && <span className="muted"> ({d.last_code})</span>}
                  </td>
                  <td>{dateTime(d.updated_at)}</td>
                  <td>
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy !== null}
                      aria-label={t("control.deliveries.retryLabel", { id: d.id })}
                      onClick={() => void retry(d)}
                    >
                      {t("control.deliveries.retry")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      )}
    </div>
  );
}
