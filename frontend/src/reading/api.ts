// The reading room's calls, as functions of the shared ApiClient (bearer token, refresh, ApiError).

import { ApiError, errorFromBody, type ApiClient } from "../api/client";
import type { CaseDetail } from "../api/types";
import type {
  ClaimRead,
  CosignItem,
  CriticalRead,
  DraftRead,
  DraftUpdate,
  ExpertMe,
  PriorRead,
  ReportRead,
  Template,
  TemplateSummary,
  WorklistPage,
} from "./types";

export function getWorklist(client: ApiClient, signal?: AbortSignal): Promise<WorklistPage> {
  return client.request<WorklistPage>("/api/worklist", signal ? { signal } : {});
}

export function claimCase(client: ApiClient, caseId: number): Promise<ClaimRead> {
  return client.request<ClaimRead>(`/api/cases/${caseId}/claim`, { method: "POST" });
}

export function releaseCase(client: ApiClient, caseId: number, reason = ""): Promise<void> {
  return client.request<undefined>(`/api/cases/${caseId}/release`, {
    method: "POST",
    json: { reason },
  });
}

export function getCase(client: ApiClient, caseId: number, signal?: AbortSignal): Promise<CaseDetail> {
  return client.request<CaseDetail>(`/api/cases/${caseId}`, signal ? { signal } : {});
}

export function getPriors(client: ApiClient, caseId: number): Promise<PriorRead[]> {
  return client.request<PriorRead[]>(`/api/cases/${caseId}/priors`);
}

export function getExpertMe(client: ApiClient): Promise<ExpertMe> {
  return client.request<ExpertMe>("/api/experts/me");
}

/** The case's report, or null when none was started (404). */
export async function findReport(client: ApiClient, caseId: number): Promise<ReportRead | null> {
  try {
    return await client.request<ReportRead>(`/api/cases/${caseId}/report`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

export function startReport(
  client: ApiClient,
  caseId: number,
  templateId: string | null = null,
): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/cases/${caseId}/report`, {
    method: "POST",
    json: { template_id: templateId },
  });
}

export function getReport(client: ApiClient, reportId: number): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/reports/${reportId}`);
}

/** An autosave; a 409 (saved elsewhere since) carries the current revision in its detail. */
export function saveDraft(client: ApiClient, reportId: number, body: DraftUpdate): Promise<DraftRead> {
  return client.request<DraftRead>(`/api/reports/${reportId}/draft`, { method: "PUT", json: body });
}

export function changeTemplate(
  client: ApiClient,
  reportId: number,
  revision: number,
  templateId: string,
): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/reports/${reportId}/template`, {
    method: "PUT",
    json: { revision, template_id: templateId },
  });
}

export function listTemplates(client: ApiClient, modality: string | undefined): Promise<TemplateSummary[]> {
  return client.request<TemplateSummary[]>("/api/templates", { query: { modality } });
}

export function getTemplate(client: ApiClient, templateId: string): Promise<Template> {
  return client.request<Template>(`/api/templates/${encodeURIComponent(templateId)}`);
}

/** Both components of the signer's electronic signature, typed again for each signature
 * (21 CFR 11.200(a)(1); reporting/schemas.py Credentials). */
export interface Credentials {
  username: string;
  password: string;
}

export function signReport(
  client: ApiClient,
  reportId: number,
  credentials: Credentials,
  preliminary = false,
): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/reports/${reportId}/sign`, {
    method: "POST",
    json: { ...credentials, preliminary },
  });
}

export function cosignQueue(client: ApiClient): Promise<CosignItem[]> {
  return client.request<CosignItem[]>("/api/reports/cosign-queue");
}

export function cosignReport(client: ApiClient, reportId: number, credentials: Credentials): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/reports/${reportId}/cosign`, {
    method: "POST",
    json: credentials,
  });
}

/** Sign the draft as edited since the last version as an amended version that supersedes it. */
export function amendReport(
  client: ApiClient,
  reportId: number,
  body: Credentials & { reason: string },
): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/reports/${reportId}/amend`, { method: "POST", json: body });
}

export function addAddendum(
  client: ApiClient,
  reportId: number,
  body: Credentials & { text: string; reason: string },
): Promise<ReportRead> {
  return client.request<ReportRead>(`/api/reports/${reportId}/addenda`, { method: "POST", json: body });
}

export function flagCritical(client: ApiClient, reportId: number, description: string): Promise<CriticalRead> {
  return client.request<CriticalRead>(`/api/reports/${reportId}/critical`, {
    method: "POST",
    json: { description },
  });
}

export function versionPdfPath(reportId: number, version: number): string {
  return `/api/reports/${reportId}/versions/${version}/pdf`;
}

export function previewPdfPath(reportId: number): string {
  return `/api/reports/${reportId}/preview`;
}

/** A file the API serves (a PDF), as a Blob: the bearer token, and after a 401 one refresh and
 * one more try. Other answers than 2xx are thrown as ApiError. */
export async function fetchBlob(client: ApiClient, path: string, signal?: AbortSignal): Promise<Blob> {
  const send = async (token: string) => {
    const init: RequestInit = { headers: { Authorization: `Bearer ${token}` } };
    if (signal) init.signal = signal;
    return fetch(path, init);
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
    throw errorFromBody(res.status, res.statusText, body, res.headers.get("Retry-After"));
  }
  return res.blob();
}
