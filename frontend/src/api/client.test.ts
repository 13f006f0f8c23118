import { describe, expect, it } from "vitest";

import {
  ApiClient,
  ApiError,
  buildQuery,
  errorFromBody,
  memoryTokenStore,
  type FetchLike,
  type RawAnswer,
  type Tokens,
  type UploadTransport,
} from "./client";
import type { TokenResponse, UploadResponse } from "./types";

interface Call {
  url: string;
  method: string;
  auth: string | null;
  body: string | null;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function tokenResponse(n: number, expiresIn = 900): TokenResponse {
  return {
    access_token: `access-${n}`,
    token_type: "bearer",
    expires_in: expiresIn,
    refresh_token: `refresh-${n}`,
    role: "tech",
    hospital_id: 1,
  };
}

/** A fake server: the access token `valid` works, refresh tokens work once, and a sign-out
 * ends the refresh tokens it names (`revoked`). */
function fakeServer(options: { valid: string; refreshOk?: boolean }) {
  const calls: Call[] = [];
  let valid = options.valid;
  let issued = 1;
  const used = new Set<string>();
  const revoked: string[] = [];
  const fetchImpl: FetchLike = (url, init = {}) => {
    const headers = new Headers(init.headers);
    const call: Call = {
      url,
      method: init.method ?? "GET",
      auth: headers.get("Authorization"),
      body:
        typeof init.body === "string"
          ? init.body
          : init.body instanceof URLSearchParams
            ? init.body.toString()
            : null,
    };
    calls.push(call);
    if (url === "/api/auth/refresh") {
      const token = (JSON.parse(call.body ?? "{}") as { refresh_token: string }).refresh_token;
      if (options.refreshOk === false || used.has(token)) {
        return Promise.resolve(
          json(401, {
            error: "unauthenticated",
            message: "The refresh token is unknown or expired: sign in again.",
          }),
        );
      }
      used.add(token);
      issued += 1;
      valid = `access-${issued}`;
      return Promise.resolve(json(200, tokenResponse(issued)));
    }
    if (url === "/api/auth/logout") {
      revoked.push((JSON.parse(call.body ?? "{}") as { refresh_token: string }).refresh_token);
      return Promise.resolve(new Response(null, { status: 204 }));
    }
    if (call.auth !== `Bearer ${valid}`) {
      return Promise.resolve(
        json(401, {
          error: "unauthenticated",
          message: "The access token has expired: refresh it or sign in again.",
        }),
      );
    }
    return Promise.resolve(json(200, { id: 7, username: "tech.qsx", display_name: "Tech" }));
  };
  return { calls, fetchImpl, revoked };
}

function session(overrides: Partial<Tokens> = {}): Tokens {
  return {
    accessToken: "access-1",
    refreshToken: "refresh-1",
    expiresAt: 1_000_000 + 900_000,
    role: "tech",
    hospitalId: 1,
    ...overrides,
  };
}

const now = () => 1_000_000;

describe("ApiClient refresh and retry", () => {
  it("sends the bearer token", async () => {
    const server = fakeServer({ valid: "access-1" });
    const client = new ApiClient({ fetch: server.fetchImpl, store: memoryTokenStore(session()), now });
    const me = await client.me();
    expect(me.id).toBe(7);
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0]?.auth).toBe("Bearer access-1");
  });

  it("refreshes on a 401 and retries once with the new token", async () => {
    const server = fakeServer({ valid: "someone-else" });
    const store = memoryTokenStore(session());
    const client = new ApiClient({ fetch: server.fetchImpl, store, now });
    const seen: (Tokens | null)[] = [];
    client.subscribe((t) => seen.push(t));

    const me = await client.me();

    expect(me.id).toBe(7);
    expect(server.calls.map((c) => `${c.method} ${c.url} ${c.auth ?? ""}`)).toEqual([
      "GET /api/me Bearer access-1",
      "POST /api/auth/refresh ",
      "GET /api/me Bearer access-2",
    ]);
    expect(server.calls[1]?.body).toBe(JSON.stringify({ refresh_token: "refresh-1" }));
    expect(store.load()?.accessToken).toBe("access-2");
    expect(store.load()?.refreshToken).toBe("refresh-2");
    expect(store.load()?.expiresAt).toBe(1_000_000 + 900_000);
    expect(seen.map((t) => t?.accessToken)).toEqual(["access-2"]);
  });

