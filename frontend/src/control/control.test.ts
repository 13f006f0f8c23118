import { describe, expect, it } from "vitest";

import type { Case } from "../api/types";
import {
  UNROUTED,
  boardTotals,
  countdown,
  groupQueue,
  rankExperts,
  reasonProblem,
  slaTone,
  tabOf,
} from "./board";
import { barLayout, csvFileName, durationOf, linePath, niceCeil, scale, seriesOf, ticks } from "./chart";
import type { Expert, GroupStats, WorklistItem } from "./types";

function item(id: number, fields: Partial<Case> = {}, sla: string | null = "ok"): WorklistItem {
  const c = {
    id,
    hospital_id: 1,
    priority: "routine",
    subspecialty: "chest",
    deadline: "2026-01-01T10:00:00Z",
    sla_state: sla ?? "ok",
    reader_id: null,
    ...fields,
  } as Case;
  return {
    case: c,
    hold: null,
    sla: sla === null ? null : { state: sla, remaining_minutes: 10, elapsed_fraction: 0.5, overdue_wait: false },
  };
}

describe("the board", () => {
  it("groups by subspecialty (unrouted first) and priority (STAT first), counting risks", () => {
    const groups = groupQueue([
      item(1, { subspecialty: "neuro" }),
      item(2, { priority: "stat" }, "breached"),
      item(3, {}, "warning"),
      item(4, { subspecialty: null, deadline: null }, null),
      item(5, { priority: "urgent" }),
    ]);
    expect(groups.map((g) => g.key)).toEqual([UNROUTED, "neuro", "chest"]);
    const chest = groups[2];
    expect(chest?.total).toBe(3);
    expect(chest?.warning).toBe(1);
    expect(chest?.breached).toBe(1);
    expect(chest?.priorities.map((p) => [p.priority, p.items.map((i) => i.case.id)])).toEqual([
      ["stat", [2]],
      ["urgent", [5]],
      ["routine", [3]],
    ]);
  });

  it("keeps the server's order within a group", () => {
    const groups = groupQueue([item(9), item(3), item(7)]);
    expect(groups[0]?.priorities[0]?.items.map((i) => i.case.id)).toEqual([9, 3, 7]);
  });

  it("tones: the SLA state, none before a deadline", () => {
    expect(slaTone(item(1, {}, "breached"))).toBe("breached");
    expect(slaTone(item(1, { deadline: null }, null))).toBe("none");
    expect(slaTone(item(1, { sla_state: "warning" }, null))).toBe("warning");
    expect(slaTone(item(1, {}, "something-new"))).toBe("ok");
  });

  it("totals the cases at risk and those nobody holds", () => {
    expect(boardTotals([item(1, {}, "warning"), item(2, { reader_id: 4 }, "breached"), item(3)])).toEqual({
      total: 3,
      warning: 1,
      breached: 1,
      unassigned: 2,
    });
  });

  it("counts down to the deadline, and up past it", () => {
    const now = Date.parse("2026-01-01T10:00:00Z");
    expect(countdown("2026-01-01T12:05:30Z", now)).toEqual({ overdue: false, days: 0, hours: 2, minutes: 5 });
    expect(countdown("2026-01-03T11:00:00Z", now)).toEqual({ overdue: false, days: 2, hours: 1, minutes: 0 });
    expect(countdown("2026-01-01T09:59:30Z", now)).toEqual({ overdue: true, days: 0, hours: 0, minutes: 1 });
    expect(countdown("not a date", now)).toBeNull();
  });

  it("wants a reason of 1 to 1000 characters that is not only blanks", () => {
    expect(reasonProblem("")).toBe("required");
    expect(reasonProblem("   \n")).toBe("required");
    expect(reasonProblem("x".repeat(1001))).toBe("tooLong");
    expect(reasonProblem("Dr Li covers chest tonight")).toBeNull();
  });

  it("ranks experts: credentialed, then online and available, then the least loaded", () => {
    const expert = (id: number, fields: Partial<Expert>): Expert =>
      ({
        user_id: id,
        username: `dr${id}`,
        name: `Dr ${id}`,
        active: true,
        state: "online",
        available_now: true,
        open_cases: 0,
        credentials: [{ hospital_id: 1, hospital_code: "H1", expires_at: null, expired: false }],
        ...fields,
      }) as Expert;
    const list = [
      expert(1, { credentials: [] }),
      expert(2, { state: "offline" }),
      expert(3, { open_cases: 4 }),
      expert(4, { open_cases: 1 }),
      expert(5, { active: false }),
      expert(6, { credentials: [{ hospital_id: 1, hospital_code: "H1", expires_at: null, expired: true }] }),
    ];
    expect(rankExperts(list, 1).map((e) => e.user_id)).toEqual([4, 3, 2, 1, 6]);
  });

  it("reads the tab from the query string", () => {
    expect(tabOf("?tab=turnaround")).toBe("turnaround");
    expect(tabOf("?tab=nope")).toBe("board");
    expect(tabOf("")).toBe("board");
  });
});

