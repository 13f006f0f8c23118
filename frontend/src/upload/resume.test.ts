import { describe, expect, it } from "vitest";

import { ApiClient, memoryTokenStore, type FetchLike, type UploadRequest } from "../api/client";
import type { FileOutcome, UploadResponse } from "../api/types";
import type { PickedFile } from "../dicom/grouping";
import { addPresent, addResponse, EMPTY_OUTCOME, type GroupOutcome } from "./outcomes";
import {
  answeredPaths,
  checkStudy,
  nextOffset,
  planResume,
  qidoVia,
  sendStudy,
  storedInstances,
  type ResumePlan,
} from "./resume";
import { EMPTY_CASE_FIELDS, type CaseFields } from "./send";

const STUDY = "1.2.826.0.1.3680043.8.498.1";
const sopOfIndex = (i: number) => `${STUDY}.${i}`;

/** A fake archive behind fetch: QIDO-RS instance searches for one study, paged by limit and
 * offset with the server's Warning when more match; `status` answers every search with it,
 * `down` makes fetch fail as a dropped connection does. */
function archive(sops: readonly string[], options: { status?: number; down?: boolean; abort?: boolean } = {}) {
  const calls: { url: URL; headers: Headers }[] = [];
  const fetchImpl: FetchLike = (input, init = {}) => {
    const url = new URL(input, "http://radrelay.test");
    calls.push({ url, headers: new Headers(init.headers) });
    if (options.abort) return Promise.reject(new DOMException("aborted", "AbortError"));
    if (options.down) return Promise.reject(new TypeError("Failed to fetch"));
    if (options.status) {
      const body = JSON.stringify({ error: "not_found", message: "No such study." });
      return Promise.resolve(
        new Response(body, { status: options.status, headers: { "Content-Type": "application/json" } }),
      );
    }
    const limit = Number(url.searchParams.get("limit") ?? "200");
    const offset = Number(url.searchParams.get("offset") ?? "0");
    const page = sops.slice(offset, offset + limit).map((uid) => ({
      "0020000D": { vr: "UI", Value: [STUDY] },
      "00080018": { vr: "UI", Value: [uid] },
    }));
    const headers = new Headers({ "Content-Type": "application/dicom+json" });
    if (offset + limit < sops.length) {
      headers.append("Warning", `299 radrelay "more results match: ask again with offset=${offset + limit}"`);
    }
    return Promise.resolve(new Response(JSON.stringify(page), { status: 200, headers }));
  };
  const client = new ApiClient({
    fetch: fetchImpl,
    store: memoryTokenStore({
      accessToken: "tech-token",
      refreshToken: "refresh",
      expiresAt: Date.now() + 3_600_000,
      role: "tech",
      hospitalId: 1,
    }),
  });
  return { calls, search: qidoVia(client) };
}

function studyFiles(n: number, size = 100): PickedFile<Blob>[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `study/${i}.dcm`,
    size: size + i,
    file: new Blob([new Uint8Array(size + i)]),
  }));
}

const sopOf = (path: string) => {
  const m = /(\d+)\.dcm$/u.exec(path);
  return m?.[1] ? sopOfIndex(Number(m[1])) : undefined;
};

function outcome(name: string, o: FileOutcome["outcome"]): FileOutcome {
  return {
    name,
    outcome: o,
    message: o === "duplicate" ? "already stored" : "",
    status: 0,
    sop_class_uid: "",
    sop_instance_uid: sopOf(name) ?? "",
    study_instance_uid: STUDY,
    series_instance_uid: "",
    case_id: 7,
  };
}

/** A fake upload endpoint: stores what it gets (duplicate when already there), remembers each
 * request's form. */
function uploads(held: Set<string>) {
  const forms: FormData[] = [];
  const upload = (req: UploadRequest): Promise<{ result: UploadResponse; rejected: boolean }> => {
    forms.push(req.form);
    req.onProgress?.({ loaded: 1, total: 2 });
    const files = (req.form.getAll("files") as File[]).map((f) => {
      const sop = sopOf(f.name) ?? f.name;
      const o = held.has(sop) ? "duplicate" : "stored";
      held.add(sop);
      return outcome(f.name, o);
    });
    const result: UploadResponse = {
      stored: files.filter((f) => f.outcome === "stored").length,
      duplicates: files.filter((f) => f.outcome === "duplicate").length,
      conflicts: 0,
      failed: 0,
      skipped: 0,
      case_ids: [7],
      files,
    };
    return Promise.resolve({ result, rejected: false });
  };
  return { forms, upload };
}

