import { describe, expect, it } from "vitest";

import { groupFiles, mergePicked, type InspectedFile } from "./grouping";
import {
  DICOMDIR_SOP_CLASS,
  HEADER_SLICE_BYTES,
  inspectBytes,
  inspectFile,
  type DicomHeader,
  type Inspection,
} from "./header";
import { bareImplicit, part10 } from "./testing";
import { decodeText, formatDicomDate, formatPersonName } from "./text";

function header(overrides: Partial<DicomHeader>): DicomHeader {
  return {
    studyInstanceUid: "1.2.3",
    seriesInstanceUid: "1.2.3.1",
    sopInstanceUid: "1.2.3.1.1",
    sopClassUid: "1.2.840.10008.5.1.4.1.1.2",
    transferSyntaxUid: "1.2.840.10008.1.2.1",
    patientName: "Wang^Fang=王^芳",
    patientId: "QSX001",
    patientBirthDate: "19700101",
    patientSex: "F",
    studyDate: "20240131",
    studyTime: "093000",
    studyDescription: "CT ABDOMEN",
    accessionNumber: "A1",
    modality: "CT",
    seriesNumber: "1",
    seriesDescription: "AXIAL",
    instanceNumber: "1",
    ...overrides,
  };
}

function file(path: string, inspection: Inspection, size = 1000): InspectedFile<string> {
  return { path, size, file: path, inspection };
}

function dicom(path: string, overrides: Partial<DicomHeader>, size = 1000) {
  return file(path, { kind: "dicom", header: header(overrides) }, size);
}

describe("groupFiles", () => {
  it("groups files by study and counts series and images", () => {
    const files = [
      dicom("b/2.dcm", { studyInstanceUid: "S1", seriesInstanceUid: "A", sopInstanceUid: "A2", instanceNumber: "2" }),
      dicom("a/1.dcm", { studyInstanceUid: "S1", seriesInstanceUid: "A", sopInstanceUid: "A1", instanceNumber: "1" }),
      dicom("c/1.dcm", {
        studyInstanceUid: "S2",
        seriesInstanceUid: "C",
        sopInstanceUid: "C1",
        patientName: "Li^Na=李^娜",
        modality: "MR",
      }),
      dicom("b/3.dcm", {
        studyInstanceUid: "S1",
        seriesInstanceUid: "B",
        sopInstanceUid: "B1",
        seriesNumber: "2",
        modality: "SR",
      }),
      // the same instance twice (two copies in the folder): two files, one image
      dicom("copy/2.dcm", { studyInstanceUid: "S1", seriesInstanceUid: "A", sopInstanceUid: "A2", instanceNumber: "2" }),
    ];
    const { groups, ignored } = groupFiles(files);
    expect(ignored).toEqual([]);
    expect(groups.map((g) => g.key)).toEqual(["study:S1", "study:S2"]);
    const s1 = groups[0];
    if (s1?.kind !== "study") throw new Error("expected a study");
    expect(s1.study).toMatchObject({
      patientName: "Wang^Fang=王^芳",
      patientId: "QSX001",
      studyDate: "20240131",
      modalities: ["CT", "SR"],
      series: 2,
      images: 3,
      otherPatients: [],
    });
    expect(s1.files.map((f) => f.path)).toEqual(["a/1.dcm", "b/2.dcm", "copy/2.dcm", "b/3.dcm"]);
    expect(s1.bytes).toBe(4000);
    const s2 = groups[1];
    expect(s2?.kind === "study" && s2.study.modalities).toEqual(["MR"]);
  });

  it("puts each zip in its own group and unreadable DICOM together; lists what is not sent", () => {
    const { groups, ignored } = groupFiles([
      file("b.zip", { kind: "zip" }, 5000),
      dicom("x.dcm", {}),
      file("DICOMDIR", { kind: "dicomdir" }),
      file("notes.txt", { kind: "not-dicom" }),
      file("a.zip", { kind: "zip" }, 7000),
      file("z.dcm", { kind: "unreadable", reason: "deflated" }, 10),
      file("y.dcm", { kind: "unreadable", reason: "header" }, 20),
    ]);
    expect(groups.map((g) => [g.kind, g.key, g.bytes])).toEqual([
      ["study", "study:1.2.3", 1000],
      ["archive", "zip:b.zip", 5000],
      ["archive", "zip:a.zip", 7000],
      ["unreadable", "unreadable", 30],
    ]);
    expect(groups[3]?.files.map((f) => f.path)).toEqual(["y.dcm", "z.dcm"]);
    expect(ignored).toEqual([
      { path: "DICOMDIR", reason: "dicomdir" },
      { path: "notes.txt", reason: "not-dicom" },
    ]);
  });

  it("notes a second patient inside one study", () => {
    const { groups } = groupFiles([
      dicom("1", { sopInstanceUid: "1" }),
      dicom("2", { sopInstanceUid: "2", patientId: "OTHER", patientName: "Zhang^Wei" }),
    ]);
    expect(groups[0]?.kind === "study" && groups[0].study.otherPatients).toEqual([
      "OTHER / Zhang^Wei",
    ]);
  });

  it("merges a second pick without duplicates", () => {
    const a = dicom("a", {});
    const b = dicom("b", {});
    expect(mergePicked([a], [a, b]).map((f) => f.path)).toEqual(["a", "b"]);
  });
});