  it("downloads a file as a Blob with the same refresh and retry", async () => {
    const server = fakeServer({ valid: "someone-else" });
    const client = new ApiClient({ fetch: server.fetchImpl, store: memoryTokenStore(session()), now });
    const blob = await client.blob("/api/reports/3/versions/1/pdf", { query: { v: 1 } });
    expect(JSON.parse(await blob.text())).toMatchObject({ id: 7 });
    expect(server.calls.map((c) => `${c.method} ${c.url} ${c.auth ?? ""}`)).toEqual([
      "GET /api/reports/3/versions/1/pdf?v=1 Bearer access-1",
      "POST /api/auth/refresh ",
      "GET /api/reports/3/versions/1/pdf?v=1 Bearer access-2",
    ]);
  });

  it("throws the server's error for a file it refuses", async () => {
    const client = new ApiClient({
      fetch: () => Promise.resolve(json(404, { error: "not_found", message: "No report 3." })),
      store: memoryTokenStore(session()),
      now,
    });
    await expect(client.blob("/api/reports/3/versions/1/pdf")).rejects.toMatchObject({
      status: 404,
      message: "No report 3.",
    });
  });

  it("refreshes before sending when the token is about to expire", async () => {
    const server = fakeServer({ valid: "access-1" });
    const client = new ApiClient({
      fetch: server.fetchImpl,
      store: memoryTokenStore(session({ expiresAt: 1_000_000 + 30_000 })),
      now,
      refreshMarginMs: 60_000,
    });
    await client.me();
    expect(server.calls.map((c) => c.url)).toEqual(["/api/auth/refresh", "/api/me"]);
    expect(server.calls[1]?.auth).toBe("Bearer access-2");
  });

  it("shares one refresh between concurrent requests (refresh tokens work once)", async () => {
    const server = fakeServer({ valid: "someone-else" });
    const client = new ApiClient({ fetch: server.fetchImpl, store: memoryTokenStore(session()), now });
    const results = await Promise.all([client.me(), client.me(), client.me()]);
    expect(results.every((r) => r.id === 7)).toBe(true);
    expect(server.calls.filter((c) => c.url === "/api/auth/refresh")).toHaveLength(1);
  });

  it("signs out when the refresh is refused", async () => {
    const server = fakeServer({ valid: "someone-else", refreshOk: false });
    const store = memoryTokenStore(session());
    const client = new ApiClient({ fetch: server.fetchImpl, store, now });
    const reasons: (string | undefined)[] = [];
    client.subscribe((t, reason) => {
      if (t === null) reasons.push(reason);
    });

    const error = await client.me().catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(401);
    expect((error as ApiError).message).toContain("sign in again");
    expect(store.load()).toBeNull();
    expect(client.session).toBeNull();
    expect(reasons).toEqual(["expired"]);
    // the original request and the refresh; no second try without a token
    expect(server.calls).toHaveLength(2);
  });

  it("does not retry more than once", async () => {
    const calls: string[] = [];
    let n = 1;
    const fetchImpl: FetchLike = (url) => {
      calls.push(url);
      if (url === "/api/auth/refresh") {
        n += 1;
        return Promise.resolve(json(200, tokenResponse(n)));
      }
      return Promise.resolve(json(401, { error: "unauthenticated", message: "No." }));
    };
    const client = new ApiClient({ fetch: fetchImpl, store: memoryTokenStore(session()), now });
    await expect(client.me()).rejects.toMatchObject({ status: 401, message: "No." });
    // the session is given up, and ended on the server too (its refresh token still worked)
    expect(calls).toEqual(["/api/me", "/api/auth/refresh", "/api/me", "/api/auth/logout"]);
    expect(client.session).toBeNull();
  });

  it("keeps the session when the server cannot be reached", async () => {
    const fetchImpl: FetchLike = () => Promise.reject(new TypeError("Failed to fetch"));
    const client = new ApiClient({ fetch: fetchImpl, store: memoryTokenStore(session()), now });
    const error = (await client.me().catch((e: unknown) => e)) as ApiError;
    expect(error.isNetwork).toBe(true);
    expect(error.code).toBe("network_error");
    expect(client.session?.accessToken).toBe("access-1");
  });
});

