import type { CaseDetail } from "../api/types";
import { formatDicomDate, formatPersonName } from "../dicom/text";
import { useI18n } from "../i18n/context";
import { Countdown } from "./Countdown";
import type { PriorRead } from "./types";

/** Statuses after which the deadline is met: no countdown. */
const REPORTED = ["preliminary", "final", "amended"];

/** Who and what is being read: patient, priority, question, deadline, earlier studies. */
export function CaseHeader({
  detail,
  priors,
  now,
  titleId,
}: {
  detail: CaseDetail;
  priors: PriorRead[] | null;
  now: number;
  titleId: string;
}) {
  const { t, tv } = useI18n();
  const name = formatPersonName(detail.patient_name) || t("cases.noName");
  return (
    <header className="reading-head card">
      <h1 id={titleId}>
        {name} <span className="muted case-number">· {t("case.title", { id: detail.id })}</span>
      </h1>
      <div className="badges">
        <span className={`badge priority-${detail.priority}`}>{tv("priority", detail.priority)}</span>
        <span className={`badge status-${detail.status}`}>{tv("status", detail.status)}</span>
        {!REPORTED.includes(detail.status) && (
          <Countdown deadline={detail.deadline} state={detail.sla_state} now={now} />
        )}
      </div>
      <dl className="facts reading-facts">
        <div className="fact">
          <dt>{t("reading.head.patient")}</dt>
          <dd>
            {[detail.patient_id, detail.patient_sex, formatDicomDate(detail.patient_birth_date)].filter(Boolean).join(" · ")}
          </dd>
        </div>
        <div className="fact">
          <dt>{t("reading.head.exam")}</dt>
          <dd>
            {[detail.modalities.join(", "), detail.study_description, formatDicomDate(detail.study_date)]
              .filter(Boolean)
              .join(" · ")}
          </dd>
        </div>
        <div className="fact">
          <dt>{t("reading.head.hospital")}</dt>
          <dd>{detail.hospital_code}</dd>
        </div>
        <div className="fact wide">
          <dt>{t("reading.head.question")}</dt>
          <dd className="prewrap">{detail.clinical_question || t("case.none")}</dd>
        </div>
        {detail.clinical_history && (
          <div className="fact wide">
            <dt>{t("reading.head.history")}</dt>
            <dd className="prewrap">{detail.clinical_history}</dd>
          </div>
        )}
        <div className="fact wide">
          <dt>{t("reading.head.priors")}</dt>
          <dd>
            {priors === null ? (
              t("app.loading")
            ) : priors.length === 0 ? (
              t("reading.head.noPriors")
            ) : (
              <ul className="priors">
                {priors.map((p) => (
                  <li key={p.study_instance_uid}>
                    {[formatDicomDate(p.study_date), p.modalities.join(", "), p.study_description].filter(Boolean).join(" · ")}
                  </li>
                ))}
              </ul>
            )}
          </dd>
        </div>
      </dl>
    </header>
  );
}
