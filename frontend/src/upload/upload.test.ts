import { describe, expect, it } from "vitest";

import { ApiError, type UploadRequest } from "../api/client";
import type { FileOutcome, UploadResponse } from "../api/types";
import type { PickedFile } from "../dicom/grouping";
import { PART_OVERHEAD_BYTES, planBatches } from "./batches";
import {
  EMPTY_OUTCOME,
  addResponse,
  problems,
  summarize,
  verdict,
  type OutcomeKey,
} from "./outcomes";
import { EMPTY_CASE_FIELDS, buildForm, sendBatches } from "./send";

function files(count: number, size: number, prefix = "f"): { path: string; size: number }[] {
  return Array.from({ length: count }, (_, i) => ({ path: `${prefix}${i}`, size }));
}

describe("planBatches", () => {
  it("keeps a small study in one complete request", () => {
    const batches = planBatches(files(20, 1000));
    expect(batches).toHaveLength(1);
    expect(batches[0]?.items).toHaveLength(20);
    expect(batches[0]?.complete).toBe(true);
  });

  it("splits by file count and marks only the last batch complete", () => {
    const batches = planBatches(files(1201, 10), { maxFiles: 500, maxBytes: 1e9 });
    expect(batches.map((b) => b.items.length)).toEqual([500, 500, 201]);
    expect(batches.map((b) => b.complete)).toEqual([false, false, true]);
    expect(batches.map((b) => b.index)).toEqual([0, 1, 2]);
    // every file once, in order
    expect(batches.flatMap((b) => b.items.map((f) => f.path))).toEqual(
      files(1201, 10).map((f) => f.path),
    );
  });

  it("splits by bytes, counting multipart overhead", () => {
    const per = 1000 + PART_OVERHEAD_BYTES + 2; // path "fN" is 2 characters
    const batches = planBatches(files(10, 1000), { maxFiles: 500, maxBytes: per * 3 });
    expect(batches.map((b) => b.items.length)).toEqual([3, 3, 3, 1]);
    expect(batches.every((b) => b.bytes <= per * 3)).toBe(true);
    expect(batches[0]?.bytes).toBe(per * 3);
  });

  it("gives a file over the byte limit a batch of its own", () => {
    const items = [
      { path: "a", size: 10 },
      { path: "huge.zip", size: 5000 },
      { path: "b", size: 10 },
    ];
    const batches = planBatches(items, { maxFiles: 500, maxBytes: 1000 });
    expect(batches.map((b) => b.items.map((i) => i.path))).toEqual([["a"], ["huge.zip"], ["b"]]);
    expect(batches.map((b) => b.complete)).toEqual([false, false, true]);
  });

  it("plans nothing for no files and refuses silly limits", () => {
    expect(planBatches([])).toEqual([]);
    expect(() => planBatches(files(1, 1), { maxFiles: 0, maxBytes: 10 })).toThrow();
  });
});

function outcome(name: string, o: FileOutcome["outcome"], message = ""): FileOutcome {
  return {
    name,
    outcome: o,
    message,
    status: 0,
    sop_class_uid: "",
    sop_instance_uid: "",
    study_instance_uid: "",
    series_instance_uid: "",
    case_id: o === "failed" || o === "skipped" ? null : 3,
  };
}

function response(list: FileOutcome[], caseIds: number[] = [3]): UploadResponse {
  const count = (o: FileOutcome["outcome"]) => list.filter((f) => f.outcome === o).length;
  return {
    stored: count("stored"),
    duplicates: count("duplicate"),
    conflicts: count("conflict"),
    failed: count("failed"),
    skipped: count("skipped"),
    case_ids: caseIds,
    files: list,
  };
}

const english = (key: OutcomeKey, { n }: { n: number }) =>
  ({
    "outcome.count.stored": `${n} stored`,
    "outcome.count.duplicate": `${n} already there`,
    "outcome.count.conflict": `${n} in conflict`,
    "outcome.count.failed": `${n} failed`,
    "outcome.count.skipped": `${n} skipped`,
  })[key];

describe("outcomes", () => {
  it("adds answers up, a resent file keeping its latest outcome", () => {
    let o = addResponse(EMPTY_OUTCOME, response([outcome("a", "stored"), outcome("b", "failed", "cut short")]));
    o = addResponse(o, response([outcome("c", "conflict"), outcome("d", "skipped")], [3, 4]));
    expect(o.totals).toEqual({ stored: 1, duplicate: 0, conflict: 1, failed: 1, skipped: 1 });
    expect(o.caseIds).toEqual([3, 4]);
    // a retry of the first request: "a" now a duplicate, "b" stored
    o = addResponse(o, response([outcome("a", "duplicate"), outcome("b", "stored")]));
    expect(o.totals).toEqual({ stored: 1, duplicate: 1, conflict: 1, failed: 0, skipped: 1 });
  });

  it("lists problems first and says it plainly", () => {
    const list = [
      outcome("z", "stored"),
      outcome("y", "skipped"),
      outcome("x", "failed", "not a DICOM file"),
      outcome("w", "conflict"),
      outcome("v", "duplicate"),
    ];
    expect(problems(list).map((f) => `${f.name}:${f.outcome}`)).toEqual([
      "x:failed",
      "w:conflict",
      "y:skipped",
    ]);
    const totals = addResponse(EMPTY_OUTCOME, response(list)).totals;
    expect(summarize(totals, english)).toBe(
      "1 stored, 1 already there, 1 in conflict, 1 failed, 1 skipped",
    );
    expect(summarize({ stored: 40, duplicate: 0, conflict: 0, failed: 0, skipped: 0 }, english)).toBe(
      "40 stored",
    );
    expect(summarize({ stored: 1, duplicate: 2, conflict: 0, failed: 0, skipped: 0 }, english, "，")).toBe(
      "1 stored，2 already there",
    );
  });

  it("gives a verdict", () => {
    const t = { stored: 0, duplicate: 0, conflict: 0, failed: 0, skipped: 0 };
    expect(verdict({ ...t, stored: 3 })).toBe("ok");
    expect(verdict({ ...t, duplicate: 3 })).toBe("ok");
    expect(verdict({ ...t, stored: 3, failed: 1 })).toBe("warning");
    expect(verdict({ ...t, conflict: 1 })).toBe("warning");
    expect(verdict({ ...t, failed: 2, skipped: 1 })).toBe("error");
  });
});