describe("ApiClient sign-out", () => {
  it("forgets the tokens at once and ends the session on the server", async () => {
    const server = fakeServer({ valid: "access-1" });
    const store = memoryTokenStore(session());
    const client = new ApiClient({ fetch: server.fetchImpl, store, now });
    const seen: [string | null, string | undefined][] = [];
    client.subscribe((t, reason) => seen.push([t?.accessToken ?? null, reason]));

    const done = client.signOut();
    // local state is gone before the server has answered
    expect(client.session).toBeNull();
    expect(store.load()).toBeNull();
    expect(seen).toEqual([[null, "signed_out"]]);
    await done;

    expect(server.calls).toHaveLength(1);
    const call = server.calls[0];
    expect(`${call?.method ?? ""} ${call?.url ?? ""}`).toBe("POST /api/auth/logout");
    expect(JSON.parse(call?.body ?? "null")).toEqual({ refresh_token: "refresh-1" });
    expect(server.revoked).toEqual(["refresh-1"]);
  });

  it("clears the session even when the server cannot be reached or fails", async () => {
    for (const fail of [
      () => Promise.reject(new TypeError("Failed to fetch")),
      () => Promise.resolve(json(500, { error: "internal", message: "Boom." })),
    ]) {
      const urls: string[] = [];
      const fetchImpl: FetchLike = (url) => {
        urls.push(url);
        return fail();
      };
      const store = memoryTokenStore(session());
      const client = new ApiClient({ fetch: fetchImpl, store, now });
      await expect(client.signOut()).resolves.toBeUndefined();
      expect(urls).toEqual(["/api/auth/logout"]);
      expect(client.session).toBeNull();
      expect(store.load()).toBeNull();
    }
  });

  it("sends nothing when not signed in", async () => {
    const server = fakeServer({ valid: "access-1" });
    const client = new ApiClient({ fetch: server.fetchImpl, now });
    await client.signOut();
    expect(server.calls).toEqual([]);
  });

  it("does not call logout for a refresh token the server has just refused", async () => {
    const server = fakeServer({ valid: "someone-else", refreshOk: false });
    const client = new ApiClient({ fetch: server.fetchImpl, store: memoryTokenStore(session()), now });
    await expect(client.me()).rejects.toMatchObject({ status: 401 });
    expect(server.calls.map((c) => c.url)).toEqual(["/api/me", "/api/auth/refresh"]);
  });

  it("ends the session a refresh renewed while signing out", async () => {
    const server = fakeServer({ valid: "access-1" });
    const held: (() => void)[] = [];
    const slowRefresh: FetchLike = (url, init) =>
      url === "/api/auth/refresh"
        ? new Promise((resolve) => {
            held.push(() => {
              resolve(server.fetchImpl(url, init));
            });
          })
        : server.fetchImpl(url, init);
    const client = new ApiClient({ fetch: slowRefresh, store: memoryTokenStore(session()), now });
    const refreshing = client.refresh();
    await client.signOut();
    expect(held).toHaveLength(1);
    held[0]?.();
    await refreshing;
    await new Promise((r) => setTimeout(r, 0));
    expect(client.session).toBeNull();
    expect(server.revoked).toEqual(["refresh-1", "refresh-2"]);
  });
});

