import { useState } from "react";

import { useI18n } from "../i18n/context";
import { problems, sortForDisplay, type ShownFile } from "../upload/outcomes";

function Rows({ files }: { files: readonly ShownFile[] }) {
  const { t, tv } = useI18n();
  return (
    <div className="table-scroll">
      <table className="outcomes">
        <thead>
          <tr>
            <th scope="col">{t("outcome.file")}</th>
            <th scope="col">{t("outcome.result")}</th>
            <th scope="col">{t("outcome.message")}</th>
          </tr>
        </thead>
        <tbody>
          {files.map((f) => (
            <tr key={f.name} className={`outcome-${f.outcome}`}>
              <td className="file-name">{f.name}</td>
              <td>
                <span className={`badge outcome-badge outcome-${f.outcome}`}>{tv("outcome", f.outcome)}</span>
              </td>
              <td>{f.message}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The files needing attention (open), and all files on demand (rendered only when opened: a
 * study may have thousands). */
export function OutcomeTable({ files }: { files: readonly ShownFile[] }) {
  const { t } = useI18n();
  const [showAll, setShowAll] = useState(false);
  const trouble = problems(files);
  return (
    <div className="outcome-lists">
      {trouble.length > 0 && (
        <details open>
          <summary>{t("group.problems", { n: trouble.length })}</summary>
          <Rows files={trouble} />
        </details>
      )}
      {files.length > 0 && (
        <details
          onToggle={(e) => {
            setShowAll(e.currentTarget.open);
          }}
        >
          <summary>{t("group.allFiles", { n: files.length })}</summary>
          {showAll && <Rows files={sortForDisplay(files)} />}
        </details>
      )}
    </div>
  );
}
