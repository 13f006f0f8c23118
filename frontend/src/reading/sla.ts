// The worklist's SLA countdown: the time left to a case's deadline, ticking in the browser, and
// its colour. The server's state says when a case is due soon (its warning thresholds are the
// rules'); past the deadline the browser knows by itself that it is late.

export type SlaColour = "ok" | "warning" | "breached" | "none";

export interface SlaView {
  colour: SlaColour;
  /** Milliseconds to the deadline, negative when late; null without a deadline. */
  msLeft: number | null;
  /** "1:05:09", "4:09" or "2 d 3:00:00"; the absolute value of msLeft. */
  clock: string;
  late: boolean;
}

const two = (n: number) => String(n).padStart(2, "0");

/** A duration as a clock: h:mm:ss (m:ss under an hour), days in front past 24 h. */
export function clockText(ms: number): string {
  const total = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (days > 0) return `${days} d ${hours}:${two(minutes)}:${two(seconds)}`;
  if (hours > 0) return `${hours}:${two(minutes)}:${two(seconds)}`;
  return `${minutes}:${two(seconds)}`;
}

export function slaView(deadline: string | null, serverState: string | null, now: number): SlaView {
  if (!deadline) return { colour: "none", msLeft: null, clock: "", late: false };
  const due = Date.parse(deadline);
  if (Number.isNaN(due)) return { colour: "none", msLeft: null, clock: "", late: false };
  const msLeft = due - now;
  const late = msLeft < 0;
  let colour: SlaColour = "ok";
  if (late || serverState === "breached") colour = "breached";
  else if (serverState === "warning") colour = "warning";
  return { colour, msLeft, clock: clockText(msLeft), late };
}
