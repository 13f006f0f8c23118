import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from "react";

import type { ApiClient } from "../api/client";
import { LiveContext, type Live } from "./context";
import { LiveConnection, type CaseEvent, type LiveState } from "./socket";

/** One websocket for the signed-in page, shared by whatever listens to case events. */
export function LiveProvider({ client, children }: { client: ApiClient; children: ReactNode }) {
  const [state, setState] = useState<LiveState>("connecting");
  const listeners = useRef(new Set<(event: CaseEvent) => void>());

  useEffect(() => {
    const connection = new LiveConnection({
      token: () => client.accessToken(),
      refresh: async () => (await client.refresh()).accessToken,
      onEvent: (event) => {
        for (const listener of listeners.current) listener(event);
      },
      onState: setState,
    });
    connection.start();
    return () => {
      connection.stop();
    };
  }, [client]);

  const subscribe = useCallback<Live["subscribe"]>((listener) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  const value = useMemo<Live>(() => ({ state, subscribe }), [state, subscribe]);
  return <LiveContext value={value}>{children}</LiveContext>;
}
