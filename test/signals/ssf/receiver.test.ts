/**
 * The receiver against a local SSF transmitter, shaped like the OpenID conformance suite's SSF
 * receiver plan (OIDSSFReceiverTestPlan: HappyPath, StreamCreateDelete, StreamStatusUpdate,
 * StreamVerification, UnsolicitedStreamVerification, VerificationWrongState, VerificationWrongSubject,
 * StreamIssuerMismatch, TransmitterInitiatedStatusChange, InvalidSetRejection, RedeliveredSet,
 * RemovedSubjectEvent, AccessTokenExpiry), each through push (RFC 8935) and poll (RFC 8936).
 * The transmitter records every breach of the spec by the receiver; each test expects none.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { until } from "../../helpers/wait.ts";
import { createLogger } from "../../../src/telemetry/log.ts";
import { uriOf, type Delivery } from "../../helpers/fakes/ssf-transmitter.ts";
import { CLIENT_SECRET, results, startWorld, transmitterEntry, verified, type World } from "./world.ts";

const ALICE = { format: "email", email: "alice@example.org" };

/** Was the SET taken: 202 on push, ack on poll. */
function accepted(d: Delivery): boolean {
  return (d.kind === "push" && d.status === 202) || d.kind === "ack";
}

/** The RFC 8935 code it was refused with: the 400 body's err on push, setErrs on poll. */
function refusal(d: Delivery): string | undefined {
  if (d.kind === "push") return d.status === 400 ? (JSON.parse(d.body) as { err: string }).err : undefined;
  return d.kind === "setErr" ? d.err : undefined;
}

async function within(w: World, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    assert.deepEqual(w.tx.violations, [], "the receiver kept to the spec");
  } finally {
    await w.stop();
  }
}

