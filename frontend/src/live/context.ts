import { createContext, useContext, useEffect, useRef } from "react";

import type { CaseEvent, LiveState } from "./socket";

export interface Live {
  state: LiveState;
  subscribe: (listener: (event: CaseEvent) => void) => () => void;
}

export const LiveContext = createContext<Live | null>(null);

export function useLiveState(): LiveState {
  return useContext(LiveContext)?.state ?? "closed";
}

/** Calls `listener` (the latest one given) for each case event. */
export function useCaseEvents(listener: (event: CaseEvent) => void): void {
  const subscribe = useContext(LiveContext)?.subscribe;
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => {
    if (!subscribe) return;
    return subscribe((event) => {
      latest.current(event);
    });
  }, [subscribe]);
}
