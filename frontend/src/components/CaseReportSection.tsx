import { useEffect, useState } from "react";

import { ApiError } from "../api/client";
import type { CaseDelivery, CaseReport } from "../api/types";
import { pdfFileName, signersText, versionsToShow } from "../cases/report";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";

/** The case's signed report as the sending hospital (and staff) get it: each version the caller
 * may see, with who signed it and its PDF to download. */
/** Case statuses that mean a report has been signed; before them there is nothing to fetch (and
 * asking would only earn a 404). */
const REPORTED = new Set(["preliminary", "final", "amended"]);

export function CaseReportSection({
  caseId,
  status,
  version,
  headingId,
}: {
  caseId: number;
  status: string;
  /** Changes when a live event names this case: fetch again (a report may just have been signed). */
  version: number;
  headingId: string;
}) {
  const { t, tv, dateTime } = useI18n();
  const { client } = useSession();
  const [report, setReport] = useState<CaseReport | null>(null);
  const reported = REPORTED.has(status);
  const [state, setState] = useState<"loading" | "none" | "ready" | "error">("loading");
  const [error, setError] = useState<string | null>(null);
  const [downloading, setDownloading] = useState<number | null>(null);
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const [deliveries, setDeliveries] = useState<CaseDelivery[]>([]);

  useEffect(() => {
    if (!reported) return;
    const controller = new AbortController();
    client.request<CaseReport>(`/api/cases/${caseId}/report`, { signal: controller.signal }).then(
      (r) => {
        setReport(r);
        setState("ready");
      },
      (e: unknown) => {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) {
          setReport(null);
          setState("none");
        } else {
          setError(errorText(e, t));
          setState("error");
        }
      },
    );
    // Where the report went: the hospital's PACS or webhook, and how that stands.
    client.request<CaseDelivery[]>(`/api/cases/${caseId}/deliveries`, { signal: controller.signal }).then(
      setDeliveries,
      () => {
        if (!controller.signal.aborted) setDeliveries([]);
      },
    );
    return () => {
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, caseId, version, reported]);

  const download = async (reportId: number, n: number) => {
    setDownloading(n);
    setDownloadError(null);
    try {
      const blob = await client.blob(`/api/reports/${reportId}/versions/${n}/pdf`);
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = pdfFileName(caseId, n);
      document.body.append(link);
      link.click();
      link.remove();
      // The browser has taken the file by the next task; the URL is not needed after that.
      setTimeout(() => {
        URL.revokeObjectURL(url);
      }, 0);
    } catch (e) {
      setDownloadError(errorText(e, t));
    } finally {
      setDownloading(null);
    }
  };

  const shown = report && reported ? versionsToShow(report.versions) : [];
  return (
    <section aria-labelledby={headingId}>
      <h3 id={headingId}>{t("report.title")}</h3>
      {!reported && <p className="muted">{t("report.none")}</p>}
      {reported && state === "loading" && <p className="muted">{t("app.loading")}</p>}
      {state === "error" && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {reported && (state === "none" || (state === "ready" && shown.length === 0)) && (
        <p className="muted">{t("report.none")}</p>
      )}
      {report && shown.length > 0 && (
        <>
          {report.awaiting_cosign && <p className="muted">{t("report.awaitingCosign")}</p>}
          <ul className="report-versions">
            {shown.map((v) => (
              <li key={v.version} data-version={v.version}>
                <span className="report-version">
                  {t("report.version", { n: v.version })} · {tv("reportStatus", v.status)}
                  {v.superseded_at && <span className="muted"> · {t("report.superseded")}</span>}
                </span>
                <span className="muted">
                  {t("report.signedBy", { names: signersText(v.signatures) })} · {dateTime(v.created_at)}
                </span>
                {v.amendment_reason && (
                  <span className="prewrap">{t("report.amendmentReason", { reason: v.amendment_reason })}</span>
                )}
                <button
                  type="button"
                  className="secondary"
                  disabled={downloading !== null}
                  onClick={() => void download(report.id, v.version)}
                >
                  {downloading === v.version
                    ? t("report.downloading")
                    : t("report.download", { n: v.version })}
                </button>
              </li>
            ))}
          </ul>
          {downloadError && (
            <p className="error" role="alert">
              {downloadError}
            </p>
          )}
          {deliveries.length > 0 && (
            <>
              <h4>{t("delivery.title")}</h4>
              <ul className="report-deliveries">
                {deliveries.map((d) => (
                  <li key={d.id} data-status={d.status}>
                    {t("delivery.line", { endpoint: d.endpoint_name, n: d.version })} ·{" "}
                    <span className={`badge delivery-${d.status}`}>{tv("deliveryStatus", d.status)}</span>
                    {d.sent_at && <span className="muted"> · {dateTime(d.sent_at)}</span>}
                    {d.status !== "sent" && d.attempts > 0 && (
                      <span className="muted"> · {t("delivery.attempts", { n: d.attempts })}</span>
                    )}
                    {d.status !== "sent" && d.last_error && (
                      <span className="muted"> · {d.last_error}</span>
                    )}
                  </li>
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </section>
  );
}