const names = (form: FormData) => (form.getAll("files") as File[]).map((f) => f.name);

/** Sends a study as the upload page does, keeping its outcome and progress. */
async function send(args: {
  files: PickedFile<Blob>[];
  search: ReturnType<typeof archive>["search"] | null;
  upload: ReturnType<typeof uploads>["upload"];
  soFar?: GroupOutcome;
  caseOpened?: boolean;
  maxFiles?: number;
  signal?: AbortSignal;
  fields?: CaseFields;
}) {
  let o = args.soFar ?? EMPTY_OUTCOME;
  const progress: number[] = [];
  let planned: ResumePlan<Blob> | null = null;
  let checked: boolean | null = null;
  const options: Parameters<typeof sendStudy<Blob>>[0] = {
    files: args.files,
    studyUid: STUDY,
    sopOf,
    search: args.search,
    answered: answeredPaths(o.files),
    limits: { maxFiles: args.maxFiles ?? 500, maxBytes: 1e9 },
    fields: args.fields ?? { ...EMPTY_CASE_FIELDS, priority: "urgent" },
    hospital: null,
    caseOpened: args.caseOpened ?? false,
    upload: args.upload,
    callbacks: {
      onPlan: (plan, _batches, wasChecked) => {
        planned = plan;
        checked = wasChecked;
        o = addPresent(
          o,
          plan.present.map((f) => ({ path: f.path, sopInstanceUid: sopOf(f.path) ?? "", studyInstanceUid: STUDY })),
        );
      },
      onProgress: (b) => progress.push(b),
      onAnswer: (_b, r) => {
        o = addResponse(o, r);
      },
    },
  };
  if (args.signal) options.signal = args.signal;
  const { result } = await sendStudy(options);
  return { result, outcome: o, progress, plan: planned as ResumePlan<Blob> | null, checked: checked as boolean | null };
}

describe("asking the archive what it holds", () => {
  it("asks QIDO-RS for the study's SOP Instance UIDs with the sender's token, page after page", async () => {
    const sops = Array.from({ length: 2345 }, (_, i) => sopOfIndex(i));
    const { calls, search } = archive(sops);
    const found = await storedInstances(search, STUDY);
    expect(found.size).toBe(2345);
    expect(calls.map((c) => c.url.pathname)).toEqual(Array(3).fill("/dicomweb/instances"));
    expect(calls.map((c) => c.url.searchParams.get("offset"))).toEqual(["0", "1000", "2000"]);
    for (const c of calls) {
      expect(c.url.searchParams.get("StudyInstanceUID")).toBe(STUDY);
      expect(c.url.searchParams.get("includefield")).toBe("00080018");
      expect(c.url.searchParams.get("limit")).toBe("1000");
      expect(c.headers.get("Authorization")).toBe("Bearer tech-token");
      expect(c.headers.get("Accept")).toBe("application/dicom+json");
    }
  });

  it("reads the next offset from the Warning header, and only that warning", () => {
    expect(nextOffset('299 radrelay "more results match: ask again with offset=2000"')).toBe(2000);
    expect(
      nextOffset('299 radrelay "Foo is not supported for matching and was ignored", 299 radrelay "more results match: ask again with offset=5"'),
    ).toBe(5);
    expect(nextOffset('299 radrelay "Foo is not supported for matching and was ignored"')).toBeNull();
    expect(nextOffset(null)).toBeNull();
  });

  it("takes a 404 (a server that answers so for a study it has not, or not the sender's) as nothing stored", async () => {
    const { search } = archive([], { status: 404 });
    expect((await storedInstances(search, STUDY)).size).toBe(0);
    expect(await checkStudy(search, STUDY)).toEqual(new Set());
  });

  it("gives up on the check, not on sending, when the archive cannot be asked", async () => {
    expect(await checkStudy(archive([], { down: true }).search, STUDY)).toBeNull();
    expect(await checkStudy(archive([], { status: 500 }).search, STUDY)).toBeNull();
    await expect(storedInstances(archive([], { status: 500 }).search, STUDY)).rejects.toMatchObject({
      status: 500,
    });
  });
});

