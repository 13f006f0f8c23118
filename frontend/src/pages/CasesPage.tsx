import { useCallback, useEffect, useId, useMemo, useRef, useState } from "react";

import { CASE_STATUSES, PRIORITIES, type Case, type CasePage, type Priority } from "../api/types";
import { readerText } from "../cases/reading";
import { CaseDetailPanel } from "../components/CaseDetailPanel";
import { Deadline } from "../components/Deadline";
import { LiveBadge } from "../components/LiveBadge";
import { formatPersonName } from "../dicom/text";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useCaseEvents } from "../live/context";
import { debounce } from "../live/socket";
import { linkClick, navigate } from "../router";
import { useSession } from "../session";

const PAGE_SIZE = 50;
const REFETCH_DELAY_MS = 400;

export function CasesPage({ caseId }: { caseId: number | null }) {
  const { t, tv, dateTime, number } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [status, setStatus] = useState("");
  const [priority, setPriority] = useState("");
  const [offset, setOffset] = useState(0);
  const [reload, setReload] = useState(0);
  /** The last answer, and for which query: the list is loading while the query differs. */
  const [answer, setAnswer] = useState<{ key: string; page: CasePage | null; error: string | null } | null>(null);
  /** Bumped by live events of the open case, so its panel refetches. */
  const [detailVersion, setDetailVersion] = useState(0);
  const queryKey = `${status}|${priority}|${offset}|${reload}`;
  const loading = answer?.key !== queryKey;
  const page = answer?.page ?? null;
  const error = answer?.error ?? null;

  useEffect(() => {
    const controller = new AbortController();
    client
      .listCases(
        {
          limit: PAGE_SIZE,
          offset,
          status: status ? [status] : undefined,
          priority: priority ? [priority as Priority] : undefined,
        },
        controller.signal,
      )
      .then(
        (result) => {
          setAnswer({ key: queryKey, page: result, error: null });
          // The page emptied (the filters changed what is there): go to the last page.
          if (result.items.length === 0 && result.total > 0 && offset > 0) {
            setOffset(Math.max(0, Math.floor((result.total - 1) / PAGE_SIZE) * PAGE_SIZE));
          }
        },
        (e: unknown) => {
          if (controller.signal.aborted) return;
          // keep showing the last list; say why it is not fresh
          setAnswer((prev) => ({ key: queryKey, page: prev?.page ?? null, error: errorText(e, t) }));
        },
      );
    return () => {
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, queryKey]);

  const refetch = useMemo(
    () =>
      debounce(() => {
        setReload((n) => n + 1);
      }, REFETCH_DELAY_MS),
    [],
  );
  useEffect(() => () => refetch.cancel(), [refetch]);

  const openCase = useRef(caseId);
  useEffect(() => {
    openCase.current = caseId;
  }, [caseId]);

  useCaseEvents(
    useCallback(
      (event) => {
        refetch.call();
        if (event.case_id === openCase.current) setDetailVersion((n) => n + 1);
      },
      [refetch],
    ),
  );

  const rows: Case[] = page?.items ?? [];
  const total = page?.total ?? 0;
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(offset + rows.length, total);

  return (
    <section className={`page cases-page${caseId !== null ? " with-detail" : ""}`} aria-labelledby={`${id}-title`}>
      <div className="cases-list">
        <div className="page-head row">
          <h1 id={`${id}-title`}>{t("cases.title")}</h1>
          <LiveBadge />
        </div>
        <form className="filters" aria-label={t("cases.filters")} onSubmit={(e) => e.preventDefault()}>
          <div className="field inline">
            <label htmlFor={`${id}-status`}>{t("cases.status")}</label>
            <select
              id={`${id}-status`}
              value={status}
              onChange={(e) => {
                setStatus(e.target.value);
                setOffset(0);
              }}
            >
              <option value="">{t("cases.any")}</option>
              {CASE_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {tv("status", s)}
                </option>
              ))}
            </select>
          </div>
          <div className="field inline">
            <label htmlFor={`${id}-priority`}>{t("cases.priority")}</label>
            <select
              id={`${id}-priority`}
              value={priority}
              onChange={(e) => {
                setPriority(e.target.value);
                setOffset(0);
              }}
            >
              <option value="">{t("cases.any")}</option>
              {PRIORITIES.map((p) => (
                <option key={p} value={p}>
                  {tv("priority", p)}
                </option>
              ))}
            </select>
          </div>
          <button type="button" className="secondary" onClick={() => setReload((n) => n + 1)} disabled={loading}>
            {t("cases.refresh")}
          </button>
          <span className="muted total" aria-live="polite">
            {page ? t("cases.total", { n: number(total) }) : t("app.loading")}
          </span>
        </form>

        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}

        {page && rows.length === 0 && !error && <p className="muted empty">{t("cases.empty")}</p>}

        {rows.length > 0 && (
          <div className="table-wrap">
            <table className="cases-table">
              <caption className="visually-hidden">{t("cases.caption")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("cases.col.received")}</th>
                  <th scope="col" className="opt">{t("cases.col.hospital")}</th>
                  <th scope="col">{t("cases.col.patient")}</th>
                  <th scope="col" className="opt">{t("cases.col.patientId")}</th>
                  <th scope="col">{t("cases.col.modality")}</th>
                  <th scope="col" className="opt">{t("cases.col.description")}</th>
                  <th scope="col" className="num">
                    {t("cases.col.images")}
                  </th>
                  <th scope="col">{t("cases.col.priority")}</th>
                  <th scope="col">{t("cases.col.status")}</th>
                  <th scope="col">{t("cases.col.reader")}</th>
                  <th scope="col">{t("cases.col.deadline")}</th>
                  <th scope="col">{t("cases.col.flags")}</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((c) => {
                  const path = `/cases/${c.id}`;
                  const selected = c.id === caseId;
                  return (
                    <tr
                      key={c.id}
                      className={`${selected ? "selected " : ""}priority-row-${c.priority}`}
                      onClick={(e) => {
                        if ((e.target as HTMLElement).closest("a")) return;
                        navigate(path);
                      }}
                    >
                      <td data-label={t("cases.col.received")}>{dateTime(c.received_at)}</td>
                      <td data-label={t("cases.col.hospital")} className="opt">{c.hospital_code}</td>
                      <td data-label={t("cases.col.patient")} className="patient">
                        <a href={path} onClick={linkClick(path)} aria-current={selected ? "true" : undefined}>
                          {formatPersonName(c.patient_name) || t("cases.noName")}
                        </a>
                      </td>
                      <td data-label={t("cases.col.patientId")} className="opt">{c.patient_id}</td>
                      <td data-label={t("cases.col.modality")}>{c.modalities.join(", ")}</td>
                      <td data-label={t("cases.col.description")} className="opt">{c.study_description}</td>
                      <td data-label={t("cases.col.images")} className="num">
                        {number(c.number_of_instances)}
                      </td>
                      <td data-label={t("cases.col.priority")}>
                        <span className={`badge priority-${c.priority}`}>{tv("priority", c.priority)}</span>
                      </td>
                      <td data-label={t("cases.col.status")}>
                        <span className={`badge status-${c.status}`}>{tv("status", c.status)}</span>
                      </td>
                      <td data-label={t("cases.col.reader")}>{readerText(c, t) ?? t("case.none")}</td>
                      <td data-label={t("cases.col.deadline")}>
                        <Deadline c={c} />
                      </td>
                      <td data-label={t("cases.col.flags")}>
                        {c.flags.map((f) => (
                          <span key={f} className="badge flag">
                            {tv("flag", f)}
                          </span>
                        ))}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}

        {total > PAGE_SIZE && (
          <nav className="pager" aria-label={t("cases.pagination")}>
            <button
              type="button"
              className="secondary"
              disabled={offset === 0 || loading}
              onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}
            >
              {t("cases.prev")}
            </button>
            <span>{t("cases.page", { from: number(from), to: number(to), total: number(total) })}</span>
            <button
              type="button"
              className="secondary"
              disabled={offset + PAGE_SIZE >= total || loading}
              onClick={() => setOffset(offset + PAGE_SIZE)}
            >
              {t("cases.next")}
            </button>
          </nav>
        )}
      </div>

      {caseId !== null && (
        <CaseDetailPanel key={caseId} caseId={caseId} version={detailVersion} onClose={() => navigate("/cases")} />
      )}
    </section>
  );
}