for (const delivery of ["push", "poll"] as const) {
  describe(`SSF receiver, ${delivery} delivery`, () => {
    it("happy path: the stream is created with vigil's delivery, verified, and every event type becomes its result", () =>
      startWorld({ delivery }).then((w) =>
        within(w, async () => {
          await verified(w);
          const created = w.tx.requests.filter((r) => r.method === "POST" && r.path === "/streams");
          assert.equal(created.length, 1);
          const body = JSON.parse(created[0]!.body) as { delivery: Record<string, string>; events_requested: string[] };
          if (delivery === "push") {
            assert.equal(body.delivery.method, "urn:ietf:rfc:8935");
            assert.equal(body.delivery.endpoint_url, `http://127.0.0.1:${w.port}/v1/signals/ssf/idp`);
            assert.match(body.delivery.authorization_header!, /^Bearer [A-Za-z0-9_-]{43}$/);
          } else assert.deepEqual(body.delivery, { method: "urn:ietf:rfc:8936" });
          assert.ok(body.events_requested.includes(uriOf("session-revoked")) && body.events_requested.includes(uriOf("account-disabled")));
          assert.equal(w.tx.verificationRequests.length, 1);
          assert.ok(w.tx.verificationRequests[0]!.state && w.tx.verificationRequests[0]!.state.length >= 20, "a state that cannot be guessed");

          // Every event type of the table, each to the check and status docs/signals.md gives it.
          const cases: [string, Record<string, unknown>, string, string][] = [
            ["session-revoked", { initiating_entity: "policy", reason_admin: { en: "Landspeed Policy Violation: C076E82F" }, event_timestamp: 1615304991 }, "session_state", "fail"],
            ["session-established", { acr: "AAL2", amr: ["otp"] }, "session_state", "pass"],
            ["session-presented", { ext_id: "12345" }, "session_state", "pass"],
            ["credential-change", { credential_type: "x509", change_type: "revoke", reason_admin: { en: "key compromise" } }, "credential_state", "fail"],
            ["credential-change", { credential_type: "fido2-roaming", change_type: "create", initiating_entity: "user" }, "credential_state", "pass"],
            ["credential-change", { credential_type: "password", change_type: "delete", initiating_entity: "admin" }, "credential_state", "warn"],
            ["token-claims-change", { claims: { role: "ro-admin" } }, "token_claims", "warn"],
            ["assurance-level-change", { namespace: "NIST-AAL", current_level: "nist-aal1", previous_level: "nist-aal2", change_direction: "decrease" }, "assurance_level", "warn"],
            ["device-compliance-change", { current_status: "not-compliant", previous_status: "compliant" }, "device_compliance", "fail"],
            ["risk-level-change", { current_level: "HIGH", principal: "USER", risk_reason: "PASSWORD_FOUND_IN_DATA_BREACH" }, "user_risk_score", "fail"],
            ["account-disabled", { reason: "hijacking" }, "account_state", "fail"],
            ["account-enabled", {}, "account_state", "pass"],
            ["account-purged", {}, "account_state", "fail"],
            ["credential-compromise", { credential_type: "password" }, "user_risk_score", "fail"],
            ["identifier-changed", { "new-value": "alice.new@example.org" }, "account_state", "warn"],
            ["sessions-revoked", {}, "session_state", "fail"],
          ];
          const jtis: string[] = [];
          for (const [event, payload] of cases) {
            const jti = `happy-${jtis.length}`;
            jtis.push(jti);
            const d = await w.tx.emit(event, ALICE, payload, { txn: "8675309", jti });
            assert.ok(accepted(d), `${event}: ${JSON.stringify(d)}`);
          }
          await w.agent.idle({ timeoutMs: 10_000 });
          const signals = await w.agent.service.readAudit({ type: "signal", subject: "alice", limit: 100 });
          assert.equal(signals.length, cases.length, "one signal per event, each in the audit log");
          cases.forEach(([event, , check, status], i) => {
            const line = signals.find((l) => (l.evidence as { jti?: string }).jti === jtis[i]);
            assert.deepEqual([line?.check, line?.status], [check, status], `${event} ${JSON.stringify(cases[i]![1])} → ${check} ${status}`);
            assert.equal((line!.evidence as Record<string, unknown>).txn, "8675309");
            assert.equal((line!.evidence as Record<string, unknown>).transmitter, "idp");
          });
          const revoked = signals.find((l) => (l.evidence as { jti?: string }).jti === jtis[0])!;
          const evidence = revoked.evidence as Record<string, unknown>;
          assert.equal(evidence.initiating_entity, "policy");
          assert.deepEqual(evidence.reason_admin, { en: "Landspeed Policy Violation: C076E82F" });
          assert.equal(evidence.event_timestamp, "2021-03-09T15:49:51.000Z");
          assert.equal(revoked.reason, "idp: session-revoked by policy: Landspeed Policy Violation: C076E82F");
          // What stands now: the last result of each stream.
          const r = await results(w, "alice");
          assert.equal(r.get("session_state")?.[0]?.status, "fail", "sessions-revoked came last in the session stream");
          assert.deepEqual(new Set(r.get("credential_state")?.map((x) => x.stream)), new Set(["ssf:idp:credential:x509", "ssf:idp:credential:fido2-roaming", "ssf:idp:credential:password"]));
          const alice = await w.agent.service.getSubject("alice");
          assert.equal(alice!.access, "deny", "the events drove the decision");
        }),
      ));

    it("stream create and delete: a transmitter taken out of the config has its stream deleted", () =>
      startWorld({ delivery }).then((w) =>
        within(w, async () => {
          await verified(w);
          const id = w.tx.stream!.config.stream_id;
          await w.reload("");
          assert.ok(w.tx.requests.some((r) => r.method === "DELETE" && r.path === "/streams" && r.query.get("stream_id") === id));
          assert.equal(w.tx.streams.size, 0);
          assert.deepEqual(w.agent.ssf!.health(), []);
          const lines = await w.agent.service.readAudit({ type: "ssf_stream" });
          assert.deepEqual(lines.map((l) => l.change), ["created", "status", "deleted"]);
        }),
      ));

    it("transmitter-initiated status change: paused and enabled are followed, the event held meanwhile arrives", () =>
      startWorld({ delivery }).then((w) =>
        within(w, async () => {
          await verified(w);
          assert.ok(accepted(await w.tx.changeStatus("paused", "Transmitter maintenance")));
          const h = w.agent.ssf!.transmitter("idp")!.health();
          assert.equal(h.status, "paused");
          assert.equal(h.degraded, true);
          assert.match(h.problems.join(), /stream paused: Transmitter maintenance/);
          const held = w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "signed out everywhere" });
          assert.ok(accepted(await w.tx.changeStatus("enabled", "maintenance over")));
          assert.ok(accepted(await held));
          assert.equal(w.agent.ssf!.transmitter("idp")!.health().degraded, false);
          const changes = (await w.agent.service.readAudit({ type: "ssf_stream" })).filter((l) => l.change === "status").map((l) => [l.status, l.by]);
          assert.deepEqual(changes, [["enabled", "read"], ["paused", "transmitter"], ["enabled", "transmitter"]]);
        }),
      ));

    it("stream verification: requested at start and answered; an unsolicited verification (no state) is accepted too", () =>
      startWorld({ delivery }).then((w) =>
        within(w, async () => {
          await verified(w);
          const first = w.agent.ssf!.transmitter("idp")!.health().verified_at!;
          await new Promise((r) => setTimeout(r, 5));
          assert.ok(accepted(await w.tx.verification(undefined)));
          assert.ok(w.agent.ssf!.transmitter("idp")!.health().verified_at! > first);
        }),
      ));

    it("verification with a state vigil never sent is refused invalid_state, then reported overdue until a good one arrives", () =>
      startWorld({ delivery, entry: "        verification: {interval: 1h, timeout: 1s}\n", beforeAgent: (tx) => void (tx.nextVerification = "wrong_state") }).then((w) =>
        within(w, async () => {
          await until(() => (delivery === "push" ? w.tx.pushes.length > 0 : w.tx.setErrs.length > 0), 10_000);
          if (delivery === "push") {
            assert.equal(w.tx.pushes[0]!.status, 400);
            assert.equal(JSON.parse(w.tx.pushes[0]!.body).err, "invalid_state");
          } else assert.equal(w.tx.setErrs[0]!.err, "invalid_state");
          await until(() => w.agent.ssf!.transmitter("idp")!.health().verification_overdue, 10_000);
          const h = w.agent.ssf!.transmitter("idp")!.health();
          assert.equal(h.verified_at, undefined);
          assert.match(h.problems.join(), /verification overdue/);
          assert.equal((await w.agent.service.readAudit({ type: "ssf_stream" })).filter((l) => l.change === "verification_overdue").length, 1);
          const ready = await fetch(`http://127.0.0.1:${w.port}/readyz`);
          assert.equal(ready.status, 200, "a degraded stream never makes the agent unready");
          assert.match(JSON.stringify(await ready.json()), /ssf idp: verification overdue/);
          assert.ok(accepted(await w.tx.verification(undefined)));
          assert.equal(w.agent.ssf!.transmitter("idp")!.health().verification_overdue, false);
          assert.equal((await w.agent.service.readAudit({ type: "ssf_stream" })).filter((l) => l.change === "verified_again").length, 1);
        }),
      ));

    it("a verification event naming another stream is refused", () =>
      startWorld({ delivery, beforeAgent: (tx) => void (tx.nextVerification = "wrong_subject") }).then((w) =>
        within(w, async () => {
          await until(() => (delivery === "push" ? w.tx.pushes.length > 0 : w.tx.setErrs.length > 0), 10_000);
          const code = delivery === "push" ? JSON.parse(w.tx.pushes[0]!.body).err : w.tx.setErrs[0]!.err;
          assert.equal(code, "invalid_request");
          assert.equal(w.agent.ssf!.transmitter("idp")!.health().verified_at, undefined);
        }),
      ));

    it("stream issuer mismatch: a stream whose iss is another issuer's is deleted and never used", () =>
      startWorld({ delivery, transmitter: { createIssuer: "https://not-this-transmitter.example/x" } }).then((w) =>
        within(w, async () => {
          await until(() => w.tx.requests.some((r) => r.method === "DELETE"), 10_000);
          assert.equal(w.tx.streams.size, 0);
          const h = w.agent.ssf!.transmitter("idp")!.health();
          assert.equal(h.degraded, true);
          assert.match(h.problems.join(), /stream refused: the stream's iss/);
          await new Promise((r) => setTimeout(r, 300));
          assert.equal(w.tx.requests.filter((r) => r.method === "POST" && r.path === "/streams").length, 1, "not created again until a reload");
          assert.equal(w.tx.verificationRequests.length, 0);
          assert.ok(!w.tx.requests.some((r) => r.path.startsWith("/poll") || r.path === "/status"));
          if (delivery === "push") {
            // The transmitter still holds the stream's credential: it is recognised, and refused.
            const created = JSON.parse(w.tx.requests.find((r) => r.method === "POST" && r.path === "/streams")!.body) as { delivery: { authorization_header: string } };
            const res = await fetch(`http://127.0.0.1:${w.port}/v1/signals/ssf/idp`, {
              method: "POST",
              headers: { authorization: created.delivery.authorization_header, "content-type": "application/secevent+jwt" },
              body: w.tx.set("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" }).jws,
            });
            assert.equal(res.status, 400);
            assert.equal(((await res.json()) as { err: string }).err, "access_denied");
          }
        }),
      ));

    it("invalid SETs are refused with the RFC 8935 code for their defect and counted by it", () =>
      startWorld({ delivery, metrics: true }).then((w) =>
        within(w, async () => {
          await verified(w);
          const payload = { initiating_entity: "policy", reason_admin: "x" };
          const tampered: [string, Promise<Delivery>][] = [
            ["invalid_key", w.tx.emit("session-revoked", ALICE, payload, { corruptSignature: true })],
            ["invalid_issuer", w.tx.emit("session-revoked", ALICE, payload, { claims: { iss: "https://elsewhere.example" } })],
            ["invalid_audience", w.tx.emit("session-revoked", ALICE, payload, { claims: { aud: "https://someone-else.example" } })],
            ["invalid_key", w.tx.emit("session-revoked", ALICE, payload, { rogueKey: true })],
          ];
          for (const [code, d] of tampered) assert.equal(refusal(await d), code);
          assert.equal(w.tx.acks.length, delivery === "poll" ? 1 : 0, "only the verification event was acknowledged");
          assert.equal((await w.agent.service.readAudit({ type: "signal" })).length, 0, "nothing reached the decision");
          const text = await (await fetch(`http://${w.agent.metricsAddress!.host}:${w.agent.metricsAddress!.port}/metrics`)).text();
          const count = (result: string) => Number(new RegExp(`vigil_ssf_sets_total\\{transmitter="idp",result="${result}"\\} (\\d+)`).exec(text)?.[1]);
          assert.equal(count("invalid_key"), 2);
          assert.equal(count("invalid_issuer"), 1);
          assert.equal(count("invalid_audience"), 1);
          assert.equal(count("verification"), 1);
          assert.equal(count("accepted"), 0);
          assert.match(text, /vigil_ssf_stream_degraded\{transmitter="idp"\} 0/);
          assert.match(text, /vigil_ssf_last_verified_timestamp_seconds\{transmitter="idp"\} [1-9]/);
        }),
      ));

    it("a re-delivered SET gets the same answer and is processed once", () =>
      startWorld({ delivery }).then((w) =>
        within(w, async () => {
          await verified(w);
          const { jti, jws } = w.tx.set("credential-change", ALICE, { credential_type: "password", change_type: "update", initiating_entity: "user" });
          assert.ok(accepted(await w.tx.deliver(jti, jws)));
          assert.ok(accepted(delivery === "push" ? await w.tx.deliver(jti, jws) : await w.tx.redeliver(jti)));
          await w.agent.idle({ timeoutMs: 10_000 });
          const lines = (await w.agent.service.readAudit({ type: "signal" })).filter((l) => (l.evidence as { jti?: string } | undefined)?.jti === jti);
          assert.equal(lines.length, 1);
        }),
      ));

    it("an event for a subject vigil does not know (or no longer has) is accepted, not reported as an error", () =>
      startWorld({ delivery }).then((w) =>
        within(w, async () => {
          await verified(w);
          assert.ok(accepted(await w.tx.emit("session-revoked", { format: "email", email: "nobody@example.org" }, { initiating_entity: "admin", reason_admin: "left" })));
          assert.ok(accepted(await w.tx.emit("account-purged", { format: "iss_sub", iss: "https://idp.example", sub: "gone" }, {})));
          assert.equal((await w.agent.service.readAudit({ type: "signal" })).length, 0);
        }),
      ));
  });
}

