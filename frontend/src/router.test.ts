import { describe, expect, it } from "vitest";

import { parseRoute, pathOf } from "./router";

describe("routes", () => {
  it("parses and prints paths", () => {
    expect(parseRoute("/")).toEqual({ name: "home" });
    expect(parseRoute("/upload/")).toEqual({ name: "upload" });
    expect(parseRoute("/cases")).toEqual({ name: "cases", caseId: null });
    expect(parseRoute("/cases/42")).toEqual({ name: "cases", caseId: 42 });
    expect(parseRoute("/cases/abc")).toEqual({ name: "not-found", path: "/cases/abc" });
    for (const path of ["/", "/upload", "/cases", "/cases/7"]) expect(pathOf(parseRoute(path))).toBe(path);
  });
});
