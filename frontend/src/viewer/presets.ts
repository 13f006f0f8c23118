// Window/level presets for CT (Hounsfield units): what a reader expects one key away.

export interface WindowPreset {
  id: "brain" | "lung" | "bone" | "abdomen" | "mediastinum";
  /** Window width and centre (level), in HU. */
  width: number;
  center: number;
  /** The digit key that applies it. */
  key: string;
}

export const PRESETS: readonly WindowPreset[] = [
  { id: "brain", width: 80, center: 40, key: "1" },
  { id: "lung", width: 1500, center: -600, key: "2" },
  { id: "bone", width: 2000, center: 300, key: "3" },
  { id: "abdomen", width: 400, center: 40, key: "4" },
  { id: "mediastinum", width: 350, center: 50, key: "5" },
];

/** The VOI range Cornerstone takes ({lower, upper}) for a width and centre. */
export function voiRange(width: number, center: number): { lower: number; upper: number } {
  return { lower: center - width / 2, upper: center + width / 2 };
}

/** Width and centre back from a VOI range, rounded for display. */
export function windowOf(range: { lower: number; upper: number }): {
  width: number;
  center: number;
} {
  return {
    width: Math.round(range.upper - range.lower),
    center: Math.round((range.upper + range.lower) / 2),
  };
}

export function presetById(id: string): WindowPreset | undefined {
  return PRESETS.find((p) => p.id === id);
}