describe("ApiClient sign-in and errors", () => {
  it("posts the form and keeps the tokens", async () => {
    const calls: { url: string; init: RequestInit | undefined }[] = [];
    const fetchImpl: FetchLike = (url, init) => {
      calls.push({ url, init });
      return Promise.resolve(json(200, tokenResponse(1)));
    };
    const store = memoryTokenStore();
    const client = new ApiClient({ fetch: fetchImpl, store, now });
    const tokens = await client.signIn("tech.qsx", "pa ss&word");
    expect(tokens.role).toBe("tech");
    expect(tokens.expiresAt).toBe(1_000_000 + 900_000);
    expect(store.load()?.refreshToken).toBe("refresh-1");
    const init = calls[0]?.init;
    expect(new Headers(init?.headers).get("Content-Type")).toBe(
      "application/x-www-form-urlencoded",
    );
    expect(init?.body).toBeInstanceOf(URLSearchParams);
    expect((init?.body as URLSearchParams).toString()).toBe("username=tech.qsx&password=pa+ss%26word");
  });

  it("carries the server's message, code and Retry-After", async () => {
    const fetchImpl: FetchLike = () =>
      Promise.resolve(
        json(
          429,
          {
            error: "too_many_requests",
            message: "Too many failed sign-ins for this account: wait, then try again.",
          },
          { "Retry-After": "900" },
        ),
      );
    const client = new ApiClient({ fetch: fetchImpl, now });
    const error = (await client.signIn("x", "y").catch((e: unknown) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(429);
    expect(error.code).toBe("too_many_requests");
    expect(error.message).toMatch(/^Too many failed sign-ins/);
    expect(error.retryAfter).toBe(900);
  });

  it("reads FastAPI's own error shape and non-JSON bodies", () => {
    expect(errorFromBody(404, "Not Found", { detail: "Not Found" }).message).toBe("Not Found");
    const e = errorFromBody(502, "Bad Gateway", null);
    expect(e.message).toBe("Bad Gateway");
    expect(e.code).toBe("http_502");
    const v = errorFromBody(422, "", {
      error: "invalid_request",
      message: "limit: too big",
      detail: [{ field: "limit", problem: "too big" }],
    });
    expect(v.detail).toEqual([{ field: "limit", problem: "too big" }]);
  });

  it("repeats list parameters in the query", () => {
    expect(buildQuery({ limit: 50, offset: 0, status: ["receiving", "ready"], priority: [] })).toBe(
      "?limit=50&offset=0&status=receiving&status=ready",
    );
    expect(buildQuery({ x: undefined })).toBe("");
  });
});

describe("ApiClient.upload", () => {
  const summary: UploadResponse = {
    stored: 0,
    duplicates: 0,
    conflicts: 0,
    failed: 1,
    skipped: 0,
    case_ids: [],
    files: [
      {
        name: "a.dcm",
        outcome: "failed",
        message: "not a DICOM file",
        status: 0xc000,
        sop_class_uid: "",
        sop_instance_uid: "",
        study_instance_uid: "",
        series_instance_uid: "",
        case_id: null,
      },
    ],
  };

  function transport(answers: RawAnswer[], tokens: string[]): UploadTransport {
    return (_url, token) => {
      tokens.push(token);
      const next = answers.shift();
      return next ? Promise.resolve(next) : Promise.reject(new Error("no more answers"));
    };
  }

  it("retries once after refreshing on a 401", async () => {
    const server = fakeServer({ valid: "x" });
    const used: string[] = [];
    const ok = { ...summary, stored: 1, failed: 0 };
    const client = new ApiClient({
      fetch: server.fetchImpl,
      store: memoryTokenStore(session()),
      now,
      upload: transport(
        [
          { status: 401, statusText: "", body: { error: "unauthenticated" }, retryAfter: null },
          { status: 200, statusText: "OK", body: ok, retryAfter: null },
        ],
        used,
      ),
    });
    const answer = await client.upload({ form: new FormData() });
    expect(answer).toEqual({ result: ok, rejected: false });
    expect(used).toEqual(["access-1", "access-2"]);
  });

  it("treats a 400 with a summary as an answer", async () => {
    const client = new ApiClient({
      store: memoryTokenStore(session()),
      now,
      upload: transport(
        [
          {
            status: 400,
            statusText: "Bad Request",
            body: {
              error: "bad_request",
              message: "Nothing in the upload could be stored.",
              detail: summary,
            },
            retryAfter: null,
          },
        ],
        [],
      ),
    });
    const answer = await client.upload({ form: new FormData() });
    expect(answer.rejected).toBe(true);
    expect(answer.result.files[0]?.message).toBe("not a DICOM file");
  });

  it("throws other errors with the server's message", async () => {
    const client = new ApiClient({
      store: memoryTokenStore(session()),
      now,
      upload: transport(
        [
          {
            status: 413,
            statusText: "",
            body: { error: "payload_too_large", message: "The request is too big." },
            retryAfter: null,
          },
        ],
        [],
      ),
    });
    await expect(client.upload({ form: new FormData() })).rejects.toMatchObject({
      status: 413,
      code: "payload_too_large",
      message: "The request is too big.",
    });
  });
});
