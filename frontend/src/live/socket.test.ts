import { describe, expect, it } from "vitest";

import {
  LiveConnection,
  backoffMs,
  caseEventOf,
  debounce,
  liveUrl,
  type CaseEvent,
  type LiveState,
  type SocketLike,
} from "./socket";

class FakeSocket implements SocketLike {
  onopen: ((ev: Event) => void) | null = null;
  onmessage: ((ev: MessageEvent) => void) | null = null;
  onclose: ((ev: CloseEvent) => void) | null = null;
  onerror: ((ev: Event) => void) | null = null;
  closed = false;
  constructor(readonly url: string) {}
  close(): void {
    this.closed = true;
  }
  receive(data: unknown): void {
    this.onmessage?.({ data } as MessageEvent);
  }
  drop(code = 1006): void {
    this.onclose?.({ code } as CloseEvent);
  }
  /** What the server does with a bad token: accept, then close with 1008. */
  refuse(): void {
    this.onopen?.({} as Event);
    this.drop(1008);
  }
  hello(): void {
    this.onopen?.({} as Event);
    this.receive(JSON.stringify({ type: "hello", user_id: 1 }));
  }
}

/** A LiveConnection on fakes: every socket it opens, every timer it sets, every state. */
function harness(options: { token?: () => Promise<string>; refresh?: (() => Promise<string>) | null }) {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const states: LiveState[] = [];
  let n = 0;
  let r = 0;
  const live = new LiveConnection({
    token: options.token ?? (() => Promise.resolve(`t${++n}`)),
    ...(options.refresh === null
      ? {}
      : { refresh: options.refresh ?? (() => Promise.resolve(`r${++r}`)) }),
    onEvent: () => undefined,
    onState: (s) => states.push(s),
    connect: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
    location: { protocol: "http:", host: "h" },
    schedule: (fn, ms) => {
      timers.push({ fn, ms });
      return timers.length;
    },
    cancel: () => undefined,
    random: () => 0,
  });
  const tokens = () => sockets.map((s) => s.url.replace("ws://h/ws?token=", ""));
  const last = () => {
    const s = sockets[sockets.length - 1];
    if (!s) throw new Error("no socket");
    return s;
  };
  /** Runs the latest timer (the reconnect) and lets the token promise settle. */
  const fire = async () => {
    timers[timers.length - 1]?.fn();
    await tick();
  };
  return { live, sockets, timers, states, tokens, last, fire };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("live messages", () => {
  it("passes case events on and ignores hello, ping and junk", () => {
    expect(caseEventOf(JSON.stringify({ type: "case.received", case_id: 4, hospital_id: 1 }))).toEqual({
      type: "case.received",
      case_id: 4,
      hospital_id: 1,
    });
    expect(caseEventOf(JSON.stringify({ type: "case.ready", case_id: 4, hospital_id: 1 }))?.type).toBe(
      "case.ready",
    );
    expect(caseEventOf(JSON.stringify({ type: "case.updated", case_id: 4, hospital_id: 1 }))?.type).toBe(
      "case.updated",
    );
    // routing and the worklist move cases too: lists and the open detail refetch on these
    for (const type of ["case.routed", "case.claimed", "case.assigned", "case.paused", "case.sla", "report.signed"]) {
      expect(caseEventOf(JSON.stringify({ type, case_id: 4, hospital_id: 1, reader_ids: [2] }))?.type).toBe(type);
    }
    expect(caseEventOf(JSON.stringify({ type: "hello", user_id: 3 }))).toBeNull();
    expect(caseEventOf(JSON.stringify({ type: "ping" }))).toBeNull();
    expect(caseEventOf("not json")).toBeNull();
    expect(caseEventOf(JSON.stringify({ type: "case.ready" }))).toBeNull();
  });

  it("builds the same-origin URL with ws or wss", () => {
    expect(liveUrl({ protocol: "http:", host: "127.0.0.1:8010" }, "a.b+c")).toBe(
      "ws://127.0.0.1:8010/ws?token=a.b%2Bc",
    );
    expect(liveUrl({ protocol: "https:", host: "rad.example" }, "t")).toBe("wss://rad.example/ws?token=t");
  });

  it("backs off from 1 s to at most 30 s", () => {
    const noJitter = () => 0;
    expect([0, 1, 2, 3, 4, 5, 6, 20].map((a) => backoffMs(a, noJitter))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
    expect(backoffMs(0, () => 1)).toBe(700);
  });
});

describe("LiveConnection", () => {
  it("connects with a fresh token, reconnects after a drop, stops cleanly", async () => {
    const sockets: FakeSocket[] = [];
    const timers: { fn: () => void; ms: number }[] = [];
    const events: CaseEvent[] = [];
    const states: LiveState[] = [];
    let n = 0;
    const live = new LiveConnection({
      token: () => Promise.resolve(`t${++n}`),
      onEvent: (e) => events.push(e),
      onState: (s) => states.push(s),
      connect: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      location: { protocol: "http:", host: "h" },
      schedule: (fn, ms) => {
        timers.push({ fn, ms });
        return timers.length;
      },
      cancel: () => undefined,
      random: () => 0,
    });
    live.start();
    await tick();
    expect(sockets.map((s) => s.url)).toEqual(["ws://h/ws?token=t1"]);
    const first = sockets[0];
    if (!first) throw new Error("no socket");
    first.onopen?.({} as Event);
    // accepted is not yet open: the server checks the token, then says hello
    expect(states).toEqual(["connecting"]);
    first.receive(JSON.stringify({ type: "hello", user_id: 1 }));
    first.receive(JSON.stringify({ type: "case.ready", case_id: 2, hospital_id: 1 }));
    expect(events.map((e) => e.case_id)).toEqual([2]);

    first.drop();
    expect(timers.map((t) => t.ms)).toEqual([1000]);
    timers[0]?.fn();
    await tick();
    expect(sockets.map((s) => s.url)).toEqual(["ws://h/ws?token=t1", "ws://h/ws?token=t2"]);
    // a second drop before opening waits longer
    sockets[1]?.drop();
    expect(timers.map((t) => t.ms)).toEqual([1000, 2000]);
    timers[1]?.fn();
    await tick();
    sockets[2]?.hello();
    expect(states).toEqual(["connecting", "open", "closed", "connecting", "closed", "connecting", "open"]);

    live.stop();
    expect(sockets[2]?.closed).toBe(true);
    sockets[2]?.drop();
    expect(timers).toHaveLength(2);
  });

  it("refreshes the token after a 1008 close, then reconnects", async () => {
    const h = harness({});
    h.live.start();
    await tick();
    h.last().refuse();
    expect(h.states).toEqual(["connecting", "closed"]);
    // the server is up, only the token was stale: no wait
    expect(h.timers.map((t) => t.ms)).toEqual([0]);
    await h.fire();
    // the refused t1 is not asked for again: the client's refresh gave r1
    expect(h.tokens()).toEqual(["t1", "r1"]);
    h.last().hello();
    expect(h.states).toEqual(["connecting", "closed", "connecting", "open"]);
    // any other close reconnects with the current token, with the backoff
    h.last().drop(1006);
    await h.fire();
    expect(h.tokens()).toEqual(["t1", "r1", "t2"]);
    expect(h.timers.map((t) => t.ms)).toEqual([0, 1000]);
    h.last().drop(1011);
    await h.fire();
    expect(h.tokens()).toEqual(["t1", "r1", "t2", "t3"]);
    expect(h.timers.map((t) => t.ms)).toEqual([0, 1000, 2000]);
    h.live.stop();
  });

  it("refreshes at once after an outage, however long the backoff had grown", async () => {
    const h = harness({});
    h.live.start();
    await tick();
    for (let i = 0; i < 5; i++) {
      h.last().drop(1006); // the server is down
      await h.fire();
    }
    h.last().refuse(); // back, with a new key: the old token is refused
    expect(h.timers.map((t) => t.ms)).toEqual([1000, 2000, 4000, 8000, 16000, 0]);
    await h.fire();
    expect(h.tokens()).toEqual(["t1", "t2", "t3", "t4", "t5", "t6", "r1"]);
    h.last().hello();
    h.last().drop(1006);
    expect(h.timers.map((t) => t.ms).slice(-1)).toEqual([1000]);
    h.live.stop();
  });

  it("backs off when the server keeps refusing (accepted connections do not reset it)", async () => {
    const h = harness({});
    h.live.start();
    await tick();
    for (let i = 0; i < 5; i++) {
      h.last().refuse();
      await h.fire();
    }
    // once at once, then the backoff: a refused token cannot cause a fast loop
    expect(h.timers.map((t) => t.ms)).toEqual([0, 1000, 2000, 4000, 8000]);
    expect(h.tokens()).toEqual(["t1", "r1", "r2", "r3", "r4", "r5"]);
    expect(h.states.filter((s) => s === "open")).toEqual([]);
    // a hello ends the streak: the next refusal is retried at once again
    h.last().hello();
    h.last().refuse();
    expect(h.timers.map((t) => t.ms).slice(-1)).toEqual([0]);
    h.live.stop();
  });

  it("tries the refresh again when it failed", async () => {
    let calls = 0;
    const h = harness({
      refresh: () => {
        calls += 1;
        return calls === 1 ? Promise.reject(new Error("offline")) : Promise.resolve("fresh");
      },
    });
    h.live.start();
    await tick();
    h.last().refuse();
    await h.fire(); // the refresh fails: no socket, a wait
    expect(h.tokens()).toEqual(["t1"]);
    expect(h.timers.map((t) => t.ms)).toEqual([0, 1000]);
    await h.fire();
    expect(h.tokens()).toEqual(["t1", "fresh"]);
    h.live.stop();
  });

  it("asks for a token again after a 1008 when it has no refresh", async () => {
    const h = harness({ refresh: null });
    h.live.start();
    await tick();
    h.last().refuse();
    await h.fire();
    expect(h.tokens()).toEqual(["t1", "t2"]);
    h.live.stop();
  });

  it("waits and tries again when no token can be had", async () => {
    const timers: number[] = [];
    const live = new LiveConnection({
      token: () => Promise.reject(new Error("offline")),
      onEvent: () => undefined,
      connect: () => {
        throw new Error("must not connect");
      },
      location: { protocol: "http:", host: "h" },
      schedule: (_fn, ms) => timers.push(ms),
      random: () => 0,
    });
    live.start();
    await tick();
    expect(timers).toEqual([1000]);
    live.stop();
  });
});

describe("debounce", () => {
  it("calls once after a burst", () => {
    const pending = new Map<number, () => void>();
    let id = 0;
    let calls = 0;
    const d = debounce(
      () => calls++,
      300,
      (fn) => {
        pending.set(++id, fn);
        return id;
      },
      (h) => pending.delete(h as number),
    );
    d.call();
    d.call();
    d.call();
    expect(pending.size).toBe(1);
    for (const fn of pending.values()) fn();
    expect(calls).toBe(1);
  });
});
