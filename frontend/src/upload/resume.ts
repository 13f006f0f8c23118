// Sending a study again without resending what the archive already holds: after a dropped
// connection (Retry) and after a page reload (the same folder dropped again). Before a study group
// is sent, the first time and on every retry, the archive is asked through our DICOMweb (QIDO-RS,
// with the sender's own token) which of the group's SOP Instance UIDs it has; those files are not
// sent. The server would answer "duplicate" for them anyway: asking costs one small request per
// thousand instances, resending costs the whole study's bytes again.
//
// The search is /dicomweb/instances?StudyInstanceUID=..., not /dicomweb/studies/{uid}/instances:
// the same scope rule and the same results, but a study not stored yet (every first send) is an
// empty list instead of a 404, which the browser would log as an error each time. A 404 is still
// read as nothing stored. A check that fails otherwise (network, server) is no reason to stop:
// everything not yet answered on this page is sent, and the server sorts out the duplicates.

import { ABORTED, ApiError, type ApiClient } from "../api/client";
import type { UploadResponse } from "../api/types";
import type { PickedFile } from "../dicom/grouping";
import { planBatches, type Batch, type BatchLimits } from "./batches";
import {
  EMPTY_CASE_FIELDS,
  sendBatches,
  type CaseFields,
  type SendCallbacks,
  type SendResult,
  type Uploader,
} from "./send";

/** The server's largest page of search results (backend dicomweb/qido.py MAX_LIMIT). */
export const QIDO_PAGE = 1000;

const INSTANCES = "/dicomweb/instances";

/** The SOP Instance UID attribute, as QIDO-RS names it in `includefield` and in DICOM JSON. */
const SOP_INSTANCE_UID = "00080018";

/** An authorised GET of DICOM JSON with its headers (ApiClient.getWithHeaders). */
export type QidoGet = (
  path: string,
  query: Record<string, string | number>,
  signal?: AbortSignal,
) => Promise<{ body: unknown; headers: Headers }>;

/** Searches through the API client: the sender's token, refreshed as for any request. */
export function qidoVia(client: ApiClient): QidoGet {
  return (path, query, signal) => {
    const options: Parameters<ApiClient["getWithHeaders"]>[1] = {
      query,
      accept: "application/dicom+json",
    };
    if (signal) options.signal = signal;
    return client.getWithHeaders(path, options);
  };
}

const MORE = /more results match: ask again with offset=(\d+)/u;

/** Where the next page starts when the server says more results match, from its Warning header
 * (`299 radrelay "more results match: ask again with offset=N"`); null when this was the last. */
export function nextOffset(warning: string | null): number | null {
  const m = warning ? MORE.exec(warning) : null;
  return m?.[1] ? Number.parseInt(m[1], 10) : null;
}

function sopOfResult(result: unknown): string | null {
  if (typeof result !== "object" || result === null) return null;
  const element = (result as Record<string, { Value?: unknown[] } | undefined>)[SOP_INSTANCE_UID];
  const value = element?.Value?.[0];
  return typeof value === "string" ? value : null;
}

/** The SOP Instance UIDs the archive holds for a study, page after page. 404 (not there, or not
 * the sender's to see) is an empty set; any other failure is thrown. */
export async function storedInstances(
  get: QidoGet,
  studyUid: string,
  signal?: AbortSignal,
): Promise<Set<string>> {
  const found = new Set<string>();
  let offset = 0;
  for (;;) {
    let page: { body: unknown; headers: Headers };
    try {
      const query = { StudyInstanceUID: studyUid, includefield: SOP_INSTANCE_UID, limit: QIDO_PAGE, offset };
      page = await get(INSTANCES, query, signal);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return found;
      throw e;
    }
    const results = Array.isArray(page.body) ? (page.body as unknown[]) : [];
    for (const r of results) {
      const sop = sopOfResult(r);
      if (sop) found.add(sop);
    }
    const next = nextOffset(page.headers.get("Warning"));
    // A next offset that does not move on would ask for the same page forever.
    if (next === null || next <= offset || results.length === 0) return found;
    offset = next;
  }
}

export interface ResumePlan<F> {
  /** The files to send, in the group's order. */
  send: PickedFile<F>[];
  /** Files the archive already held and this page has no answer for: shown "already stored". */
  present: PickedFile<F>[];
  /** When nothing is left to send: one stored file sent anyway, the smallest, so that a request
   * still carries complete=true (the case becomes ready) and the case fields. */
  carrier: PickedFile<F> | null;
}

/**
 * Which files of a study group to send. `stored`: the SOP Instance UIDs the archive holds;
 * `answered`: the paths this page already has a storing answer for (stored, duplicate, conflict),
 * which are not sent again even when the archive could not be asked.
 */
export function planResume<F>(
  files: readonly PickedFile<F>[],
  sopOf: (path: string) => string | undefined,
  stored: ReadonlySet<string>,
  answered: ReadonlySet<string>,
): ResumePlan<F> {
  const send: PickedFile<F>[] = [];
  const present: PickedFile<F>[] = [];
  const known: PickedFile<F>[] = [];
  for (const f of files) {
    const sop = sopOf(f.path);
    if (answered.has(f.path)) known.push(f);
    else if (sop !== undefined && stored.has(sop)) present.push(f);
    else send.push(f);
  }
  let carrier: PickedFile<F> | null = null;
  if (send.length === 0) {
    // The upload endpoint marks the case ready (complete=true) and applies the case fields only
    // with files: with every file stored, an interrupted last request may have stored them
    // without its answer (and so its completion) ever being seen here.
    const pool = present.length > 0 ? present : known;
    for (const f of pool) if (!carrier || f.size < carrier.size) carrier = f;
    if (carrier) send.push(carrier);
  }
  return { send, present, carrier };
}

