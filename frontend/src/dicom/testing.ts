// Test helpers: tiny DICOM files written byte by byte (no fixtures to keep in the repo).

export type Value = string | Uint8Array;
export interface El {
  tag: number; // 0xGGGGEEEE
  vr: string;
  value: Value;
}

const LONG_VRS = new Set(["OB", "OW", "OF", "SQ", "UT", "UN"]);

function bytesOf(el: El): Uint8Array {
  let raw: Uint8Array;
  if (typeof el.value === "string") {
    raw = new TextEncoder().encode(el.value);
  } else {
    raw = el.value;
  }
  if (raw.length % 2 === 1) {
    const padded = new Uint8Array(raw.length + 1);
    padded.set(raw);
    padded[raw.length] = el.vr === "UI" || el.vr === "OB" ? 0 : 0x20;
    raw = padded;
  }
  return raw;
}

function explicit(el: El): Uint8Array {
  const value = bytesOf(el);
  const long = LONG_VRS.has(el.vr);
  const out = new Uint8Array((long ? 12 : 8) + value.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, el.tag >>> 16, true);
  view.setUint16(2, el.tag & 0xffff, true);
  out[4] = el.vr.charCodeAt(0);
  out[5] = el.vr.charCodeAt(1);
  if (long) {
    view.setUint32(8, value.length, true);
    out.set(value, 12);
  } else {
    view.setUint16(6, value.length, true);
    out.set(value, 8);
  }
  return out;
}

function implicit(el: El): Uint8Array {
  const value = bytesOf(el);
  const out = new Uint8Array(8 + value.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, el.tag >>> 16, true);
  view.setUint16(2, el.tag & 0xffff, true);
  view.setUint32(4, value.length, true);
  out.set(value, 8);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface InstanceSpec {
  study?: string;
  series?: string;
  sop?: string;
  sopClass?: string;
  patientName?: Value;
  patientId?: string;
  charset?: string;
  modality?: string;
  studyDate?: string;
  description?: string;
  pixels?: number; // bytes of pixel data
}

function dataElements(s: InstanceSpec): El[] {
  const els: El[] = [];
  if (s.charset !== undefined) els.push({ tag: 0x00080005, vr: "CS", value: s.charset });
  els.push(
    { tag: 0x00080016, vr: "UI", value: s.sopClass ?? "1.2.840.10008.5.1.4.1.1.2" },
    { tag: 0x00080018, vr: "UI", value: s.sop ?? "1.2.3.4.5.6" },
    { tag: 0x00080020, vr: "DA", value: s.studyDate ?? "20240131" },
    { tag: 0x00080060, vr: "CS", value: s.modality ?? "CT" },
    { tag: 0x00081030, vr: "LO", value: s.description ?? "CT ABDOMEN" },
    { tag: 0x00100010, vr: "PN", value: s.patientName ?? "Smith^John" },
    { tag: 0x00100020, vr: "LO", value: s.patientId ?? "P001" },
    { tag: 0x0020000d, vr: "UI", value: s.study ?? "1.2.3.4" },
    { tag: 0x0020000e, vr: "UI", value: s.series ?? "1.2.3.4.5" },
  );
  if (s.pixels !== undefined) {
    els.push({ tag: 0x7fe00010, vr: "OW", value: new Uint8Array(s.pixels) });
  }
  return els;
}

/** A Part 10 file in Explicit VR Little Endian. */
export function part10(spec: InstanceSpec = {}): Uint8Array {
  const sopClass = spec.sopClass ?? "1.2.840.10008.5.1.4.1.1.2";
  const metaBody = concat(
    [
      { tag: 0x00020001, vr: "OB", value: new Uint8Array([0, 1]) },
      { tag: 0x00020002, vr: "UI", value: sopClass },
      { tag: 0x00020003, vr: "UI", value: spec.sop ?? "1.2.3.4.5.6" },
      { tag: 0x00020010, vr: "UI", value: "1.2.840.10008.1.2.1" },
    ].map(explicit),
  );
  const groupLength = new Uint8Array(4);
  new DataView(groupLength.buffer).setUint32(0, metaBody.length, true);
  const meta = concat([explicit({ tag: 0x00020000, vr: "UL", value: groupLength }), metaBody]);
  const preamble = new Uint8Array(132);
  preamble.set([0x44, 0x49, 0x43, 0x4d], 128);
  return concat([preamble, meta, ...dataElements(spec).map(explicit)]);
}

/** A bare data set in Implicit VR Little Endian (no preamble, no file meta). */
export function bareImplicit(spec: InstanceSpec = {}): Uint8Array {
  return concat(dataElements(spec).map(implicit));
}
