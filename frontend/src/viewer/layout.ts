// Viewport layouts: how many image panes, in which grid.

export type LayoutId = "1x1" | "1x2" | "2x2";

export interface Layout {
  id: LayoutId;
  rows: number;
  columns: number;
}

export const LAYOUTS: readonly Layout[] = [
  { id: "1x1", rows: 1, columns: 1 },
  { id: "1x2", rows: 1, columns: 2 },
  { id: "2x2", rows: 2, columns: 2 },
];

export function layoutById(id: LayoutId): Layout {
  return LAYOUTS.find((l) => l.id === id) ?? { id: "1x1", rows: 1, columns: 1 };
}

export function cellCount(layout: Layout): number {
  return layout.rows * layout.columns;
}

/** Which series each pane shows: the chosen series first, then the next ones in the study's order
 * (wrapping round), so a 2x2 of a four-series study shows all four. */
export function seriesForCells<T>(series: readonly T[], first: number, cells: number): T[] {
  if (series.length === 0) return [];
  const out: T[] = [];
  for (let i = 0; i < cells; i++) {
    const item = series[(first + i) % series.length];
    if (item !== undefined) out.push(item);
  }
  return out;
}