/** The paths that this page's outcomes so far say the server holds (answered, or found by an
 * earlier check: the archive does not forget them). */
export function answeredPaths(files: readonly { name: string; outcome: string }[]): Set<string> {
  const held = new Set(["stored", "duplicate", "conflict", "present"]);
  return new Set(files.filter((f) => held.has(f.outcome)).map((f) => f.name));
}

/** The carrier's answer as the page shows it: its "duplicate" says nothing new (the file went
 * along only to close the study), so the file keeps what the page already shows for it ("already
 * stored", or "stored" by an earlier request). */
export function carrierAnswer<F>(response: UploadResponse, plan: ResumePlan<F>): UploadResponse {
  const carrier = plan.carrier;
  if (!carrier) return response;
  return {
    ...response,
    files: response.files.filter((f) => !(f.name === carrier.path && f.outcome === "duplicate")),
  };
}

/** The case fields for a study the archive already holds part of, so its case exists (opened by
 * an earlier page or session): a priority left at the form's default is not sent, since the
 * server applies every field given to the existing case, and a folder dropped again after a
 * reload would otherwise turn an urgent case back to routine. Fields filled in are sent. */
export function fieldsForKnownStudy(fields: CaseFields): Partial<CaseFields> {
  if (fields.priority !== EMPTY_CASE_FIELDS.priority) return fields;
  const rest: Partial<CaseFields> = { ...fields };
  delete rest.priority;
  return rest;
}

/** Bytes of the group that are not sent: they count as done in the progress bars. */
export function bytesNotSent<F>(files: readonly PickedFile<F>[], plan: ResumePlan<F>): number {
  const sending = new Set(plan.send.map((f) => f.path));
  return files.reduce((n, f) => (sending.has(f.path) ? n : n + f.size), 0);
}

/** What the archive holds of a study, or null when it could not be asked (the caller then sends
 * what this page has no answer for). A cancel is thrown: it is no failure of the check. */
export async function checkStudy(
  search: QidoGet,
  studyUid: string,
  signal?: AbortSignal,
): Promise<Set<string> | null> {
  try {
    return await storedInstances(search, studyUid, signal);
  } catch (e) {
    if (signal?.aborted || (e instanceof ApiError && e.code === ABORTED)) throw e;
    return null;
  }
}

export interface StudyCallbacks<F> extends SendCallbacks<F> {
  /** The archive was asked (or could not be): what will be sent, before the first request. */
  onPlan?: (plan: ResumePlan<F>, batches: Batch<PickedFile<F>>[], checked: boolean) => void;
}

/**
 * Sends a study group: asks the archive what it holds (`search`; null to skip asking), then sends
 * the rest in batches, the last with complete=true. Progress counts the files not sent as done.
 */
export async function sendStudy<F extends Blob>(args: {
  files: readonly PickedFile<F>[];
  studyUid: string;
  sopOf: (path: string) => string | undefined;
  /** null when the sender's searches are not limited to the sending hospital: a coordinator or
   * an admin sees every hospital's studies, and the same study sent by another hospital is a
   * study of its own there. Then only what this page has answers for is skipped. */
  search: QidoGet | null;
  answered: ReadonlySet<string>;
  limits: BatchLimits;
  fields: CaseFields;
  hospital: string | null;
  caseOpened?: boolean;
  upload: Uploader;
  signal?: AbortSignal;
  callbacks?: StudyCallbacks<F>;
}): Promise<{ plan: ResumePlan<F>; result: SendResult }> {
  const { files, callbacks, signal } = args;
  let stored: Set<string> | null = null;
  if (args.search) {
    try {
      stored = await checkStudy(args.search, args.studyUid, signal);
    } catch (e) {
      const error = e instanceof ApiError ? e : new ApiError(0, ABORTED, "The upload was cancelled.");
      const plan: ResumePlan<F> = { send: [...files], present: [], carrier: null };
      return { plan, result: { ok: false, failedAt: 0, error, cancelled: true } };
    }
  }
  const plan = planResume(files, args.sopOf, stored ?? new Set(), args.answered);
  const batches = planBatches(plan.send, args.limits);
  callbacks?.onPlan?.(plan, batches, stored !== null);
  const skipped = bytesNotSent(files, plan);
  const sendArgs: Parameters<typeof sendBatches<F>>[0] = {
    batches,
    fields: plan.present.length > 0 ? fieldsForKnownStudy(args.fields) : args.fields,
    hospital: args.hospital,
    caseOpened: args.caseOpened ?? false,
    upload: args.upload,
    callbacks: {
      onProgress: (sent) => callbacks?.onProgress?.(skipped + sent),
      onAnswer: (batch, response) => callbacks?.onAnswer?.(batch, carrierAnswer(response, plan)),
    },
  };
  if (signal) sendArgs.signal = signal;
  const result = await sendBatches(sendArgs);
  return { plan, result };
}
