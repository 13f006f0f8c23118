// Shapes of the control room's API answers, as the backend's schemas define them
// (worklist/schemas.py, experts/schemas.py, metrics/schemas.py, reporting/schemas.py,
// delivery/schemas.py). Keep them in step with the backend.

import type { Case, Priority, Subspecialty } from "../api/types";

/** Where a case stands against its deadline, computed by the server at the time of the answer. */
export interface SlaInfo {
  state: string;
  /** Minutes to the deadline; negative when late. */
  remaining_minutes: number;
  elapsed_fraction: number;
  /** Waited past the maximum wait: it goes first. */
  overdue_wait: boolean;
}

export interface WorklistItem {
  case: Case;
  hold: "offered" | "assigned" | "reading" | null;
  /** Null until the case is routed. */
  sla: SlaInfo | null;
}

/** GET /api/worklist as a coordinator: every open case, unrouted first, then by deadline. */
export interface WorklistPage {
  items: WorklistItem[];
  total: number;
  limit: number;
  offset: number;
  hidden_offers: number;
}

export interface BoardQuery {
  hospital_id?: number[];
  subspecialty?: Subspecialty[];
  status?: string[];
  priority?: Priority[];
  sla_state?: string[];
  reader_id?: number;
  limit?: number;
  offset?: number;
}

export const EXPERT_STATES = ["online", "away", "offline"] as const;
export type ExpertState = (typeof EXPERT_STATES)[number];

/** GET /api/experts: one expert of the roster, with availability and load. */
export interface Expert {
  user_id: number;
  username: string;
  name: string;
  active: boolean;
  employment: "full_time" | "part_time";
  qualification: "final" | "preliminary";
  state: ExpertState;
  state_changed_at: string;
  subspecialties: Partial<Record<Subspecialty, number>>;
  credentials: { hospital_id: number; hospital_code: string; expires_at: string | null; expired: boolean }[];
  cap_open_cases: number | null;
  cap_daily_units: number | null;
  timezone: string;
  available_now: boolean;
  available_until: string | null;
  next_window_start: string | null;
  /** Cases they hold: assigned or reading. */
  open_cases: number;
  open_units: number;
  updated_at: string;
}

export interface FilterResult {
  name: string;
  passed: boolean;
  reason: string;
}

export interface ScoreComponent {
  name: string;
  value: number;
  weight: number;
  points: number;
}

/** One expert in a routing decision's explanation. The compact form keeps every filter and the
 * score of the best ten and the offered; only total and rank for the other eligible; only the
 * failed filters of the ineligible. */
export interface Candidate {
  user_id: number;
  name: string;
  eligible: boolean;
  filters?: FilterResult[];
  score?: ScoreComponent[];
  total?: number | null;
  rank?: number | null;
  notes?: string[];
}

/** Ineligible experts grouped by the first filter they failed, once there are many. */
export interface IneligibleGroup {
  failed: string;
  count: number;
  user_ids: number[];
  example: Candidate;
}

export interface DecisionExplanation {
  subspecialty?: string;
  subspecialty_reason?: string;
  work_units?: number;
  sla_target_minutes?: number;
  sla_reason?: string;
  deadline?: string;
  mode?: string;
  assignee?: number | null;
  offered?: number[];
  widened?: boolean;
  overdue_wait?: boolean;
  alert_coordinator?: boolean;
  cosign_required?: boolean;
  reason?: string;
  candidates?: Candidate[];
  ineligible?: IneligibleGroup[];
  rules?: { kind: string; id: string; version: number }[];
}

/** GET /api/cases/{id}/routing: one decision, newest first. */
export interface RoutingDecision {
  id: number;
  decided_at: string;
  trigger: string;
  mode: string;
  assignee_id: number | null;
  escalation_step: number;
  applied: boolean;
  decision: DecisionExplanation;
}

export const GROUP_BYS = ["day", "hospital", "subspecialty", "priority", "modality", "expert"] as const;
export type GroupBy = (typeof GROUP_BYS)[number];

export const INTERVALS = [
  "received_to_assigned",
  "assigned_to_opened",
  "received_to_opened",
  "opened_to_preliminary",
  "received_to_preliminary",
  "received_to_final",
] as const;
export type Interval = (typeof INTERVALS)[number];

export interface IntervalStats {
  interval: Interval;
  count: number;
  /** Minutes; null when count is 0. */
  p50: number | null;
  p90: number | null;
  p95: number | null;
}

export interface SlaStats {
  finished: number;
  on_time: number;
  late: number;
  no_deadline: number;
  compliance: number | null;
  breached_open: number;
}

export interface GroupStats {
  key: string;
  label: string;
  cases: number;
  intervals: IntervalStats[];
  sla: SlaStats;
}

/** GET /api/metrics/turnaround */
export interface TurnaroundReport {
  since: string;
  until: string;
  generated_at: string;
  group_by: GroupBy;
  percentile_method: string;
  overall: GroupStats;
  groups: GroupStats[];
}

export interface TurnaroundQuery {
  since?: string;
  until?: string;
  group_by: GroupBy;
  hospital_id?: number;
  priority?: Priority;
  subspecialty?: Subspecialty;
}

export const METHODS = ["phone", "in_person", "message", "other"] as const;
export type Method = (typeof METHODS)[number];

/** GET /api/critical-findings */
export interface CriticalFinding {
  id: number;
  report_id: number;
  case_id: number;
  hospital_id: number;
  description: string;
  flagged_by: number;
  flagged_at: string;
  due_at: string;
  status: "open" | "done";
  /** Until due (negative: overdue); null once done. */
  seconds_left: number | null;
  communicated_at: string | null;
  communicated_to: string;
  method: string;
  recorded_by: number | null;
}

export interface Communication {
  communicated_to: string;
  method: Method;
}

export const DELIVERY_STATUSES = ["pending", "sending", "sent", "failed"] as const;

/** GET /api/deliveries */
export interface Delivery {
  id: number;
  case_id: number;
  hospital_id: number;
  endpoint_id: number;
  endpoint_name: string;
  kind: string;
  report_version_id: number;
  version: number;
  report_status: string;
  status: string;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string;
  last_code: string;
  sent_at: string | null;
  created_at: string;
  updated_at: string;
}