describe("SSF receiver, access tokens and streams that already exist", () => {
  it("an agent started without transmitters answers 404 on the push route, and starts receiving when a reload adds one", async () => {
    const w = await startWorld({ delivery: "push", ssf: () => "" });
    await within(w, async () => {
      assert.equal(w.agent.ssf, undefined, "no receiver without transmitters");
      const res = await fetch(`http://127.0.0.1:${w.port}/v1/signals/ssf/idp`, { method: "POST", headers: { "content-type": "application/secevent+jwt" }, body: "x.y.z" });
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "VIGIL_ERR_NOT_FOUND");
      await w.reload(`signals:\n  ssf:\n    public_url: http://127.0.0.1:${w.port}\n    transmitters:\n${transmitterEntry(w.tx, "push")}`);
      await verified(w);
      assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
    });
  });

  it("access token expiry: a 401 invalid_token makes vigil fetch a new token and repeat the call", () =>
    startWorld({ delivery: "poll" }).then((w) =>
      within(w, async () => {
        await verified(w);
        const before = w.tx.tokensIssued.length;
        w.tx.revokeTokens();
        assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
        assert.ok(w.tx.expiredRejections >= 1, "the old token was presented and refused");
        assert.ok(w.tx.tokensIssued.length > before, "and a new one fetched");
        assert.equal(w.agent.ssf!.transmitter("idp")!.health().degraded, false);
      }),
    ));

  it("short-lived tokens are refreshed before they expire", () =>
    startWorld({ delivery: "poll", transmitter: { tokenLifetimeS: 1, pollHoldMs: 300 } }).then((w) =>
      within(w, async () => {
        await verified(w);
        await until(() => w.tx.tokensIssued.length >= 3, 10_000);
        assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
      }),
    ));

  /** Creates a stream the way a previous receiver did, before vigil starts. */
  async function seedStream(tx: World["tx"], delivery: "push" | "poll", endpoint = "https://old-receiver.example/events"): Promise<string> {
    const token = await (await fetch(`${tx.base}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `grant_type=client_credentials&client_id=vigil&client_secret=${CLIENT_SECRET}&scope=ssf.manage` })).json();
    const res = await fetch(`${tx.base}/streams`, {
      method: "POST",
      headers: { authorization: `Bearer ${(token as { access_token: string }).access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ delivery: delivery === "push" ? { method: "urn:ietf:rfc:8935", endpoint_url: endpoint, authorization_header: "Bearer old-receiver-0123456789abcdef" } : { method: "urn:ietf:rfc:8936" }, events_requested: [uriOf("session-revoked")], description: "old" }),
    });
    return ((await res.json()) as { stream_id: string }).stream_id;
  }

  it("409: the receiver's existing stream is taken over (read, then updated with vigil's delivery)", async () => {
    let seeded = "";
    const w = await startWorld({ delivery: "push", beforeAgent: async (tx) => void (seeded = await seedStream(tx, "push")) });
    await within(w, async () => {
      await verified(w);
      assert.ok(w.tx.requests.some((r) => r.method === "POST" && r.path === "/streams" && r.headers.authorization !== undefined));
      assert.ok(w.tx.requests.some((r) => r.method === "PATCH"));
      assert.equal(w.tx.stream!.config.stream_id, seeded, "the same stream, adopted");
      assert.equal(w.tx.stream!.config.delivery.endpoint_url, `http://127.0.0.1:${w.port}/v1/signals/ssf/idp`);
      assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
    });
  });

  it("409 at a transmitter that takes neither PATCH nor PUT: the old stream is deleted and a new one created", async () => {
    let seeded = "";
    const w = await startWorld({ delivery: "push", transmitter: { patch: false, put: false }, beforeAgent: async (tx) => void (seeded = await seedStream(tx, "push")) });
    await within(w, async () => {
      await verified(w);
      assert.ok(w.tx.requests.some((r) => r.method === "DELETE" && r.query.get("stream_id") === seeded));
      assert.notEqual(w.tx.stream!.config.stream_id, seeded);
      assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
    });
  });

  it("a restart adopts the remembered stream, keeps its push authorization and creates nothing", async () => {
    const w = await startWorld({ delivery: "push" });
    try {
      await verified(w);
      const id = w.tx.stream!.config.stream_id;
      const auth = w.tx.stream!.authorization;
      await w.agent.stop();
      const { loadConfig } = await import("../../../src/config/load.ts");
      const { Agent } = await import("../../../src/engine/agent.ts");
      const { silentLogger } = await import("../../../src/telemetry/log.ts");
      const again = new Agent(await loadConfig(w.file), { logger: silentLogger() });
      await again.start();
      try {
        await until(() => again.ssf?.transmitter("idp")?.health().verified_at !== undefined, 10_000);
        assert.equal(w.tx.requests.filter((r) => r.method === "POST" && r.path === "/streams").length, 1);
        assert.equal(w.tx.stream!.config.stream_id, id);
        assert.equal(w.tx.stream!.authorization, auth);
        assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
      } finally {
        await again.stop();
      }
      assert.deepEqual(w.tx.violations, []);
    } finally {
      await w.tx.stop();
    }
  });

  it("keepalive: the stream's status is read well within its inactivity timeout", () =>
    startWorld({ delivery: "push", transmitter: { inactivityTimeout: 3 } }).then((w) =>
      within(w, async () => {
        await verified(w);
        const reads = () => w.tx.requests.filter((r) => r.method === "GET" && r.path === "/status").length;
        const start = reads();
        await until(() => reads() >= start + 2, 10_000);
      }),
    ));

  it("a 429 to a verification request (faster than min_verification_interval) is waited out, not counted as a failure", async () => {
    const w = await startWorld({ delivery: "push", transmitter: { minVerificationInterval: 3600 } });
    try {
      await verified(w);
      await w.agent.stop();
      const { loadConfig } = await import("../../../src/config/load.ts");
      const { Agent } = await import("../../../src/engine/agent.ts");
      const { silentLogger } = await import("../../../src/telemetry/log.ts");
      const again = new Agent(await loadConfig(w.file), { logger: silentLogger() });
      await again.start();
      try {
        const verifies = () => w.tx.requests.filter((r) => r.path === "/verify");
        await until(() => verifies().length === 2, 10_000);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(verifies().length, 2, "not asked again before the interval");
        assert.equal(w.tx.verificationRequests.length, 1, "the second request was answered 429");
        const h = again.ssf!.transmitter("idp")!.health();
        assert.equal(h.degraded, false, h.problems.join());
      } finally {
        await again.stop();
      }
      assert.deepEqual(w.tx.violations, []);
    } finally {
      await w.tx.stop();
    }
  });
});

