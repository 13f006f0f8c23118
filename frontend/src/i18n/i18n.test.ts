import { describe, expect, it } from "vitest";

import { PRIORITIES, ROLES, SUBSPECIALTIES, CASE_STATUSES, OUTCOMES, SLA_STATES } from "../api/types";
import {
  detectLanguage,
  format,
  formatBytes,
  formatDateTime,
  isMessageKey,
  placeholders,
  translate,
  translateValue,
} from "./core";
import { en, zhCN } from "./messages";

describe("dictionaries", () => {
  it("have the same keys in both languages", () => {
    expect(Object.keys(zhCN).sort()).toEqual(Object.keys(en).sort());
  });

  it("have no empty text", () => {
    for (const table of [en, zhCN]) {
      for (const [key, value] of Object.entries(table)) {
        expect(value.trim(), key).not.toBe("");
      }
    }
  });

  it("use the same placeholders in both languages", () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(placeholders(zhCN[key]), key).toEqual(placeholders(en[key]));
    }
  });

  it("name every role, priority, status, SLA state, subspecialty and outcome", () => {
    const values: [string, readonly string[]][] = [
      ["role", ROLES],
      ["priority", PRIORITIES],
      ["status", CASE_STATUSES],
      ["sla", SLA_STATES],
      ["subspecialty", SUBSPECIALTIES],
      ["outcome", OUTCOMES],
    ];
    for (const [prefix, list] of values) {
      for (const v of list) expect(isMessageKey(`${prefix}.${v}`), `${prefix}.${v}`).toBe(true);
    }
  });

  it("name every kind of timeline event the backend writes", () => {
    // backend/radrelay/cases/service.py, routing/service.py, worklist/service.py
    const kinds = [
      "received",
      "ready",
      "clinical_info",
      "late_instances",
      "sop_conflict",
      "routed",
      "claimed",
      "released",
      "declined",
      "assigned",
      "offered",
      "paused",
      "resumed",
      "priority",
      "escalated",
      "sla_warning",
      "sla_breached",
      "lease_expired",
      "reader_offline",
    ];
    for (const kind of kinds) expect(isMessageKey(`event.${kind}`), kind).toBe(true);
  });
});

describe("translate", () => {
  it("fills placeholders and leaves unknown ones", () => {
    expect(format("{a} of {b}", { a: 1, b: "two" })).toBe("1 of two");
    expect(format("{a} {missing}", { a: 1 })).toBe("1 {missing}");
    expect(translate("en", "cases.total", { n: 3 })).toBe("Cases: 3");
    expect(translate("zh-CN", "cases.total", { n: 3 })).toBe("共 3 个病例");
  });

  it("shows unknown enum values as they are", () => {
    expect(translateValue("zh-CN", "priority", "stat")).toBe("危急");
    expect(translateValue("en", "status", "reported")).toBe("reported");
  });

  it("picks the language: stored, else the browser's, else English", () => {
    expect(detectLanguage("en", ["zh-CN"])).toBe("en");
    expect(detectLanguage(null, ["zh-TW", "en"])).toBe("zh-CN");
    expect(detectLanguage(null, ["zh"])).toBe("zh-CN");
    expect(detectLanguage("fr", ["en-US"])).toBe("en");
    expect(detectLanguage(null, ["fr-FR", "zh-CN"])).toBe("zh-CN");
    expect(detectLanguage(null, [])).toBe("en");
  });

  it("formats times as YYYY-MM-DD HH:mm in local time", () => {
    const d = new Date(2024, 0, 31, 9, 5);
    expect(formatDateTime(d.toISOString())).toBe("2024-01-31 09:05");
    expect(formatDateTime(null)).toBe("");
    expect(formatDateTime("garbage")).toBe("garbage");
  });

  it("formats sizes", () => {
    expect(formatBytes("en", 512)).toBe("512 B");
    expect(formatBytes("en", 1536)).toBe("1.5 KB");
    expect(formatBytes("en", 250 * 1024 * 1024)).toBe("250 MB");
  });
});
