// The one way the UI talks to the API: bearer token, refresh before expiry and on a 401 (then one
// retry), and errors as ApiError carrying the server's {error, message, detail}.

import {
  isUploadResponse,
  type CaseDetail,
  type CasePage,
  type CaseQuery,
  type ClinicalInfo,
  type Hospital,
  type Me,
  type Role,
  type TokenResponse,
  type UploadResponse,
} from "./types";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** An answer other than 2xx, or no answer at all (status 0, code "network_error"). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: unknown;
  /** Seconds, from a Retry-After header (429, 503). */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    message: string,
    detail?: unknown,
    retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }

  get isNetwork(): boolean {
    return this.status === 0;
  }
}

export const NETWORK_ERROR = "network_error";
export const ABORTED = "aborted";

export function networkError(cause?: unknown): ApiError {
  const text = cause instanceof Error ? cause.message : "The server could not be reached.";
  return new ApiError(0, NETWORK_ERROR, text);
}

/** Builds an ApiError from a parsed error body: ours is {error, message, detail}; FastAPI's own
 * (e.g. an unknown route) is {detail: "..."}. */
export function errorFromBody(
  status: number,
  statusText: string,
  body: unknown,
  retryAfter: string | null = null,
): ApiError {
  let code = `http_${status}`;
  let message = statusText || `HTTP ${status}`;
  let detail: unknown = undefined;
  if (typeof body === "object" && body !== null) {
    const b = body as Record<string, unknown>;
    if (typeof b.error === "string") code = b.error;
    if (typeof b.message === "string" && b.message) message = b.message;
    else if (typeof b.detail === "string" && b.detail) message = b.detail;
    detail = b.detail;
  }
  const seconds = retryAfter !== null ? Number.parseInt(retryAfter, 10) : Number.NaN;
  return new ApiError(status, code, message, detail, Number.isFinite(seconds) ? seconds : null);
}

async function errorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: the status text will do
  }
  return errorFromBody(res.status, res.statusText, body, res.headers.get("Retry-After"));
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds when the access token expires. */
  expiresAt: number;
  role: Role;
  hospitalId: number | null;
}

export function tokensFrom(response: TokenResponse, now: number): Tokens {
  return {
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    expiresAt: now + response.expires_in * 1000,
    role: response.role,
    hospitalId: response.hospital_id,
  };
}

/** Where tokens outlive a page reload: sessionStorage in the browser (one tab's life). */
export interface TokenStore {
  load(): Tokens | null;
  save(tokens: Tokens | null): void;
}

const STORAGE_KEY = "radrelay.session";

export function sessionTokenStore(storage: Storage = window.sessionStorage): TokenStore {
  return {
    load() {
      try {
        const raw = storage.getItem(STORAGE_KEY);
        if (!raw) return null;
        const t = JSON.parse(raw) as Partial<Tokens>;
        if (typeof t.accessToken !== "string" || typeof t.refreshToken !== "string") return null;
        if (typeof t.expiresAt !== "number" || typeof t.role !== "string") return null;
        return {
          accessToken: t.accessToken,
          refreshToken: t.refreshToken,
          expiresAt: t.expiresAt,
          role: t.role,
          hospitalId: typeof t.hospitalId === "number" ? t.hospitalId : null,
        };
      } catch {
        return null;
      }
    },
    save(tokens) {
      try {
        if (tokens) storage.setItem(STORAGE_KEY, JSON.stringify(tokens));
        else storage.removeItem(STORAGE_KEY);
      } catch {
        // private mode or full storage: the session then lives in memory only
      }
    },
  };
}

export function memoryTokenStore(initial: Tokens | null = null): TokenStore {
  let saved = initial;
  return {
    load: () => saved,
    save: (t) => {
      saved = t;
    },
  };
}

/** Why the session ended: the user signed out, or the server would not renew it. */
export type SignOutReason = "signed_out" | "expired";
export type SessionListener = (tokens: Tokens | null, reason?: SignOutReason) => void;

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadRequest {
  form: FormData;
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
}

export interface RawAnswer {
  status: number;
  statusText: string;
  body: unknown;
  retryAfter: string | null;
}

/** Sends a multipart body and reports upload progress (XMLHttpRequest: fetch has no upload
 * progress). Rejects with an ApiError: status 0 "network_error", or "aborted". */
export type UploadTransport = (
  url: string,
  token: string,
  request: UploadRequest,
) => Promise<RawAnswer>;

export const xhrTransport: UploadTransport = (url, token, { form, onProgress, signal }) =>
  new Promise<RawAnswer>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ApiError(0, ABORTED, "The upload was cancelled."));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "text";
    const onAbort = () => {
      xhr.abort();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (onProgress) {
      xhr.upload.onprogress = (e) => {
        onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : 0 });
      };
    }
    xhr.onload = () => {
      signal?.removeEventListener("abort", onAbort);
      let body: unknown;
      try {
        body = xhr.responseText ? (JSON.parse(xhr.responseText) as unknown) : null;
      } catch {
        body = null;
      }
      resolve({
        status: xhr.status,
        statusText: xhr.statusText,
        body,
        retryAfter: xhr.getResponseHeader("Retry-After"),
      });
    };
    xhr.onerror = () => {
      signal?.removeEventListener("abort", onAbort);
      reject(networkError());
    };
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => {
      signal?.removeEventListener("abort", onAbort);
      reject(new ApiError(0, ABORTED, "The upload was cancelled."));
    };
    xhr.send(form);
  });

