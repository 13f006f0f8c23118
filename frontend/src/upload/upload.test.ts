import { describe, expect, it } from "vitest";

import { ApiError, type UploadRequest } from "../api/client";
import type { FileOutcome, UploadResponse } from "../api/types";
import type { PickedFile } from "../dicom/grouping";
import type { ServerLimits } from "../api/types";
import type { InspectedFile } from "../dicom/grouping";
import { DEFAULT_LIMITS, PART_OVERHEAD_BYTES, partBytes, planBatches } from "./batches";
import { FORM_RESERVE_BYTES, batchLimits, requestRoom, sizeProblem, splitTooLarge } from "./limits";
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

  it("counts a file's name in UTF-8", () => {
    expect(partBytes({ path: "CT/1.dcm", size: 10 })).toBe(10 + PART_OVERHEAD_BYTES + 8);
    // 病人 is 2 characters, 6 bytes
    expect(partBytes({ path: "病人/1.dcm", size: 10 })).toBe(10 + PART_OVERHEAD_BYTES + 12);
  });

  it("plans nothing for no files and refuses silly limits", () => {
    expect(planBatches([])).toEqual([]);
    expect(() => planBatches(files(1, 1), { maxFiles: 0, maxBytes: 10 })).toThrow();
  });
});

const MB = 1024 * 1024;
const GB = 1024 * MB;

function server(uploadBytes: number, instanceBytes = 2 * GB): ServerLimits {
  return { max_upload_bytes: uploadBytes, max_instance_bytes: instanceBytes, max_zip_members: 20_000 };
}

describe("limits from the server", () => {
  it("keeps our caps below a large server limit", () => {
    expect(batchLimits(server(4 * GB))).toEqual(DEFAULT_LIMITS);
    expect(batchLimits(null)).toEqual(DEFAULT_LIMITS);
    expect(batchLimits(undefined)).toEqual({ maxBytes: 200 * MB, maxFiles: 500 });
  });

  it("goes below a small server limit, with a margin", () => {
    const limits = batchLimits(server(100 * MB));
    expect(limits.maxFiles).toBe(500);
    // 2 % of 100 MB kept free (more than the 64 KiB reserve for the form fields)
    expect(limits.maxBytes).toBe(100 * MB - Math.ceil(100 * MB * 0.02));
    expect(limits.maxBytes).toBe(requestRoom(server(100 * MB)));
    // a tiny limit: the reserve for the form fields wins over 2 %
    expect(batchLimits(server(1 * MB)).maxBytes).toBe(1 * MB - FORM_RESERVE_BYTES);
  });

  it("plans requests that the server will take", () => {
    const limit = 10 * MB;
    const items = files(100, 512 * 1024); // 50 MB in 100 files
    const batches = planBatches(items, batchLimits(server(limit)));
    expect(batches.length).toBeGreaterThan(5);
    for (const b of batches) {
      // each request: the files, their part headers and the form fields
      expect(b.bytes + FORM_RESERVE_BYTES).toBeLessThanOrEqual(limit);
    }
    expect(batches.reduce((n, b) => n + b.items.length, 0)).toBe(100);
    expect(batches.filter((b) => b.complete)).toHaveLength(1);
    // at our caps, the same files go in one request
    expect(planBatches(items, batchLimits(server(4 * GB)))).toHaveLength(1);
  });
});

function inspected(path: string, size: number, kind: "dicom" | "zip" | "unreadable" | "not-dicom"): InspectedFile<null> {
  const inspection: InspectedFile["inspection"] =
    kind === "dicom"
      ? {
          kind,
          header: {
            studyInstanceUid: "1.2",
            seriesInstanceUid: "1.2.3",
            sopInstanceUid: `1.2.3.${path}`,
          } as Extract<InspectedFile["inspection"], { kind: "dicom" }>["header"],
        }
      : kind === "unreadable"
        ? { kind, reason: "cut short" }
        : { kind };
  return { path, size, file: null, inspection };
}

