import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { ApiServer } from "../../src/http/server.ts";
import type { AgentApi, AgentStatus, EnforcementStatus, FailedEnforcement, SignalInput, SubjectDetail, SubjectSummary } from "../../src/http/agent-api.ts";
import type { AuditEntry, AuditQuery } from "../../src/store/contract.ts";
import type { Decision } from "../../src/policy/model.ts";
import { VigilError } from "../../src/errors.ts";
import { createLogger } from "../../src/telemetry/log.ts";

const TOKEN = "test-token-0123456789abcdef";
const SPIFFE = "spiffe://example.org/ns/prod/sa/api:v1";

function decision(subject: string): Decision {
  return { policy: "p1", subject, access: "full_access", risk: "low", reasons: [], generation: 1, decided_at: 1, evidence: {}, exempt: false };
}

/** The parts of a status the server passes through untouched. */
const STATUS_EXTRA = {
  reasons: [],
  dry_run: false,
  policies: [{ name: "p1", subjects: { total: 2, full_access: 1, read_only: 0, deny: 1, pending: 0 }, paused: true }],
  subjects: { total: 2, full_access: 1, read_only: 0, deny: 1, pending: 0 },
  paused: ["p1"],
  unreconciled: { total: 1, oldest_failed_at: "2024-01-01T00:00:00.000Z" },
} satisfies Partial<AgentStatus>;

/** In-memory AgentApi that records every call. */
class FakeApi implements AgentApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly subjects = new Map<string, SubjectDetail>();
  isReady = true;
  failNextSignal: Error | undefined;

  constructor() {
    for (const id of ["alice", SPIFFE]) {
      this.subjects.set(id, { subject: { id, kind: "workload", attributes: {}, labels: {} }, access: "full_access", status: "evaluated", pending: [], decisions: [decision(id)], results: [] });
    }
  }
  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
  }
  last(method: string): unknown[] | undefined {
    return this.calls.filter((c) => c.method === method).at(-1)?.args;
  }
  health() {
    return { ok: true };
  }
  ready() {
    return this.isReady ? { ready: true, reasons: [] } : { ready: false, reasons: ["store not open"] };
  }
  async listSubjects(query: { policy?: string; access?: "full_access" | "read_only" | "deny"; kind?: string; limit: number; offset: number }) {
    this.record("listSubjects", query);
    const subjects: SubjectSummary[] = [...this.subjects.keys()].map((id) => ({ id, kind: "workload", access: "full_access", status: "evaluated", pending: [], policies: [] }));
    return { subjects, total: subjects.length };
  }
  async getSubject(id: string) {
    this.record("getSubject", id);
    return this.subjects.get(id);
  }
  async evaluate(id: string) {
    this.record("evaluate", id);
    return this.subjects.has(id) ? [decision(id)] : undefined;
  }
  async acceptSignal(signal: SignalInput) {
    this.record("acceptSignal", signal);
    const fail = this.failNextSignal;
    this.failNextSignal = undefined;
    if (fail) throw fail;
    if (!this.subjects.has(signal.subject)) throw new VigilError("VIGIL_ERR_UNKNOWN_SUBJECT", `unknown subject: ${signal.subject}`);
    if (signal.check === "nope") throw new VigilError("VIGIL_ERR_BAD_REQUEST", "unknown check: nope");
    return { id: `sig-${this.calls.length}`, policies: ["p1"] };
  }
  async readAudit(query: AuditQuery) {
    this.record("readAudit", query);
    const entry: AuditEntry = { type: "signal", seq: 1, ts: "2024-01-01T00:00:00.000Z", prev: "0", hash: "h1" };
    return [entry];
  }
  notRunning = false;
  async status(): Promise<AgentStatus> {
    this.record("status");
    if (this.notRunning) throw new VigilError("VIGIL_ERR_SHUTDOWN", "agent is not running");
    return { ...STATUS_EXTRA, ready: true, version: "1.2.3", mode: "embedded", queue: { waiting: 1, delayed: 2, active: 0, failed: 3 }, idle: false };
  }
  enforcement(): EnforcementStatus[] {
    this.record("enforcement");
    return [{ policy: "p1", paused: true, paused_at: "2024-01-01T00:00:00.000Z", recent_actions: 3, max_actions: 3, window_ms: 60_000 }];
  }
  async resumeEnforcement(policy?: string) {
    this.record("resumeEnforcement", policy);
    if (policy !== undefined && policy !== "p1") throw new VigilError("VIGIL_ERR_BAD_REQUEST", `unknown policy: ${policy}`);
    return { resumed: ["p1"] };
  }
  readonly failedItem: FailedEnforcement = {
    id: "a1b2c3d4e5f6a1b2c3d4e5f6",
    policy: "p1",
    subject: "alice",
    action: "notify",
    action_type: "webhook",
    operation: "apply",
    access: "deny",
    generation: 2,
    status: "failed",
    attempts: 3,
    redrives: 0,
    last_error: "POST http://hooks.example/ → 503",
    first_failed_at: "2024-01-01T00:00:00.000Z",
    last_attempt_at: "2024-01-01T00:00:00.000Z",
    next_retry_at: "2024-01-01T00:01:00.000Z",
  };
  async failedEnforcement(query: { policy?: string; limit: number; offset: number }) {
    this.record("failedEnforcement", query);
    return { items: [this.failedItem], total: 1 };
  }
  async retryEnforcement(request: { ids: readonly string[] } | { all: true; policy?: string }) {
    this.record("retryEnforcement", request);
    if ("policy" in request && request.policy !== undefined && request.policy !== "p1") throw new VigilError("VIGIL_ERR_BAD_REQUEST", `unknown policy "${request.policy}"`);
    return { retried: [this.failedItem.id], in_progress: [], not_failed: "ids" in request ? request.ids.filter((id) => id !== this.failedItem.id) : [] };
  }
}

