// The viewer's keyboard shortcuts: one table, read by the key handler and by the help popover.

export type ViewerAction =
  | { type: "scroll"; delta: number }
  | { type: "first" }
  | { type: "last" }
  | { type: "preset"; id: string }
  | { type: "tool"; tool: ToolName }
  | { type: "invert" }
  | { type: "reset" }
  | { type: "cine" }
  | { type: "keyImage" }
  | { type: "help" };

export type ToolName =
  | "windowLevel"
  | "pan"
  | "zoom"
  | "scroll"
  | "length"
  | "angle"
  | "ellipse";

export interface Shortcut {
  /** KeyboardEvent.key values. */
  keys: string[];
  action: ViewerAction;
}

/** How far PageUp/PageDown jump: a tenth of the stack, at least 5 images. */
export function pageStep(count: number): number {
  return Math.max(5, Math.round(count / 10));
}

export const SHORTCUTS: readonly Shortcut[] = [
  { keys: ["ArrowUp"], action: { type: "scroll", delta: -1 } },
  { keys: ["ArrowDown"], action: { type: "scroll", delta: 1 } },
  { keys: ["PageUp"], action: { type: "scroll", delta: -Infinity } },
  { keys: ["PageDown"], action: { type: "scroll", delta: Infinity } },
  { keys: ["Home"], action: { type: "first" } },
  { keys: ["End"], action: { type: "last" } },
  { keys: ["1"], action: { type: "preset", id: "brain" } },
  { keys: ["2"], action: { type: "preset", id: "lung" } },
  { keys: ["3"], action: { type: "preset", id: "bone" } },
  { keys: ["4"], action: { type: "preset", id: "abdomen" } },
  { keys: ["5"], action: { type: "preset", id: "mediastinum" } },
  { keys: ["w", "W"], action: { type: "tool", tool: "windowLevel" } },
  { keys: ["p", "P"], action: { type: "tool", tool: "pan" } },
  { keys: ["z", "Z"], action: { type: "tool", tool: "zoom" } },
  { keys: ["s", "S"], action: { type: "tool", tool: "scroll" } },
  { keys: ["l", "L"], action: { type: "tool", tool: "length" } },
  { keys: ["a", "A"], action: { type: "tool", tool: "angle" } },
  { keys: ["e", "E"], action: { type: "tool", tool: "ellipse" } },
  { keys: ["i", "I"], action: { type: "invert" } },
  { keys: ["r", "R"], action: { type: "reset" } },
  { keys: [" "], action: { type: "cine" } },
  { keys: ["k", "K"], action: { type: "keyImage" } },
  { keys: ["?"], action: { type: "help" } },
];

/** The action of a key press, or null. Presses with Ctrl, Alt or Meta are the browser's. The
 * PageUp/PageDown step is resolved for a stack of `count` images. */
export function actionForKey(
  event: { key: string; ctrlKey?: boolean; altKey?: boolean; metaKey?: boolean },
  count: number,
): ViewerAction | null {
  if (event.ctrlKey || event.altKey || event.metaKey) return null;
  const found = SHORTCUTS.find((s) => s.keys.includes(event.key));
  if (!found) return null;
  const action = found.action;
  if (action.type === "scroll" && !Number.isFinite(action.delta)) {
    return { type: "scroll", delta: Math.sign(action.delta) * pageStep(count) };
  }
  return action;
}

/** The key a title attribute shows for an action ("W", "PgUp", "Space"). */
export function keyLabel(key: string): string {
  const names: Record<string, string> = {
    ArrowUp: "↑",
    ArrowDown: "↓",
    PageUp: "PgUp",
    PageDown: "PgDn",
    " ": "Space",
  };
  return names[key] ?? key.toUpperCase();
}

export function shortcutFor(match: (a: ViewerAction) => boolean): string {
  const found = SHORTCUTS.find((s) => match(s.action));
  return found?.keys[0] !== undefined ? keyLabel(found.keys[0]) : "";
}

/** Clamps an image index into a stack of `count`. */
export function clampIndex(index: number, count: number): number {
  if (count <= 0) return 0;
  return Math.min(count - 1, Math.max(0, index));
}
