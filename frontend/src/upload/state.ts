// What the upload page remembers about each group while it is sent.

import type { PickedFile } from "../dicom/grouping";
import type { Batch } from "./batches";
import { EMPTY_OUTCOME, type GroupOutcome } from "./outcomes";
import { EMPTY_CASE_FIELDS, type CaseFields } from "./send";

/** "checking": asking the archive which of a study's instances it already holds (resume.ts). */
export type GroupStatus = "idle" | "checking" | "sending" | "done" | "failed" | "cancelled";

export interface GroupState {
  fields: CaseFields;
  status: GroupStatus;
  /** Planned when the group is first sent; planned again if its files change, and for a study
   * on every send, over the files the archive does not hold yet. */
  batches: Batch<PickedFile>[] | null;
  plannedFiles: number;
  /** The batch to send next (a retry starts there). */
  nextBatch: number;
  sentBytes: number;
  outcome: GroupOutcome;
  /** An answer named the case: the case fields went through. */
  caseOpened: boolean;
  error: string | null;
}

export function initialGroupState(fields: CaseFields = EMPTY_CASE_FIELDS): GroupState {
  return {
    fields,
    status: "idle",
    batches: null,
    plannedFiles: 0,
    nextBatch: 0,
    sentBytes: 0,
    outcome: EMPTY_OUTCOME,
    caseOpened: false,
    error: null,
  };
}

/** Groups that a Send press sends: not yet sent, stopped, or grown since they were sent. */
export function isPending(state: GroupState | undefined, fileCount: number): boolean {
  if (!state) return true;
  if (state.status === "sending" || state.status === "checking") return false;
  if (state.status === "done") return state.plannedFiles !== fileCount;
  return true;
}