interface Res {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

describe("ApiServer", () => {
  const api = new FakeApi();
  const logLines: string[] = [];
  const metrics: [string, string][] = [];
  let server: ApiServer;
  let base: string;

  async function call(method: string, path: string, init: { token?: string | null; body?: string; headers?: Record<string, string> } = {}): Promise<Res> {
    const headers: Record<string, string> = { ...init.headers };
    const token = init.token === undefined ? TOKEN : init.token;
    if (token !== null) headers["authorization"] = `Bearer ${token}`;
    if (init.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
    const res = await fetch(base + path, { method, headers, ...(init.body !== undefined ? { body: init.body } : {}) });
    const text = await res.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text };
  }
  const post = (path: string, body: unknown, init: { token?: string | null } = {}) => call("POST", path, { ...init, body: typeof body === "string" ? body : JSON.stringify(body) });

  /** Raw node:http request, for chunked uploads and hand-made headers. Write errors (server hung up) are ignored. */
  function raw(path: string, headers: Record<string, string | number>, chunks: Buffer[], delayMs = 0): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const { port } = server.address;
      const req = httpRequest({ host: "127.0.0.1", port, path, method: "POST", headers: { authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
        res.on("error", reject);
      });
      let responded = false;
      req.on("response", () => (responded = true));
      req.on("error", (err) => {
        if (!responded) reject(err);
      });
      (async () => {
        for (const chunk of chunks) {
          if (responded || req.destroyed) return;
          req.write(chunk);
          if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        }
        if (!responded && !req.destroyed) req.end();
      })().catch(() => undefined);
    });
  }

  before(async () => {
    const logger = createLogger({ level: "debug", stream: { write: (line: string) => void logLines.push(line) } });
    server = new ApiServer({ listen: "127.0.0.1:0", token: TOKEN, maxBodyBytes: 8192, api, logger, metrics: { signal: (check, outcome) => void metrics.push([check, outcome]) } });
    await server.start();
    assert.equal(server.address.host, "127.0.0.1");
    assert.ok(server.address.port > 0);
    base = `http://127.0.0.1:${server.address.port}`;
  });

