import { useCallback, useEffect, useId, useMemo, useRef, useState, type DragEvent } from "react";

import type { Hospital, UploadResponse } from "../api/types";
import { GroupCard } from "../components/GroupCard";
import { Progress } from "../components/Progress";
import { groupFiles, groupKeyOf, mergePicked, type InspectedFile, type PickedFile } from "../dicom/grouping";
import { errorText } from "../errors";
import { useI18n } from "../i18n/context";
import { canSend, useSession } from "../session";
import { planBatches, type Batch } from "../upload/batches";
import { batchLimits, splitTooLarge } from "../upload/limits";
import { addPresent, addResponse } from "../upload/outcomes";
import { fromDrop, fromFileList, inspectAll } from "../upload/pick";
import { answeredPaths, qidoVia, sendStudy } from "../upload/resume";
import { sendBatches, type CaseFields, type SendResult } from "../upload/send";
import { initialGroupState, isPending, type GroupState } from "../upload/state";

export function UploadPage() {
  const { t, bytes, number } = useI18n();
  const { client, user } = useSession();
  const id = useId();
  const [files, setFiles] = useState<InspectedFile[]>([]);
  const [reading, setReading] = useState<{ done: number; total: number } | null>(null);
  const [states, setStates] = useState<Record<string, GroupState>>({});
  const [sending, setSending] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [formError, setFormError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [hospitals, setHospitals] = useState<Hospital[] | null>(null);
  const [hospitalError, setHospitalError] = useState<string | null>(null);
  const [hospital, setHospital] = useState("");
  const abortRef = useRef<AbortController | null>(null);
  const folderInput = useRef<HTMLInputElement>(null);
  const filesInput = useRef<HTMLInputElement>(null);
  const choosesHospital = user.role === "coordinator" || user.role === "admin";

  useEffect(() => {
    // React has no typed prop for it: the folder picker is a plain attribute.
    folderInput.current?.setAttribute("webkitdirectory", "");
  }, []);

  useEffect(() => {
    // A technician sends for their own hospital, which /api/me names: no list needed.
    if (!choosesHospital) return;
    let live = true;
    client.hospitals().then(
      (list) => {
        if (!live) return;
        setHospitals(list);
        const active = list.filter((h) => h.active);
        if (active.length === 1 && active[0]) setHospital(active[0].code);
      },
      (e: unknown) => {
        if (live) setHospitalError(errorText(e, t));
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, choosesHospital]);

  useEffect(() => {
    if (!sending) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => {
      window.removeEventListener("beforeunload", warn);
    };
  }, [sending]);

  useEffect(
    () => () => {
      abortRef.current?.abort();
    },
    [],
  );

  const limits = user.limits;
  const { sendable, tooLarge } = useMemo(() => splitTooLarge(files, limits), [files, limits]);
  const grouping = useMemo(() => groupFiles(sendable), [sendable]);
  // What the browser read from each file's header: a study is checked against the archive by it.
  const sopByPath = useMemo(() => {
    const sops = new Map<string, string>();
    for (const f of sendable) {
      if (f.inspection.kind === "dicom") sops.set(f.path, f.inspection.header.sopInstanceUid);
    }
    return sops;
  }, [sendable]);
  const { groups, ignored } = grouping;
  const tooLargeIn = useMemo(() => {
    const count = new Map<string, number>();
    for (const { file } of tooLarge) {
      const key = groupKeyOf(file.inspection, file.path);
      if (key) count.set(key, (count.get(key) ?? 0) + 1);
    }
    return count;
  }, [tooLarge]);
  const stateOf = useCallback((key: string) => states[key] ?? initialGroupState(), [states]);

  const update = useCallback((key: string, change: (s: GroupState) => GroupState) => {
    setStates((prev) => ({ ...prev, [key]: change(prev[key] ?? initialGroupState()) }));
  }, []);

  const addFiles = async (picked: PickedFile[]) => {
    if (picked.length === 0) return;
    setNotice(null);
    setReading({ done: 0, total: picked.length });
    const inspected = await inspectAll(picked, (done) => {
      setReading({ done, total: picked.length });
    });
    setFiles((current) => mergePicked(current, inspected));
    setReading(null);
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (sending || reading) return;
    void fromDrop(e.dataTransfer).then(addFiles);
  };

  const removeGroup = (key: string) => {
    setFiles((current) => current.filter((f) => groupKeyOf(f.inspection, f.path) !== key));
    setStates((prev) => Object.fromEntries(Object.entries(prev).filter(([k]) => k !== key)));
  };

  const clearAll = () => {
    setFiles([]);
    setStates({});
    setNotice(null);
    setFormError(null);
  };

  const pending = groups.filter((g) => isPending(states[g.key], g.files.length));
  const totalBytes = groups.reduce((n, g) => n + g.bytes, 0);
  const sentBytes = groups.reduce((n, g) => n + Math.min(stateOf(g.key).sentBytes, g.bytes), 0);
  const started = groups.some((g) => stateOf(g.key).status !== "idle");
  const allDone = groups.length > 0 && groups.every((g) => !isPending(states[g.key], g.files.length));

  const send = async (keys: string[]) => {
    if (choosesHospital && !hospital) {
      setFormError(t("upload.hospitalRequired"));
      return;
    }
    setFormError(null);
    setNotice(null);
    const controller = new AbortController();
    abortRef.current = controller;
    setSending(true);
    for (const key of keys) {
      const group = groups.find((g) => g.key === key);
      if (!group) continue;
      const before = stateOf(key);
      const onProgress = (sent: number) => {
        update(key, (s) => ({ ...s, sentBytes: sent }));
      };
      const onAnswer = (batch: Batch<PickedFile>, response: UploadResponse) => {
        update(key, (s) => ({
          ...s,
          outcome: addResponse(s.outcome, response),
          caseOpened: s.caseOpened || response.case_ids.length > 0,
          nextBatch: batch.index + 1,
        }));
      };
      let result: SendResult;
      if (group.kind === "study") {
        // Every send of a study, a retry included, starts by asking the archive what it holds.
        const studyUid = group.study.studyInstanceUid;
        update(key, (s) => ({
          ...s,
          status: "checking",
          plannedFiles: group.files.length,
          nextBatch: 0,
          error: null,
        }));
        ({ result } = await sendStudy({
          files: group.files,
          studyUid,
          sopOf: (path) => sopByPath.get(path),
          // A technician's searches see their own hospital only, the one they send for.
          search: user.role === "tech" ? qidoVia(client) : null,
          answered: answeredPaths(before.outcome.files),
          limits: batchLimits(limits),
          fields: before.fields,
          hospital: choosesHospital ? hospital : null,
          caseOpened: before.caseOpened,
          upload: (request) => client.upload(request),
          signal: controller.signal,
          callbacks: {
            onPlan: (plan, batches) => {
              const present = plan.present.map((f) => ({
                path: f.path,
                sopInstanceUid: sopByPath.get(f.path) ?? "",
                studyInstanceUid: studyUid,
              }));
              update(key, (s) => ({
                ...s,
                status: "sending",
                batches,
                outcome: addPresent(s.outcome, present),
              }));
            },
            onProgress,
            onAnswer,
          },
        }));
      } else {
        const replan = !before.batches || before.plannedFiles !== group.files.length;
        const batches =
          replan || !before.batches ? planBatches(group.files, batchLimits(limits)) : before.batches;
        const startAt = replan ? 0 : before.nextBatch;
        update(key, (s) => ({
          ...s,
          status: "sending",
          batches,
          plannedFiles: group.files.length,
          nextBatch: startAt,
          error: null,
        }));
        result = await sendBatches({
          batches,
          startAt,
          fields: before.fields,
          hospital: choosesHospital ? hospital : null,
          caseOpened: before.caseOpened,
          upload: (request) => client.upload(request),
          signal: controller.signal,
          callbacks: { onProgress, onAnswer },
        });
      }
      if (result.ok) {
        update(key, (s) => ({ ...s, status: "done", sentBytes: group.bytes }));
        continue;
      }
      update(key, (s) => ({
        ...s,
        status: result.cancelled ? "cancelled" : "failed",
        nextBatch: result.failedAt,
        error: errorText(result.error, t),
      }));
      if (result.cancelled) break;
      if (result.error.isNetwork) {
        setNotice(t("upload.stoppedNetwork"));
        break;
      }
    }
    abortRef.current = null;
    setSending(false);
  };

  if (!canSend(user.role)) {
    return (
      <section className="page narrow-page">
        <h1>{t("upload.title")}</h1>
        <p>{t("upload.notAllowed")}</p>
      </section>
    );
  }

  const activeHospitals = (hospitals ?? []).filter((h) => h.active);
  const ownHospital = user.hospital_name
    ? `${user.hospital_name} (${user.hospital_code ?? ""})`
    : (user.hospital_code ?? "…");
  const studies = groups.filter((g) => g.kind === "study").length;
  const archives = groups.filter((g) => g.kind === "archive").length;
  const fileCount = groups.reduce((n, g) => n + g.files.length, 0);
  const locked = sending || reading !== null;

  return (
    <section className="page upload-page" aria-labelledby={`${id}-title`}>
      <div className="page-head">
        <h1 id={`${id}-title`}>{t("upload.title")}</h1>
        <p className="muted">{t("upload.intro")}</p>
      </div>

      <div className="card hospital-card">
        {choosesHospital ? (
          <div className="field inline">
            <label htmlFor={`${id}-hospital`}>{t("upload.hospital")}</label>
            <select
              id={`${id}-hospital`}
              value={hospital}
              disabled={sending}
              aria-invalid={formError !== null && !hospital}
              onChange={(e) => {
                setHospital(e.target.value);
                setFormError(null);
              }}
            >
              <option value="">{t("upload.hospitalChoose")}</option>
              {activeHospitals.map((h) => (
                <option key={h.code} value={h.code}>
                  {h.code} — {h.name}
                </option>
              ))}
            </select>
          </div>
        ) : (
          <p className="hospital-line">
            {t("upload.hospitalFor", { hospital: ownHospital })}
          </p>
        )}
        {hospitalError && (
          <p className="error" role="alert">
            {hospitalError}
          </p>
        )}
      </div>

      <div
        className={`drop-zone${dragging ? " dragging" : ""}${locked ? " locked" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          e.dataTransfer.dropEffect = locked ? "none" : "copy";
          if (!locked) setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p className="drop-title">{t("upload.drop")}</p>
        <p className="muted">{t("upload.or")}</p>
        <div className="actions center">
          <button type="button" className="primary" disabled={locked} onClick={() => filesInput.current?.click()}>
            {t("upload.pickFiles")}
          </button>
          <button type="button" className="primary" disabled={locked} onClick={() => folderInput.current?.click()}>
            {t("upload.pickFolder")}
          </button>
        </div>
        <input
          ref={filesInput}
          type="file"
          multiple
          hidden
          aria-label={t("upload.pickFiles")}
          onChange={(e) => {
            const list = e.currentTarget.files;
            if (list) void addFiles(fromFileList(list));
            e.currentTarget.value = "";
          }}
        />
        <input
          ref={folderInput}
          type="file"
          multiple
          hidden
          aria-label={t("upload.pickFolder")}
          onChange={(e) => {
            const list = e.currentTarget.files;
            if (list) void addFiles(fromFileList(list));
            e.currentTarget.value = "";
          }}
        />
        {reading && (
          <div className="reading" role="status">
            <Progress
              label={t("upload.reading", { done: reading.done, total: reading.total })}
              value={reading.done}
              max={reading.total}
              text=""
            />
          </div>
        )}
      </div>

      {groups.length === 0 && ignored.length === 0 && tooLarge.length === 0 && !reading && (
        <p className="muted">{t("upload.empty")}</p>
      )}

      {(groups.length > 0 || ignored.length > 0) && (
        <p className="found" role="status">
          {t("upload.found", { studies, archives, files: number(fileCount), size: bytes(totalBytes) })}
        </p>
      )}

      {tooLarge.length > 0 && (
        <details className="ignored too-large" open>
          <summary className="warning-text">{t("upload.tooLarge", { n: tooLarge.length })}</summary>
          <ul>
            {tooLarge.map(({ file, problem }) => (
              <li key={file.path}>
                <span className="file-name">{file.path}</span> —{" "}
                {t(`upload.tooLarge.${problem.kind}`, { size: bytes(file.size), limit: bytes(problem.limit) })}
              </li>
            ))}
          </ul>
        </details>
      )}

      {ignored.length > 0 && (
        <details className="ignored">
          <summary>{t("upload.ignored", { n: ignored.length })}</summary>
          <ul>
            {ignored.map((f) => (
              <li key={f.path}>
                <span className="file-name">{f.path}</span> — {t(`upload.ignored.${f.reason}`)}
              </li>
            ))}
          </ul>
        </details>
      )}

      <div className="groups">
        {groups.map((g, i) => (
          <GroupCard
            key={g.key}
            group={g}
            index={i}
            state={stateOf(g.key)}
            busy={sending}
            tooLarge={tooLargeIn.get(g.key) ?? 0}
            onFields={(fields: CaseFields) => {
              update(g.key, (s) => ({ ...s, fields }));
            }}
            onRemove={() => {
              removeGroup(g.key);
            }}
            onRetry={() => void send([g.key])}
          />
        ))}
      </div>

      {groups.length > 0 && (
        <div className="send-bar card">
          {started && (
            <Progress
              label={t("upload.overall")}
              value={sentBytes}
              max={totalBytes}
              text={t("upload.progress", { sent: bytes(sentBytes), total: bytes(totalBytes) })}
            />
          )}
          {formError && (
            <p className="error" role="alert">
              {formError}
            </p>
          )}
          {notice && (
            <p className="warning-text" role="alert">
              {notice}
            </p>
          )}
          {allDone && !sending && (
            <p className="ok-text" role="status">
              {t("upload.allDone")}
            </p>
          )}
          <div className="actions">
            {sending ? (
              <button type="button" className="secondary" onClick={() => abortRef.current?.abort()}>
                {t("upload.cancel")}
              </button>
            ) : (
              pending.length > 0 && (
                <button
                  type="button"
                  className="primary"
                  disabled={reading !== null}
                  onClick={() => void send(pending.map((g) => g.key))}
                >
                  {pending.some((g) => {
                    const s = states[g.key]?.status;
                    return s === "failed" || s === "cancelled";
                  })
                    ? t("group.retry")
                    : t("upload.sendAll", { n: pending.length })}
                </button>
              )
            )}
            {!sending && (
              <button type="button" className="secondary" onClick={clearAll} disabled={reading !== null}>
                {allDone ? t("upload.newUpload") : t("upload.clear")}
              </button>
            )}
            {sending && <span className="muted">{t("upload.sending")}</span>}
          </div>
        </div>
      )}
    </section>
  );
}
