// DICOM JSON (PS3.18 F.2) as our DICOMweb sends it: the series list (QIDO-RS), a series' instance
// metadata (WADO-RS), and the wadors: image ids Cornerstone's loader fetches frames with.

/** One attribute of a DICOM JSON object. */
export interface JsonAttribute {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}

export type DicomJson = Record<string, JsonAttribute | undefined>;

export const TAG = {
  StudyInstanceUID: "0020000D",
  SeriesInstanceUID: "0020000E",
  SOPInstanceUID: "00080018",
  Modality: "00080060",
  SeriesDescription: "0008103E",
  SeriesNumber: "00200011",
  InstanceNumber: "00200013",
  NumberOfFrames: "00280008",
  NumberOfSeriesRelatedInstances: "00201209",
  ImagePositionPatient: "00200032",
  ImageOrientationPatient: "00200037",
  Rows: "00280010",
  SliceThickness: "00180050",
} as const;

export function first(ds: DicomJson, tag: string): unknown {
  return ds[tag]?.Value?.[0];
}

export function text(ds: DicomJson, tag: string): string {
  const value = first(ds, tag);
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  // A person name comes as {Alphabetic, Ideographic}.
  if (typeof value === "object" && value !== null) {
    const name = value as Record<string, unknown>;
    const parts = [name.Alphabetic, name.Ideographic].filter((p) => typeof p === "string");
    return parts.join(" ");
  }
  return "";
}

export function num(ds: DicomJson, tag: string): number | null {
  const value = first(ds, tag);
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isFinite(n) ? n : null;
}

export function nums(ds: DicomJson, tag: string): number[] | null {
  const values = ds[tag]?.Value;
  if (!values) return null;
  const out = values.map((v) => (typeof v === "number" ? v : Number(v)));
  return out.every(Number.isFinite) ? out : null;
}

/** A series of the study, as the thumbnails panel lists it. */
export interface SeriesInfo {
  seriesUid: string;
  modality: string;
  description: string;
  number: number | null;
  instances: number | null;
}

export function seriesFromQido(results: readonly DicomJson[]): SeriesInfo[] {
  return results
    .map((ds) => ({
      seriesUid: text(ds, TAG.SeriesInstanceUID),
      modality: text(ds, TAG.Modality),
      description: text(ds, TAG.SeriesDescription),
      number: num(ds, TAG.SeriesNumber),
      instances: num(ds, TAG.NumberOfSeriesRelatedInstances),
    }))
    .filter((s) => s.seriesUid !== "")
    .sort((a, b) => (a.number ?? Infinity) - (b.number ?? Infinity));
}

/** One displayable image of a series: an instance's frame. */
export interface ImageRef {
  imageId: string;
  sopInstanceUid: string;
  /** 1-based frame number for multi-frame instances, else null. */
  frame: number | null;
  instanceNumber: number | null;
  /** The instance's metadata, for the loader's metadata manager. */
  metadata: DicomJson;
}

/** Where a slice lies along the normal of its orientation (for sorting a CT stack), or null. */
export function slicePosition(ds: DicomJson): number | null {
  const pos = nums(ds, TAG.ImagePositionPatient);
  const ori = nums(ds, TAG.ImageOrientationPatient);
  if (pos?.length !== 3 || ori?.length !== 6) return null;
  const [r0, r1, r2, c0, c1, c2] = ori as [number, number, number, number, number, number];
  const [x, y, z] = pos as [number, number, number];
  return x * (r1 * c2 - r2 * c1) + y * (r2 * c0 - r0 * c2) + z * (r0 * c1 - r1 * c0);
}

/** The image ids of a series, in reading order: by position along the slice normal when every
 * instance has one (a CT stack, head to feet as scanned), else by instance number. Instances
 * without an image (no Rows: an SR, say) are left out. */
export function imagesOfSeries(
  base: string,
  studyUid: string,
  seriesUid: string,
  instances: readonly DicomJson[],
): ImageRef[] {
  const images = instances.filter((ds) => num(ds, TAG.Rows) !== null);
  const positions = images.map(slicePosition);
  const byPosition = positions.every((p) => p !== null);
  const order = images
    .map((ds, i) => ({ ds, position: positions[i] ?? 0, number: num(ds, TAG.InstanceNumber) }))
    .sort((a, b) =>
      byPosition
        ? b.position - a.position || (a.number ?? 0) - (b.number ?? 0)
        : (a.number ?? Infinity) - (b.number ?? Infinity),
    );
  const out: ImageRef[] = [];
  for (const { ds, number } of order) {
    const sop = text(ds, TAG.SOPInstanceUID);
    if (!sop) continue;
    const frames = Math.max(1, num(ds, TAG.NumberOfFrames) ?? 1);
    const instance = `${base}/studies/${studyUid}/series/${seriesUid}/instances/${sop}`;
    for (let f = 1; f <= frames; f++) {
      out.push({
        imageId: `wadors:${instance}/frames/${f}`,
        sopInstanceUid: sop,
        frame: frames > 1 ? f : null,
        instanceNumber: number,
        metadata: ds,
      });
    }
  }
  return out;
}

/** Enough parallel slices to build a volume for MPR (sagittal and coronal views). */
export const MPR_MIN_SLICES = 20;

export function canReformat(modality: string, images: readonly ImageRef[]): boolean {
  if (!["CT", "MR", "PT"].includes(modality)) return false;
  if (images.length < MPR_MIN_SLICES) return false;
  if (images.some((i) => i.frame !== null)) return false;
  return images.every((i) => slicePosition(i.metadata) !== null);
}
