// Sending one group (a study, an archive, the unreadable files) batch after batch. A request that
// fails on the way (network, server down) stops the group at that batch; sending again from it is
// safe, because the server answers "duplicate" for what it already has. A study is first checked
// against the archive, so that what it holds is not sent at all (resume.ts).

import { ABORTED, ApiError, type UploadProgress, type UploadRequest } from "../api/client";
import type { Priority, Subspecialty, UploadResponse } from "../api/types";
import type { PickedFile } from "../dicom/grouping";
import type { Batch } from "./batches";

export interface CaseFields {
  priority: Priority;
  clinical_question: string;
  clinical_history: string;
  requested_exam: string;
  requested_subspecialty: Subspecialty | "";
}

export const EMPTY_CASE_FIELDS: CaseFields = {
  priority: "routine",
  clinical_question: "",
  clinical_history: "",
  requested_exam: "",
  requested_subspecialty: "",
};

/** The multipart body of one request: `files` repeated (named by their relative path), the case
 * fields when asked for, the sending hospital's code (coordinators, admins), and `complete`. */
export function buildForm<F extends Blob>(
  batch: Batch<PickedFile<F>>,
  options: { fields: Partial<CaseFields> | null; hospital: string | null },
): FormData {
  const form = new FormData();
  if (options.hospital) form.append("hospital", options.hospital);
  if (options.fields) {
    for (const [key, value] of Object.entries(options.fields) as [keyof CaseFields, string][]) {
      const v = value.trim();
      if (v) form.append(key, v);
    }
  }
  form.append("complete", batch.complete ? "true" : "false");
  for (const item of batch.items) form.append("files", item.file, item.path);
  return form;
}

export type Uploader = (
  request: UploadRequest,
) => Promise<{ result: UploadResponse; rejected: boolean }>;

export interface SendCallbacks<F> {
  /** Bytes of the group sent so far (finished batches plus the running one's share). */
  onProgress?: (bytesSent: number) => void;
  /** A batch was answered (stored, or refused as a whole with a per-file summary). */
  onAnswer?: (batch: Batch<PickedFile<F>>, response: UploadResponse) => void;
}

export type SendResult =
  | { ok: true }
  | { ok: false; failedAt: number; error: ApiError; cancelled: boolean };

/**
 * Sends `batches` from index `startAt` on, one request at a time. The case fields go with the
 * requests until one of them has opened the case (its answer names a case id): each request that
 * carries them adds an event to the case's timeline.
 */
export async function sendBatches<F extends Blob>(args: {
  batches: readonly Batch<PickedFile<F>>[];
  startAt?: number;
  /** A field left out is not sent: the case keeps what it has. */
  fields: Partial<CaseFields>;
  hospital: string | null;
  /** Whether an earlier run already opened the case (so the fields went through). */
  caseOpened?: boolean;
  upload: Uploader;
  signal?: AbortSignal;
  callbacks?: SendCallbacks<F>;
}): Promise<SendResult> {
  const { batches, upload, signal, callbacks } = args;
  const start = args.startAt ?? 0;
  let caseOpened = args.caseOpened ?? false;
  let done = batches.slice(0, start).reduce((n, b) => n + b.bytes, 0);
  callbacks?.onProgress?.(done);
  for (let i = start; i < batches.length; i++) {
    const batch = batches[i];
    if (!batch) continue;
    const form = buildForm(batch, {
      fields: caseOpened ? null : args.fields,
      hospital: args.hospital,
    });
    const onProgress = (p: UploadProgress) => {
      const share = p.total > 0 ? Math.min(1, p.loaded / p.total) : 0;
      callbacks?.onProgress?.(done + share * batch.bytes);
    };
    try {
      const request: UploadRequest = { form, onProgress };
      if (signal) request.signal = signal;
      const { result } = await upload(request);
      if (result.case_ids.length > 0) caseOpened = true;
      callbacks?.onAnswer?.(batch, result);
    } catch (e) {
      const error = e instanceof ApiError ? e : new ApiError(0, "error", String(e));
      return { ok: false, failedAt: i, error, cancelled: error.code === ABORTED };
    }
    done += batch.bytes;
    callbacks?.onProgress?.(done);
  }
  return { ok: true };
}
