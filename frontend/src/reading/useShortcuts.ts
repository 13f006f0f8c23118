import { useEffect, useRef } from "react";

import { actionFor, isTyping, type Action } from "./keymap";

/** Calls `handler` (the latest one given) with the action of each keydown on the page; the key's
 * default is prevented when the handler takes it (returns true). A key inside an open dialog is
 * the dialog's. */
export function useShortcuts(handler: (action: Action) => boolean): void {
  const latest = useRef(handler);
  useEffect(() => {
    latest.current = handler;
  });
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.defaultPrevented || event.repeat) return;
      if (event.target instanceof Element && event.target.closest("dialog")) return;
      const action = actionFor(event, isTyping(event.target));
      if (action && latest.current(action)) event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
    };
  }, []);
}
