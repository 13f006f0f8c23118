// Shapes of the reading room's API answers, as the backend's schemas define them
// (backend/radrelay/worklist/schemas.py, reporting/schemas.py, reporting/templates.py,
// cases/schemas.py PriorRead, experts/schemas.py). Keep them in step with the backend.

import type { Case } from "../api/types";

/** How a case sits in the reader's worklist. */
export type Hold = "offered" | "assigned" | "reading";

export interface SlaRead {
  /** ok, warning or breached. */
  state: string;
  /** Minutes to the deadline; negative when late. */
  remaining_minutes: number;
  elapsed_fraction: number;
  overdue_wait: boolean;
}

export interface WorklistItem {
  case: Case;
  hold: Hold | null;
  sla: SlaRead | null;
}

/** GET /api/worklist */
export interface WorklistPage {
  items: WorklistItem[];
  total: number;
  limit: number;
  offset: number;
  /** Offers beyond the top of the pool, shown when the ones above are taken. */
  hidden_offers: number;
}

/** POST /api/cases/{id}/claim */
export interface ClaimRead {
  case_id: number;
  status: string;
  lease_expires_at: string;
  lease_minutes: number;
}

/** GET /api/cases/{id}/priors */
export interface PriorRead {
  study_instance_uid: string;
  study_date: string;
  study_time: string;
  study_description: string;
  accession_number: string;
  modalities: string[];
  number_of_series: number;
  number_of_instances: number;
  case_id: number | null;
}

/** GET /api/experts/me: the part the reading room uses. */
export interface ExpertMe {
  user_id: number;
  name: string;
  /** "final": signs final reports and co-signs; "preliminary": a senior co-signs theirs. */
  qualification: string;
}

// --- templates -------------------------------------------------------------------------------

export interface Label {
  en?: string;
  zh?: string;
}

interface FieldBase {
  id: string;
  label: Label;
  group?: Label;
  required: boolean;
}

export interface TextField extends FieldBase {
  type: "text";
  multiline?: boolean;
  default?: Label;
  normal?: Label;
}

interface Numeric extends FieldBase {
  unit?: string;
  min?: number;
  max?: number;
  step?: number;
}

export interface NumberField extends Numeric {
  type: "number";
  default?: number;
  normal?: number;
}

export interface MeasurementField extends Numeric {
  type: "measurement";
  unit: string;
  dimensions?: number;
}

export interface Option {
  value: string;
  label: Label;
}

export interface ChoiceField extends FieldBase {
  type: "choice";
  options: Option[];
  default?: string;
  normal?: string;
}

export interface MultiChoiceField extends FieldBase {
  type: "multichoice";
  options: Option[];
  default?: string[];
  normal?: string[];
}

export interface DateField extends FieldBase {
  type: "date";
}

export type TemplateField =
  | TextField
  | NumberField
  | MeasurementField
  | ChoiceField
  | MultiChoiceField
  | DateField;

export interface TemplateSection {
  key: string;
  title: Label;
  required: boolean;
  /** Narrative the editor starts with. */
  text?: Label;
  /** Narrative of a normal study. */
  normal?: Label;
  fields: TemplateField[];
}

/** GET /api/templates/{id} */
export interface Template {
  id: string;
  version: number;
  title: Label;
  sections: TemplateSection[];
}

/** GET /api/templates?modality= */
export interface TemplateSummary {
  id: string;
  version: number;
  title: { zh?: string; en?: string };
  modalities: string[];
  fallback: boolean;
}

// --- reports ---------------------------------------------------------------------------------

export interface KeyImageRef {
  study_instance_uid: string;
  series_instance_uid: string;
  sop_instance_uid: string;
  frame: number;
  caption: string;
}

export interface DraftRead {
  revision: number;
  entries: Record<string, unknown>;
  texts: Record<string, string>;
  key_images: KeyImageRef[];
  /** What signing would refuse now, as "field_or_section: message". */
  missing: string[];
}

export interface SignatureRead {
  user_id: number;
  meaning: string;
  printed_name: string;
  qualification: string;
  signed_at: string;
  field: string;
}

export interface VersionRead {
  version: number;
  status: string;
  released: boolean;
  created_at: string;
  superseded_at: string | null;
  superseded_by: number | null;
  amendment_reason: string;
  pdf_sha256: string;
  size: number;
  signatures: SignatureRead[];
}

/** draft, preliminary, final or amended. */
export type ReportState = "draft" | "preliminary" | "final" | "amended";

export interface ReportRead {
  id: number;
  case_id: number;
  hospital_id: number;
  status: ReportState;
  template_id: string;
  template_version: number;
  template_title: string;
  language: string;
  author_id: number;
  awaiting_cosign: boolean;
  critical: boolean;
  created_at: string;
  updated_at: string;
  draft: DraftRead | null;
  versions: VersionRead[];
}

/** PUT /api/reports/{id}/draft */
export interface DraftUpdate {
  revision: number;
  entries: Record<string, unknown>;
  texts: Record<string, string>;
  key_images?: KeyImageRef[];
}

/** GET /api/reports/cosign-queue */
export interface CosignItem {
  report_id: number;
  case_id: number;
  hospital_id: number;
  priority: string;
  study_description: string;
  author_id: number;
  author_name: string;
  version: number;
  signed_at: string;
}

export interface CriticalRead {
  id: number;
  report_id: number;
  case_id: number;
  description: string;
  flagged_at: string;
  due_at: string;
  status: string;
}
