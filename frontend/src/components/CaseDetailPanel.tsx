import { useEffect, useId, useRef, useState, type SubmitEvent, type ReactNode } from "react";

import type { CaseDetail } from "../api/types";
import { actorText, changes, eventDetails, fieldsOf } from "../cases/edit";
import { readerText } from "../cases/reading";
import { formatDicomDate, formatPersonName } from "../dicom/text";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { linkClick } from "../router";
import { canEditCase, useSession } from "../session";
import type { CaseFields } from "../upload/send";
import { CaseFieldsForm } from "./CaseFieldsForm";
import { CaseReportSection } from "./CaseReportSection";
import { Deadline } from "./Deadline";

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{children}</dd>
    </div>
  );
}

export function CaseDetailPanel({
  caseId,
  version,
  onClose,
}: {
  caseId: number;
  /** Changes when a live event names this case: fetch it again. */
  version: number;
  onClose: () => void;
}) {
  const { t, tv, dateTime, number } = useI18n();
  const { client, user } = useSession();
  const id = useId();
  const [detail, setDetail] = useState<CaseDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<CaseFields | null>(null);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);
  const [saved, setSaved] = useState<"case.saved" | "case.noChange" | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    heading.current?.focus();
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    client.getCase(caseId, controller.signal).then(
      (c) => {
        setDetail(c);
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
  }, [client, caseId, version]);

  const save = async (event: SubmitEvent) => {
    event.preventDefault();
    if (!detail || !editing) return;
    const diff = changes(detail, editing);
    if (Object.keys(diff).length === 0) {
      setEditing(null);
      setSaved("case.noChange");
      return;
    }
    setSaving(true);
    setSaveError(null);
    try {
      const updated = await client.updateCase(detail.id, diff);
      setDetail(updated);
      setEditing(null);
      setSaved("case.saved");
    } catch (e) {
      setSaveError(errorText(e, t));
    } finally {
      setSaving(false);
    }
  };

  const name = detail ? formatPersonName(detail.patient_name) || t("cases.noName") : "";
  const none = t("case.none");

  return (
    <aside
      className="case-detail card"
      aria-labelledby={`${id}-title`}
      onKeyDown={(e) => {
        if (e.key === "Escape" && !editing) onClose();
      }}
    >
      <div className="detail-head">
        <button type="button" className="secondary small back-button" onClick={onClose}>
          {t("case.back")}
        </button>
        <h2 id={`${id}-title`} ref={heading} tabIndex={-1}>
          {t("case.title", { id: caseId })}
          {detail && <span className="detail-name"> · {name}</span>}
        </h2>
        <button type="button" className="secondary small close-button" onClick={onClose}>
          {t("case.close")}
        </button>
      </div>

      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {!detail && !error && <p role="status">{t("case.loading")}</p>}

      {detail && (
        <>
          <div className="badges">
            <span className={`badge priority-${detail.priority}`}>{tv("priority", detail.priority)}</span>
            <span className={`badge status-${detail.status}`}>{tv("status", detail.status)}</span>
            {detail.flags.map((f) => (
              <span key={f} className="badge flag">
                {tv("flag", f)}
              </span>
            ))}
          </div>

          <section aria-labelledby={`${id}-clinical`}>
            <div className="section-head">
              <h3 id={`${id}-clinical`}>{t("case.clinical")}</h3>
              {canEditCase(user.role) && !editing && (
                <button
                  type="button"
                  className="secondary small"
                  onClick={() => {
                    setEditing(fieldsOf(detail));
                    setSaved(null);
                    setSaveError(null);
                  }}
                >
                  {t("case.edit")}
                </button>
              )}
            </div>
            {saved && !editing && (
              <p className="ok-text" role="status">
                {t(saved)}
              </p>
            )}
            {editing ? (
              <form onSubmit={(e) => void save(e)} className="edit-form">
                <CaseFieldsForm
                  idPrefix={`${id}-edit`}
                  value={editing}
                  onChange={setEditing}
                  disabled={saving}
                  examExample={detail.study_description || undefined}
                />
                {saveError && (
                  <p className="error" role="alert">
                    {saveError}
                  </p>
                )}
                <div className="actions">
                  <button type="submit" className="primary" disabled={saving}>
                    {saving ? t("case.saving") : t("case.save")}
                  </button>
                  <button type="button" className="secondary" disabled={saving} onClick={() => setEditing(null)}>
                    {t("case.cancel")}
                  </button>
                </div>
              </form>
            ) : (
              <dl className="facts stacked">
                <Row label={t("field.priority")}>{tv("priority", detail.priority)}</Row>
                <Row label={t("field.clinicalQuestion")}>
                  <span className="prewrap">{detail.clinical_question || none}</span>
                </Row>
                <Row label={t("field.clinicalHistory")}>
                  <span className="prewrap">{detail.clinical_history || none}</span>
                </Row>
                <Row label={t("field.requestedExam")}>{detail.requested_exam || none}</Row>
                <Row label={t("field.subspecialty")}>
                  {detail.requested_subspecialty ? tv("subspecialty", detail.requested_subspecialty) : none}
                </Row>
              </dl>
            )}
          </section>

          <section aria-labelledby={`${id}-reading`}>
            <h3 id={`${id}-reading`}>{t("case.reading")}</h3>
            <dl className="facts">
              <Row label={t("case.subspecialty")}>
                {detail.subspecialty ? tv("subspecialty", detail.subspecialty) : none}
              </Row>
              <Row label={t("case.reader")}>{readerText(detail, t) ?? none}</Row>
              <Row label={t("case.deadline")}>
                <Deadline c={detail} />
              </Row>
              <Row label={t("case.assignedAt")}>{detail.assigned_at ? dateTime(detail.assigned_at) : none}</Row>
              <Row label={t("case.openedAt")}>{detail.opened_at ? dateTime(detail.opened_at) : none}</Row>
            </dl>
          </section>

          <CaseReportSection caseId={detail.id} status={detail.status} version={version} headingId={`${id}-report`} />

          <section aria-labelledby={`${id}-patient`}>
            <h3 id={`${id}-patient`}>{t("case.patient")}</h3>
            <dl className="facts">
              <Row label={t("case.name")}>{name}</Row>
              <Row label={t("case.patientId")}>{detail.patient_id || none}</Row>
              {detail.issuer_of_patient_id && <Row label={t("case.issuer")}>{detail.issuer_of_patient_id}</Row>}
              <Row label={t("case.birthDate")}>{formatDicomDate(detail.patient_birth_date) || none}</Row>
              <Row label={t("case.sex")}>{detail.patient_sex || none}</Row>
            </dl>
          </section>

          <section aria-labelledby={`${id}-study`}>
            <h3 id={`${id}-study`}>{t("case.study")}</h3>
            <dl className="facts">
              <Row label={t("case.hospital")}>{detail.hospital_code}</Row>
              <Row label={t("case.studyDate")}>{formatDicomDate(detail.study_date) || none}</Row>
              <Row label={t("case.modalities")}>{detail.modalities.join(", ") || none}</Row>
              <Row label={t("case.description")}>{detail.study_description || none}</Row>
              <Row label={t("case.accession")}>{detail.accession_number || none}</Row>
              <Row label={t("case.seriesImages")}>
                {t("case.seriesImagesValue", {
                  series: number(detail.number_of_series),
                  images: number(detail.number_of_instances),
                })}
              </Row>
              <Row label={t("case.source")}>{tv("source", detail.source)}</Row>
              <Row label={t("case.receivedAt")}>{dateTime(detail.received_at)}</Row>
              <Row label={t("case.lastInstanceAt")}>{dateTime(detail.last_instance_at)}</Row>
              <Row label={t("case.readyAt")}>{detail.ready_at ? dateTime(detail.ready_at) : none}</Row>
              {detail.late_instances > 0 && (
                <Row label={t("case.lateInstances")}>{number(detail.late_instances)}</Row>
              )}
              <Row label={t("case.studyUid")}>
                <span className="uid">{detail.study_instance_uid}</span>
              </Row>
            </dl>
            {detail.number_of_instances > 0 && (
              <p>
                <a
                  href={`/viewer/${detail.study_instance_uid}`}
                  onClick={linkClick(`/viewer/${detail.study_instance_uid}`)}
                >
                  {t("case.openImages")}
                </a>
              </p>
            )}
          </section>

          <section aria-labelledby={`${id}-timeline`}>
            <h3 id={`${id}-timeline`}>{t("case.timeline")}</h3>
            {detail.events.length === 0 ? (
              <p className="muted">{t("case.noEvents")}</p>
            ) : (
              <ol className="timeline">
                {detail.events.map((e, i) => {
                  const actor = actorText(e, t);
                  return (
                    <li key={`${e.at}-${i}`}>
                      <time dateTime={e.at}>{dateTime(e.at)}</time>
                      <span className="event-kind">{tv("event", e.kind)}</span>
                      {actor && <span className="muted"> ({actor})</span>}
                      {eventDetails(e.detail, t, tv, dateTime).map((line) => (
                        <span key={line} className="event-detail">
                          {line}
                        </span>
                      ))}
                    </li>
                  );
                })}
              </ol>
            )}
          </section>
        </>
      )}
    </aside>
  );
}
