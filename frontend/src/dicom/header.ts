// Reading the header of a DICOM file in the browser (dicom-parser), to group a technician's files
// by study before anything is sent. Only the first part of each file is read: parsing stops
// before Pixel Data, and a header cut short by the slice is still used when the identifying
// elements were read whole.

import { parseDicom, type DataSet } from "dicom-parser";

import { decodeText } from "./text";

export interface DicomHeader {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  sopInstanceUid: string;
  sopClassUid: string;
  transferSyntaxUid: string;
  patientName: string;
  patientId: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  studyTime: string;
  studyDescription: string;
  accessionNumber: string;
  modality: string;
  seriesNumber: string;
  seriesDescription: string;
  instanceNumber: string;
}

/** What a file turned out to be. */
export type Inspection =
  | { kind: "dicom"; header: DicomHeader }
  | { kind: "zip" }
  | { kind: "dicomdir" }
  /** DICOM (it has the DICM prefix) but its header could not be read here: the server checks it. */
  | { kind: "unreadable"; reason: string }
  | { kind: "not-dicom" };

/** The first bytes read of each file; enough for nearly every header. */
export const HEADER_SLICE_BYTES = 256 * 1024;
/** A file whose header is not within the first slice is read up to this size. */
export const HEADER_MAX_BYTES = 32 * 1024 * 1024;

export const DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10";
const IMPLICIT_LITTLE = "1.2.840.10008.1.2";
const EXPLICIT_LITTLE = "1.2.840.10008.1.2.1";

const TAG = {
  transferSyntax: "x00020010",
  mediaStorageSopClass: "x00020002",
  charset: "x00080005",
  sopClass: "x00080016",
  sopInstance: "x00080018",
  studyDate: "x00080020",
  studyTime: "x00080030",
  accession: "x00080050",
  modality: "x00080060",
  studyDescription: "x00081030",
  seriesDescription: "x0008103e",
  patientName: "x00100010",
  patientId: "x00100020",
  birthDate: "x00100030",
  sex: "x00100040",
  studyUid: "x0020000d",
  seriesUid: "x0020000e",
  seriesNumber: "x00200011",
  instanceNumber: "x00200013",
  pixelData: "x7fe00010",
} as const;

function isZip(bytes: Uint8Array): boolean {
  return bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function hasPreamble(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 132 &&
    bytes[128] === 0x44 && // D
    bytes[129] === 0x49 && // I
    bytes[130] === 0x43 && // C
    bytes[131] === 0x4d // M
  );
}

/** The text of an element, or "" when absent or cut off by the end of the slice. */
function text(ds: DataSet, tag: string, charset = ""): string {
  const el = ds.elements[tag];
  if (!el || el.length <= 0 || el.length === 0xffffffff) return "";
  const bytes = ds.byteArray as Uint8Array; // a Buffer only under Node, a Uint8Array too
  const end = el.dataOffset + el.length;
  if (end > bytes.length) return "";
  return decodeText(bytes.subarray(el.dataOffset, end), charset);
}

function uid(ds: DataSet, tag: string): string {
  // UIDs are padded with a NUL; decodeText trims it.
  return text(ds, tag);
}

interface Attempt {
  dataSet: DataSet | null;
  complete: boolean;
}

function tryParse(bytes: Uint8Array, transferSyntax?: string): Attempt {
  const options = transferSyntax
    ? { untilTag: TAG.pixelData, TransferSyntaxUID: transferSyntax }
    : { untilTag: TAG.pixelData };
  try {
    return { dataSet: parseDicom(bytes, options), complete: true };
  } catch (thrown: unknown) {
    // dicom-parser throws {exception, dataSet} with what it read before the failure.
    if (typeof thrown === "object" && thrown !== null && "dataSet" in thrown) {
      const partial = (thrown as { dataSet?: DataSet }).dataSet;
      if (partial?.elements) return { dataSet: partial, complete: false };
    }
    return { dataSet: null, complete: false };
  }
}

