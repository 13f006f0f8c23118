import { useEffect, useState } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { fetchBlob } from "./api";

/** A download link for a PDF the API serves with the bearer token: fetched as a blob, offered
 * through an object URL (revoked when the link goes). */
export function PdfLink({ path, fileName, label }: { path: string; fileName: string; label: string }) {
  const { t } = useI18n();
  const { client } = useSession();
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    let made: string | null = null;
    fetchBlob(client, path, controller.signal).then(
      (blob) => {
        made = URL.createObjectURL(blob);
        setUrl(made);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError(errorText(e, t));
      },
    );
    return () => {
      controller.abort();
      if (made) URL.revokeObjectURL(made);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, path]);

  if (error) return <span className="error">{t("reading.pdfFailed", { message: error })}</span>;
  if (!url) return <span className="muted">{t("app.loading")}</span>;
  return (
    <a href={url} download={fileName} className="pdf-link">
      {label}
    </a>
  );
}