function group(key: string, p50: number | null, p90: number | null): GroupStats {
  return {
    key,
    label: key.toUpperCase(),
    cases: 2,
    intervals: [{ interval: "received_to_final", count: p50 === null ? 0 : 2, p50, p90, p95: p90 }],
    sla: { finished: 0, on_time: 0, late: 0, no_deadline: 0, compliance: null, breached_open: 0 },
  };
}

describe("the turnaround chart", () => {
  it("takes one interval's figures per group", () => {
    const rows = seriesOf({ groups: [group("a", 10, 20), group("b", null, null)] }, "received_to_final");
    expect(rows).toEqual([
      { key: "a", label: "A", cases: 2, count: 2, p50: 10, p90: 20 },
      { key: "b", label: "B", cases: 2, count: 0, p50: null, p90: null },
    ]);
    expect(seriesOf({ groups: [group("a", 1, 2)] }, "received_to_assigned")[0]?.p50).toBeNull();
  });

  it("rounds the axis up to nice numbers", () => {
    expect(niceCeil(0)).toBe(1);
    expect(niceCeil(7)).toBe(10);
    expect(niceCeil(23)).toBe(25);
    expect(niceCeil(0.3)).toBe(0.5);
    expect(niceCeil(140)).toBe(200);
    expect(niceCeil(100)).toBe(100);
    expect(ticks(23)).toEqual([0, 10, 20, 30]);
    expect(ticks(100)).toEqual([0, 25, 50, 75, 100]);
    expect(ticks(0)).toEqual([0, 0.25, 0.5, 0.75, 1]);
  });

  it("scales and clamps", () => {
    expect(scale(50, 100, 200)).toBe(100);
    expect(scale(150, 100, 200)).toBe(200);
    expect(scale(-5, 100, 200)).toBe(0);
    expect(scale(5, 0, 200)).toBe(0);
  });

  it("lays out p50 and p90 bars side by side, none where there is no figure", () => {
    const plot = { width: 300, height: 140, left: 40, right: 20, top: 10, bottom: 30 };
    const layout = barLayout(seriesOf({ groups: [group("a", 10, 20), group("b", null, null)] }, "received_to_final"), plot);
    expect(layout.max).toBe(20);
    expect(layout.bars).toHaveLength(2);
    const [p50, p90] = layout.bars;
    expect(p90?.height).toBe(100);
    expect(p90?.y).toBe(10);
    expect(p50?.height).toBe(50);
    expect(p50?.y).toBe(60);
    expect((p50?.x ?? 0) + (p50?.width ?? 0)).toBe(p90?.x);
    expect(layout.centres.map((c) => c.x)).toEqual([100, 220]);
    expect(layout.ticks[0]).toEqual({ value: 0, y: 110 });
  });

  it("draws lines that break at a missing figure", () => {
    expect(linePath([{ x: 0, y: 1 }, { x: 10, y: 2.04 }, { x: 20, y: null }, { x: 30, y: 4 }])).toBe(
      "M0 1 L10 2 M30 4",
    );
    expect(linePath([])).toBe("");
  });

  it("splits durations and names the CSV", () => {
    expect(durationOf(1505.6)).toEqual({ days: 1, hours: 1, minutes: 6 });
    expect(durationOf(42)).toEqual({ days: 0, hours: 0, minutes: 42 });
    expect(csvFileName("day", "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z")).toBe(
      "turnaround_day_20260101_20260108.csv",
    );
  });
});
