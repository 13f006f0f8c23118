import { describe, expect, it } from "vitest";

import { translate } from "../i18n/core";
import { readerText, slaBadgeClass } from "./reading";

const t = (key: Parameters<typeof translate>[1], vars?: Record<string, string | number>) =>
  translate("en", key, vars);

describe("reader", () => {
  it("names the radiologist who holds the case", () => {
    expect(readerText({ reader_id: 7, reader_name: "Dr Wang 王医生" }, t)).toBe("Dr Wang 王医生");
  });

  it("falls back to the user id without a display name", () => {
    expect(readerText({ reader_id: 7, reader_name: null }, t)).toBe("User 7");
    expect(readerText({ reader_id: 7, reader_name: "  " }, t)).toBe("User 7");
  });

  it("is null when nobody holds the case", () => {
    expect(readerText({ reader_id: null, reader_name: null }, t)).toBeNull();
  });
});

describe("SLA badge", () => {
  it("marks only cases running late", () => {
    expect(slaBadgeClass("ok")).toBeNull();
    expect(slaBadgeClass("warning")).toBe("badge sla-warning");
    expect(slaBadgeClass("breached")).toBe("badge sla-breached");
  });

  it("still shows a state it does not know, without a colour", () => {
    expect(slaBadgeClass("paused")).toBe("badge");
    expect(slaBadgeClass("constructor")).toBe("badge");
  });
});
