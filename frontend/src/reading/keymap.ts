// The reading loop's keyboard shortcuts: which key does what. Pure: the pages turn a keydown
// into an action here and do it themselves.

export type Action = "next" | "save" | "sign" | "release" | "help" | "worklist" | "normal";

export interface KeyLike {
  key: string;
  altKey: boolean;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
}

export interface Shortcut {
  action: Action;
  /** As shown in the help: "Alt+N". */
  keys: string;
}

export const SHORTCUTS: readonly Shortcut[] = [
  { action: "next", keys: "Alt+N" },
  { action: "save", keys: "Ctrl+S" },
  { action: "sign", keys: "Ctrl+Enter" },
  { action: "release", keys: "Alt+R" },
  { action: "worklist", keys: "Alt+W" },
  { action: "normal", keys: "Alt+Shift+N" },
  { action: "help", keys: "?" },
];

/** The action of a keydown, or null. `typing`: the focus is in a text field, where plain
 * characters ("?") are text and only chords act. Letters are matched on `code`-independent
 * `key` in either case (Alt+N gives "n", "N" or, on a Mac, "˜": `code` is the fallback). */
export function actionFor(event: KeyLike & { code?: string }, typing: boolean): Action | null {
  const mod = event.ctrlKey || event.metaKey;
  const letter =
    event.code && /^Key[A-Z]$/u.test(event.code) ? event.code.slice(3).toLowerCase() : event.key.toLowerCase();
  if (mod && !event.altKey && !event.shiftKey && letter === "s") return "save";
  if (mod && !event.altKey && event.key === "Enter") return "sign";
  if (event.altKey && !mod) {
    if (letter === "n") return event.shiftKey ? "normal" : "next";
    if (!event.shiftKey && letter === "r") return "release";
    if (!event.shiftKey && letter === "w") return "worklist";
  }
  if (!typing && !mod && !event.altKey && event.key === "?") return "help";
  return null;
}

/** Whether the focus is somewhere keys are text. */
export function isTyping(target: EventTarget | null): boolean {
  if (!target || typeof (target as { tagName?: unknown }).tagName !== "string") return false;
  const el = target as unknown as { tagName: string; isContentEditable?: boolean; type?: string };
  const tag = el.tagName.toUpperCase();
  if (tag === "TEXTAREA" || el.isContentEditable) return true;
  if (tag !== "INPUT") return false;
  return !["checkbox", "radio", "button", "submit"].includes((el.type ?? "text").toLowerCase());
}