describe("too large to send", () => {
  const limits = server(4 * GB, 2 * GB);

  it("marks an object over the server's per-object limit", () => {
    expect(sizeProblem({ path: "a.dcm", size: 2 * GB }, false, limits)).toBeNull();
    expect(sizeProblem({ path: "a.dcm", size: 2 * GB + 1 }, false, limits)).toEqual({
      kind: "object",
      limit: 2 * GB,
    });
  });

  it("lets an archive be larger than one object, not larger than a request", () => {
    expect(sizeProblem({ path: "cd.zip", size: 3 * GB }, true, limits)).toBeNull();
    expect(sizeProblem({ path: "cd.zip", size: 4 * GB - 10 }, true, limits)).toEqual({
      kind: "request",
      limit: 4 * GB,
    });
    // an object that fits the per-object limit but not a request on this server
    expect(sizeProblem({ path: "a.dcm", size: 90 * MB }, false, server(64 * MB, 512 * MB))).toEqual({
      kind: "request",
      limit: 64 * MB,
    });
  });

  it("knows no limits before the server named them", () => {
    expect(sizeProblem({ path: "a.dcm", size: 10 * GB }, false, null)).toBeNull();
  });

  it("keeps oversized files out of what is sent", () => {
    const picked = [
      inspected("ok.dcm", 10 * MB, "dicom"),
      inspected("huge.dcm", 3 * GB, "dicom"),
      inspected("cd.zip", 3 * GB, "zip"),
      inspected("broken.dcm", 2 * GB + 1, "unreadable"),
      inspected("movie.mp4", 5 * GB, "not-dicom"),
    ];
    const { sendable, tooLarge } = splitTooLarge(picked, limits);
    expect(sendable.map((f) => f.path)).toEqual(["ok.dcm", "cd.zip", "movie.mp4"]);
    expect(tooLarge.map((x) => `${x.file.path}:${x.problem.kind}`)).toEqual([
      "huge.dcm:object",
      "broken.dcm:object",
    ]);
    expect(splitTooLarge(picked, null).tooLarge).toEqual([]);
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
    "outcome.count.present": `${n} already stored`,
    "outcome.count.duplicate": `${n} already there`,
    "outcome.count.conflict": `${n} in conflict`,
    "outcome.count.failed": `${n} failed`,
    "outcome.count.skipped": `${n} skipped`,
  })[key];

describe("outcomes", () => {
  it("adds answers up, a resent file keeping its latest outcome", () => {
    let o = addResponse(EMPTY_OUTCOME, response([outcome("a", "stored"), outcome("b", "failed", "cut short")]));
    o = addResponse(o, response([outcome("c", "conflict"), outcome("d", "skipped")], [3, 4]));
    expect(o.totals).toEqual({ stored: 1, present: 0, duplicate: 0, conflict: 1, failed: 1, skipped: 1 });
    expect(o.caseIds).toEqual([3, 4]);
    // a retry of the first request: "a" now a duplicate, "b" stored
    o = addResponse(o, response([outcome("a", "duplicate"), outcome("b", "stored")]));
    expect(o.totals).toEqual({ stored: 1, present: 0, duplicate: 1, conflict: 1, failed: 0, skipped: 1 });
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
    expect(summarize({ stored: 40, present: 0, duplicate: 0, conflict: 0, failed: 0, skipped: 0 }, english)).toBe(
      "40 stored",
    );
    expect(summarize({ stored: 1, present: 0, duplicate: 2, conflict: 0, failed: 0, skipped: 0 }, english, "，")).toBe(
      "1 stored，2 already there",
    );
  });

  it("gives a verdict", () => {
    const t = { stored: 0, present: 0, duplicate: 0, conflict: 0, failed: 0, skipped: 0 };
    expect(verdict({ ...t, stored: 3 })).toBe("ok");
    expect(verdict({ ...t, present: 3 })).toBe("ok");
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