  after(async () => {
    await server.stop();
  });

  test("healthz and readyz answer without a token", async () => {
    const h = await call("GET", "/healthz", { token: null });
    assert.equal(h.status, 200);
    assert.deepEqual(h.body, { ok: true });
    assert.match(h.headers.get("content-type") ?? "", /^application\/json/);
    const r = await call("GET", "/readyz", { token: null });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ready: true });
    api.isReady = false;
    try {
      const nr = await call("GET", "/readyz", { token: null });
      assert.equal(nr.status, 503);
      assert.deepEqual(nr.body, { ready: false, reasons: ["store not open"] });
    } finally {
      api.isReady = true;
    }
  });

  test("every /v1 route answers 401 without or with a wrong token, and never echoes it", async () => {
    const routes: [string, string][] = [
      ["GET", "/v1/subjects"],
      ["GET", "/v1/subjects/alice"],
      ["POST", "/v1/evaluate/alice"],
      ["POST", "/v1/signals"],
      ["GET", "/v1/audit"],
      ["GET", "/v1/enforcement"],
      ["POST", "/v1/enforcement/resume"],
      ["GET", "/v1/enforcement/failed"],
      ["POST", "/v1/enforcement/failed/retry"],
      ["GET", "/v1/status"],
      ["GET", "/v1/no-such-route"],
    ];
    const wrong = "wrong-token-SECRETVALUE-42";
    const before = api.calls.length;
    for (const [method, path] of routes) {
      for (const token of [null, wrong, TOKEN + "x", ""]) {
        const body = method === "POST" ? JSON.stringify({ subject: "alice", check: "c", status: "pass" }) : undefined;
        const res = await call(method, path, { token, ...(body !== undefined ? { body } : {}) });
        assert.equal(res.status, 401, `${method} ${path} token=${token}`);
        assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="vigil"');
        assert.equal(res.body.error.code, "VIGIL_ERR_UNAUTHORIZED");
        assert.equal(typeof res.body.error.message, "string");
        assert.ok(!res.text.includes(wrong));
      }
    }
    // Other schemes are refused too.
    const basic = await call("GET", "/v1/subjects", { token: null, headers: { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` } });
    assert.equal(basic.status, 401);
    assert.equal(api.calls.length, before, "the agent was never called");
    assert.ok(!logLines.some((l) => l.includes(wrong) || l.includes(TOKEN)), "no token in the logs");
  });

  test("GET /v1/subjects passes validated filters", async () => {
    const res = await call("GET", "/v1/subjects?policy=p1&access=deny&kind=workload&limit=10&offset=5");
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 2);
    assert.equal(res.body.subjects.length, 2);
    assert.deepEqual(api.last("listSubjects"), [{ policy: "p1", access: "deny", kind: "workload", limit: 10, offset: 5 }]);
    await call("GET", "/v1/subjects");
    assert.deepEqual(api.last("listSubjects"), [{ limit: 100, offset: 0 }]);
    for (const [q, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=abc", "limit"],
      ["offset=-1", "offset"],
      ["access=root", "access"],
      ["kind=cat", "kind"],
      ["limit=1&limit=2", "limit"],
      ["polcy=p1", "polcy"],
    ] as const) {
      const bad = await call("GET", `/v1/subjects?${q}`);
      assert.equal(bad.status, 400, q);
      assert.equal(bad.body.error.code, "VIGIL_ERR_BAD_REQUEST");
      assert.match(bad.body.error.message, new RegExp(`^${field}: `), q);
    }
  });

  test("GET /v1/subjects/{id} returns the detail or 404", async () => {
    const ok = await call("GET", "/v1/subjects/alice");
    assert.equal(ok.status, 200);
    assert.equal(ok.body.subject.id, "alice");
    assert.equal(ok.body.decisions[0].policy, "p1");
    const missing = await call("GET", "/v1/subjects/bob");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, "VIGIL_ERR_UNKNOWN_SUBJECT");
    const malformed = await call("GET", "/v1/subjects/%E0%A4%A");
    assert.equal(malformed.status, 400);
  });

  test("SPIFFE ids with encoded slashes round-trip", async () => {
    const encoded = await call("GET", `/v1/subjects/${encodeURIComponent(SPIFFE)}`);
    assert.equal(encoded.status, 200);
    assert.equal(encoded.body.subject.id, SPIFFE);
    assert.deepEqual(api.last("getSubject"), [SPIFFE]);
    const ev = await call("POST", `/v1/evaluate/${encodeURIComponent(SPIFFE)}`);
    assert.equal(ev.status, 200);
    assert.deepEqual(api.last("evaluate"), [SPIFFE]);
    // Unencoded slashes are the rest of the path and match too.
    const plain = await call("GET", "/v1/subjects/spiffe:%2F%2Fexample.org/ns/prod/sa/api:v1");
    assert.equal(plain.status, 200);
    assert.deepEqual(api.last("getSubject"), [SPIFFE]);
  });

  test("POST /v1/evaluate/{id} returns decisions or 404", async () => {
    const ok = await call("POST", "/v1/evaluate/alice");
    assert.equal(ok.status, 200);
    // The model's epoch-ms decided_at goes out as ISO 8601 UTC.
    assert.deepEqual(ok.body, { decisions: [{ ...decision("alice"), decided_at: "1970-01-01T00:00:00.001Z" }] });
    const missing = await call("POST", "/v1/evaluate/bob");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, "VIGIL_ERR_UNKNOWN_SUBJECT");
  });

  test("POST /v1/signals accepts a signal and hands the agent a normalized one", async () => {
    metrics.length = 0;
    const res = await post("/v1/signals", { subject: "alice", check: "edr", status: "fail", risk: "high", ttl: "1h", reason: "malware found" });
    assert.equal(res.status, 202);
    assert.equal(res.body.accepted, true);
    assert.equal(typeof res.body.id, "string");
    assert.deepEqual(res.body.policies, ["p1"]);
    assert.deepEqual(api.last("acceptSignal"), [{ subject: "alice", check: "edr", status: "fail", risk: "high", ttl_ms: 3_600_000, reason: "malware found", source: "api" }]);
    const minimal = await post("/v1/signals", { subject: "alice", check: "edr", status: "pass" });
    assert.equal(minimal.status, 202);
    assert.deepEqual(api.last("acceptSignal"), [{ subject: "alice", check: "edr", status: "pass", source: "api" }]);
    const charset = await call("POST", "/v1/signals", { body: JSON.stringify({ subject: "alice", check: "edr", status: "warn" }), headers: { "content-type": "application/json; charset=utf-8" } });
    assert.equal(charset.status, 202);
    assert.deepEqual(metrics, [
      ["edr", "accepted"],
      ["edr", "accepted"],
      ["edr", "accepted"],
    ]);
  });

  test("POST /v1/signals accepts a batch in order and answers with a list", async () => {
    const before = api.calls.length;
    const res = await post("/v1/signals", [
      { subject: "alice", check: "a", status: "pass" },
      { subject: "ghost", check: "b", status: "fail" },
      { subject: SPIFFE, check: "c", status: "warn", ttl: "30d" },
    ]);
    assert.equal(res.status, 202);
    assert.equal(res.body.length, 3);
    assert.equal(res.body[0].accepted, true);
    assert.deepEqual(res.body[1], { accepted: false, error: { code: "VIGIL_ERR_UNKNOWN_SUBJECT", message: "unknown subject: ghost" } });
    assert.equal(res.body[2].accepted, true);
    const sent = api.calls.slice(before).map((c) => (c.args[0] as SignalInput).check);
    assert.deepEqual(sent, ["a", "b", "c"]);
    const tooMany = await post("/v1/signals", Array.from({ length: 101 }, () => ({ subject: "alice", check: "a", status: "pass" })));
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.body.error.message, /at most 100/);
    const empty = await post("/v1/signals", []);
    assert.equal(empty.status, 400);
    const badItem = await post("/v1/signals", [{ subject: "alice", check: "a", status: "pass" }, { subject: "alice", check: "a", status: "meh" }]);
    assert.equal(badItem.status, 400);
    assert.match(badItem.body.error.message, /^\[1\]\.status: expected one of pass\|warn\|fail\|unknown$/);
    assert.equal(api.calls.length, before + 3, "a batch with an invalid item is rejected whole");
  });

  test("invalid signal bodies are 400 with a message naming each field", async () => {
    const before = api.calls.length;
    metrics.length = 0;
    const cases: [unknown, RegExp][] = [
      ['{"subject": "alice", ', /^body is not valid JSON: /],
      ["", /JSON body is required/],
      [{ subject: 1, check: "c", status: "pass" }, /^subject: expected a string$/],
      [{ check: "c", status: "pass" }, /^subject: required$/],
      [{ subject: "alice", check: "c", status: "pass", extra: 1 }, /^extra: unknown key$/],
      ['{"subject":"alice","check":"c","status":"pass","__proto__":{"x":1}}', /^__proto__: unknown key$/],
      [{ subject: "alice", check: "c", status: "bad" }, /^status: expected one of pass\|warn\|fail\|unknown$/],
      [{ subject: "alice", check: "c", status: "pass", risk: "huge" }, /^risk: expected one of low\|medium\|high$/],
      [{ subject: "alice", check: "c", status: "pass", ttl: "soon" }, /^ttl: expected a duration/],
      [{ subject: "alice", check: "c", status: "pass", ttl: "0s" }, /^ttl: must be greater than 0$/],
      [{ subject: "alice", check: "c", status: "pass", ttl: "31d" }, /^ttl: must be at most 30d$/],
      [{ subject: "alice", check: "c", status: "pass", ttl: "1h1h" }, /^ttl: expected a duration/],
      [{ subject: "alice", check: "c", status: "pass", ttl: "30m1h" }, /^ttl: expected a duration/],
      [{ subject: "alice", check: "c", status: "pass", ttl: 3600 }, /^ttl: expected a duration/],
      [{ subject: "alice", check: "c", status: "pass", reason: "x".repeat(1025) }, /^reason: must be at most 1024 characters$/],
      [{ subject: "", check: "c", status: "pass" }, /^subject: must not be empty$/],
      ["[1]", /^\[0\]: expected an object$/],
      ['"text"', /^\(root\): expected an object$/],
      ["null", /^\(root\): expected an object$/],
      [{ subject: 1, check: 2, status: "x", foo: 1 }, /subject: .*; check: .*; status: .*; foo: unknown key/],
    ];
    for (const [body, message] of cases) {
      const text = typeof body === "string" ? body : JSON.stringify(body);
      const res = await call("POST", "/v1/signals", { body: text });
      assert.equal(res.status, 400, text);
      assert.equal(res.body.error.code, "VIGIL_ERR_BAD_REQUEST", text);
      assert.match(res.body.error.message, message, text);
    }
    assert.equal(api.calls.length, before, "the agent never saw an invalid signal");
    assert.deepEqual(metrics[0], ["unknown", "rejected"], "malformed JSON counts as an unknown check");
    assert.deepEqual(metrics[2], ["unknown", "rejected"], "a rejected signal never puts its (unvetted) check name in a label");
    assert.ok(metrics.every(([, o]) => o === "rejected"));
  });

  test("agent errors map to 404, 400 and a detail-free 500", async () => {
    const unknown = await post("/v1/signals", { subject: "ghost", check: "c", status: "pass" });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, "VIGIL_ERR_UNKNOWN_SUBJECT");
    const badCheck = await post("/v1/signals", { subject: "alice", check: "nope", status: "pass" });
    assert.equal(badCheck.status, 400);
    assert.deepEqual(badCheck.body, { error: { code: "VIGIL_ERR_BAD_REQUEST", message: "unknown check: nope" } });
    api.failNextSignal = new Error("sqlite: disk I/O error at /var/lib/vigil/state.db");
    const internal = await post("/v1/signals", { subject: "alice", check: "c", status: "pass" });
    assert.equal(internal.status, 500);
    assert.equal(internal.body.error.code, "VIGIL_ERR_INTERNAL");
    assert.ok(!internal.text.includes("sqlite") && !internal.text.includes("/var/lib"));
    assert.ok(logLines.some((l) => l.includes('"status":500') && l.includes("disk I/O error") && l.includes('"level":"error"')), "the cause is logged");
  });

  test("413 for oversized bodies, by Content-Length and by streamed bytes", async () => {
    const big = JSON.stringify({ subject: "alice", check: "c", status: "pass", reason: "x".repeat(9000) });
    const declared = await call("POST", "/v1/signals", { body: big });
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error.code, "VIGIL_ERR_PAYLOAD_TOO_LARGE");
    // Chunked with no length: the server stops reading once the cap is passed, long before the upload ends.
    const chunk = Buffer.alloc(1024, 0x20);
    const chunked = await raw("/v1/signals", { "content-type": "application/json", "transfer-encoding": "chunked" }, Array.from({ length: 2000 }, () => chunk), 1);
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.error.code, "VIGIL_ERR_PAYLOAD_TOO_LARGE");
    // A small chunked body is fine.
    const small = await raw("/v1/signals", { "content-type": "application/json", "transfer-encoding": "chunked" }, [Buffer.from('{"subject":"alice",'), Buffer.from('"check":"c","status":"pass"}')]);
    assert.equal(small.status, 202);
  });

  test("415 for a body that is not JSON", async () => {
    const body = JSON.stringify({ subject: "alice", check: "c", status: "pass" });
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"]) {
      const res = await call("POST", "/v1/signals", { body, headers: { "content-type": type } });
      assert.equal(res.status, 415, type);
      assert.equal(res.body.error.code, "VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE");
    }
  });

  test("GET /v1/audit passes its query", async () => {
    const res = await call("GET", "/v1/audit?after=7&subject=alice&type=signal&limit=50");
    assert.equal(res.status, 200);
    assert.equal(res.body.entries.length, 1);
    assert.deepEqual(api.last("readAudit"), [{ after: 7, subject: "alice", type: "signal", limit: 50 }]);
    const bad = await call("GET", "/v1/audit?limit=5000");
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^limit: /);
    const badAfter = await call("GET", "/v1/audit?after=x");
    assert.equal(badAfter.status, 400);
  });

  test("enforcement status and resume", async () => {
    const status = await call("GET", "/v1/enforcement");
    assert.equal(status.status, 200);
    assert.equal(status.body.policies[0].policy, "p1");
    assert.equal(status.body.policies[0].paused, true);
    const all = await call("POST", "/v1/enforcement/resume");
    assert.equal(all.status, 200);
    assert.deepEqual(all.body, { resumed: ["p1"] });
    assert.deepEqual(api.last("resumeEnforcement"), [undefined]);
    const one = await post("/v1/enforcement/resume", { policy: "p1" });
    assert.equal(one.status, 200);
    assert.deepEqual(api.last("resumeEnforcement"), ["p1"]);
    const unknown = await post("/v1/enforcement/resume", { policy: "p9" });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body, { error: { code: "VIGIL_ERR_BAD_REQUEST", message: "unknown policy: p9" } });
    const extra = await post("/v1/enforcement/resume", { policy: "p1", force: true });
    assert.equal(extra.status, 400);
    assert.match(extra.body.error.message, /^force: unknown key$/);
  });

  test("failed enforcement: listed with paging and a policy filter, retried by ids or all, malformed bodies refused", async () => {
    const list = await call("GET", "/v1/enforcement/failed?policy=p1&limit=10&offset=0");
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { items: [api.failedItem], total: 1 });
    assert.deepEqual(api.last("failedEnforcement"), [{ policy: "p1", limit: 10, offset: 0 }]);
    await call("GET", "/v1/enforcement/failed");
    assert.deepEqual(api.last("failedEnforcement"), [{ limit: 100, offset: 0 }]);
    assert.equal((await call("GET", "/v1/enforcement/failed?limit=0")).status, 400);
    assert.match((await call("GET", "/v1/enforcement/failed?state=x")).body.error.message, /^state: unknown query parameter$/);

    const byId = await post("/v1/enforcement/failed/retry", { ids: [api.failedItem.id, "nope"] });
    assert.equal(byId.status, 200);
    assert.deepEqual(byId.body, { retried: [api.failedItem.id], in_progress: [], not_failed: ["nope"] });
    assert.deepEqual(api.last("retryEnforcement"), [{ ids: [api.failedItem.id, "nope"] }]);
    assert.equal((await post("/v1/enforcement/failed/retry", { all: true })).status, 200);
    assert.deepEqual(api.last("retryEnforcement"), [{ all: true }]);
    assert.equal((await post("/v1/enforcement/failed/retry", { all: true, policy: "p1" })).status, 200);
    assert.deepEqual(api.last("retryEnforcement"), [{ all: true, policy: "p1" }]);
    const unknown = await post("/v1/enforcement/failed/retry", { all: true, policy: "p9" });
    assert.deepEqual([unknown.status, unknown.body.error.code], [400, "VIGIL_ERR_BAD_REQUEST"]);

    const calls = api.calls.length;
    for (const [body, message] of [
      [{}, /name the items to retry with "ids", or retry every one with "all": true/],
      [{ ids: ["a"], all: true }, /name the items to retry/],
      [{ ids: [] }, /^ids: expected at least 1 id$/],
      [{ ids: [""] }, /^ids\[0\]: must not be empty$/],
      [{ all: false }, /^all: expected true$/],
      [{ ids: ["a"], policy: "p1" }, /^policy: "policy" narrows "all": true/],
      [{ all: true, force: 1 }, /force: unknown key/],
      [[], /expected an object/],
    ] as const) {
      const res = await post("/v1/enforcement/failed/retry", body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error.message, message, JSON.stringify(body));
    }
    const empty = await call("POST", "/v1/enforcement/failed/retry");
    assert.equal(empty.status, 400);
    assert.equal(api.calls.length, calls, "refused bodies never reach the agent");
    assert.equal((await call("GET", "/v1/enforcement/failed/retry")).status, 405);
  });

  test("GET /v1/status answers the agent's status; 503 while the agent is not running", async () => {
    const res = await call("GET", "/v1/status");
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { ...STATUS_EXTRA, ready: true, version: "1.2.3", mode: "embedded", queue: { waiting: 1, delayed: 2, active: 0, failed: 3 }, idle: false });
    const extra = await call("GET", "/v1/status?verbose=1");
    assert.equal(extra.status, 400);
    assert.match(extra.body.error.message, /^verbose: unknown query parameter$/);
    assert.equal((await call("POST", "/v1/status")).status, 405);
    api.notRunning = true;
    try {
      const down = await call("GET", "/v1/status");
      assert.equal(down.status, 503);
    } finally {
      api.notRunning = false;
    }
  });

  test("404 for unknown routes and 405 with Allow for wrong methods", async () => {
    const nf = await call("GET", "/nope", { token: null });
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, "VIGIL_ERR_NOT_FOUND");
    const nfV1 = await call("GET", "/v1/nope");
    assert.equal(nfV1.status, 404);
    assert.equal((await call("GET", "/v1/subjects/")).status, 404);
    const m1 = await call("POST", "/v1/subjects", { body: "{}" });
    assert.equal(m1.status, 405);
    assert.equal(m1.body.error.code, "VIGIL_ERR_METHOD_NOT_ALLOWED");
    assert.equal(m1.headers.get("allow"), "GET, HEAD");
    const m2 = await call("GET", "/v1/signals");
    assert.equal(m2.status, 405);
    assert.equal(m2.headers.get("allow"), "POST");
    const m3 = await call("DELETE", "/healthz", { token: null });
    assert.equal(m3.status, 405);
  });

  test("one log line per request, with the route template and not the raw path", async () => {
    const start = logLines.length;
    await call("GET", `/v1/subjects/${encodeURIComponent(SPIFFE)}`);
    await call("GET", "/v1/subjects/bob");
    const lines = logLines.slice(start).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    assert.deepEqual(
      lines.map((l) => [l.level, l.method, l.route, l.status]),
      [
        ["debug", "GET", "/v1/subjects/{id}", 200],
        ["info", "GET", "/v1/subjects/{id}", 404],
      ],
    );
    assert.equal(typeof lines[0]!.ms, "number");
    assert.ok(!JSON.stringify(lines).includes("example.org"));
  });

  test("the server is still up after all the bad requests", async () => {
    const h = await call("GET", "/healthz", { token: null });
    assert.equal(h.status, 200);
    assert.deepEqual(h.body, { ok: true });
  });

  test("stop() is idempotent and closes the listener", async () => {
    const logger = createLogger({ level: "silent" });
    const s = new ApiServer({ listen: "127.0.0.1:0", token: TOKEN, maxBodyBytes: 1024, api, logger });
    await s.stop(); // before start: a no-op
    const s2 = new ApiServer({ listen: "127.0.0.1:0", token: TOKEN, maxBodyBytes: 1024, api, logger });
    await s2.start();
    const url = `http://127.0.0.1:${s2.address.port}/healthz`;
    assert.equal((await fetch(url)).status, 200); // leaves a keep-alive socket behind
    const started = Date.now();
    await Promise.all([s2.stop(), s2.stop()]);
    await s2.stop();
    assert.ok(Date.now() - started < 2_000, "idle keep-alive sockets do not hold stop() up");
    await assert.rejects(fetch(url));
  });

  test("binds IPv6 loopback given as [::1]:port", async (t) => {
    const s = new ApiServer({ listen: "[::1]:0", token: TOKEN, maxBodyBytes: 1024, api, logger: createLogger({ level: "silent" }) });
    try {
      await s.start();
    } catch (err) {
      t.skip(`no IPv6 loopback here: ${(err as Error).message}`);
      return;
    }
    try {
      assert.equal(s.address.host, "::1");
      const res = await fetch(`http://[::1]:${s.address.port}/healthz`);
      assert.equal(res.status, 200);
    } finally {
      await s.stop();
    }
  });

  test("rejects a listen address without a host, and an empty token", () => {
    const opts = { token: TOKEN, maxBodyBytes: 1024, api, logger: createLogger({ level: "silent" }) };
    assert.throws(() => new ApiServer({ ...opts, listen: ":7070" }), (err: unknown) => err instanceof VigilError);
    assert.throws(() => new ApiServer({ ...opts, listen: "127.0.0.1" }), (err: unknown) => err instanceof VigilError);
    assert.throws(() => new ApiServer({ ...opts, listen: "127.0.0.1:70000" }), (err: unknown) => err instanceof VigilError);
    assert.throws(() => new ApiServer({ ...opts, listen: "127.0.0.1:0", token: "" }), (err: unknown) => err instanceof VigilError);
  });
});
