// The live connection (/ws?token=...): case events for the signed-in user, reconnecting with
// backoff. Events carry ids only; listeners refetch what they show. The server accepts every
// connection, then either says hello (the token is good) or closes it with 1008 (invalid or
// expired token): the next try then refreshes the token first.

import type { LiveMessage } from "../api/types";

export type LiveState = "connecting" | "open" | "closed";

/** Events that change a case as the lists and the detail show it: each refetches. Routing and the
 * worklist add theirs (docs/worklist.md), reporting its signatures and critical results
 * (docs/reports.md); case.alert is left out, it changes nothing on the case (the case.routed that
 * comes with it does). */
export const CASE_EVENTS = new Set([
  "case.received",
  "case.ready",
  "case.updated",
  "case.routed",
  "case.claimed",
  "case.assigned",
  "case.paused",
  "case.sla",
  "report.signed",
  "critical.flagged",
  "critical.communicated",
  "critical.overdue",
]);

export interface CaseEvent {
  type: string;
  case_id: number;
  hospital_id: number;
}

/** Close code of a refused token ("policy violation"). */
export const TOKEN_REFUSED = 1008;

/** Parses a message: an object with a string `type`, or null. */
export function parseMessage(data: unknown): LiveMessage | null {
  if (typeof data !== "string") return null;
  let msg: unknown;
  try {
    msg = JSON.parse(data);
  } catch {
    return null;
  }
  if (typeof msg !== "object" || msg === null) return null;
  if (typeof (msg as { type?: unknown }).type !== "string") return null;
  return msg as LiveMessage;
}

/** Parses a message; returns the case event it carries, or null (hello, ping, anything else). */
export function caseEventOf(data: unknown): CaseEvent | null {
  const msg = parseMessage(data);
  if (!msg || !CASE_EVENTS.has(msg.type)) return null;
  const m = msg as Record<string, unknown>;
  if (typeof m.case_id !== "number") return null;
  return {
    type: msg.type,
    case_id: m.case_id,
    hospital_id: typeof m.hospital_id === "number" ? m.hospital_id : -1,
  };
}

/** Delay before reconnect attempt `attempt` (0-based): 1 s doubling to 30 s, with up to 30 %
 * jitter so that many clients do not come back at the same moment after a restart. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (1 - 0.3 * random()));
}

export function liveUrl(location: { protocol: string; host: string }, token: string): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws?token=${encodeURIComponent(token)}`;
}

export interface SocketLike {
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  close(code?: number, reason?: string): void;
}

export interface LiveOptions {
  /** A fresh access token (the client refreshes it when needed). */
  token: () => Promise<string>;
  /** A new access token, after the server refused the last one (close code 1008). Without it,
   * `token` is asked again. */
  refresh?: () => Promise<string>;
  onEvent: (event: CaseEvent) => void;
  onState?: (state: LiveState) => void;
  connect?: (url: string) => SocketLike;
  location?: { protocol: string; host: string };
  schedule?: (fn: () => void, ms: number) => unknown;
  cancel?: (handle: unknown) => void;
  random?: () => number;
}

/** Keeps one websocket open until stop(); reconnects with backoff when it drops. After a 1008
 * close the token is refreshed and the connection tried again at once: the server is up, only the
 * token was stale. The backoff starts over only once the server has said hello, so a token it
 * keeps refusing (a second 1008 in a row, and on) waits like any other failure: no fast loop. */
export class LiveConnection {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private stopped = false;
  /** The server refused the last token: refresh it before the next try. */
  private refused = false;
  /** 1008 closes since the last hello. */
  private refusals = 0;
  private readonly opts: LiveOptions;

  constructor(options: LiveOptions) {
    this.opts = options;
  }

  start(): void {
    this.stopped = false;
    void this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) (this.opts.cancel ?? clearTimeout)(this.timer as number);
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onclose = null;
      s.onmessage = null;
      s.onerror = null;
      s.onopen = null;
      s.close(1000, "bye");
    }
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    this.opts.onState?.("connecting");
    let token: string;
    try {
      const refresh = this.refused ? this.opts.refresh : undefined;
      token = await (refresh ?? this.opts.token)();
      this.refused = false;
    } catch {
      // Not signed in any more, or the server is unreachable: try again later (refreshing again
      // if that was what failed). A refused refresh signs the client out, which stops this.
      this.retry();
      return;
    }
    if (this.isStopped()) return; // stop() may have come while waiting for the token
    const url = liveUrl(this.opts.location ?? window.location, token);
    const connect = this.opts.connect ?? ((u: string) => new WebSocket(u));
    const socket = connect(url);
    this.socket = socket;
    socket.onopen = () => {
      // Accepted, but the token is checked after the handshake: open means the hello came.
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (parseMessage(ev.data)?.type === "hello") {
        this.attempt = 0;
        this.refusals = 0;
        this.opts.onState?.("open");
        return;
      }
      const event = caseEventOf(ev.data);
      if (event) this.opts.onEvent(event);
    };
    socket.onerror = () => {
      // followed by close, which reconnects
    };
    socket.onclose = (ev: CloseEvent) => {
      // stop() detaches the handlers first, so this is the current socket going away
      this.socket = null;
      if (ev.code === TOKEN_REFUSED) {
        this.refused = true;
        this.refusals += 1;
        if (this.refusals === 1) {
          this.retry(0);
          return;
        }
      }
      this.retry();
    };
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  /** Schedules the next try: after `delay`, or after the backoff for this attempt. */
  private retry(delay?: number): void {
    if (this.stopped) return;
    this.opts.onState?.("closed");
    if (delay === undefined) {
      delay = backoffMs(this.attempt, this.opts.random);
      this.attempt += 1;
    }
    const schedule = this.opts.schedule ?? ((fn: () => void, ms: number) => setTimeout(fn, ms));
    this.timer = schedule(() => {
      this.timer = null;
      void this.open();
    }, delay);
  }
}

/** Calls `fn` once, `ms` after the last of a burst of calls. */
export function debounce(
  fn: () => void,
  ms: number,
  schedule: (fn: () => void, ms: number) => unknown = (f, t) => setTimeout(f, t),
  cancel: (handle: unknown) => void = (h) => {
    clearTimeout(h as number);
  },
): { call: () => void; cancel: () => void } {
  let handle: unknown = null;
  return {
    call() {
      if (handle !== null) cancel(handle);
      handle = schedule(() => {
        handle = null;
        fn();
      }, ms);
    },
    cancel() {
      if (handle !== null) cancel(handle);
      handle = null;
    },
  };
}