describe("inspectBytes with dicom-parser", () => {
  it("reads a Part 10 header", () => {
    const bytes = part10({
      study: "1.2.826.0.1.1",
      series: "1.2.826.0.1.1.2",
      sop: "1.2.826.0.1.1.2.3",
      modality: "MR",
      patientName: "Smith^John",
      description: "MR HEAD",
      pixels: 64,
    });
    const result = inspectBytes(bytes, bytes.length);
    expect(result).toMatchObject({
      kind: "dicom",
      header: {
        studyInstanceUid: "1.2.826.0.1.1",
        seriesInstanceUid: "1.2.826.0.1.1.2",
        sopInstanceUid: "1.2.826.0.1.1.2.3",
        modality: "MR",
        patientName: "Smith^John",
        studyDescription: "MR HEAD",
        studyDate: "20240131",
      },
    });
  });

  it("decodes Chinese names in GB18030 and UTF-8", () => {
    // 王芳 in GB18030
    const gb = new Uint8Array([...new TextEncoder().encode("Wang^Fang="), 0xcd, 0xf5, 0x5e, 0xb7, 0xbc]);
    const a = inspectBytes(part10({ charset: "GB18030", patientName: gb }), Infinity);
    expect(a !== "need-more" && a.kind === "dicom" && a.header.patientName).toBe("Wang^Fang=王^芳");
    const b = inspectBytes(part10({ charset: "ISO_IR 192", patientName: "Li^Na=李^娜" }), Infinity);
    expect(b !== "need-more" && b.kind === "dicom" && b.header.patientName).toBe("Li^Na=李^娜");
  });

  it("uses a header cut short by the slice, or asks for more", () => {
    const bytes = part10({ pixels: 4096 });
    const cut = bytes.subarray(0, bytes.length - 1000);
    expect(inspectBytes(cut, bytes.length)).toMatchObject({ kind: "dicom" });
    const tooShort = bytes.subarray(0, 300);
    expect(inspectBytes(tooShort, bytes.length)).toBe("need-more");
  });

  it("recognises zip archives, DICOMDIRs, bare data sets and other files", () => {
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]);
    expect(inspectBytes(zip, zip.length)).toEqual({ kind: "zip" });
    const dir = part10({ sopClass: DICOMDIR_SOP_CLASS });
    expect(inspectBytes(dir, dir.length)).toEqual({ kind: "dicomdir" });
    const bare = bareImplicit({ study: "1.2.5", series: "1.2.5.1", sop: "1.2.5.1.1" });
    expect(inspectBytes(bare, bare.length)).toMatchObject({
      kind: "dicom",
      header: { studyInstanceUid: "1.2.5", sopInstanceUid: "1.2.5.1.1" },
    });
    const text = new TextEncoder().encode("just some notes, not an image\n".repeat(20));
    expect(inspectBytes(text, text.length)).toEqual({ kind: "not-dicom" });
  });

  it("reads only a slice of a big file", async () => {
    const bytes = part10({ pixels: HEADER_SLICE_BYTES * 2 });
    const slices: [number, number][] = [];
    const fake = {
      size: bytes.length,
      slice(start = 0, end = bytes.length) {
        slices.push([start, end]);
        return { arrayBuffer: () => Promise.resolve(bytes.slice(start, end).buffer) };
      },
    };
    const result = await inspectFile(fake);
    expect(result.kind).toBe("dicom");
    expect(slices).toEqual([[0, HEADER_SLICE_BYTES]]);
  });
});

describe("text", () => {
  it("decodes ISO 2022 IR 58 (GB2312 between escapes)", () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode("Wang^Fang="),
      0x1b, 0x24, 0x29, 0x41, 0xcd, 0xf5, 0x5e, 0x1b, 0x24, 0x29, 0x41, 0xb7, 0xbc,
    ]);
    expect(decodeText(bytes, "\\ISO 2022 IR 58")).toBe("Wang^Fang=王^芳");
  });

  it("guesses UTF-8 then GB18030 when no character set is given, and trims padding", () => {
    expect(decodeText(new TextEncoder().encode("张^伟 "), "")).toBe("张^伟");
    expect(decodeText(new Uint8Array([0xcd, 0xf5, 0x00]), "")).toBe("王");
  });

  it("formats person names and dates", () => {
    expect(formatPersonName("Wang^Fang=王^芳")).toBe("王芳 (Wang Fang)");
    expect(formatPersonName("Smith^John")).toBe("Smith John");
    expect(formatPersonName("=李^娜")).toBe("李娜");
    expect(formatPersonName("")).toBe("");
    expect(formatDicomDate("20240131")).toBe("2024-01-31");
    expect(formatDicomDate("")).toBe("");
  });
});
