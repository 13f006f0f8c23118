import { useEffect, useId, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { cosignQueue, cosignReport, versionPdfPath } from "./api";
import { PasswordDialog } from "./PasswordDialog";
import { PdfLink } from "./PdfLink";
import type { CosignItem } from "./types";

/** Preliminary reports of junior readers waiting for a senior's co-signature. */
export function CosignQueue({ version }: { version: number }) {
  const { t, tv, dateTime } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [items, setItems] = useState<CosignItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [signing, setSigning] = useState<CosignItem | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [reload, setReload] = useState(0);

  useEffect(() => {
    let live = true;
    cosignQueue(client).then(
      (list) => {
        if (!live) return;
        setItems(list);
        setError(null);
      },
      (e: unknown) => {
        if (live) setError(errorText(e, t));
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, version, reload]);

  return (
    <section aria-labelledby={`${id}-title`} className="worklist-section cosign-queue">
      <h2 id={`${id}-title`}>{t("reading.cosign.title")}</h2>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {done && (
        <p className="ok-text" role="status">
          {done}
        </p>
      )}
      {items?.length === 0 && <p className="muted">{t("reading.cosign.empty")}</p>}
      {items && items.length > 0 && (
        <div className="table-wrap">
          <table className="worklist-table">
            <caption className="visually-hidden">{t("reading.cosign.title")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("reading.col.case")}</th>
                <th scope="col">{t("reading.col.priority")}</th>
                <th scope="col">{t("reading.col.description")}</th>
                <th scope="col">{t("reading.col.author")}</th>
                <th scope="col">{t("reading.col.signed")}</th>
                <th scope="col">{t("reading.col.actions")}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.report_id}>
                  <td data-label={t("reading.col.case")}>{item.case_id}</td>
                  <td data-label={t("reading.col.priority")}>
                    <span className={`badge priority-${item.priority}`}>{tv("priority", item.priority)}</span>
                  </td>
                  <td data-label={t("reading.col.description")}>{item.study_description}</td>
                  <td data-label={t("reading.col.author")}>{item.author_name}</td>
                  <td data-label={t("reading.col.signed")}>{dateTime(item.signed_at)}</td>
                  <td data-label={t("reading.col.actions")} className="row-actions">
                    <PdfLink
                      path={versionPdfPath(item.report_id, item.version)}
                      fileName={`report-${item.report_id}-v${item.version}.pdf`}
                      label={t("reading.pdfVersion", { n: item.version })}
                    />
                    <button type="button" className="primary small" onClick={() => setSigning(item)}>
                      {t("reading.cosign.action")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {signing && (
        <PasswordDialog
          title={t("reading.cosign.dialog", { id: signing.case_id })}
          confirmLabel={t("reading.cosign.action")}
          onClose={() => setSigning(null)}
          onConfirm={async (credentials) => {
            await cosignReport(client, signing.report_id, credentials);
            setDone(t("reading.cosign.done", { id: signing.case_id }));
            setSigning(null);
            setReload((n) => n + 1);
          }}
        />
      )}
    </section>
  );
}
