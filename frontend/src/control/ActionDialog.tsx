import { useId, useState, type SubmitEvent } from "react";

import { PRIORITIES, type Case, type Priority } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useSession } from "../session";
import { assign, changePriority, offer, pause, resume } from "./api";
import { REASON_MAX, rankExperts, reasonProblem } from "./board";
import { Dialog } from "../components/Dialog";
import type { Expert } from "./types";

export type Action = "assign" | "offer" | "priority" | "pause" | "resume";

/** A coordinator's action on a case, with the reason the server requires. Problems are shown at
 * the fields on submit; the server's refusal (not credentialed, the case moved on ...) as it
 * says it. `onDone` gets a sentence for the board's status line. */
export function ActionDialog({
  action,
  c,
  experts,
  onClose,
  onDone,
}: {
  action: Action;
  c: Case;
  experts: Expert[];
  onClose: () => void;
  onDone: (message: string) => void;
}) {
  const { t, tv, number } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [readerId, setReaderId] = useState("");
  const [priority, setPriority] = useState<Priority | "">("");
  const [reason, setReason] = useState("");
  const [checked, setChecked] = useState(false);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const needsExpert = action === "assign" || action === "offer";
  const ranked = rankExperts(experts, c.hospital_id);
  const reasonIssue = reasonProblem(reason);
  const expertIssue = needsExpert && readerId === "";
  const priorityIssue = action === "priority" && (priority === "" || priority === c.priority);
  const showReason = checked && reasonIssue !== null;
  const showExpert = checked && expertIssue;
  const showPriority = checked && priorityIssue;

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setChecked(true);
    setError(null);
    if (reasonIssue || expertIssue || priorityIssue) return;
    setSending(true);
    try {
      const text = reason.trim();
      if (action === "assign" || action === "offer") {
        const expert = experts.find((e) => e.user_id === Number(readerId));
        const name = expert ? expert.name || expert.username : readerId;
        const send = action === "assign" ? assign : offer;
        await send(client, c.id, Number(readerId), text);
        onDone(t(`control.done.${action}`, { id: c.id, name }));
      } else if (action === "priority" && priority !== "") {
        await changePriority(client, c.id, priority, text);
        onDone(t("control.done.priority", { id: c.id, priority: tv("priority", priority) }));
      } else if (action === "pause") {
        await pause(client, c.id, text);
        onDone(t("control.done.pause", { id: c.id }));
      } else {
        await resume(client, c.id, text);
        onDone(t("control.done.resume", { id: c.id }));
      }
    } catch (e) {
      setError(errorText(e, t));
      setSending(false);
    }
  };

  const credentialed = (e: Expert) => e.credentials.some((cr) => cr.hospital_id === c.hospital_id && !cr.expired);
  const load = (e: Expert) =>
    e.cap_open_cases !== null
      ? t("control.expert.loadCap", { n: number(e.open_cases), cap: number(e.cap_open_cases) })
      : t("control.expert.load", { n: number(e.open_cases) });

  return (
    <Dialog title={t(`control.actionLabel.${action}`, { id: c.id })} onClose={onClose} closeLabel={t("control.close")}>
      <form className="control-form" noValidate onSubmit={(e) => void submit(e)}>
        {needsExpert && (
          <div className="field">
            <label htmlFor={`${id}-expert`}>{t("control.dialog.expert")}</label>
            <select
              id={`${id}-expert`}
              data-autofocus
              value={readerId}
              disabled={sending}
              aria-invalid={showExpert || undefined}
              aria-describedby={showExpert ? `${id}-expert-error` : undefined}
              onChange={(e) => setReaderId(e.target.value)}
            >
              <option value="">{t("control.dialog.chooseExpert")}</option>
              {ranked.map((e) => (
                <option key={e.user_id} value={e.user_id}>
                  {t("control.dialog.expertOption", {
                    name: e.name || e.username,
                    state: tv("control.state", e.state),
                    load: load(e),
                  })}
                  {credentialed(e) ? "" : ` · ${t("control.dialog.notCredentialed")}`}
                </option>
              ))}
            </select>
            {showExpert && (
              <p id={`${id}-expert-error`} className="error field-error">
                {t("control.dialog.expertRequired")}
              </p>
            )}
          </div>
        )}
        {action === "priority" && (
          <div className="field">
            <label htmlFor={`${id}-priority`}>{t("control.dialog.priority")}</label>
            <select
              id={`${id}-priority`}
              data-autofocus
              value={priority}
              disabled={sending}
              aria-invalid={showPriority || undefined}
              aria-describedby={`${id}-priority-now${showPriority ? ` ${id}-priority-error` : ""}`}
              onChange={(e) => setPriority(e.target.value as Priority | "")}
            >
              <option value="">{t("control.none")}</option>
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {tv("priority", p)}
                </option>
              ))}
            </select>
            <p id={`${id}-priority-now`} className="muted hint">
              {t("control.dialog.current", { priority: tv("priority", c.priority) })}
            </p>
            {showPriority && (
              <p id={`${id}-priority-error`} className="error field-error">
                {t("control.dialog.samePriority")}
              </p>
            )}
          </div>
        )}
        <div className="field">
          <label htmlFor={`${id}-reason`}>{t("control.dialog.reason")}</label>
          <textarea
            id={`${id}-reason`}
            data-autofocus={needsExpert || action === "priority" ? undefined : true}
            rows={3}
            value={reason}
            disabled={sending}
            required
            maxLength={REASON_MAX + 100}
            aria-invalid={showReason || undefined}
            aria-describedby={`${id}-reason-hint${showReason ? ` ${id}-reason-error` : ""}`}
            onChange={(e) => setReason(e.target.value)}
          />
          <p id={`${id}-reason-hint`} className="muted hint">
            {t("control.dialog.reasonHint")}
          </p>
          {showReason && (
            <p id={`${id}-reason-error`} className="error field-error">
              {t(`control.reason.${reasonIssue}`)}
            </p>
          )}
        </div>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {checked && (reasonIssue || expertIssue || priorityIssue) && (
          <p className="visually-hidden" role="alert">
            {t("control.dialog.problems")}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={sending}>
            {sending ? t("control.sending") : t(`control.action.${action}`)}
          </button>
          <button type="button" className="secondary" disabled={sending} onClick={onClose}>
            {t("control.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