describe("SSF receiver, transmitters that fail", () => {
  it("credentials never reach the log, whatever fails", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "trace", stream: { write: (line: string) => void lines.push(line) } });
    const w = await startWorld({ delivery: "poll", logger, transmitter: { tokenLifetimeS: 1, pollHoldMs: 200 } });
    await within(w, async () => {
      await verified(w);
      w.tx.revokeTokens();
      assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })));
      w.tx.fail({ path: /^\/poll/ }, { status: 500, body: { error: "boom" } }, { status: 401, headers: { "www-authenticate": 'Bearer error="invalid_token"' }, body: { error: "invalid_token" } });
      await until(() => lines.some((l) => /poll failed/.test(l)), 10_000);
      assert.ok(accepted(await w.tx.emit("account-disabled", ALICE, {})));
      assert.ok(w.tx.tokensIssued.length >= 2);
    });
    const text = lines.join("");
    assert.ok(text.length > 0);
    for (const { token } of w.tx.tokensIssued) assert.ok(!text.includes(token), "an access token was logged");
    assert.ok(!text.includes(CLIENT_SECRET), "the client secret was logged");
    assert.ok(!text.includes(Buffer.from(`vigil:${CLIENT_SECRET}`).toString("base64")), "the Basic credential was logged");
  });

  it("the push authorization vigil generated never reaches the log or an answer", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "trace", stream: { write: (line: string) => void lines.push(line) } });
    const w = await startWorld({ delivery: "push", logger });
    let auth = "";
    await within(w, async () => {
      await verified(w);
      auth = w.tx.stream!.authorization!;
      const res = await fetch(`http://127.0.0.1:${w.port}/v1/signals/ssf/idp`, { method: "POST", headers: { authorization: `${auth}x`, "content-type": "application/secevent+jwt" }, body: "x.y.z" });
      assert.equal(res.status, 400);
      assert.ok(!(await res.text()).includes(auth.slice(7)));
      const ready = await (await fetch(`http://127.0.0.1:${w.port}/readyz`)).text();
      assert.ok(!ready.includes(auth.slice(7)));
    });
    assert.ok(auth.length > 20);
    assert.ok(!lines.join("").includes(auth.slice(7)), "the push credential was logged");
  });

  it("a transmitter whose metadata cannot be reached leaves its stream degraded and the agent ready", async () => {
    const w = await startWorld({
      delivery: "push",
      metrics: true,
      ssf: (tx, port) => `signals:
  ssf:
    public_url: http://127.0.0.1:${port}
    transmitters:
${transmitterEntry(tx, "push")}      - name: gone
        issuer: http://127.0.0.1:9/gone
        internal: true
        auth: {bearer_token: "gone-token-0123456789"}
`,
    });
    await within(w, async () => {
      await verified(w);
      await until(() => w.agent.ssf!.transmitter("gone")!.health().degraded, 10_000);
      assert.match(w.agent.ssf!.transmitter("gone")!.health().problems.join(), /metadata unavailable/);
      const ready = await fetch(`http://127.0.0.1:${w.port}/readyz`);
      assert.equal(ready.status, 200);
      const body = (await ready.json()) as { ready: boolean; degraded: string[] };
      assert.equal(body.ready, true);
      assert.equal(body.degraded.length, 1);
      assert.match(body.degraded[0]!, /^ssf gone: metadata unavailable/);
      const text = await (await fetch(`http://${w.agent.metricsAddress!.host}:${w.agent.metricsAddress!.port}/metrics`)).text();
      assert.match(text, /vigil_ssf_stream_degraded\{transmitter="gone"\} 1/);
      assert.match(text, /vigil_ssf_stream_degraded\{transmitter="idp"\} 0/);
      assert.ok(accepted(await w.tx.emit("session-revoked", ALICE, { initiating_entity: "admin", reason_admin: "x" })), "the healthy one still works");
    });
  });

  it("URLs from the metadata are hostile input: a loopback jwks_uri of a transmitter not marked internal is not fetched", async () => {
    const w = await startWorld({
      delivery: "push",
      transmitter: { auth: "bearer", bearerToken: "static-token-0123456789" },
      ssf: (tx, port) => `signals:
  ssf:
    public_url: http://127.0.0.1:${port}
    transmitters:
      - name: idp
        issuer: ${tx.issuer}
        auth: {bearer_token: "static-token-0123456789"}
`,
    });
    await within(w, async () => {
      await until(() => w.agent.ssf!.transmitter("idp")!.health().degraded, 10_000);
      assert.match(w.agent.ssf!.transmitter("idp")!.health().problems.join(), /metadata unavailable: the transmitter's jwks_uri does not use https/);
      assert.ok(!w.tx.requests.some((r) => r.path === "/jwks"), "the JWKS was never fetched");
      assert.ok(!w.tx.requests.some((r) => r.path === "/streams"), "nor the stream endpoints");
    });
  });
});
