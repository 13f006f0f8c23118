// The admin API, through the one ApiClient (its token rules and ApiError).

import type { ApiClient } from "../api/client";
import type { Hospital } from "../api/types";
import type {
  AETitleIn,
  Endpoint,
  EndpointIn,
  Expert,
  ExpertUpdate,
  HospitalCreate,
  User,
  UserCreate,
  UserUpdate,
} from "./types";

const hospitalPath = (code: string) => `/api/hospitals/${encodeURIComponent(code)}`;

export function listHospitals(client: ApiClient): Promise<Hospital[]> {
  return client.request<Hospital[]>("/api/hospitals");
}

export function createHospital(client: ApiClient, body: HospitalCreate): Promise<Hospital> {
  return client.request<Hospital>("/api/hospitals", { method: "POST", json: body });
}

export function addAETitle(client: ApiClient, code: string, body: AETitleIn): Promise<Hospital> {
  return client.request<Hospital>(`${hospitalPath(code)}/ae-titles`, { method: "POST", json: body });
}

export function removeAETitle(client: ApiClient, code: string, aeTitle: string): Promise<void> {
  return client.request<undefined>(`${hospitalPath(code)}/ae-titles/${encodeURIComponent(aeTitle)}`, {
    method: "DELETE",
  });
}

export function listEndpoints(client: ApiClient, code: string): Promise<Endpoint[]> {
  return client.request<Endpoint[]>(`${hospitalPath(code)}/delivery-endpoints`);
}

export function addEndpoint(client: ApiClient, code: string, body: EndpointIn): Promise<Endpoint> {
  return client.request<Endpoint>(`${hospitalPath(code)}/delivery-endpoints`, {
    method: "POST",
    json: body,
  });
}

/** Replaces the endpoint; a webhook config without `secret` keeps the stored one. */
export function updateEndpoint(
  client: ApiClient,
  code: string,
  id: number,
  body: EndpointIn,
): Promise<Endpoint> {
  return client.request<Endpoint>(`${hospitalPath(code)}/delivery-endpoints/${id}`, {
    method: "PUT",
    json: body,
  });
}

/** Deletes it, or deactivates it when it has deliveries (their history stays). */
export function removeEndpoint(client: ApiClient, code: string, id: number): Promise<void> {
  return client.request<undefined>(`${hospitalPath(code)}/delivery-endpoints/${id}`, {
    method: "DELETE",
  });
}

export function listUsers(client: ApiClient): Promise<User[]> {
  return client.request<User[]>("/api/users");
}

export function createUser(client: ApiClient, body: UserCreate): Promise<User> {
  return client.request<User>("/api/users", { method: "POST", json: body });
}

/** Changes what the body gives (name, a technician's hospital, password, active). */
export function updateUser(client: ApiClient, id: number, body: UserUpdate): Promise<User> {
  return client.request<User>(`/api/users/${id}`, { method: "PATCH", json: body });
}

/** The roster: every active expert's profile with availability and load. */
export function listExperts(client: ApiClient, signal?: AbortSignal): Promise<Expert[]> {
  return client.request<Expert[]>("/api/experts", signal ? { signal } : {});
}

/** Creates (201) or replaces (200) a radiologist's expert profile. */
export function putExpert(client: ApiClient, userId: number, body: ExpertUpdate): Promise<Expert> {
  return client.request<Expert>(`/api/experts/${userId}`, { method: "PUT", json: body });
}
