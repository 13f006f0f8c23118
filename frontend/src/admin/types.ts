// Shapes of the admin API (backend/radrelay/auth, experts, delivery schemas). Kept here, not in
// api/types.ts, because only the admin pages use them.

import type { Role, Subspecialty } from "../api/types";

/** auth/schemas.py UserRead */
export interface User {
  id: number;
  username: string;
  display_name: string;
  role: Role;
  hospital_id: number | null;
  active: boolean;
}

/** auth/schemas.py UserCreate: idempotent on the username (an existing user is updated). */
export interface UserCreate {
  username: string;
  display_name: string;
  password: string;
  role: Role;
  hospital_code: string | null;
}

/** auth/schemas.py UserUpdate: a field left out stays as it is. A new password or
 * `active: false` ends the user's sessions. */
export interface UserUpdate {
  display_name?: string;
  /** Technicians only. */
  hospital_code?: string;
  password?: string;
  active?: boolean;
}

export interface AETitleIn {
  ae_title: string;
  source_addresses: string[];
}

/** hospitals/schemas.py HospitalCreate: idempotent on the code; AE titles are added. */
export interface HospitalCreate {
  code: string;
  name: string;
  ae_titles: AETitleIn[];
}

export const EMPLOYMENTS = ["full_time", "part_time"] as const;
export type Employment = (typeof EMPLOYMENTS)[number];

export const QUALIFICATIONS = ["final", "preliminary"] as const;
export type Qualification = (typeof QUALIFICATIONS)[number];

/** 1 reads it .. 3 reference reader. */
export const LEVELS = [1, 2, 3] as const;

export interface CredentialIn {
  hospital_code: string;
  /** ISO 8601 with an offset; null: no expiry. */
  expires_at: string | null;
}

export interface ShiftIn {
  /** 0 = Monday .. 6 = Sunday. */
  weekday: number;
  /** "HH:MM" wall-clock time in the expert's zone. */
  start: string;
  /** "HH:MM" or "24:00"; at or before the start: the shift runs past midnight. */
  end: string;
}

/** experts/schemas.py ExpertUpdate: the whole profile, every list replaced. */
export interface ExpertUpdate {
  employment: Employment;
  qualification: Qualification;
  subspecialties: Partial<Record<Subspecialty, number>>;
  credentials: CredentialIn[];
  cap_open_cases: number | null;
  cap_daily_units: number | null;
  timezone: string;
  shifts: ShiftIn[];
}

export interface CredentialRead {
  hospital_id: number;
  hospital_code: string;
  expires_at: string | null;
  expired: boolean;
}

/** experts/schemas.py ExpertRead */
export interface Expert {
  user_id: number;
  username: string;
  name: string;
  active: boolean;
  employment: Employment;
  qualification: Qualification;
  state: string;
  state_changed_at: string;
  subspecialties: Partial<Record<Subspecialty, number>>;
  credentials: CredentialRead[];
  cap_open_cases: number | null;
  cap_daily_units: number | null;
  timezone: string;
  shifts: ShiftIn[];
  windows: { starts_at: string; ends_at: string }[];
  available_now: boolean;
  available_until: string | null;
  next_window_start: string | null;
  open_cases: number;
  open_units: number;
  updated_at: string;
}

export const ENDPOINT_KINDS = ["webhook", "dicom"] as const;
export type EndpointKind = (typeof ENDPOINT_KINDS)[number];

/** delivery/schemas.py EndpointIn; `config` is checked against the kind's model. */
export interface EndpointIn {
  kind: EndpointKind;
  name: string;
  config: Record<string, unknown>;
  active: boolean;
}

/** delivery/schemas.py EndpointRead: the config never carries the secret. */
export interface Endpoint {
  id: number;
  hospital_id: number;
  kind: EndpointKind;
  name: string;
  active: boolean;
  config: Record<string, unknown>;
  has_secret: boolean;
}