export interface ClientOptions {
  fetch?: FetchLike;
  store?: TokenStore;
  upload?: UploadTransport;
  now?: () => number;
  /** Refresh the access token when it expires within this many milliseconds. */
  refreshMarginMs?: number;
}

interface JsonRequest {
  method?: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  query?: Record<string, string | number | readonly (string | number)[] | undefined>;
  json?: unknown;
  signal?: AbortSignal;
}

export function buildQuery(query: JsonRequest["query"]): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const v of value as readonly (string | number)[]) params.append(key, String(v));
    } else {
      params.append(key, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export class ApiClient {
  private tokens: Tokens | null;
  private refreshing: Promise<Tokens> | null = null;
  private readonly listeners = new Set<SessionListener>();
  private readonly fetchImpl: FetchLike;
  private readonly store: TokenStore;
  private readonly uploadImpl: UploadTransport;
  private readonly now: () => number;
  private readonly margin: number;

  constructor(options: ClientOptions = {}) {
    // Called through a wrapper: window.fetch must not be called with another `this`.
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.store = options.store ?? memoryTokenStore();
    this.uploadImpl = options.upload ?? xhrTransport;
    this.now = options.now ?? (() => Date.now());
    this.margin = options.refreshMarginMs ?? 60_000;
    this.tokens = this.store.load();
  }

  get session(): Tokens | null {
    return this.tokens;
  }

  /** Called whenever the tokens change; with null and a reason when the session ends. */
  subscribe(listener: SessionListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private setTokens(tokens: Tokens | null, reason?: SignOutReason): void {
    this.tokens = tokens;
    this.store.save(tokens);
    for (const listener of this.listeners) listener(tokens, reason);
  }

  async signIn(username: string, password: string): Promise<Tokens> {
    const body = new URLSearchParams({ username, password });
    const res = await this.send("/api/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
    });
    if (!res.ok) throw await errorFromResponse(res);
    const tokens = tokensFrom((await res.json()) as TokenResponse, this.now());
    this.setTokens(tokens);
    return tokens;
  }

  /** Ends the session: forgets the tokens at once, then asks the server to end it too (POST
   * /api/auth/logout), so that the refresh token and every token refreshed from it stop working.
   * The returned promise settles when the server has answered; it never rejects (unreachable, the
   * token simply expires on the server in its own time). */
  signOut(reason: SignOutReason = "signed_out"): Promise<void> {
    const tokens = this.tokens;
    this.forget(reason);
    return tokens ? this.logout(tokens.refreshToken) : Promise.resolve();
  }

  /** Drops the tokens here only: for a refresh token the server has just refused. */
  private forget(reason: SignOutReason): void {
    this.refreshing = null;
    if (this.tokens) this.setTokens(null, reason);
  }

  private async logout(refreshToken: string): Promise<void> {
    try {
      await this.send("/api/auth/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: refreshToken }),
      });
    } catch {
      // offline: the session is gone here, and ends on the server when its token expires
    }
  }

  /** Trades the refresh token for new tokens. Concurrent callers share one request: the server
   * honours a refresh token reused moments after its rotation, but one exchange is enough. */
  refresh(): Promise<Tokens> {
    if (this.refreshing) return this.refreshing;
    const current = this.tokens;
    if (!current) {
      return Promise.reject(new ApiError(401, "unauthenticated", "Not signed in."));
    }
    const attempt = (async () => {
      const res = await this.send("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refresh_token: current.refreshToken }),
      });
      if (!res.ok) {
        const error = await errorFromResponse(res);
        // The server refused (unknown, used or expired token; disabled account): sign in again.
        // Other failures (server down) keep the session for a later try.
        if (res.status === 401 || res.status === 403) this.forget("expired");
        throw error;
      }
      const tokens = tokensFrom((await res.json()) as TokenResponse, this.now());
      if (this.tokens === current) this.setTokens(tokens);
      // Signed out while the refresh was on its way: end the session it renewed, too.
      else void this.logout(tokens.refreshToken);
      return tokens;
    })();
    this.refreshing = attempt;
    const clear = () => {
      if (this.refreshing === attempt) this.refreshing = null;
    };
    attempt.then(clear, clear);
    return attempt;
  }

  /** A usable access token: refreshed first when it expires within the margin. */
  async accessToken(): Promise<string> {
    if (this.refreshing) return (await this.refreshing).accessToken;
    const tokens = this.tokens;
    if (!tokens) throw new ApiError(401, "unauthenticated", "Not signed in.");
    if (tokens.expiresAt - this.now() <= this.margin) return (await this.refresh()).accessToken;
    return tokens.accessToken;
  }

  /** After a 401 with `used`: a newer token if another call already refreshed, else refresh. */
  private async renewAfter401(used: string): Promise<string> {
    if (this.tokens && this.tokens.accessToken !== used) return this.tokens.accessToken;
    return (await this.refresh()).accessToken;
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(path, init);
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") {
        throw new ApiError(0, ABORTED, "The request was cancelled.");
      }
      throw networkError(cause);
    }
  }

  /** An authorised JSON request; on a 401 the token is refreshed and the request sent once more. */
  async request<T>(path: string, options: JsonRequest = {}): Promise<T> {
    const url = path + buildQuery(options.query);
    const init = (token: string): RequestInit => {
      const headers: Record<string, string> = {
        Accept: "application/json",
        Authorization: `Bearer ${token}`,
      };
      const req: RequestInit = { method: options.method ?? "GET", headers };
      if (options.json !== undefined) {
        headers["Content-Type"] = "application/json";
        req.body = JSON.stringify(options.json);
      }
      if (options.signal) req.signal = options.signal;
      return req;
    };
    const res = await this.authorised(url, init);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** An authorised GET of JSON whose headers matter too: a QIDO-RS search says in its Warning
   * header that more results match. Same token rules as `request`; `accept` for DICOM JSON. */
  async getWithHeaders(
    path: string,
    options: { query?: JsonRequest["query"]; accept?: string; signal?: AbortSignal } = {},
  ): Promise<{ body: unknown; headers: Headers }> {
    const url = path + buildQuery(options.query);
    const res = await this.authorised(url, (token) => {
      const req: RequestInit = {
        headers: { Accept: options.accept ?? "application/json", Authorization: `Bearer ${token}` },
      };
      if (options.signal) req.signal = options.signal;
      return req;
    });
    const text = await res.text();
    return { body: text ? (JSON.parse(text) as unknown) : null, headers: res.headers };
  }

  /** A file the API serves (a report PDF, a CSV export), as a Blob, with the same token rules. */
  async blob(path: string, options: { query?: JsonRequest["query"]; signal?: AbortSignal } = {}): Promise<Blob> {
    const url = path + buildQuery(options.query);
    const res = await this.authorised(url, (token) => {
      const req: RequestInit = { headers: { Authorization: `Bearer ${token}` } };
      if (options.signal) req.signal = options.signal;
      return req;
    });
    return res.blob();
  }

  /** Sends with the access token; on a 401 refreshes it and sends once more; a second 401 signs
   * out. Any other answer than 2xx is thrown as ApiError. */
  private async authorised(url: string, init: (token: string) => RequestInit): Promise<Response> {
    let token = await this.accessToken();
    let res = await this.send(url, init(token));
    if (res.status === 401) {
      token = await this.renewAfter401(token);
      res = await this.send(url, init(token));
      if (res.status === 401) {
        const error = await errorFromResponse(res);
        void this.signOut("expired");
        throw error;
      }
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  /** POST /api/uploads with upload progress. A 400 whose detail is an upload summary (nothing
   * could be stored) is an answer too: it resolves with `rejected: true`. */
  async upload(request: UploadRequest): Promise<{ result: UploadResponse; rejected: boolean }> {
    let token = await this.accessToken();
    let answer = await this.uploadImpl("/api/uploads", token, request);
    if (answer.status === 401) {
      token = await this.renewAfter401(token);
      answer = await this.uploadImpl("/api/uploads", token, request);
      if (answer.status === 401) {
        const error = errorFromBody(401, answer.statusText, answer.body);
        void this.signOut("expired");
        throw error;
      }
    }
    if (answer.status >= 200 && answer.status < 300 && isUploadResponse(answer.body)) {
      return { result: answer.body, rejected: false };
    }
    const error = errorFromBody(answer.status, answer.statusText, answer.body, answer.retryAfter);
    if (answer.status === 400 && isUploadResponse(error.detail)) {
      return { result: error.detail, rejected: true };
    }
    throw error;
  }

  // --- endpoints ---------------------------------------------------------------------------

  me(): Promise<Me> {
    return this.request<Me>("/api/me");
  }

  hospitals(): Promise<Hospital[]> {
    return this.request<Hospital[]>("/api/hospitals");
  }

  listCases(query: CaseQuery, signal?: AbortSignal): Promise<CasePage> {
    const options: JsonRequest = {
      query: {
        limit: query.limit,
        offset: query.offset,
        status: query.status,
        priority: query.priority,
      },
    };
    if (signal) options.signal = signal;
    return this.request<CasePage>("/api/cases", options);
  }

  getCase(id: number, signal?: AbortSignal): Promise<CaseDetail> {
    const options: JsonRequest = {};
    if (signal) options.signal = signal;
    return this.request<CaseDetail>(`/api/cases/${id}`, options);
  }

  updateCase(id: number, info: ClinicalInfo): Promise<CaseDetail> {
    return this.request<CaseDetail>(`/api/cases/${id}`, { method: "PATCH", json: info });
  }
}
