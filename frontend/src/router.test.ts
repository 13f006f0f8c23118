import { describe, expect, it } from "vitest";

import { parseRoute, pathOf } from "./router";

describe("routes", () => {
  it("parses and prints paths", () => {
    expect(parseRoute("/")).toEqual({ name: "home" });
    expect(parseRoute("/upload/")).toEqual({ name: "upload" });
    expect(parseRoute("/cases")).toEqual({ name: "cases", caseId: null });
    expect(parseRoute("/cases/42")).toEqual({ name: "cases", caseId: 42 });
    expect(parseRoute("/cases/abc")).toEqual({ name: "not-found", path: "/cases/abc" });
    expect(parseRoute("/reading/12")).toEqual({ name: "reading", caseId: 12 });
    expect(parseRoute("/reading")).toEqual({ name: "worklist" });
    for (const path of ["/", "/upload", "/cases", "/cases/7", "/reading", "/reading/9", "/control", "/admin", "/viewer/1.2.840.1"]) expect(pathOf(parseRoute(path))).toBe(path);
  });
});
