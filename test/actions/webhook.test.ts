import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { metrics, trace } from "@opentelemetry/api";
import { signBody, verifySignature, webhookAction, webhookBody, type WebhookConfig } from "../../src/actions/webhook/index.ts";
import type { ActionRequest } from "../../src/plugin/action.ts";
import type { PluginContext } from "../../src/plugin/context.ts";
import { createHttpClient } from "../../src/net/http.ts";
import { VIGIL_VERSION } from "../../src/util/version.ts";
import { UpstreamError } from "../../src/errors.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { systemClock } from "../../src/util/clock.ts";

const SECRET = "wh-secret-0123456789abcdef";
const AUTH = "Bearer auth-header-value-42";

function context(): PluginContext {
  return {
    clock: systemClock,
    logger: silentLogger(),
    meter: metrics.getMeter("test"),
    tracer: trace.getTracer("test"),
    http: createHttpClient(),
    dataDir: tmpdir(),
    configDir: tmpdir(),
  };
}

function request(overrides: Partial<ActionRequest> = {}): ActionRequest {
  return {
    decision: {
      policy: "frontend-to-api",
      subject: "frontend",
      access: "deny",
      risk: "high",
      reasons: [{ code: "CERT_EXPIRED", message: "certificate expired 2026-01-01" }],
      generation: 3,
      decided_at: Date.parse("2026-02-03T04:05:06.789Z"),
      evidence: { certificate_validity: { status: "fail" } },
      exempt: false,
    },
    subject: { id: "frontend", kind: "workload", identity: "spiffe://example.org/ns/web/sa/frontend", attributes: {}, labels: {} },
    previous_access: "full_access",
    operation: "apply",
    idempotency_key: "idem-7f3a",
    ...overrides,
  };
}

interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  raw: Buffer;
}

describe("webhook action against a real receiver", () => {
  let server: Server;
  let base = "";
  let received: Received[] = [];
  let nextStatus = 200;
  let ctx: PluginContext;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, raw: Buffer.concat(chunks) });
        res.statusCode = nextStatus;
        res.end(nextStatus === 200 ? "{}" : "receiver says no");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    ctx = context();
  });

  beforeEach(() => {
    received = [];
    nextStatus = 200;
  });

  after(async () => {
    await ctx.http.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function config(extra: Record<string, unknown> = {}): WebhookConfig {
    return webhookAction.configSchema.parse({ url: `${base}/hook`, secret: SECRET, headers: { Authorization: AUTH, "X-Team": "secops" }, timeout: "5s", ...extra });
  }

  test("apply POSTs the exact body, signed, with the idempotency key", async () => {
    const action = webhookAction.create(config(), ctx);
    const outcome = await action.apply(request());
    assert.deepEqual(outcome.detail, { status: 200 });
    assert.equal(received.length, 1);
    const got = received[0]!;
    assert.equal(got.method, "POST");
    assert.equal(got.url, "/hook");
    // Independent HMAC over the raw bytes received.
    const expected = "sha256=" + createHmac("sha256", SECRET).update(got.raw).digest("hex");
    assert.equal(got.headers["x-vigil-signature"], expected);
    assert.equal(got.headers["x-vigil-idempotency-key"], "idem-7f3a");
    assert.equal(got.headers["content-type"], "application/json");
    assert.equal(got.headers["user-agent"], `vigil/${VIGIL_VERSION}`);
    assert.equal(got.headers["authorization"], AUTH);
    assert.equal(got.headers["x-team"], "secops");
    assert.deepEqual(JSON.parse(got.raw.toString("utf8")), {
      subject: "frontend",
      policy: "frontend-to-api",
      access: "deny",
      previous_access: "full_access",
      generation: 3,
      risk: "high",
      reasons: [{ code: "CERT_EXPIRED", message: "certificate expired 2026-01-01" }],
      decided_at: "2026-02-03T04:05:06.789Z",
      idempotency_key: "idem-7f3a",
      operation: "apply",
    });
  });

  test("revert sends operation revert", async () => {
    const action = webhookAction.create(config(), ctx);
    assert.ok(action.revert);
    await action.revert(request({ operation: "revert", idempotency_key: "idem-revert" }));
    const got = received[0]!;
    assert.equal(JSON.parse(got.raw.toString("utf8")).operation, "revert");
    assert.equal(got.headers["x-vigil-idempotency-key"], "idem-revert");
    assert.ok(verifySignature(got.raw, got.headers["x-vigil-signature"] as string, SECRET));
  });

  test("the body names the action, so two reverts of one decision are told apart; the signature covers it", async () => {
    const action = webhookAction.create(config(), ctx);
    const restore = { operation: "revert" as const, previous_access: "deny" as const };
    await action.revert!(request({ ...restore, idempotency_key: "k-ro", action: { name: "read_only[0]:webhook", type: "webhook" } }));
    await action.revert!(request({ ...restore, idempotency_key: "k-dn", action: { name: "deny[0]:webhook", type: "webhook" } }));
    const bodies = received.map((r) => JSON.parse(r.raw.toString("utf8")) as Record<string, unknown>);
    assert.deepEqual(bodies.map((b) => b.action), [
      { name: "read_only[0]:webhook", type: "webhook" },
      { name: "deny[0]:webhook", type: "webhook" },
    ]);
    for (const r of received) assert.ok(verifySignature(r.raw, r.headers["x-vigil-signature"] as string, SECRET));
  });

  test("the plan's body equals what the receiver got, and masks the signature and secret-named headers", async () => {
    const action = webhookAction.create(config(), ctx);
    const req = request();
    const [call, ...rest] = action.plan(req);
    assert.equal(rest.length, 0);
    assert.ok(call);
    await action.apply(req);
    const got = received[0]!;
    assert.equal(call.method, "POST");
    assert.equal(call.url, `${base}/hook`);
    assert.deepEqual(call.body, JSON.parse(got.raw.toString("utf8")));
    assert.equal(JSON.stringify(call.body), got.raw.toString("utf8"));
    assert.equal(call.headers["X-Vigil-Signature"], "[REDACTED]");
    assert.equal(call.headers["Authorization"], "[REDACTED]");
    assert.equal(call.headers["X-Team"], "secops");
    assert.equal(call.headers["X-Vigil-Idempotency-Key"], "idem-7f3a");
    assert.equal(call.headers["Content-Type"], "application/json");
    const planJson = JSON.stringify(call);
    assert.ok(!planJson.includes(SECRET), "the secret appears in the plan");
    assert.ok(!planJson.includes("auth-header-value-42"), "the Authorization value appears in the plan");
    assert.ok(!planJson.includes(got.headers["x-vigil-signature"] as string), "the signature appears in the plan");
  });

  test("the same request applied twice sends the same idempotency key and body", async () => {
    const action = webhookAction.create(config(), ctx);
    const req = request();
    await action.apply(req);
    await action.apply(req);
    assert.equal(received.length, 2);
    assert.deepEqual(received[0]!.raw, received[1]!.raw);
    assert.equal(received[0]!.headers["x-vigil-idempotency-key"], received[1]!.headers["x-vigil-idempotency-key"]);
    assert.equal(received[0]!.headers["x-vigil-signature"], received[1]!.headers["x-vigil-signature"]);
  });

  test("a 500 from the receiver is a transient UpstreamError", async () => {
    nextStatus = 500;
    const action = webhookAction.create(config(), ctx);
    await assert.rejects(action.apply(request()), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
      assert.equal(err.status, 500);
      assert.ok(!err.message.includes(SECRET) && !err.message.includes("auth-header-value-42"));
      return true;
    });
  });

  for (const status of [404, 410]) {
    test(`a ${status} from the receiver is a permanent UpstreamError`, async () => {
      nextStatus = status;
      const action = webhookAction.create(config(), ctx);
      await assert.rejects(action.apply(request()), (err: unknown) => {
        assert.ok(err instanceof UpstreamError);
        assert.equal(err.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
        assert.equal(err.status, status);
        return true;
      });
    });
  }
});

