import { describe, expect, it, vi } from "vitest";

import { ApiError, type ApiClient } from "../api/client";
import type { Case } from "../api/types";
import { addAddendum, amendReport, cosignReport, signReport } from "./api";
import { Autosaver, mergeDraft, type DraftContent } from "./autosave";
import {
  convert,
  entriesFromValues,
  fieldProblem,
  insertMeasurement,
  missingItems,
  sectionNormal,
  toggleKeyImage,
  valuesFromEntries,
} from "./form";
import { actionFor, isTyping } from "./keymap";
import { clockText, slaView } from "./sla";
import type { Template, WorklistItem } from "./types";
import { nextStep, splitWorklist } from "./worklist";

const TEMPLATE: Template = {
  id: "ct-chest",
  version: 1,
  title: { en: "CT chest", zh: "胸部CT" },
  sections: [
    {
      key: "technique",
      title: { en: "Technique", zh: "检查技术" },
      required: false,
      fields: [
        {
          id: "contrast",
          type: "choice",
          label: { en: "Contrast", zh: "对比剂" },
          required: true,
          options: [
            { value: "none", label: { en: "Without contrast", zh: "平扫" } },
            { value: "enhanced", label: { en: "With contrast", zh: "增强" } },
          ],
        },
        {
          id: "slice",
          type: "number",
          label: { en: "Slice thickness", zh: "层厚" },
          required: false,
          unit: "mm",
          min: 0.5,
          max: 10,
        },
      ],
    },
    {
      key: "findings",
      title: { en: "Findings", zh: "检查所见" },
      required: true,
      normal: { en: "Normal lungs.", zh: "双肺未见异常。" },
      fields: [
        {
          id: "nodules",
          type: "choice",
          label: { en: "Nodules" },
          required: false,
          normal: "none",
          options: [{ value: "none", label: { en: "None" } }],
        },
        {
          id: "size",
          type: "measurement",
          label: { en: "Size", zh: "大小" },
          required: false,
          unit: "cm",
          dimensions: 2,
          min: 0,
          max: 50,
        },
        {
          id: "signs",
          type: "multichoice",
          label: { en: "Signs" },
          required: false,
          options: [
            { value: "spiculated", label: { en: "Spiculated" } },
            { value: "lobulated", label: { en: "Lobulated" } },
          ],
        },
        { id: "note", type: "text", label: { en: "Note" }, required: false },
      ],
    },
  ],
};

describe("sla", () => {
  it("writes a clock", () => {
    expect(clockText(0)).toBe("0:00");
    expect(clockText(65_000)).toBe("1:05");
    expect(clockText(3_909_000)).toBe("1:05:09");
    expect(clockText(-125_000)).toBe("2:05");
    expect(clockText(90_061_000)).toBe("1 d 1:01:01");
  });

  it("colours by the server's state, and late once the deadline passed", () => {
    const now = Date.parse("2026-01-01T10:00:00Z");
    expect(slaView(null, null, now).colour).toBe("none");
    expect(slaView("2026-01-01T11:00:00Z", "ok", now)).toEqual({
      colour: "ok",
      msLeft: 3_600_000,
      clock: "1:00:00",
      late: false,
    });
    expect(slaView("2026-01-01T10:10:00Z", "warning", now).colour).toBe("warning");
    const late = slaView("2026-01-01T09:59:00Z", "warning", now);
    expect(late.colour).toBe("breached");
    expect(late.late).toBe(true);
    expect(late.clock).toBe("1:00");
  });
});

function item(id: number, hold: WorklistItem["hold"]): WorklistItem {
  return { case: { id } as Case, hold, sla: null };
}

describe("worklist", () => {
  it("opens the held case being read, claims an assigned one, else the top offer", () => {
    expect(nextStep([item(1, "offered"), item(2, "reading")])).toEqual({ kind: "open", caseId: 2 });
    expect(nextStep([item(3, "assigned"), item(1, "offered")])).toEqual({ kind: "claim", caseId: 3 });
    expect(nextStep([item(2, "reading"), item(1, "offered")], 2)).toEqual({ kind: "claim", caseId: 1 });
    expect(nextStep([item(2, "reading")], 2)).toBeNull();
    expect(nextStep([])).toBeNull();
  });

  it("splits held cases from offers in the server's order", () => {
    const { held, offers } = splitWorklist([item(1, "offered"), item(2, "reading"), item(3, "assigned")]);
    expect(held.map((i) => i.case.id)).toEqual([2, 3]);
    expect(offers.map((i) => i.case.id)).toEqual([1]);
  });
});

const key = (k: string, mods: Partial<Record<"altKey" | "ctrlKey" | "metaKey" | "shiftKey", boolean>> = {}, code?: string) => ({
  key: k,
  altKey: false,
  ctrlKey: false,
  metaKey: false,
  shiftKey: false,
  ...mods,
  ...(code ? { code } : {}),
});

