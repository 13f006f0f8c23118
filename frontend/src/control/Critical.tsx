import { useCallback, useEffect, useId, useMemo, useState, type SubmitEvent } from "react";

import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useCaseEvents } from "../live/context";
import { debounce } from "../live/socket";
import { useSession } from "../session";
import { criticalFindings, recordCommunication } from "./api";
import { countdown } from "./board";
import { Dialog } from "../components/Dialog";
import { METHODS, type CriticalFinding, type Method } from "./types";
import { useNow } from "../components/useNow";
import { TableWrap } from "./TableWrap";

const REFETCH_DELAY_MS = 400;

/** Open critical results, soonest due first, and the record of who at the hospital was told. */
export function Critical() {
  const { t, dateTime } = useI18n();
  const { client } = useSession();
  const now = useNow(30_000);
  const [findings, setFindings] = useState<CriticalFinding[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [open, setOpen] = useState<CriticalFinding | null>(null);
  const [done, setDone] = useState<string | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    criticalFindings(client, controller.signal).then(
      (list) => {
        setFindings(list);
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

  // Flagged, told and overdue results arrive as live events; the countdowns run on the clock.
  const refetch = useMemo(() => debounce(() => setReload((n) => n + 1), REFETCH_DELAY_MS), []);
  useEffect(() => () => refetch.cancel(), [refetch]);
  useCaseEvents(
    useCallback(
      (event) => {
        if (event.type.startsWith("critical.")) refetch.call();
      },
      [refetch],
    ),
  );

  const due = useCallback(
    (f: CriticalFinding) => {
      const left = countdown(f.due_at, now);
      if (!left) return dateTime(f.due_at);
      const time =
        left.days > 0
          ? t("control.duration.days", { d: left.days, h: left.hours })
          : left.hours > 0
            ? t("control.duration.hours", { h: left.hours, m: String(left.minutes).padStart(2, "0") })
            : t("control.duration.minutes", { m: left.minutes });
      return left.overdue ? t("control.overdue", { time }) : t("control.left", { time });
    },
    [now, t, dateTime],
  );

  return (
    <div className="control-critical">
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
      {!findings && !error && <p role="status">{t("app.loading")}</p>}
      {findings?.length === 0 && <p className="muted empty">{t("control.critical.empty")}</p>}
      {findings && findings.length > 0 && (
        <TableWrap label={t("control.critical.caption")}>
          <table className="cases-table control-table">
            <caption className="visually-hidden">{t("control.critical.caption")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("control.col.case")}</th>
                <th scope="col">{t("control.col.finding")}</th>
                <th scope="col">{t("control.col.flagged")}</th>
                <th scope="col">{t("control.col.due")}</th>
                <th scope="col">{t("control.col.actions")}</th>
              </tr>
            </thead>
            <tbody>
              {findings.map((f) => {
                const late = (f.seconds_left ?? 0) < 0;
                return (
                  <tr key={f.id} className={late ? "sla-row-breached" : ""}>
                    <th scope="row">{t("control.caseId", { id: f.case_id })}</th>
                    <td className="prewrap">{f.description}</td>
                    <td>{dateTime(f.flagged_at)}</td>
                    <td>
                      <time dateTime={f.due_at} title={dateTime(f.due_at)}>
                        {due(f)}
                      </time>
                      {late && <span className="badge sla-breached">{t("sla.breached")}</span>}
                    </td>
                    <td>
                      <button
                        type="button"
                        className="secondary small"
                        aria-label={t("control.critical.recordLabel", { id: f.case_id })}
                        onClick={() => setOpen(f)}
                      >
                        {t("control.critical.record")}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      )}
      {open && (
        <CommunicationDialog
          finding={open}
          onClose={() => setOpen(null)}
          onDone={() => {
            setDone(t("control.critical.recorded", { id: open.case_id }));
            setOpen(null);
            setReload((n) => n + 1);
          }}
        />
      )}
    </div>
  );
}

function CommunicationDialog({
  finding,
  onClose,
  onDone,
}: {
  finding: CriticalFinding;
  onClose: () => void;
  onDone: () => void;
}) {
  const { t, tv } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [to, setTo] = useState("");
  const [method, setMethod] = useState<Method>("phone");
  const [checked, setChecked] = useState(false);
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const missing = to.trim() === "";

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    setChecked(true);
    setError(null);
    if (missing) return;
    setSending(true);
    try {
      await recordCommunication(client, finding.id, { communicated_to: to.trim(), method });
      onDone();
    } catch (e) {
      setError(errorText(e, t));
      setSending(false);
    }
  };

  return (
    <Dialog title={t("control.critical.dialogTitle", { id: finding.case_id })} onClose={onClose} closeLabel={t("control.close")}>
      <p className="prewrap">{finding.description}</p>
      <form className="control-form" noValidate onSubmit={(e) => void submit(e)}>
        <div className="field">
          <label htmlFor={`${id}-to`}>{t("control.critical.to")}</label>
          <input
            id={`${id}-to`}
            data-autofocus
            value={to}
            maxLength={200}
            disabled={sending}
            required
            aria-invalid={(checked && missing) || undefined}
            aria-describedby={checked && missing ? `${id}-to-error` : undefined}
            onChange={(e) => setTo(e.target.value)}
          />
          {checked && missing && (
            <p id={`${id}-to-error`} className="error field-error">
              {t("control.critical.toRequired")}
            </p>
          )}
        </div>
        <fieldset>
          <legend>{t("control.critical.method")}</legend>
          {METHODS.map((m) => (
            <label key={m} className="choice">
              <input
                type="radio"
                name={`${id}-method`}
                value={m}
                checked={method === m}
                disabled={sending}
                onChange={() => setMethod(m)}
              />
              {tv("control.method", m)}
            </label>
          ))}
        </fieldset>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <div className="actions">
          <button type="submit" className="primary" disabled={sending}>
            {sending ? t("control.sending") : t("control.critical.record")}
          </button>
          <button type="button" className="secondary" disabled={sending} onClick={onClose}>
            {t("control.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