describe("webhook config", () => {
  const valid = { url: "https://hooks.example.com/vigil", secret: SECRET };

  test("defaults the timeout to 10s and parses durations to ms", () => {
    assert.equal(webhookAction.configSchema.parse(valid).timeout, 10_000);
    assert.equal(webhookAction.configSchema.parse({ ...valid, timeout: "250ms" }).timeout, 250);
  });

  test("the example validates once its secret is filled in", () => {
    const { type: _type, ...example } = webhookAction.example;
    assert.equal(webhookAction.configSchema.safeParse({ ...example, secret: SECRET }).success, true);
    assert.equal(webhookAction.type, "webhook");
    assert.equal(webhookAction.revertible, true);
    assert.deepEqual(webhookAction.requiredPermissions, ["network egress to the webhook URL"]);
  });

  const bad: [string, Record<string, unknown>][] = [
    ["a missing url", { secret: SECRET }],
    ["a url that is not one", { ...valid, url: "not a url" }],
    ["a non-http url", { ...valid, url: "ftp://hooks.example.com/x" }],
    ["a missing secret", { url: valid.url }],
    ["a short secret", { ...valid, secret: "short-secret" }],
    ["an unknown key", { ...valid, retries: 3 }],
    ["a bad timeout", { ...valid, timeout: "10 seconds" }],
    ["a zero timeout", { ...valid, timeout: "0s" }],
    ["a reserved header", { ...valid, headers: { "X-Vigil-Signature": "forged" } }],
    ["a reserved header in another case", { ...valid, headers: { "content-TYPE": "text/plain" } }],
    ["a header value with a newline", { ...valid, headers: { "X-A": "a\r\nX-B: b" } }],
    ["an invalid header name", { ...valid, headers: { "Bad Header": "x" } }],
  ];
  for (const [what, input] of bad) {
    test(`rejects ${what}`, () => {
      assert.equal(webhookAction.configSchema.safeParse(input).success, false);
    });
  }
});

describe("webhook body and signature helpers", () => {
  test("webhookBody is deterministic and has exactly the documented keys in order", () => {
    const body = webhookBody(request());
    assert.equal(body, webhookBody(request()));
    assert.deepEqual(Object.keys(JSON.parse(body)), ["subject", "policy", "access", "previous_access", "generation", "risk", "reasons", "decided_at", "idempotency_key", "operation"]);
  });

  test("signBody and verifySignature agree, and verifySignature rejects tampering", () => {
    const body = webhookBody(request());
    const sig = signBody(body, SECRET);
    assert.match(sig, /^sha256=[0-9a-f]{64}$/);
    assert.equal(sig, "sha256=" + createHmac("sha256", SECRET).update(body).digest("hex"));
    assert.equal(verifySignature(body, sig, SECRET), true);
    assert.equal(verifySignature(Buffer.from(body), sig, SECRET), true);
    assert.equal(verifySignature(body + " ", sig, SECRET), false);
    assert.equal(verifySignature(body, sig, SECRET + "x"), false);
    assert.equal(verifySignature(body, sig.slice(0, -2), SECRET), false);
    assert.equal(verifySignature(body, sig.replace("sha256=", "sha1="), SECRET), false);
    assert.equal(verifySignature(body, undefined, SECRET), false);
  });
});