describe("planResume", () => {
  it("sends what is neither stored nor answered, in order", () => {
    const files = studyFiles(5);
    const plan = planResume(files, sopOf, new Set([sopOfIndex(1), sopOfIndex(3)]), new Set(["study/0.dcm"]));
    expect(plan.send.map((f) => f.path)).toEqual(["study/2.dcm", "study/4.dcm"]);
    expect(plan.present.map((f) => f.path)).toEqual(["study/1.dcm", "study/3.dcm"]);
    expect(plan.carrier).toBeNull();
  });

  it("sends the smallest stored file alone when everything is stored, to close the study", () => {
    const files = studyFiles(4).reverse();
    const plan = planResume(files, sopOf, new Set(files.map((f) => sopOf(f.path) ?? "")), new Set());
    expect(plan.send.map((f) => f.path)).toEqual(["study/0.dcm"]);
    expect(plan.carrier?.path).toBe("study/0.dcm");
    expect(plan.present).toHaveLength(4);
  });
});

describe("sendStudy", () => {
  it("skips the stored files; they count as done and show as already stored", async () => {
    const files = studyFiles(6);
    const held = new Set([0, 1, 2, 3].map(sopOfIndex));
    const { search, calls } = archive([...held]);
    const server = uploads(held);
    const { result, outcome, progress, checked } = await send({ files, search, upload: server.upload });
    expect(result).toEqual({ ok: true });
    expect(checked).toBe(true);
    expect(calls).toHaveLength(1);
    expect(server.forms.map(names)).toEqual([["study/4.dcm", "study/5.dcm"]]);
    expect(server.forms[0]?.get("complete")).toBe("true");
    expect(server.forms[0]?.get("priority")).toBe("urgent");
    expect(outcome.totals).toMatchObject({ stored: 2, present: 4, duplicate: 0 });
    expect(outcome.caseIds).toEqual([7]);
    // Progress starts with the stored files' bytes and never goes back.
    const skippedBytes = files.slice(0, 4).reduce((n, f) => n + f.size, 0);
    expect(progress[0]).toBe(skippedBytes);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress[progress.length - 1]).toBeGreaterThanOrEqual(files.reduce((n, f) => n + f.size, 0));
  });

  it("still closes a study that is all stored: one small request with complete and the fields", async () => {
    const files = studyFiles(5);
    const held = new Set(files.map((f) => sopOf(f.path) ?? ""));
    const server = uploads(held);
    const { result, outcome, plan } = await send({ files, search: archive([...held]).search, upload: server.upload });
    expect(result).toEqual({ ok: true });
    expect(server.forms.map(names)).toEqual([["study/0.dcm"]]);
    expect(server.forms[0]?.get("complete")).toBe("true");
    expect(server.forms[0]?.get("priority")).toBe("urgent");
    expect(plan?.carrier?.path).toBe("study/0.dcm");
    // The carrier's "duplicate" says nothing new: all five show as already stored.
    expect(outcome.totals).toMatchObject({ present: 5, duplicate: 0, stored: 0 });
    expect(outcome.caseIds).toEqual([7]);
  });

  it("leaves a default priority out for a study the archive holds: the case keeps its own", async () => {
    const files = studyFiles(3);
    const held = new Set(files.map((f) => sopOf(f.path) ?? ""));
    const server = uploads(held);
    const fields = { ...EMPTY_CASE_FIELDS, clinical_question: "fall" };
    await send({ files, search: archive([...held]).search, upload: server.upload, fields });
    expect(server.forms[0]?.get("priority")).toBeNull();
    expect(server.forms[0]?.get("clinical_question")).toBe("fall");
    // A new study gets the form's priority as always.
    const fresh = uploads(new Set());
    await send({ files, search: archive([]).search, upload: fresh.upload, fields });
    expect(fresh.forms[0]?.get("priority")).toBe("routine");
  });

  it("sends everything when the study is not in the archive (404)", async () => {
    const files = studyFiles(3);
    const server = uploads(new Set());
    const { result, outcome } = await send({
      files,
      search: archive([], { status: 404 }).search,
      upload: server.upload,
    });
    expect(result).toEqual({ ok: true });
    expect(server.forms.map(names)).toEqual([files.map((f) => f.path)]);
    expect(outcome.totals).toMatchObject({ stored: 3, present: 0 });
  });

  it("falls back to sending everything when the check fails; the server sorts out duplicates", async () => {
    const files = studyFiles(3);
    const held = new Set([sopOfIndex(0)]);
    const server = uploads(held);
    const { result, outcome, checked } = await send({
      files,
      search: archive([...held], { down: true }).search,
      upload: server.upload,
    });
    expect(result).toEqual({ ok: true });
    expect(checked).toBe(false);
    expect(server.forms.map(names)).toEqual([files.map((f) => f.path)]);
    expect(outcome.totals).toMatchObject({ stored: 2, duplicate: 1, present: 0 });
  });

  it("resumes after a dropped connection without resending what was stored", async () => {
    const files = studyFiles(6);
    const held = new Set<string>();
    // Requests of two files; the second is stored by the server but its answer is lost.
    let dropped = false;
    const server = uploads(held);
    const upload: typeof server.upload = async (req) => {
      const answer = await server.upload(req);
      if (server.forms.length === 2 && !dropped) {
        dropped = true;
        throw new TypeError("Failed to fetch");
      }
      return answer;
    };
    const first = await send({ files, search: archive([...held]).search, upload, maxFiles: 2 });
    expect(first.result).toMatchObject({ ok: false, failedAt: 1 });
    expect(first.outcome.totals).toMatchObject({ stored: 2 });

    // Retry: the archive now holds four; only the last two go, and the page keeps "stored" for
    // the first two and shows the two whose answer was lost as already stored.
    const again = await send({
      files,
      search: archive([...held]).search,
      upload,
      soFar: first.outcome,
      caseOpened: true,
      maxFiles: 2,
    });
    expect(again.result).toEqual({ ok: true });
    expect(server.forms.slice(2).map(names)).toEqual([["study/4.dcm", "study/5.dcm"]]);
    expect(server.forms[2]?.get("complete")).toBe("true");
    expect(server.forms[2]?.get("priority")).toBeNull(); // the case is open: its fields went through
    expect(again.outcome.totals).toMatchObject({ stored: 4, present: 2, duplicate: 0 });
    expect(again.progress[0]).toBe(files.slice(0, 4).reduce((n, f) => n + f.size, 0));
  });

  it("on a retry whose check fails, still skips what this page already saw stored", async () => {
    const files = studyFiles(4);
    const soFar = addResponse(EMPTY_OUTCOME, {
      stored: 2,
      duplicates: 0,
      conflicts: 0,
      failed: 0,
      skipped: 0,
      case_ids: [7],
      files: [outcome("study/0.dcm", "stored"), outcome("study/1.dcm", "stored")],
    });
    const server = uploads(new Set([sopOfIndex(0), sopOfIndex(1)]));
    const { result, outcome: after } = await send({
      files,
      search: archive([], { down: true }).search,
      upload: server.upload,
      soFar,
      caseOpened: true,
    });
    expect(result).toEqual({ ok: true });
    expect(server.forms.map(names)).toEqual([["study/2.dcm", "study/3.dcm"]]);
    expect(after.totals).toMatchObject({ stored: 4, present: 0 });
  });

  it("does not ask when told not to (a sender who sees every hospital)", async () => {
    const files = studyFiles(2);
    const server = uploads(new Set());
    const { result, checked } = await send({ files, search: null, upload: server.upload });
    expect(result).toEqual({ ok: true });
    expect(checked).toBe(false);
    expect(server.forms.map(names)).toEqual([files.map((f) => f.path)]);
  });

  it("reports a cancel during the check as a cancel, sending nothing", async () => {
    const controller = new AbortController();
    controller.abort();
    const server = uploads(new Set());
    const { result, plan } = await send({
      files: studyFiles(2),
      search: archive([], { abort: true }).search,
      upload: server.upload,
      signal: controller.signal,
    });
    expect(result).toMatchObject({ ok: false, cancelled: true });
    expect(plan).toBeNull();
    expect(server.forms).toHaveLength(0);
  });
});