function picked(n: number, size = 100): PickedFile<Blob>[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `dir/${i}.dcm`,
    size,
    file: new Blob([new Uint8Array(size)]),
  }));
}

describe("buildForm", () => {
  it("sends the files under their path, the fields, the hospital and complete", () => {
    const [batch] = planBatches(picked(2));
    if (!batch) throw new Error("no batch");
    const form = buildForm(batch, {
      fields: { ...EMPTY_CASE_FIELDS, priority: "stat", clinical_question: "  rule out bleed " },
      hospital: "QSX",
    });
    expect(form.get("hospital")).toBe("QSX");
    expect(form.get("priority")).toBe("stat");
    expect(form.get("clinical_question")).toBe("rule out bleed");
    expect(form.has("clinical_history")).toBe(false);
    expect(form.has("requested_subspecialty")).toBe(false);
    expect(form.get("complete")).toBe("true");
    const sent = form.getAll("files") as File[];
    expect(sent.map((f) => f.name)).toEqual(["dir/0.dcm", "dir/1.dcm"]);
  });
});

describe("sendBatches", () => {
  const ok = (caseIds: number[] = [9]) => ({ result: response([outcome("x", "stored")], caseIds), rejected: false });

  it("sends in order, complete only on the last, the case fields until the case is open", async () => {
    const batches = planBatches(picked(5), { maxFiles: 2, maxBytes: 1e9 });
    const forms: FormData[] = [];
    const progress: number[] = [];
    const answered: number[] = [];
    const result = await sendBatches({
      batches,
      fields: { ...EMPTY_CASE_FIELDS, clinical_question: "pain" },
      hospital: null,
      upload: (req: UploadRequest) => {
        forms.push(req.form);
        req.onProgress?.({ loaded: 50, total: 100 });
        return Promise.resolve(ok());
      },
      callbacks: { onProgress: (b) => progress.push(b), onAnswer: (b) => answered.push(b.index) },
    });
    expect(result).toEqual({ ok: true });
    expect(forms.map((f) => f.get("complete"))).toEqual(["false", "false", "true"]);
    expect(forms.map((f) => f.get("clinical_question"))).toEqual(["pain", null, null]);
    expect(forms.map((f) => f.getAll("files").length)).toEqual([2, 2, 1]);
    expect(answered).toEqual([0, 1, 2]);
    const total = batches.reduce((n, b) => n + b.bytes, 0);
    expect(progress[progress.length - 1]).toBe(total);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
  });

  it("stops at a failed request and resumes from it", async () => {
    const batches = planBatches(picked(6), { maxFiles: 2, maxBytes: 1e9 });
    const sent: string[] = [];
    let failOnce = true;
    const upload = (req: UploadRequest) => {
      const complete = req.form.get("complete") as string | null;
      const priority = req.form.get("priority") as string | null;
      sent.push(`${complete ?? "null"}:${priority ?? "null"}`);
      if (sent.length === 2 && failOnce) {
        failOnce = false;
        return Promise.reject(new ApiError(0, "network_error", "Failed to fetch"));
      }
      return Promise.resolve(ok(sent.length === 1 ? [] : [9]));
    };
    const fields = { ...EMPTY_CASE_FIELDS, priority: "urgent" as const };
    const first = await sendBatches({ batches, fields, hospital: "QSX", upload });
    expect(first).toMatchObject({ ok: false, failedAt: 1, cancelled: false });
    // the first answer opened no case, so the fields go again with the retried request
    const again = await sendBatches({ batches, fields, hospital: "QSX", upload, startAt: 1 });
    expect(again).toEqual({ ok: true });
    expect(sent).toEqual(["false:urgent", "false:urgent", "false:urgent", "true:null"]);
  });

  it("goes on after a request the server refused as a whole", async () => {
    const batches = planBatches(picked(4), { maxFiles: 2, maxBytes: 1e9 });
    const answers = [
      { result: response([outcome("a", "failed"), outcome("b", "failed")], []), rejected: true },
      ok(),
    ];
    const seen: UploadResponse[] = [];
    const result = await sendBatches({
      batches,
      fields: EMPTY_CASE_FIELDS,
      hospital: null,
      upload: () => Promise.resolve(answers.shift() ?? ok()),
      callbacks: { onAnswer: (_b, r) => seen.push(r) },
    });
    expect(result).toEqual({ ok: true });
    expect(seen.map((r) => r.failed)).toEqual([2, 0]);
  });

  it("reports a cancel", async () => {
    const batches = planBatches(picked(1));
    const result = await sendBatches({
      batches,
      fields: EMPTY_CASE_FIELDS,
      hospital: null,
      upload: () => Promise.reject(new ApiError(0, "aborted", "cancelled")),
    });
    expect(result).toMatchObject({ ok: false, failedAt: 0, cancelled: true });
  });
});
