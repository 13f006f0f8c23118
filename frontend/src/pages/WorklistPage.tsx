import { useCallback, useEffect, useId, useMemo, useState } from "react";

import { LiveBadge } from "../components/LiveBadge";
import { formatPersonName } from "../dicom/text";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useCaseEvents } from "../live/context";
import { debounce } from "../live/socket";
import { getExpertMe, getWorklist } from "../reading/api";
import { CosignQueue } from "../reading/CosignQueue";
import { Countdown } from "../reading/Countdown";
import { ReleaseDialog } from "../reading/ReleaseDialog";
import { ShortcutHelp } from "../reading/ShortcutHelp";
import type { WorklistItem, WorklistPage as Page } from "../reading/types";
import { useNextCase } from "../reading/useNextCase";
import { useNow } from "../components/useNow";
import { useShortcuts } from "../reading/useShortcuts";
import { splitWorklist } from "../reading/worklist";
import "../reading/reading.css";
import { linkClick, navigate } from "../router";
import { useSession } from "../session";
import { preloadViewer } from "../viewer/Viewer";

const REFETCH_DELAY_MS = 400;

export function WorklistPage() {
  const { t, number } = useI18n();
  const { client } = useSession();
  const id = useId();
  const [page, setPage] = useState<Page | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [busy, setBusy] = useState<number | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [releasing, setReleasing] = useState<WorklistItem | null>(null);
  const [help, setHelp] = useState(false);
  const [senior, setSenior] = useState(false);
  const [cosignVersion, setCosignVersion] = useState(0);
  const now = useNow(1000);
  const next = useNextCase(null);

  // The viewer's code (several MB) loads while the reader looks at the list, not when a case opens.
  useEffect(() => {
    preloadViewer();
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    getWorklist(client, controller.signal).then(
      (p) => {
        setPage(p);
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

  useEffect(() => {
    let live = true;
    getExpertMe(client).then(
      (me) => {
        if (live) setSenior(me.qualification === "final");
      },
      () => {
        // no expert profile: no co-sign queue
      },
    );
    return () => {
      live = false;
    };
  }, [client]);

  const refetch = useMemo(
    () =>
      debounce(() => {
        setReload((n) => n + 1);
        setCosignVersion((n) => n + 1);
      }, REFETCH_DELAY_MS),
    [],
  );
  useEffect(() => () => refetch.cancel(), [refetch]);
  useCaseEvents(
    useCallback(() => {
      refetch.call();
    }, [refetch]),
  );

  useShortcuts((action) => {
    if (action === "next") {
      void next.go();
      return true;
    }
    if (action === "help") {
      setHelp(true);
      return true;
    }
    return false;
  });

  const claim = async (item: WorklistItem) => {
    setBusy(item.case.id);
    setActionError(null);
    try {
      await next.claimAndOpen(item.case.id);
    } catch (e) {
      setActionError(errorText(e, t));
      setReload((n) => n + 1);
    } finally {
      setBusy(null);
    }
  };

  const { held, offers } = splitWorklist(page?.items ?? []);

  const table = (items: WorklistItem[], caption: string) => (
    <div className="table-wrap">
      <table className="worklist-table">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t("reading.col.priority")}</th>
            <th scope="col">{t("reading.col.due")}</th>
            <th scope="col">{t("reading.col.hospital")}</th>
            <th scope="col">{t("reading.col.patient")}</th>
            <th scope="col">{t("reading.col.modality")}</th>
            <th scope="col">{t("reading.col.description")}</th>
            <th scope="col">{t("reading.col.status")}</th>
            <th scope="col">{t("reading.col.actions")}</th>
          </tr>
        </thead>
        <tbody>
          {items.map((item) => {
            const c = item.case;
            const path = `/reading/${c.id}`;
            const name = formatPersonName(c.patient_name) || t("cases.noName");
            return (
              <tr key={c.id} className={`priority-row-${c.priority}`} data-case-id={c.id}>
                <td data-label={t("reading.col.priority")}>
                  <span className={`badge priority-${c.priority}`}>{t(`priority.${c.priority}`)}</span>
                </td>
                <td data-label={t("reading.col.due")}>
                  <Countdown deadline={c.deadline} state={item.sla?.state ?? c.sla_state} now={now} />
                </td>
                <td data-label={t("reading.col.hospital")}>{c.hospital_code}</td>
                <td data-label={t("reading.col.patient")}>
                  {item.hold === "offered" ? name : (
                    <a href={path} onClick={linkClick(path)}>
                      {name}
                    </a>
                  )}
                </td>
                <td data-label={t("reading.col.modality")}>{c.modalities.join(", ")}</td>
                <td data-label={t("reading.col.description")}>{c.study_description || c.requested_exam}</td>
                <td data-label={t("reading.col.status")}>
                  <span className={`badge status-${c.status}`}>
                    {item.hold ? t(`reading.hold.${item.hold}`) : c.status}
                  </span>
                </td>
                <td data-label={t("reading.col.actions")} className="row-actions">
                  {item.hold === "offered" ? (
                    <button
                      type="button"
                      className="primary small"
                      disabled={busy !== null}
                      aria-label={t("reading.claimCase", { name })}
                      onClick={() => void claim(item)}
                    >
                      {t("reading.claim")}
                    </button>
                  ) : (
                    <button
                      type="button"
                      className="primary small"
                      disabled={busy !== null}
                      aria-label={t("reading.openCase", { name })}
                      onClick={() => {
                        if (item.hold === "reading") navigate(path);
                        else void claim(item);
                      }}
                    >
                      {t("reading.open")}
                    </button>
                  )}
                  <button
                    type="button"
                    className="secondary small"
                    disabled={busy !== null}
                    aria-label={t(item.hold === "offered" ? "reading.declineCase" : "reading.releaseCase", { name })}
                    onClick={() => setReleasing(item)}
                  >
                    {item.hold === "offered" ? t("reading.decline") : t("reading.release")}
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );

  return (
    <section className="page worklist-page" aria-labelledby={`${id}-title`}>
      <div className="page-head row">
        <h1 id={`${id}-title`}>{t("reading.worklist")}</h1>
        <LiveBadge />
        <div className="head-actions">
          <button type="button" className="primary" onClick={() => void next.go()} disabled={next.busy}>
            {t("reading.next")} <kbd>Alt+N</kbd>
          </button>
          <button type="button" className="secondary" onClick={() => setReload((n) => n + 1)}>
            {t("reading.refresh")}
          </button>
          <button type="button" className="secondary" onClick={() => setHelp(true)} aria-label={t("reading.keys.title")}>
            ?
          </button>
        </div>
      </div>

      {(error ?? actionError ?? next.error) && (
        <p className="error" role="alert">
          {error ?? actionError ?? next.error}
        </p>
      )}
      {next.empty && (
        <p className="notice" role="status">
          {t("reading.nothingNext")}
        </p>
      )}
      {!page && !error && <p role="status">{t("app.loading")}</p>}

      {page && (
        <>
          <section aria-labelledby={`${id}-held`} className="worklist-section">
            <h2 id={`${id}-held`}>
              {t("reading.held")} <span className="count">{number(held.length)}</span>
            </h2>
            {held.length === 0 ? <p className="muted">{t("reading.heldEmpty")}</p> : table(held, t("reading.held"))}
          </section>
          <section aria-labelledby={`${id}-offers`} className="worklist-section">
            <h2 id={`${id}-offers`}>
              {t("reading.offers")} <span className="count">{number(offers.length)}</span>
            </h2>
            {offers.length === 0 ? <p className="muted">{t("reading.offersEmpty")}</p> : table(offers, t("reading.offers"))}
            {page.hidden_offers > 0 && (
              <p className="muted">{t("reading.hiddenOffers", { n: number(page.hidden_offers) })}</p>
            )}
          </section>
        </>
      )}

      {senior && <CosignQueue version={cosignVersion} />}

      {releasing && (
        <ReleaseDialog
          caseId={releasing.case.id}
          decline={releasing.hold === "offered"}
          onClose={() => setReleasing(null)}
          onDone={() => {
            setReleasing(null);
            setReload((n) => n + 1);
          }}
        />
      )}
      {help && <ShortcutHelp onClose={() => setHelp(false)} />}
    </section>
  );
}
