// The control room's calls, on the shared ApiClient (bearer token, refresh, ApiError).

import { buildQuery, errorFromBody, networkError, type ApiClient } from "../api/client";
import type { CaseDetail, Priority } from "../api/types";
import type {
  BoardQuery,
  Communication,
  CriticalFinding,
  Delivery,
  Expert,
  RoutingDecision,
  TurnaroundQuery,
  TurnaroundReport,
  WorklistPage,
} from "./types";

function withSignal<T extends object>(options: T, signal?: AbortSignal): T & { signal?: AbortSignal } {
  return signal ? { ...options, signal } : options;
}

export function board(client: ApiClient, query: BoardQuery, signal?: AbortSignal): Promise<WorklistPage> {
  return client.request<WorklistPage>(
    "/api/worklist",
    withSignal({ query: { limit: 500, ...query } }, signal),
  );
}

export function experts(client: ApiClient, signal?: AbortSignal): Promise<Expert[]> {
  return client.request<Expert[]>("/api/experts", withSignal({}, signal));
}

/** Gives the case to a radiologist, taking it from whoever held it. */
export function assign(client: ApiClient, caseId: number, readerId: number, reason: string): Promise<CaseDetail> {
  return client.request<CaseDetail>(`/api/cases/${caseId}/assign`, {
    method: "POST",
    json: { reader_id: readerId, reason },
  });
}

/** Offers the case to one more radiologist (the first to claim it reads it). */
export function offer(client: ApiClient, caseId: number, readerId: number, reason: string): Promise<CaseDetail> {
  return client.request<CaseDetail>(`/api/cases/${caseId}/assignments`, {
    method: "POST",
    json: { reader_id: readerId, kind: "offered", reason },
  });
}

export function changePriority(
  client: ApiClient,
  caseId: number,
  priority: Priority,
  reason: string,
): Promise<CaseDetail> {
  return client.request<CaseDetail>(`/api/cases/${caseId}/priority`, {
    method: "POST",
    json: { priority, reason },
  });
}

export function pause(client: ApiClient, caseId: number, reason: string): Promise<CaseDetail> {
  return client.request<CaseDetail>(`/api/cases/${caseId}/pause`, { method: "POST", json: { reason } });
}

export function resume(client: ApiClient, caseId: number, reason: string): Promise<CaseDetail> {
  return client.request<CaseDetail>(`/api/cases/${caseId}/resume`, { method: "POST", json: { reason } });
}

export function routing(client: ApiClient, caseId: number, signal?: AbortSignal): Promise<RoutingDecision[]> {
  return client.request<RoutingDecision[]>(`/api/cases/${caseId}/routing`, withSignal({}, signal));
}

function turnaroundParams(query: TurnaroundQuery): Record<string, string | number | undefined> {
  return {
    group_by: query.group_by,
    since: query.since,
    until: query.until,
    hospital_id: query.hospital_id,
    priority: query.priority,
    subspecialty: query.subspecialty,
  };
}

export function turnaround(
  client: ApiClient,
  query: TurnaroundQuery,
  signal?: AbortSignal,
): Promise<TurnaroundReport> {
  return client.request<TurnaroundReport>(
    "/api/metrics/turnaround",
    withSignal({ query: { ...turnaroundParams(query), format: "json" } }, signal),
  );
}

/** The same report as CSV, fetched with the bearer token (a plain link would carry none); a 401
 * refreshes the token and asks once more. */
export async function turnaroundCsv(client: ApiClient, query: TurnaroundQuery): Promise<Blob> {
  const url = "/api/metrics/turnaround" + buildQuery({ ...turnaroundParams(query), format: "csv" });
  const send = async (token: string) => {
    try {
      return await fetch(url, { headers: { Authorization: `Bearer ${token}`, Accept: "text/csv" } });
    } catch (cause) {
      throw networkError(cause);
    }
  };
  let res = await send(await client.accessToken());
  if (res.status === 401) res = await send((await client.refresh()).accessToken);
  if (!res.ok) {
    let body: unknown = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: the status text will do
    }
    throw errorFromBody(res.status, res.statusText, body);
  }
  return res.blob();
}

export function criticalFindings(client: ApiClient, signal?: AbortSignal): Promise<CriticalFinding[]> {
  return client.request<CriticalFinding[]>(
    "/api/critical-findings",
    withSignal({ query: { status: "open" } }, signal),
  );
}

export function recordCommunication(
  client: ApiClient,
  findingId: number,
  body: Communication,
): Promise<CriticalFinding> {
  return client.request<CriticalFinding>(`/api/critical-findings/${findingId}/communication`, {
    method: "POST",
    json: body,
  });
}

export function deliveries(client: ApiClient, status: string[], signal?: AbortSignal): Promise<Delivery[]> {
  return client.request<Delivery[]>("/api/deliveries", withSignal({ query: { status } }, signal));
}

export function retryDelivery(client: ApiClient, deliveryId: number): Promise<Delivery> {
  return client.request<Delivery>(`/api/deliveries/${deliveryId}/retry`, { method: "POST" });
}
