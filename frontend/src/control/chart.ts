// Turnaround charts in plain SVG: the figures of one interval per group, nice scales, bar
// geometry and line paths. No I/O and no DOM: the components draw what these return.

import type { GroupStats, Interval, TurnaroundReport } from "./types";

export interface SeriesRow {
  key: string;
  label: string;
  cases: number;
  count: number;
  /** Minutes; null when no case of the group reached both ends of the interval. */
  p50: number | null;
  p90: number | null;
}

function rowOf(group: GroupStats, interval: Interval): SeriesRow {
  const stats = group.intervals.find((i) => i.interval === interval);
  return {
    key: group.key,
    label: group.label,
    cases: group.cases,
    count: stats?.count ?? 0,
    p50: stats?.p50 ?? null,
    p90: stats?.p90 ?? null,
  };
}

/** One row per group for the interval, in the report's order (days ascending). */
export function seriesOf(report: Pick<TurnaroundReport, "groups">, interval: Interval): SeriesRow[] {
  return report.groups.map((g) => rowOf(g, interval));
}

export function overallOf(report: Pick<TurnaroundReport, "overall">, interval: Interval): SeriesRow {
  return rowOf(report.overall, interval);
}

/** The smallest "nice" number (1, 2, 2.5 or 5 times a power of ten) at or above `value`; 1 for
 * nothing to show, so that an empty chart still has an axis. */
export function niceCeil(value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    const candidate = step * power;
    // a tolerance for floating point: 0.30000000000000004 is 0.3
    if (candidate >= value * (1 - 1e-12)) return candidate;
  }
  return 10 * power;
}

/** Axis ticks from 0 to the first multiple of a nice step at or above `max`, about `count`
 * steps; 0 to 1 when there is nothing to show. */
export function ticks(max: number, count = 4): number[] {
  const highest = max > 0 && Number.isFinite(max) ? max : 1;
  const step = niceCeil(highest / count);
  const steps = Math.max(1, Math.ceil(highest / step - 1e-9));
  const result: number[] = [];
  for (let i = 0; i <= steps; i += 1) result.push(Number((i * step).toPrecision(12)));
  return result;
}

/** Maps [0, max] to [0, length] (a value outside the domain is clamped). */
export function scale(value: number, max: number, length: number): number {
  if (max <= 0) return 0;
  return (Math.min(Math.max(value, 0), max) / max) * length;
}

export interface Plot {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface Bar {
  key: string;
  series: "p50" | "p90";
  x: number;
  y: number;
  width: number;
  height: number;
  value: number;
}

export interface BarLayout {
  bars: Bar[];
  /** The horizontal centre of each group, for its label. */
  centres: { key: string; label: string; x: number }[];
  ticks: { value: number; y: number }[];
  max: number;
}

/** Grouped bars, p50 and p90 side by side for each row; a row without a figure has no bar. */
export function barLayout(rows: readonly SeriesRow[], plot: Plot): BarLayout {
  const innerWidth = plot.width - plot.left - plot.right;
  const innerHeight = plot.height - plot.top - plot.bottom;
  const highest = Math.max(0, ...rows.flatMap((r) => [r.p50 ?? 0, r.p90 ?? 0]));
  const axis = ticks(highest);
  const max = axis.at(-1) ?? 1;
  const band = rows.length > 0 ? innerWidth / rows.length : innerWidth;
  const barWidth = Math.max(2, Math.min(40, band * 0.35));
  const bars: Bar[] = [];
  const centres: BarLayout["centres"] = [];
  rows.forEach((row, i) => {
    const centre = plot.left + band * i + band / 2;
    centres.push({ key: row.key, label: row.label, x: centre });
    const series: ["p50" | "p90", number | null, number][] = [
      ["p50", row.p50, centre - barWidth],
      ["p90", row.p90, centre],
    ];
    for (const [name, value, x] of series) {
      if (value === null) continue;
      const h = scale(value, max, innerHeight);
      bars.push({ key: row.key, series: name, x, y: plot.top + innerHeight - h, width: barWidth, height: h, value });
    }
  });
  return {
    bars,
    centres,
    ticks: axis.map((value) => ({ value, y: plot.top + innerHeight - scale(value, max, innerHeight) })),
    max,
  };
}

/** An SVG path through the points; a null value breaks the line (the next point starts anew). */
export function linePath(points: readonly { x: number; y: number | null }[]): string {
  const parts: string[] = [];
  let pen = false;
  for (const p of points) {
    if (p.y === null) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? "L" : "M"}${round(p.x)} ${round(p.y)}`);
    pen = true;
  }
  return parts.join(" ");
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

export interface Duration {
  days: number;
  hours: number;
  minutes: number;
}

/** Minutes as whole days, hours and minutes (rounded to the minute). */
export function durationOf(totalMinutes: number): Duration {
  let left = Math.round(Math.abs(totalMinutes));
  const days = Math.floor(left / 1440);
  left -= days * 1440;
  const hours = Math.floor(left / 60);
  return { days, hours, minutes: left - hours * 60 };
}

/** A file name for a downloaded CSV, from the report's range and grouping. */
export function csvFileName(groupBy: string, since: string, until: string): string {
  const stamp = (iso: string) => iso.slice(0, 10).replaceAll("-", "");
  return `turnaround_${groupBy}_${stamp(since)}_${stamp(until)}.csv`;
}
