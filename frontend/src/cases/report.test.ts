import { describe, expect, it } from "vitest";

import type { ReportVersion } from "../api/types";
import { pdfFileName, signersText, versionsToShow } from "./report";

function version(n: number, status: ReportVersion["status"] = "final"): ReportVersion {
  return {
    version: n,
    status,
    released: true,
    created_at: `2026-12-0${n}T08:00:00Z`,
    superseded_at: null,
    amendment_reason: "",
    size: 1000,
    signatures: [],
  };
}

describe("case report", () => {
  it("lists the newest version first", () => {
    expect(versionsToShow([version(1), version(3, "amended"), version(2)]).map((v) => v.version)).toEqual([
      3, 2, 1,
    ]);
  });

  it("names the author before co-signers and addenda", () => {
    expect(
      signersText([
        { user_id: 2, meaning: "cosigner", printed_name: "王芳", qualification: "主任医师", signed_at: "2026-12-01T09:00:00Z" },
        { user_id: 3, meaning: "addendum", printed_name: "Li", qualification: "", signed_at: "2026-12-01T08:30:00Z" },
        { user_id: 1, meaning: "author", printed_name: "李明", qualification: "住院医师", signed_at: "2026-12-01T10:00:00Z" },
      ]),
    ).toBe("李明 (住院医师), 王芳 (主任医师), Li");
  });

  it("gives a download a stable name", () => {
    expect(pdfFileName(12, 2)).toBe("report-case12-v2.pdf");
  });
});
