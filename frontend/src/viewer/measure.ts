// A drawn annotation's numbers, as the reader reads them and as the report receives them
// (the Measurement contract in types.ts). No Cornerstone here: the viewer passes plain numbers.

import type { Measurement } from "./types";

export type MeasurementKind = Measurement["kind"];

/** What a tool computed for one annotation (Cornerstone's cachedStats, reduced). */
export interface MeasuredStats {
  length?: number | null;
  /** The length's unit from the tool: "mm" when the image has pixel spacing, else "px". */
  lengthUnit?: string | null;
  angle?: number | null;
  mean?: number | null;
  stdDev?: number | null;
  area?: number | null;
  /** "mm²" or "px²". */
  areaUnit?: string | null;
  /** "HU" for CT, else the modality's pixel unit. */
  modalityUnit?: string | null;
}

export interface MeasurementWhere {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  frame: number | null;
}

/** Rounding as readers write it: one decimal for lengths and angles, whole HU and mm². */
export function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

function fixed(value: number, decimals: number, locale: string): string {
  return value.toLocaleString(locale, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
    useGrouping: false,
  });
}

/** Labels of the texts, in the reader's language (given by the caller from the i18n tables). */
export interface MeasureWords {
  mean: string;
  area: string;
  locale: string;
}

const UCUM: Record<string, string> = {
  mm: "mm",
  px: "{px}",
  "mm²": "mm2",
  "px²": "{px2}",
  HU: "[hnsf'U]",
  deg: "deg",
};

/** The Measurement a finished annotation becomes, or null while its numbers are not known yet. */
export function toMeasurement(
  kind: MeasurementKind,
  stats: MeasuredStats,
  where: MeasurementWhere,
  words: MeasureWords,
): Measurement | null {
  const base = { kind, ...where };
  switch (kind) {
    case "length": {
      if (stats.length == null || !Number.isFinite(stats.length)) return null;
      const unit = stats.lengthUnit ?? "mm";
      const value = round(stats.length, 1);
      return {
        ...base,
        text: `${fixed(value, 1, words.locale)} ${unit}`,
        value,
        unit: UCUM[unit] ?? unit,
      };
    }
    case "angle": {
      if (stats.angle == null || !Number.isFinite(stats.angle)) return null;
      const value = round(stats.angle, 1);
      return { ...base, text: `${fixed(value, 1, words.locale)}°`, value, unit: "deg" };
    }
    case "ellipse": {
      if (stats.mean == null || stats.area == null) return null;
      if (!Number.isFinite(stats.mean) || !Number.isFinite(stats.area)) return null;
      const mean = Math.round(stats.mean);
      const area = round(stats.area, stats.area < 10 ? 1 : 0);
      const modality = stats.modalityUnit ?? "HU";
      const areaUnit = stats.areaUnit ?? "mm²";
      const text =
        `${words.mean} ${fixed(mean, 0, words.locale)} ${modality}, ` +
        `${words.area} ${fixed(area, area < 10 ? 1 : 0, words.locale)} ${areaUnit}`;
      return { ...base, text, value: mean, unit: UCUM[modality] ?? modality };
    }
  }
}