describe("keymap", () => {
  it("maps the reading loop's chords, also while typing", () => {
    expect(actionFor(key("n", { altKey: true }), true)).toBe("next");
    expect(actionFor(key("˜", { altKey: true }, "KeyN"), false)).toBe("next");
    expect(actionFor(key("N", { altKey: true, shiftKey: true }), false)).toBe("normal");
    expect(actionFor(key("s", { ctrlKey: true }), true)).toBe("save");
    expect(actionFor(key("s", { metaKey: true }), true)).toBe("save");
    expect(actionFor(key("Enter", { ctrlKey: true }), true)).toBe("sign");
    expect(actionFor(key("r", { altKey: true }), false)).toBe("release");
    expect(actionFor(key("w", { altKey: true }), false)).toBe("worklist");
  });

  it("takes ? for help only outside text fields, and ignores plain keys", () => {
    expect(actionFor(key("?", { shiftKey: true }), false)).toBe("help");
    expect(actionFor(key("?", { shiftKey: true }), true)).toBeNull();
    expect(actionFor(key("s"), false)).toBeNull();
    expect(actionFor(key("Enter"), false)).toBeNull();
    expect(actionFor(key("s", { ctrlKey: true, altKey: true }), false)).toBeNull();
  });

  it("knows where keys are text", () => {
    expect(isTyping({ tagName: "TEXTAREA" } as unknown as EventTarget)).toBe(true);
    expect(isTyping({ tagName: "INPUT", type: "text" } as unknown as EventTarget)).toBe(true);
    expect(isTyping({ tagName: "INPUT", type: "checkbox" } as unknown as EventTarget)).toBe(false);
    expect(isTyping({ tagName: "BUTTON" } as unknown as EventTarget)).toBe(false);
    expect(isTyping(null)).toBe(false);
  });
});

describe("form", () => {
  it("round-trips entries through the inputs' values", () => {
    const entries = { contrast: "none", slice: 1.25, size: [1.2, 0.8], signs: ["lobulated"], note: "x" };
    const values = valuesFromEntries(TEMPLATE, entries);
    expect(values).toEqual({
      contrast: "none",
      slice: "1.25",
      nodules: "",
      size: ["1.2", "0.8"],
      signs: ["lobulated"],
      note: "x",
    });
    expect(entriesFromValues(TEMPLATE, values)).toEqual(entries);
  });

  it("leaves empty inputs out, keeps a number as typed when it does not parse", () => {
    const values = { contrast: "", slice: "abc", size: ["2,5", ""], signs: [], note: "  " };
    expect(entriesFromValues(TEMPLATE, values)).toEqual({ slice: "abc", size: 2.5 });
  });

  it("finds each field's problem", () => {
    const [contrast, slice] = TEMPLATE.sections[0]?.fields ?? [];
    const size = TEMPLATE.sections[1]?.fields[1];
    if (!contrast || !slice || !size) throw new Error("template");
    expect(fieldProblem(contrast, "")).toEqual({ code: "required" });
    expect(fieldProblem(contrast, "none")).toBeNull();
    expect(fieldProblem(slice, "")).toBeNull();
    expect(fieldProblem(slice, "1e")).toEqual({ code: "number" });
    expect(fieldProblem(slice, "0.2")).toEqual({ code: "min", limit: 0.5 });
    expect(fieldProblem(slice, "12")).toEqual({ code: "max", limit: 10 });
    expect(fieldProblem(size, ["3", "60"])).toEqual({ code: "max", limit: 50 });
  });

  it("gives a section's normal values and narrative", () => {
    const findings = TEMPLATE.sections[1];
    if (!findings) throw new Error("template");
    expect(sectionNormal(findings, "zh-CN")).toEqual({ values: { nodules: "none" }, text: "双肺未见异常。" });
    expect(sectionNormal(findings, "en").text).toBe("Normal lungs.");
  });

  it("names the server's missing items by their labels", () => {
    expect(missingItems(["contrast: required", "findings: required section", "odd"], TEMPLATE, "zh-CN")).toEqual([
      { key: "contrast", label: "对比剂", message: "required" },
      { key: "findings", label: "检查所见", message: "required section" },
      { key: "odd", label: "odd", message: "" },
    ]);
  });

  it("puts a measurement into the focused measurement field in its unit, else into the findings", () => {
    const m = {
      kind: "length" as const,
      text: "23.4 mm",
      value: 23.4,
      unit: "mm",
      studyUid: "1.2",
      seriesUid: "1.2.3",
      sopInstanceUid: "1.2.3.4",
      frame: null,
    };
    const values = valuesFromEntries(TEMPLATE, {});
    const into = insertMeasurement(TEMPLATE, values, {}, { fieldId: "size", index: 1 }, m);
    expect(into.into).toBe("field");
    expect(into.values.size).toEqual(["", "2.3"]);
    const appended = insertMeasurement(TEMPLATE, values, { findings: "Nodule. " }, null, m);
    expect(appended.texts.findings).toBe("Nodule.\n23.4 mm");
    expect(insertMeasurement(TEMPLATE, values, {}, { fieldId: "slice", index: 0 }, m).into).toBe("text");
    expect(convert(10, "deg", "mm")).toBeNull();
  });

  it("marks and unmarks key images", () => {
    const image = { studyUid: "1.2", seriesUid: "1.2.3", sopInstanceUid: "1.2.3.4", frame: null, label: "Axial 12" };
    const marked = toggleKeyImage([], image, true);
    expect(marked).toEqual([
      {
        study_instance_uid: "1.2",
        series_instance_uid: "1.2.3",
        sop_instance_uid: "1.2.3.4",
        frame: 1,
        caption: "Axial 12",
      },
    ]);
    expect(toggleKeyImage(marked, image, true)).toHaveLength(1);
    expect(toggleKeyImage(marked, image, false)).toEqual([]);
  });
});

