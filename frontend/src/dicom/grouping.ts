// Grouping the files a technician picked into what will be sent: one group per study (from the
// headers read in the browser), one per zip archive (the server opens those), and one for DICOM
// files the browser could not read (the server checks them). DICOMDIR indexes and files that are
// not DICOM are listed but not sent.

import type { DicomHeader, Inspection } from "./header";

export interface PickedFile<F = File> {
  /** Unique within a selection: the relative path where known, else the name. */
  path: string;
  size: number;
  file: F;
}

export interface InspectedFile<F = File> extends PickedFile<F> {
  inspection: Inspection;
}

export interface StudySummary {
  studyInstanceUid: string;
  patientName: string;
  patientId: string;
  patientBirthDate: string;
  patientSex: string;
  studyDate: string;
  studyDescription: string;
  accessionNumber: string;
  modalities: string[];
  series: number;
  /** Distinct SOP Instance UIDs. */
  images: number;
  /** Other patient IDs or names seen in the same study: worth a look before sending. */
  otherPatients: string[];
}

export type SendGroup<F = File> =
  | { kind: "study"; key: string; files: PickedFile<F>[]; bytes: number; study: StudySummary }
  | { kind: "archive"; key: string; files: PickedFile<F>[]; bytes: number }
  | { kind: "unreadable"; key: string; files: PickedFile<F>[]; bytes: number };

export interface Grouping<F = File> {
  groups: SendGroup<F>[];
  /** Files that will not be sent, with why. */
  ignored: { path: string; reason: "dicomdir" | "not-dicom" }[];
}

/** The group a file goes to: its study, its own archive, or the unreadable files. Null when it is
 * not sent. */
export function groupKeyOf(inspection: Inspection, path: string): string | null {
  switch (inspection.kind) {
    case "dicom":
      return `study:${inspection.header.studyInstanceUid}`;
    case "zip":
      return `zip:${path}`;
    case "unreadable":
      return "unreadable";
    case "dicomdir":
    case "not-dicom":
      return null;
  }
}

function picked<F>(f: InspectedFile<F>): PickedFile<F> {
  return { path: f.path, size: f.size, file: f.file };
}

function byPath(a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

interface StudyAcc<F> {
  first: DicomHeader;
  files: InspectedFile<F>[];
  series: Set<string>;
  sops: Set<string>;
  modalities: Set<string>;
  patients: Set<string>;
}

function patientKey(h: DicomHeader): string {
  return `${h.patientId} / ${h.patientName}`;
}

function instanceNumber(h: DicomHeader): number {
  const n = Number.parseInt(h.instanceNumber, 10);
  return Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER;
}

/** Groups inspected files. Studies keep the order in which they first appear; inside a study
 * files are sorted by series, then instance number, then path. */
export function groupFiles<F>(files: InspectedFile<F>[]): Grouping<F> {
  const studies = new Map<string, StudyAcc<F>>();
  const archives: SendGroup<F>[] = [];
  const unreadable: InspectedFile<F>[] = [];
  const ignored: Grouping<F>["ignored"] = [];

  for (const f of files) {
    const insp = f.inspection;
    switch (insp.kind) {
      case "dicom": {
        const h = insp.header;
        let acc = studies.get(h.studyInstanceUid);
        if (!acc) {
          acc = {
            first: h,
            files: [],
            series: new Set(),
            sops: new Set(),
            modalities: new Set(),
            patients: new Set(),
          };
          studies.set(h.studyInstanceUid, acc);
        }
        acc.files.push(f);
        acc.series.add(h.seriesInstanceUid);
        acc.sops.add(h.sopInstanceUid);
        if (h.modality) acc.modalities.add(h.modality);
        acc.patients.add(patientKey(h));
        break;
      }
      case "zip":
        archives.push({
          kind: "archive",
          key: groupKeyOf(insp, f.path) ?? f.path,
          files: [picked(f)],
          bytes: f.size,
        });
        break;
      case "unreadable":
        unreadable.push(f);
        break;
      case "dicomdir":
        ignored.push({ path: f.path, reason: "dicomdir" });
        break;
      case "not-dicom":
        ignored.push({ path: f.path, reason: "not-dicom" });
        break;
    }
  }

  const groups: SendGroup<F>[] = [];
  for (const [uid, acc] of studies) {
    const sorted = [...acc.files].sort((a, b) => {
      const ha = (a.inspection as { header: DicomHeader }).header;
      const hb = (b.inspection as { header: DicomHeader }).header;
      if (ha.seriesInstanceUid !== hb.seriesInstanceUid) {
        const sa = Number.parseInt(ha.seriesNumber, 10) || 0;
        const sb = Number.parseInt(hb.seriesNumber, 10) || 0;
        if (sa !== sb) return sa - sb;
        return ha.seriesInstanceUid < hb.seriesInstanceUid ? -1 : 1;
      }
      const d = instanceNumber(ha) - instanceNumber(hb);
      return d !== 0 ? d : byPath(a, b);
    });
    const h = acc.first;
    const firstKey = patientKey(h);
    groups.push({
      kind: "study",
      key: `study:${uid}`, // as groupKeyOf
      files: sorted.map(picked),
      bytes: sorted.reduce((n, f) => n + f.size, 0),
      study: {
        studyInstanceUid: uid,
        patientName: h.patientName,
        patientId: h.patientId,
        patientBirthDate: h.patientBirthDate,
        patientSex: h.patientSex,
        studyDate: h.studyDate,
        studyDescription: h.studyDescription,
        accessionNumber: h.accessionNumber,
        modalities: [...acc.modalities].sort(),
        series: acc.series.size,
        images: acc.sops.size,
        otherPatients: [...acc.patients].filter((p) => p !== firstKey),
      },
    });
  }
  groups.push(...archives);
  if (unreadable.length > 0) {
    const sorted = [...unreadable].sort(byPath);
    groups.push({
      kind: "unreadable",
      key: "unreadable",
      files: sorted.map(picked),
      bytes: sorted.reduce((n, f) => n + f.size, 0),
    });
  }
  return { groups, ignored };
}

/** Adds newly picked files to a selection, skipping ones already in it (same path and size). */
export function mergePicked<F>(
  current: InspectedFile<F>[],
  added: InspectedFile<F>[],
): InspectedFile<F>[] {
  const seen = new Set(current.map((f) => `${f.path}|${f.size}`));
  const out = [...current];
  for (const f of added) {
    const key = `${f.path}|${f.size}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(f);
  }
  return out;
}
