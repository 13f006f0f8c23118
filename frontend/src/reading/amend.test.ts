import { describe, expect, it } from "vitest";

import { hasAddenda, canAmend, editedSinceSigned, supersededVersion } from "./amend";
import type { ReportRead, VersionRead } from "./types";

function version(n: number, signer: number, created_at: string, status = "final"): VersionRead {
  return {
    version: n,
    status,
    released: true,
    created_at,
    superseded_at: null,
    superseded_by: null,
    amendment_reason: "",
    pdf_sha256: "",
    size: 1,
    signatures: [
      { user_id: signer, meaning: "author", printed_name: "Dr", qualification: "", signed_at: created_at, field: "s" },
    ],
  };
}

function report(over: Partial<ReportRead> = {}): ReportRead {
  return {
    id: 1,
    case_id: 2,
    hospital_id: 3,
    status: "final",
    template_id: "ct-chest",
    template_version: 1,
    template_title: "CT chest",
    language: "en",
    author_id: 7,
    awaiting_cosign: false,
    critical: false,
    created_at: "2026-12-04T10:00:00Z",
    updated_at: "2026-12-04T10:05:00.123Z",
    draft: { revision: 3, entries: {}, texts: {}, key_images: [], missing: [] },
    versions: [version(1, 7, "2026-12-04T10:05:00.123Z")],
    ...over,
  };
}

describe("canAmend", () => {
  it("lets a final-qualified signer correct a final or amended report", () => {
    expect(canAmend(report(), 7, true)).toBe(true);
    expect(canAmend(report({ status: "amended" }), 7, true)).toBe(true);
  });

  it("refuses others, juniors, drafts, preliminaries and a report without a draft", () => {
    expect(canAmend(report(), 8, true)).toBe(false);
    expect(canAmend(report(), 7, false)).toBe(false);
    expect(canAmend(report({ status: "draft", versions: [] }), 7, true)).toBe(false);
    expect(canAmend(report({ status: "preliminary", awaiting_cosign: true }), 7, true)).toBe(false);
    expect(canAmend(report({ draft: null }), 7, true)).toBe(false);
  });

  it("counts a co-signer of an earlier version as a signer", () => {
    const v = version(1, 9, "2026-12-04T10:05:00Z");
    v.signatures.push({
      user_id: 7,
      meaning: "cosign",
      printed_name: "Dr",
      qualification: "",
      signed_at: v.created_at,
      field: "c",
    });
    expect(canAmend(report({ versions: [v] }), 7, true)).toBe(true);
  });
});

describe("supersededVersion", () => {
  it("is the latest version", () => {
    const r = report({ versions: [version(1, 7, "2026-12-04T10:05:00Z"), version(2, 7, "2026-12-04T11:00:00Z", "amended")] });
    expect(supersededVersion(r)?.version).toBe(2);
    expect(supersededVersion(report({ versions: [] }))).toBeNull();
  });
});

describe("editedSinceSigned", () => {
  it("is false when the last signature was the last change", () => {
    expect(editedSinceSigned(report())).toBe(false);
  });

  it("is true when the draft was saved after the latest version", () => {
    expect(editedSinceSigned(report({ updated_at: "2026-12-04T10:06:00Z" }))).toBe(true);
  });

  it("is false with no version", () => {
    expect(editedSinceSigned(report({ status: "draft", versions: [] }))).toBe(false);
  });
});

describe("hasAddenda", () => {
  it("is true when the latest version was an addendum", () => {
    const v2 = version(2, 7, "2026-12-04T11:00:00Z");
    v2.signatures = v2.signatures.map((s) => ({ ...s, meaning: "addendum" }));
    expect(hasAddenda(report({ versions: [version(1, 7, "2026-12-04T10:05:00Z"), v2] }))).toBe(true);
    expect(hasAddenda(report())).toBe(false);
    expect(hasAddenda(report({ versions: [] }))).toBe(false);
  });
});
