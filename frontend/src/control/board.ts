// The live board's logic: grouping the open cases, SLA tones and countdowns, reasons.

import { PRIORITIES, SUBSPECIALTIES, type Priority } from "../api/types";
import type { Expert, WorklistItem } from "./types";

/** A case's group key before routing has classified it. */
export const UNROUTED = "unrouted";

export interface PriorityGroup {
  priority: Priority;
  items: WorklistItem[];
}

export interface QueueGroup {
  /** A subspecialty, or UNROUTED. */
  key: string;
  total: number;
  warning: number;
  breached: number;
  priorities: PriorityGroup[];
}

export type SlaTone = "ok" | "warning" | "breached" | "none";

/** How a case stands: its SLA state, or "none" before routing gave it a deadline. */
export function slaTone(item: Pick<WorklistItem, "sla" | "case">): SlaTone {
  const state = item.sla?.state ?? (item.case.deadline ? item.case.sla_state : null);
  if (state === "warning" || state === "breached") return state;
  return state === null ? "none" : "ok";
}

function order<T>(list: readonly T[], value: T): number {
  const i = list.indexOf(value);
  return i === -1 ? list.length : i;
}

/** The queue by subspecialty (unrouted first, then the known order), each by priority (STAT
 * first), cases kept in the server's order (by deadline); with counts of cases at risk. */
export function groupQueue(items: readonly WorklistItem[]): QueueGroup[] {
  const groups = new Map<string, QueueGroup>();
  for (const item of items) {
    const key = item.case.subspecialty ?? UNROUTED;
    let group = groups.get(key);
    if (!group) {
      group = { key, total: 0, warning: 0, breached: 0, priorities: [] };
      groups.set(key, group);
    }
    group.total += 1;
    const tone = slaTone(item);
    if (tone === "warning") group.warning += 1;
    if (tone === "breached") group.breached += 1;
    let byPriority = group.priorities.find((p) => p.priority === item.case.priority);
    if (!byPriority) {
      byPriority = { priority: item.case.priority, items: [] };
      group.priorities.push(byPriority);
    }
    byPriority.items.push(item);
  }
  const rank = (key: string) => (key === UNROUTED ? -1 : order<string>(SUBSPECIALTIES, key));
  const result = [...groups.values()].sort((a, b) => rank(a.key) - rank(b.key) || a.key.localeCompare(b.key));
  for (const g of result) {
    g.priorities.sort((a, b) => order(PRIORITIES, a.priority) - order(PRIORITIES, b.priority));
  }
  return result;
}

export interface BoardTotals {
  total: number;
  warning: number;
  breached: number;
  unassigned: number;
}

export function boardTotals(items: readonly WorklistItem[]): BoardTotals {
  const totals = { total: items.length, warning: 0, breached: 0, unassigned: 0 };
  for (const item of items) {
    const tone = slaTone(item);
    if (tone === "warning") totals.warning += 1;
    if (tone === "breached") totals.breached += 1;
    if (item.case.reader_id === null) totals.unassigned += 1;
  }
  return totals;
}

export interface Countdown {
  overdue: boolean;
  days: number;
  hours: number;
  minutes: number;
}

/** Time to the deadline at `now`, whole minutes rounded towards the deadline passing (a case due
 * in 30 s shows 0 min, one 30 s late shows 1 min overdue). */
export function countdown(deadline: string, now: number): Countdown | null {
  const due = Date.parse(deadline);
  if (Number.isNaN(due)) return null;
  const ms = due - now;
  const overdue = ms < 0;
  let left = overdue ? Math.ceil(-ms / 60_000) : Math.floor(ms / 60_000);
  const days = Math.floor(left / 1440);
  left -= days * 1440;
  const hours = Math.floor(left / 60);
  return { overdue, days, hours, minutes: left - hours * 60 };
}

export const REASON_MAX = 1000;

export type ReasonProblem = "required" | "tooLong";

/** Why a coordinator's reason cannot be sent, or null: the server wants 1 to 1000 characters,
 * and a reason of blanks says nothing. */
export function reasonProblem(reason: string): ReasonProblem | null {
  if (reason.trim() === "") return "required";
  if (reason.length > REASON_MAX) return "tooLong";
  return null;
}

/** Experts for an assignment choice: online and available first, then by load, then name.
 * Those credentialed for the case's hospital (not expired) come before the others, who are
 * still listed: the server is the judge and says why it refuses. */
export function rankExperts(list: readonly Expert[], hospitalId: number | null): Expert[] {
  const credentialed = (e: Expert) =>
    hospitalId === null || e.credentials.some((c) => c.hospital_id === hospitalId && !c.expired);
  const stateRank = (e: Expert) => (e.state === "online" ? (e.available_now ? 0 : 1) : e.state === "away" ? 2 : 3);
  return list
    .filter((e) => e.active)
    .sort(
      (a, b) =>
        Number(!credentialed(a)) - Number(!credentialed(b)) ||
        stateRank(a) - stateRank(b) ||
        a.open_cases - b.open_cases ||
        (a.name || a.username).localeCompare(b.name || b.username),
    );
}

/** Reads the control room's tab from a query string (?tab=...); the board by default. */
export const TABS = ["board", "turnaround", "critical", "deliveries"] as const;
export type Tab = (typeof TABS)[number];

export function tabOf(search: string): Tab {
  const value = new URLSearchParams(search).get("tab");
  return (TABS as readonly string[]).includes(value ?? "") ? (value as Tab) : "board";
}