const content = (texts: Record<string, string>, entries: Record<string, unknown> = {}): DraftContent => ({
  entries,
  texts,
  key_images: [],
});

describe("autosave", () => {
  it("merges by key: ours where we changed, theirs elsewhere", () => {
    const base = content({ findings: "a", impression: "b" }, { slice: 1 });
    const local = content({ findings: "a2", impression: "b" }, { slice: 1 });
    const remote = content({ findings: "a3", impression: "b3" }, { slice: 2 });
    expect(mergeDraft(base, local, remote)).toEqual({
      content: content({ findings: "a2", impression: "b3" }, { slice: 2 }),
      conflicts: ["findings"],
    });
  });

  it("saves once after a burst of changes, with the revision", async () => {
    vi.useFakeTimers();
    const save = vi.fn((_c: DraftContent, revision: number) => Promise.resolve({ revision: revision + 1, missing: [] }));
    const statuses: string[] = [];
    const saver = new Autosaver({
      revision: 3,
      content: content({}),
      save,
      load: () => Promise.reject(new Error("not called")),
      onStatus: (s) => statuses.push(s),
      delayMs: 1000,
    });
    saver.change(content({ findings: "a" }));
    vi.advanceTimersByTime(500);
    saver.change(content({ findings: "ab" }));
    vi.advanceTimersByTime(999);
    expect(save).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(save).toHaveBeenCalledTimes(1);
    expect(save).toHaveBeenCalledWith(content({ findings: "ab" }), 3);
    expect(saver.currentRevision).toBe(4);
    expect(statuses).toEqual(["pending", "pending", "saving", "saved"]);
    saver.change(content({ findings: "ab" }));
    await saver.flush();
    expect(save).toHaveBeenCalledTimes(1);
    vi.useRealTimers();
  });

  it("after a 409 loads the newer draft, merges and saves again", async () => {
    const calls: number[] = [];
    const save = (_c: DraftContent, revision: number) => {
      calls.push(revision);
      if (revision === 1) return Promise.reject(new ApiError(409, "conflict", "saved elsewhere", { revision: 5 }));
      return Promise.resolve({ revision: revision + 1, missing: [] });
    };
    const merged: DraftContent[] = [];
    const statuses: string[] = [];
    const saver = new Autosaver({
      revision: 1,
      content: content({ findings: "a", impression: "" }),
      save,
      load: () => Promise.resolve({ revision: 5, content: content({ findings: "a", impression: "theirs" }) }),
      onStatus: (s) => statuses.push(s),
      onMerged: (c) => merged.push(c),
    });
    saver.change(content({ findings: "mine", impression: "" }));
    await saver.flush();
    expect(calls).toEqual([1, 5]);
    expect(merged).toEqual([content({ findings: "mine", impression: "theirs" })]);
    expect(saver.currentRevision).toBe(6);
    expect(statuses.at(-1)).toBe("merged");
    saver.stop();
  });

  it("says so when a save fails", async () => {
    const statuses: string[] = [];
    const saver = new Autosaver({
      revision: 1,
      content: content({}),
      save: () => Promise.reject(new ApiError(0, "network_error", "down")),
      load: () => Promise.reject(new Error("not called")),
      onStatus: (s) => statuses.push(s),
    });
    saver.change(content({ findings: "x" }));
    await saver.flush();
    expect(statuses.at(-1)).toBe("error");
    expect(saver.dirty).toBe(true);
    saver.stop();
  });
});

describe("signing calls", () => {
  // 21 CFR 11.200(a)(1): every signing body carries both components, as the signer typed them.
  it("send the username and the password with each signature", async () => {
    const request = vi.fn().mockResolvedValue({});
    const client = { request } as unknown as ApiClient;
    const who = { username: "dr-wang", password: "s3cret!" };
    await signReport(client, 7, who, true);
    await cosignReport(client, 7, who);
    await amendReport(client, 7, { ...who, reason: "typo" });
    await addAddendum(client, 7, { ...who, text: "more", reason: "asked" });
    expect(request.mock.calls).toEqual([
      ["/api/reports/7/sign", { method: "POST", json: { ...who, preliminary: true } }],
      ["/api/reports/7/cosign", { method: "POST", json: who }],
      ["/api/reports/7/amend", { method: "POST", json: { ...who, reason: "typo" } }],
      ["/api/reports/7/addenda", { method: "POST", json: { ...who, text: "more", reason: "asked" } }],
    ]);
  });
});