function headerOf(ds: DataSet, transferSyntax: string): DicomHeader {
  const charset = text(ds, TAG.charset);
  return {
    studyInstanceUid: uid(ds, TAG.studyUid),
    seriesInstanceUid: uid(ds, TAG.seriesUid),
    sopInstanceUid: uid(ds, TAG.sopInstance),
    sopClassUid: uid(ds, TAG.sopClass) || uid(ds, TAG.mediaStorageSopClass),
    transferSyntaxUid: transferSyntax || uid(ds, TAG.transferSyntax),
    patientName: text(ds, TAG.patientName, charset),
    patientId: text(ds, TAG.patientId, charset),
    patientBirthDate: text(ds, TAG.birthDate),
    patientSex: text(ds, TAG.sex),
    studyDate: text(ds, TAG.studyDate),
    studyTime: text(ds, TAG.studyTime),
    studyDescription: text(ds, TAG.studyDescription, charset),
    accessionNumber: text(ds, TAG.accession, charset),
    modality: text(ds, TAG.modality),
    seriesNumber: text(ds, TAG.seriesNumber),
    seriesDescription: text(ds, TAG.seriesDescription, charset),
    instanceNumber: text(ds, TAG.instanceNumber),
  };
}

function identified(h: DicomHeader): boolean {
  return Boolean(h.studyInstanceUid && h.seriesInstanceUid && h.sopInstanceUid);
}

/**
 * Inspects the first bytes of a file (`bytes`, which may be the whole file). Returns "need-more"
 * when the header runs past the slice and more of the file should be read.
 */
export function inspectBytes(bytes: Uint8Array, fileSize: number): Inspection | "need-more" {
  const whole = bytes.length >= fileSize;
  if (isZip(bytes) && !hasPreamble(bytes)) return { kind: "zip" };

  if (hasPreamble(bytes)) {
    const attempt = tryParse(bytes);
    if (attempt.dataSet) {
      const ds = attempt.dataSet;
      const header = headerOf(ds, "");
      if (header.sopClassUid === DICOMDIR_SOP_CLASS) return { kind: "dicomdir" };
      if (identified(header)) return { kind: "dicom", header };
      if (!attempt.complete && !whole) return "need-more";
      const syntax = uid(ds, TAG.transferSyntax);
      if (syntax === "1.2.840.10008.1.2.1.99") {
        return { kind: "unreadable", reason: "deflated" };
      }
    } else if (!whole) {
      return "need-more";
    }
    return { kind: "unreadable", reason: "header" };
  }

  // A bare data set (no preamble): the server accepts those too. Try the usual encodings and keep
  // the result only if it names its study, series and instance.
  for (const syntax of [IMPLICIT_LITTLE, EXPLICIT_LITTLE]) {
    const attempt = tryParse(bytes, syntax);
    if (!attempt.dataSet) continue;
    const header = headerOf(attempt.dataSet, syntax);
    if (identified(header) && /^[0-9.]+$/u.test(header.studyInstanceUid)) {
      return { kind: "dicom", header };
    }
  }
  return { kind: "not-dicom" };
}

/** Something with the parts of a browser File that inspection needs (a File, or a fake). */
export interface Blobish {
  readonly size: number;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export async function inspectFile(file: Blobish): Promise<Inspection> {
  if (file.size === 0) return { kind: "not-dicom" };
  const first = new Uint8Array(await file.slice(0, HEADER_SLICE_BYTES).arrayBuffer());
  const result = inspectBytes(first, file.size);
  if (result !== "need-more") return result;
  const more = new Uint8Array(
    await file.slice(0, Math.min(file.size, HEADER_MAX_BYTES)).arrayBuffer(),
  );
  const second = inspectBytes(more, more.length);
  return second === "need-more" ? { kind: "unreadable", reason: "header" } : second;
}
