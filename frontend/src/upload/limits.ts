// The server's limits (GET /api/me), turned into what the upload page needs: how big a request
// may be, and which files the server would refuse for their size alone, so that they are marked
// "too large" here instead of being sent for nothing.

import type { ServerLimits } from "../api/types";
import type { InspectedFile } from "../dicom/grouping";
import { DEFAULT_LIMITS, partBytes, type BatchLimits } from "./batches";

/** Room kept in every request for the form fields (the case information is at most about 12,000
 * characters, up to 4 bytes each in UTF-8) and the multipart framing. */
export const FORM_RESERVE_BYTES = 64 * 1024;

/** The share of the server's request limit kept free when packing many files into one request:
 * part headers are estimated, and estimates add up. */
export const SAFETY_SHARE = 0.02;

/** Bytes of files that one request of many files may carry on this server. */
export function requestRoom(server: ServerLimits): number {
  const margin = Math.max(FORM_RESERVE_BYTES, Math.ceil(server.max_upload_bytes * SAFETY_SHARE));
  return server.max_upload_bytes - margin;
}

/** Our caps, lowered to what the server takes (with a margin) when it takes less. */
export function batchLimits(
  server: ServerLimits | null | undefined,
  caps: BatchLimits = DEFAULT_LIMITS,
): BatchLimits {
  if (!server) return caps;
  return {
    maxFiles: caps.maxFiles,
    maxBytes: Math.max(1, Math.min(caps.maxBytes, requestRoom(server))),
  };
}

/** Why the server would refuse a file for its size: a DICOM object over the per-object limit, or
 * any file (a zip archive above all) that does not fit in a request on its own. */
export interface SizeProblem {
  kind: "object" | "request";
  /** The server's limit that the file is over, in bytes. */
  limit: number;
}

/** A zip archive is opened by the server, which then checks each member against the per-object
 * limit: only the request limit applies to the archive itself. */
export function sizeProblem(
  file: { size: number; path: string },
  isArchive: boolean,
  server: ServerLimits | null | undefined,
): SizeProblem | null {
  if (!server) return null;
  if (!isArchive && file.size > server.max_instance_bytes) {
    return { kind: "object", limit: server.max_instance_bytes };
  }
  if (partBytes(file) > server.max_upload_bytes - FORM_RESERVE_BYTES) {
    return { kind: "request", limit: server.max_upload_bytes };
  }
  return null;
}

export interface TooLarge<F> {
  file: InspectedFile<F>;
  problem: SizeProblem;
}

/** Separates the files the server would refuse for their size from the ones to send. Files that
 * are not sent anyway (DICOMDIR, not DICOM) stay where they are, listed with their own reason. */
export function splitTooLarge<F>(
  files: readonly InspectedFile<F>[],
  server: ServerLimits | null | undefined,
): { sendable: InspectedFile<F>[]; tooLarge: TooLarge<F>[] } {
  const sendable: InspectedFile<F>[] = [];
  const tooLarge: TooLarge<F>[] = [];
  for (const file of files) {
    const kind = file.inspection.kind;
    const sent = kind === "dicom" || kind === "zip" || kind === "unreadable";
    const problem = sent ? sizeProblem(file, kind === "zip", server) : null;
    if (problem) tooLarge.push({ file, problem });
    else sendable.push(file);
  }
  return { sendable, tooLarge };
}
