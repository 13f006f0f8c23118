import { useCallback, useEffect, useId, useRef, useState } from "react";

import type { CaseDetail } from "../api/types";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { useCaseEvents } from "../live/context";
import { claimCase, getCase, getExpertMe, getPriors } from "../reading/api";
import { CaseHeader } from "../reading/CaseHeader";
import { ReleaseDialog } from "../reading/ReleaseDialog";
import { ReportEditor, type EditorCommands } from "../reading/ReportEditor";
import { ShortcutHelp } from "../reading/ShortcutHelp";
import { keyImagesForViewer } from "../reading/form";
import type { KeyImageRef, PriorRead, ReportRead } from "../reading/types";
import { useNextCase } from "../reading/useNextCase";
import { useNow } from "../components/useNow";
import { useShortcuts } from "../reading/useShortcuts";
import { ViewerBoundary } from "../reading/ViewerBoundary";
import "../reading/reading.css";
import { linkClick, navigate } from "../router";
import { useSession } from "../session";
import { Viewer } from "../viewer/Viewer";

/** Claim again this long before the lease runs out (and at least every third of it). */
const RENEW_MARGIN_MS = 60_000;
const CLAIMABLE = ["offered", "assigned"];

export function ReadingPage({ caseId }: { caseId: number }) {
  const { t } = useI18n();
  const { client, user } = useSession();
  const id = useId();
  const [detail, setDetail] = useState<CaseDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [leaseError, setLeaseError] = useState<string | null>(null);
  const [priors, setPriors] = useState<PriorRead[] | null>(null);
  const [senior, setSenior] = useState(false);
  const [keyImages, setKeyImages] = useState<KeyImageRef[]>([]);
  const [reload, setReload] = useState(0);
  const [releasing, setReleasing] = useState(false);
  const [help, setHelp] = useState(false);
  const editor = useRef<EditorCommands | null>(null);
  const now = useNow(1000);
  const next = useNextCase(caseId);

  // The case, claimed when it is offered or assigned to the reader: opening it starts reading.
  useEffect(() => {
    const controller = new AbortController();
    (async () => {
      let c = await getCase(client, caseId, controller.signal);
      if (CLAIMABLE.includes(c.status)) {
        await claimCase(client, caseId);
        c = await getCase(client, caseId, controller.signal);
      }
      setDetail(c);
      setError(null);
    })().catch((e: unknown) => {
      if (!controller.signal.aborted) setError(errorText(e, t));
    });
    return () => {
      controller.abort();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, caseId, reload]);

  useEffect(() => {
    let live = true;
    getPriors(client, caseId).then(
      (p) => {
        if (live) setPriors(p);
      },
      () => {
        if (live) setPriors([]);
      },
    );
    getExpertMe(client).then(
      (me) => {
        if (live) setSenior(me.qualification === "final");
      },
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [client, caseId]);

  const holder = detail !== null && detail.status === "reading" && detail.reader_id === user.id;

  // The lease is renewed while the page is open and the case is being read.
  const leaseEnds = detail?.lease_expires_at ?? null;
  useEffect(() => {
    if (!holder) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let live = true;
    const schedule = (endsAt: string | null, minutes: number) => {
      const left = endsAt ? Date.parse(endsAt) - Date.now() : minutes * 60_000;
      const wait = Math.max(15_000, Math.min(left - RENEW_MARGIN_MS, (minutes * 60_000) / 3));
      timer = setTimeout(renew, wait);
    };
    const renew = () => {
      claimCase(client, caseId).then(
        (lease) => {
          if (!live) return;
          setLeaseError(null);
          schedule(lease.lease_expires_at, lease.lease_minutes);
        },
        (e: unknown) => {
          if (live) setLeaseError(errorText(e, t));
        },
      );
    };
    schedule(leaseEnds, 15);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, caseId, holder]);

  useCaseEvents(
    useCallback(
      (event) => {
        if (event.case_id === caseId) setReload((n) => n + 1);
      },
      [caseId],
    ),
  );

  const onReport = useCallback((report: ReportRead) => {
    if (report.status !== "draft") setReload((n) => n + 1);
  }, []);

  useShortcuts((action) => {
    switch (action) {
      case "next":
        void next.go();
        return true;
      case "worklist":
        navigate("/reading");
        return true;
      case "help":
        setHelp(true);
        return true;
      case "release":
        if (holder) setReleasing(true);
        return holder;
      case "save":
        editor.current?.saveNow();
        return true;
      case "sign":
        editor.current?.openSign();
        return true;
      case "normal":
        editor.current?.normal();
        return true;
    }
  });

  if (error) {
    return (
      <section className="page">
        <h1>{t("reading.caseTitle", { id: caseId })}</h1>
        <p className="error" role="alert">
          {error}
        </p>
        <a href="/reading" onClick={linkClick("/reading")}>
          {t("reading.back")}
        </a>
      </section>
    );
  }
  if (!detail) {
    return (
      <section className="page">
        <h1>{t("reading.caseTitle", { id: caseId })}</h1>
        <p role="status">{t("app.loading")}</p>
      </section>
    );
  }

  return (
    <section className="page reading-page" aria-labelledby={`${id}-title`}>
      <div className="reading-toolbar">
        <a href="/reading" onClick={linkClick("/reading")}>
          {t("reading.back")}
        </a>
        <button type="button" className="secondary small" onClick={() => void next.go()} disabled={next.busy}>
          {t("reading.next")} <kbd>Alt+N</kbd>
        </button>
        {holder && (
          <button type="button" className="secondary small" onClick={() => setReleasing(true)}>
            {t("reading.release")} <kbd>Alt+R</kbd>
          </button>
        )}
        <button type="button" className="secondary small" onClick={() => setHelp(true)} aria-label={t("reading.keys.title")}>
          ?
        </button>
      </div>
      {(leaseError ?? next.error) && (
        <p className="error" role="alert">
          {leaseError ? t("reading.leaseFailed", { message: leaseError }) : next.error}
        </p>
      )}
      {next.empty && (
        <p className="notice" role="status">
          {t("reading.nothingNext")}
        </p>
      )}
      <CaseHeader detail={detail} priors={priors} now={now} titleId={`${id}-title`} />
      <div className="reading-layout">
        <div className="reading-viewer" aria-label={t("reading.viewer")} role="region">
          <ViewerBoundary
            fallback={(message) => (
              <p className="error" role="alert">
                {t("reading.viewerFailed", { message })}
              </p>
            )}
          >
            <Viewer
              studyUid={detail.study_instance_uid}
              priors={(priors ?? []).map((p) => ({
                studyUid: p.study_instance_uid,
                label: [p.study_date, p.study_description].filter(Boolean).join(" "),
              }))}
              onMeasurement={(m) => editor.current?.measurement(m)}
              onKeyImage={(image, marked) => editor.current?.keyImage(image, marked)}
              keyImages={keyImagesForViewer(keyImages)}
            />
          </ViewerBoundary>
        </div>
        <div className="reading-report card">
          <ReportEditor
            key={detail.id}
            detail={detail}
            holder={holder}
            senior={senior}
            commands={editor}
            onKeyImages={setKeyImages}
            onReport={onReport}
          />
        </div>
      </div>
      {releasing && (
        <ReleaseDialog
          caseId={caseId}
          decline={false}
          onClose={() => setReleasing(false)}
          onDone={() => {
            setReleasing(false);
            navigate("/reading");
          }}
        />
      )}
      {help && <ShortcutHelp onClose={() => setHelp(false)} />}
    </section>
  );
}
