import type { SendGroup } from "../dicom/grouping";
import { formatDicomDate, formatPersonName } from "../dicom/text";
import { useI18n } from "../i18n/context";
import { linkClick } from "../router";
import { summarize, verdict } from "../upload/outcomes";
import type { CaseFields } from "../upload/send";
import type { GroupState } from "../upload/state";
import { CaseFieldsForm } from "./CaseFieldsForm";
import { OutcomeTable } from "./OutcomeTable";
import { Progress } from "./Progress";

function Fact({ label, value }: { label: string; value: string }) {
  return (
    <div className="fact">
      <dt>{label}</dt>
      <dd>{value || "—"}</dd>
    </div>
  );
}

export function GroupCard({
  group,
  state,
  index,
  busy,
  tooLarge = 0,
  onFields,
  onRemove,
  onRetry,
}: {
  group: SendGroup;
  state: GroupState;
  index: number;
  /** Something is being sent: no edits, no removal, no separate retry. */
  busy: boolean;
  /** Files of this group left out for their size (listed on the page). */
  tooLarge?: number;
  onFields: (fields: CaseFields) => void;
  onRemove: () => void;
  onRetry: () => void;
}) {
  const { t, bytes, number } = useI18n();
  const headingId = `group-${index}-title`;
  let title: string;
  if (group.kind === "study") {
    title = formatPersonName(group.study.patientName) || group.study.patientId || t("group.study");
  } else if (group.kind === "archive") {
    title = group.files[0]?.path ?? t("group.archive");
  } else {
    title = t("group.unreadable");
  }
  const batches = state.batches?.length ?? 0;
  const totals = state.outcome.totals;
  const answered = state.outcome.files.length > 0;
  const v = answered ? verdict(totals) : null;
  const summary = summarize(totals, (key, vars) => t(key, vars), t("list.separator"));
  const formLocked =
    busy ||
    state.status === "checking" ||
    state.status === "sending" ||
    state.status === "done" ||
    state.caseOpened;

  return (
    <article className={`card group-card status-${state.status}`} aria-labelledby={headingId}>
      <header className="group-head">
        <div>
          <p className="eyebrow">
            {group.kind === "study" ? t("group.study") : group.kind === "archive" ? t("group.archive") : t("group.unreadable")}
          </p>
          <h3 id={headingId}>{title}</h3>
        </div>
        {(state.status === "idle" || state.status === "cancelled" || state.status === "failed") && !busy && (
          <button type="button" className="secondary small" onClick={onRemove}>
            {t("group.remove")}
            <span className="visually-hidden"> {title}</span>
          </button>
        )}
      </header>

      {group.kind === "study" ? (
        <>
          <dl className="facts">
            <Fact label={t("group.patientId")} value={group.study.patientId} />
            <Fact label={t("group.studyDate")} value={formatDicomDate(group.study.studyDate)} />
            <Fact label={t("group.modality")} value={group.study.modalities.join(", ")} />
            <Fact label={t("group.description")} value={group.study.studyDescription} />
            <Fact label={t("group.series")} value={number(group.study.series)} />
            <Fact label={t("group.images")} value={number(group.study.images)} />
            <Fact label={t("group.size")} value={bytes(group.bytes)} />
          </dl>
          {tooLarge > 0 && <p className="warning-text">{t("group.tooLarge", { n: tooLarge })}</p>}
          {group.study.otherPatients.length > 0 && (
            <p className="warning-text">
              {t("group.otherPatients", { patients: group.study.otherPatients.map(formatPersonName).join("; ") })}
            </p>
          )}
        </>
      ) : (
        <>
          <p className="muted">{group.kind === "archive" ? t("group.archiveNote") : t("group.unreadableNote")}</p>
          {tooLarge > 0 && <p className="warning-text">{t("group.tooLarge", { n: tooLarge })}</p>}
          <dl className="facts">
            <Fact label={t("group.files")} value={number(group.files.length)} />
            <Fact label={t("group.size")} value={bytes(group.bytes)} />
          </dl>
        </>
      )}

      <details className="case-info" open={!formLocked}>
        <summary>{t("group.caseInfo")}</summary>
        <CaseFieldsForm
          idPrefix={`group-${index}`}
          value={state.fields}
          onChange={onFields}
          disabled={formLocked}
          examExample={group.kind === "study" ? group.study.studyDescription || undefined : undefined}
        />
      </details>

      <div className="group-status" aria-live="polite">
        {state.status === "idle" && <p className="muted">{t("group.state.idle")}</p>}
        {state.status === "checking" && <p className="muted">{t("group.state.checking")}</p>}
        {state.status === "sending" && (
          <Progress
            label={t("group.state.sending", { batch: Math.min(state.nextBatch + 1, batches), batches })}
            value={state.sentBytes}
            max={group.bytes}
            text={`${bytes(state.sentBytes)} / ${bytes(group.bytes)}`}
          />
        )}
        {state.status === "failed" && (
          <p className="error" role="alert">
            {t("group.state.failed", {
              batch: state.nextBatch + 1,
              batches,
              message: state.error ?? "",
            })}
          </p>
        )}
        {state.status === "cancelled" && (
          <p className="warning-text">{t("group.state.cancelled", { batch: state.nextBatch + 1, batches })}</p>
        )}
        {(state.status === "failed" || state.status === "cancelled") && !busy && (
          <button type="button" className="primary small" onClick={onRetry}>
            {t("group.retry")}
            <span className="visually-hidden"> {title}</span>
          </button>
        )}
        {answered && (
          <p className={`summary verdict-${v ?? "ok"}`}>
            {state.status === "done"
              ? t("group.state.done", { summary })
              : summary}
          </p>
        )}
        {state.outcome.caseIds.length > 0 && (
          <p className="case-links">
            {state.outcome.caseIds.map((id) => (
              <a key={id} href={`/cases/${id}`} onClick={linkClick(`/cases/${id}`)}>
                {t("group.openCase", { id })}
              </a>
            ))}
          </p>
        )}
        {answered && <OutcomeTable files={state.outcome.files} />}
      </div>
    </article>
  );
}
