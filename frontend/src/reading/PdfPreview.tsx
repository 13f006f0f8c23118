import { useEffect, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { fetchBlob, previewPdfPath } from "./api";

const PREVIEW_DELAY_MS = 1200;

/** The saved draft as the PDF signing would make it (marked DRAFT), fetched again a moment after
 * each autosave (`revision`). */
export function PdfPreview({ reportId, revision }: { reportId: number; revision: number }) {
  const { t } = useI18n();
  const { client } = useSession();
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  useEffect(() => {
    const controller = new AbortController();
    const handle = setTimeout(() => {
      setLoading(true);
      fetchBlob(client, previewPdfPath(reportId), controller.signal).then(
        (blob) => {
          setLoading(false);
          setError(null);
          setUrl(URL.createObjectURL(blob));
        },
        (e: unknown) => {
          if (controller.signal.aborted) return;
          setLoading(false);
          setError(errorText(e, t));
        },
      );
    }, PREVIEW_DELAY_MS);
    return () => {
      clearTimeout(handle);
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, reportId, revision]);

  useEffect(
    () => () => {
      if (url) URL.revokeObjectURL(url);
    },
    [url],
  );

  return (
    <div className="pdf-preview">
      <p className="muted" aria-live="polite">
        {loading ? t("reading.preview.loading") : url ? t("reading.preview.ready") : ""}
      </p>
      {error && (
        <p className="error" role="alert">
          {t("reading.preview.failed", { message: error })}
        </p>
      )}
      {url && <iframe src={url} title={t("reading.preview.title")} className="pdf-frame" />}
    </div>
  );
}
