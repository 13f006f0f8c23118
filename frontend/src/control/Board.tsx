import { useCallback, useEffect, useId, useMemo, useState } from "react";

import {
  PRIORITIES,
  SLA_STATES,
  SUBSPECIALTIES,
  type Case,
  type Hospital,
  type Priority,
  type Subspecialty,
} from "../api/types";
import { readerText } from "../cases/reading";
import { formatPersonName } from "../dicom/text";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useCaseEvents } from "../live/context";
import { debounce } from "../live/socket";
import { useSession } from "../session";
import { ActionDialog, type Action } from "./ActionDialog";
import { board, experts as loadExperts } from "./api";
import { UNROUTED, boardTotals, groupQueue, type QueueGroup } from "./board";
import { DueCell } from "./Countdown";
import { Experts } from "./Experts";
import { RoutingDialog } from "./RoutingDialog";
import type { Expert, WorklistPage } from "./types";
import { useNow } from "../components/useNow";
import { TableWrap } from "./TableWrap";

const REFETCH_DELAY_MS = 400;
const BOARD_LIMIT = 500;

type Open = { kind: "action"; action: Action; c: Case } | { kind: "routing"; c: Case } | null;

export function Board() {
  const { t, tv, number } = useI18n();
  const { client } = useSession();
  const id = useId();
  const now = useNow(30_000);
  const [hospital, setHospital] = useState("");
  const [priority, setPriority] = useState("");
  const [subspecialty, setSubspecialty] = useState("");
  const [sla, setSla] = useState("");
  const [reload, setReload] = useState(0);
  const [page, setPage] = useState<WorklistPage | null>(null);
  const [roster, setRoster] = useState<Expert[]>([]);
  const [hospitals, setHospitals] = useState<Hospital[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<Open>(null);
  const [done, setDone] = useState<string | null>(null);

  useEffect(() => {
    client.hospitals().then(setHospitals, () => {
      // the filter then offers "Any" only; the board itself says what went wrong
    });
  }, [client]);

  useEffect(() => {
    const controller = new AbortController();
    Promise.all([
      board(
        client,
        {
          hospital_id: hospital ? [Number(hospital)] : undefined,
          priority: priority ? [priority as Priority] : undefined,
          subspecialty: subspecialty ? [subspecialty as Subspecialty] : undefined,
          sla_state: sla ? [sla] : undefined,
          limit: BOARD_LIMIT,
        },
        controller.signal,
      ),
      loadExperts(client, controller.signal),
    ]).then(
      ([next, list]) => {
        setPage(next);
        setRoster(list);
        setError(null);
      },
      (e: unknown) => {
        if (!controller.signal.aborted) setError(errorText(e, t));
      },
    );
    return () => {
      controller.abort();
    };
    // t is left out on purpose: a language switch must not refetch.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, hospital, priority, subspecialty, sla, reload]);

  const refetch = useMemo(() => debounce(() => setReload((n) => n + 1), REFETCH_DELAY_MS), []);
  useEffect(() => () => refetch.cancel(), [refetch]);
  useCaseEvents(useCallback(() => refetch.call(), [refetch]));

  const items = useMemo(() => page?.items ?? [], [page]);
  const groups = useMemo(() => groupQueue(items), [items]);
  const totals = boardTotals(items);

  const onDone = (message: string) => {
    setOpen(null);
    setDone(message);
    setReload((n) => n + 1);
  };

  return (
    <div className="control-board">
      <form className="filters" aria-label={t("control.filters")} onSubmit={(e) => e.preventDefault()}>
        <div className="field inline">
          <label htmlFor={`${id}-hospital`}>{t("control.filter.hospital")}</label>
          <select id={`${id}-hospital`} value={hospital} onChange={(e) => setHospital(e.target.value)}>
            <option value="">{t("control.any")}</option>
            {hospitals.map((h) => (
              <option key={h.id} value={h.id}>
                {h.code} · {h.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={`${id}-priority`}>{t("control.filter.priority")}</label>
          <select id={`${id}-priority`} value={priority} onChange={(e) => setPriority(e.target.value)}>
            <option value="">{t("control.any")}</option>
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {tv("priority", p)}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={`${id}-subspecialty`}>{t("control.filter.subspecialty")}</label>
          <select id={`${id}-subspecialty`} value={subspecialty} onChange={(e) => setSubspecialty(e.target.value)}>
            <option value="">{t("control.any")}</option>
            {SUBSPECIALTIES.map((s) => (
              <option key={s} value={s}>
                {tv("subspecialty", s)}
              </option>
            ))}
          </select>
        </div>
        <div className="field inline">
          <label htmlFor={`${id}-sla`}>{t("control.filter.sla")}</label>
          <select id={`${id}-sla`} value={sla} onChange={(e) => setSla(e.target.value)}>
            <option value="">{t("control.any")}</option>
            {SLA_STATES.map((s) => (
              <option key={s} value={s}>
                {tv("sla", s)}
              </option>
            ))}
          </select>
        </div>
        <button type="button" className="secondary" onClick={() => setReload((n) => n + 1)}>
          {t("control.refresh")}
        </button>
      </form>

      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p className="ok-text" role="status">
        {done}
      </p>

      <div className="control-columns">
        <section aria-labelledby={`${id}-queue`} className="control-queue">
          <h2 id={`${id}-queue`}>{t("control.queue")}</h2>
          <p className="control-totals" aria-live="polite">
            {page
              ? t("control.totals", {
                  total: number(totals.total),
                  warning: number(totals.warning),
                  breached: number(totals.breached),
                  unassigned: number(totals.unassigned),
                })
              : t("app.loading")}
          </p>
          {page && page.total > items.length && (
            <p className="notice">{t("control.more", { shown: number(items.length), total: number(page.total) })}</p>
          )}
          {page && items.length === 0 && !error && <p className="muted empty">{t("control.empty")}</p>}
          {groups.map((g) => (
            <QueueSection key={g.key} group={g} now={now} onOpen={setOpen} />
          ))}
        </section>
        <Experts experts={roster} loaded={page !== null} />
      </div>

      {open?.kind === "action" && (
        <ActionDialog
          action={open.action}
          c={open.c}
          experts={roster}
          onClose={() => setOpen(null)}
          onDone={onDone}
        />
      )}
      {open?.kind === "routing" && <RoutingDialog c={open.c} onClose={() => setOpen(null)} />}
    </div>
  );
}

function QueueSection({
  group,
  now,
  onOpen,
}: {
  group: QueueGroup;
  now: number;
  onOpen: (open: Open) => void;
}) {
  const { t, tv, number } = useI18n();
  const id = useId();
  const name = group.key === UNROUTED ? t("control.unrouted") : tv("subspecialty", group.key);
  const risk = group.breached > 0 ? " risk-breached" : group.warning > 0 ? " risk-warning" : "";
  return (
    <section className={`queue-group card${risk}`} aria-labelledby={`${id}-title`}>
      <div className="queue-head">
        <h3 id={`${id}-title`}>{name}</h3>
        <span className="muted">
          {t("control.groupCounts", {
            total: number(group.total),
            warning: number(group.warning),
            breached: number(group.breached),
          })}
        </span>
      </div>
      {group.priorities.map((p) => (
        <TableWrap key={p.priority} label={t("control.caption", { subspecialty: name, priority: tv("priority", p.priority) })}>
          <table className="cases-table control-table">
            <caption>
              <span className={`badge priority-${p.priority}`}>
                {t("control.priorityCount", { priority: tv("priority", p.priority), n: number(p.items.length) })}
              </span>
              <span className="visually-hidden">
                {t("control.caption", { subspecialty: name, priority: tv("priority", p.priority) })}
              </span>
            </caption>
            <thead>
              <tr>
                <th scope="col">{t("control.col.case")}</th>
                <th scope="col">{t("control.col.patient")}</th>
                <th scope="col">{t("control.col.hospital")}</th>
                <th scope="col">{t("control.col.modality")}</th>
                <th scope="col">{t("control.col.status")}</th>
                <th scope="col">{t("control.col.reader")}</th>
                <th scope="col">{t("control.col.due")}</th>
                <th scope="col">{t("control.col.actions")}</th>
              </tr>
            </thead>
            <tbody>
              {p.items.map((item) => {
                const c = item.case;
                const paused = c.status === "paused";
                const actions: Action[] = paused ? ["resume"] : ["assign", "offer", "priority", "pause"];
                return (
                  <tr key={c.id} className={`sla-row-${item.sla?.state ?? "none"}`} data-case-id={c.id}>
                    <th scope="row">{t("control.caseId", { id: c.id })}</th>
                    <td data-label={t("control.col.patient")}>{formatPersonName(c.patient_name) || t("cases.noName")}</td>
                    <td data-label={t("control.col.hospital")}>{c.hospital_code}</td>
                    <td data-label={t("control.col.modality")}>{c.modalities.join(", ")}</td>
                    <td data-label={t("control.col.status")}>
                      <span className={`badge status-${c.status}`}>{tv("status", c.status)}</span>
                    </td>
                    <td data-label={t("control.col.reader")}>{readerText(c, t) ?? t("control.none")}</td>
                    <td data-label={t("control.col.due")}>
                      <DueCell item={item} now={now} />
                    </td>
                    <td data-label={t("control.col.actions")} className="control-actions">
                      {actions.map((action) => (
                        <button
                          key={action}
                          type="button"
                          className="secondary small"
                          aria-label={t(`control.actionLabel.${action}`, { id: c.id })}
                          onClick={() => onOpen({ kind: "action", action, c })}
                        >
                          {t(`control.action.${action}`)}
                        </button>
                      ))}
                      <button
                        type="button"
                        className="secondary small"
                        aria-label={t("control.actionLabel.routing", { id: c.id })}
                        onClick={() => onOpen({ kind: "routing", c })}
                      >
                        {t("control.action.routing")}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      ))}
    </section>
  );
}
