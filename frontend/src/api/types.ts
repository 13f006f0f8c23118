// Shapes of the RadRelay API, as the backend's pydantic schemas define them
// (backend/radrelay/*/schemas.py). Keep them in step with the backend.

export const ROLES = ["tech", "radiologist", "coordinator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export const PRIORITIES = ["stat", "urgent", "routine"] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Statuses known today; reporting adds more later (the UI shows unknown ones as they come). */
export const CASE_STATUSES = [
  "receiving",
  "ready",
  "offered",
  "assigned",
  "reading",
  "paused",
  "preliminary",
  "final",
  "amended",
] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

export const SUBSPECIALTIES = [
  "neuro",
  "head_neck",
  "chest",
  "cardiac",
  "abdominal",
  "msk",
  "breast",
  "pediatric",
  "genitourinary",
  "vascular",
  "nuclear",
  "general",
] as const;
export type Subspecialty = (typeof SUBSPECIALTIES)[number];

/** Where a case stands against its deadline (the SLA watch keeps it up to date). */
export const SLA_STATES = ["ok", "warning", "breached"] as const;
export type SlaState = (typeof SLA_STATES)[number];

export const OUTCOMES = ["stored", "duplicate", "conflict", "failed", "skipped"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** POST /api/auth/token and /api/auth/refresh */
export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  role: Role;
  hospital_id: number | null;
}

/** A user as GET /api/users lists them. */
export interface User {
  id: number;
  username: string;
  display_name: string;
  role: Role;
  hospital_id: number | null;
  active: boolean;
}

/** What the server accepts (GET /api/me), so that uploads can be planned to fit. */
export interface ServerLimits {
  /** Largest request body (a whole multipart upload). */
  max_upload_bytes: number;
  /** Largest single object: a DICOM file, or a member of a zip archive. */
  max_instance_bytes: number;
  /** Most members a zip archive may have. */
  max_zip_members: number;
}

/** GET /api/me: the signed-in user, their hospital (null for staff) and the server's limits. */
export interface Me extends User {
  hospital_code: string | null;
  hospital_name: string | null;
  limits: ServerLimits;
}

/** GET /api/hospitals */
export interface Hospital {
  id: number;
  code: string;
  name: string;
  active: boolean;
  ae_titles: { id: number; ae_title: string; source_addresses: string[] }[];
}

export interface Case {
  id: number;
  hospital_id: number;
  hospital_code: string;
  /** A CaseStatus, or a status a later backend adds. */
  status: string;
  priority: Priority;
  clinical_question: string;
  clinical_history: string;
  requested_exam: string;
  requested_subspecialty: Subspecialty | null;
  source: "upload" | "stow" | "cstore";
  received_at: string;
  last_instance_at: string;
  ready_at: string | null;
  late_instances: number;
  flags: string[];
  study_instance_uid: string;
  accession_number: string;
  study_date: string;
  study_description: string;
  modalities: string[];
  number_of_series: number;
  number_of_instances: number;
  patient_name: string;
  patient_id: string;
  issuer_of_patient_id: string;
  patient_birth_date: string;
  patient_sex: string;
  /** The subspecialty routing read the case as (null until routed). */
  subspecialty: Subspecialty | null;
  work_units: number | null;
  /** When the report is due (null until routed). */
  deadline: string | null;
  sla_state: SlaState;
  /** The radiologist who holds the case (assigned or reading). */
  reader_id: number | null;
  reader_name: string | null;
  lease_expires_at: string | null;
  /** First routed (null: not yet). */
  routed_at: string | null;
  assigned_at: string | null;
  opened_at: string | null;
}

export interface CaseEvent {
  at: string;
  kind: string;
  actor_id: number | null;
  /** The acting user's display name (null without an actor; may be empty). */
  actor_name: string | null;
  detail: Record<string, unknown>;
}

export interface CaseDetail extends Case {
  events: CaseEvent[];
  /** The case's report once a reader has started one; null before. */
  report_id: number | null;
}

export interface CasePage {
  items: Case[];
  total: number;
  limit: number;
  offset: number;
}

export interface CaseQuery {
  limit?: number;
  offset?: number;
  status?: string[];
  priority?: Priority[];
}

/** PATCH /api/cases/{id}: fields left out keep their value; null clears a text (to "") or the
 * subspecialty. The priority cannot be cleared (null is a 422). */
export interface ClinicalInfo {
  priority?: Priority;
  clinical_question?: string | null;
  clinical_history?: string | null;
  requested_exam?: string | null;
  requested_subspecialty?: Subspecialty | null;
}

export interface FileOutcome {
  name: string;
  outcome: Outcome;
  message: string;
  status: number;
  sop_class_uid: string;
  sop_instance_uid: string;
  study_instance_uid: string;
  series_instance_uid: string;
  case_id: number | null;
}

/** POST /api/uploads (200), or the `detail` of its 400 answer. */
export interface UploadResponse {
  stored: number;
  duplicates: number;
  conflicts: number;
  failed: number;
  skipped: number;
  case_ids: number[];
  files: FileOutcome[];
}

/** Messages on /ws. Events carry ids, never patient data. */
export type LiveMessage =
  | { type: "hello"; user_id: number }
  | { type: "ping" }
  | {
      type:
        | "case.received"
        | "case.ready"
        | "case.updated"
        | "case.routed"
        | "case.claimed"
        | "case.assigned"
        | "case.paused"
        | "case.sla";
      case_id: number;
      hospital_id: number;
    }
  | { type: string; [key: string]: unknown };

export function isUploadResponse(value: unknown): value is UploadResponse {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Partial<UploadResponse>;
  return typeof v.stored === "number" && Array.isArray(v.files) && Array.isArray(v.case_ids);
}

// --- reports, as the case page shows them (the reading room has its own, fuller types) ---------

export interface ReportSignature {
  user_id: number;
  meaning: "author" | "cosigner" | "addendum";
  printed_name: string;
  qualification: string;
  signed_at: string;
}

export interface ReportVersion {
  version: number;
  status: "preliminary" | "final" | "amended";
  /** The sending hospital sees it. */
  released: boolean;
  created_at: string;
  superseded_at: string | null;
  amendment_reason: string;
  size: number;
  signatures: ReportSignature[];
}

export interface CaseReport {
  id: number;
  case_id: number;
  status: "draft" | "preliminary" | "final" | "amended";
  template_title: string;
  awaiting_cosign: boolean;
  critical: boolean;
  versions: ReportVersion[];
}

/** A signed version's delivery to one of the hospital's endpoints (its PACS, a webhook). */
export interface CaseDelivery {
  id: number;
  endpoint_name: string;
  kind: string;
  version: number;
  status: "pending" | "sending" | "sent" | "failed";
  attempts: number;
  next_attempt_at: string | null;
  last_error: string;
  sent_at: string | null;
}
