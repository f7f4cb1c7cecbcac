/**
 * Every malformed SET pushed at the receiver is refused with the RFC 8935 code for its defect,
 * counted under that code, and leaves the agent serving: a valid SET is accepted afterwards.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { TOKEN, startWorld, verified } from "./world.ts";

const ALICE = { format: "email", email: "alice@example.org" };
const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

test("malformed SETs are refused with the right RFC 8935 code, counted by it, and the daemon stays up", async () => {
  const w = await startWorld({ delivery: "push", metrics: true });
  try {
    await verified(w);
    const tx = w.tx;
    const url = `http://127.0.0.1:${w.port}/v1/signals/ssf/idp`;
    const auth = tx.stream!.authorization!;
    const push = async (body: string, headers: Record<string, string> = {}, to = url) => {
      const res = await fetch(to, { method: "POST", headers: { authorization: auth, "content-type": "application/secevent+jwt", ...headers }, body });
      const text = await res.text();
      return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as { err?: string; description?: string }) };
    };
    const good = (o: Parameters<typeof tx.set>[3] = {}, payload: Record<string, unknown> = { initiating_entity: "admin", reason_admin: "x" }, event = "session-revoked", subject: unknown = ALICE) =>
      tx.set(event, subject, payload, o).jws;
    const claims = () => JSON.parse(Buffer.from(good().split(".")[1]!, "base64url").toString()) as Record<string, unknown>;
    const signedHeader = (header: Record<string, unknown>) => tx.jws({ alg: "RS256", typ: "secevent+jwt", kid: tx.kid, ...header }, claims());
    const hs256 = () => {
      const input = `${b64({ alg: "HS256", typ: "secevent+jwt", kid: tx.kid })}.${b64(claims())}`;
      return `${input}.${createHmac("sha256", "guessable").update(input).digest("base64url")}`;
    };
    const now = Math.floor(Date.now() / 1000);

    const cases: [string, () => Promise<{ status: number; body?: { err?: string; description?: string } }>, string][] = [
      ["not JSON in the header", () => push(`${b64("{not json")}.${b64(claims())}.c2ln`), "invalid_request"],
      ["bad base64url", () => push("ab$c.def.ghi"), "invalid_request"],
      ["a base64url length no byte string has", () => push(`${b64({ alg: "RS256" })}a.${b64(claims())}.c2ln`), "invalid_request"],
      ["two parts", () => push(`${b64({ alg: "RS256" })}.${b64(claims())}`), "invalid_request"],
      ["a JWE (five parts)", () => push("a.b.c.d.e"), "invalid_request"],
      ["typ JWT", () => push(signedHeader({ typ: "JWT" })), "invalid_request"],
      ["no typ", () => push(signedHeader({ typ: undefined })), "invalid_request"],
      ["alg none, unsigned", () => push(`${b64({ alg: "none", typ: "secevent+jwt" })}.${b64(claims())}.`), "invalid_request"],
      ["alg none with a signature part", () => push(`${b64({ alg: "none", typ: "secevent+jwt" })}.${b64(claims())}.c2ln`), "invalid_request"],
      ["HS256 (a shared-secret MAC)", () => push(hs256()), "invalid_key"],
      ["crit parameters", () => push(signedHeader({ crit: ["exp"], exp: 1 })), "invalid_request"],
      ["a corrupted signature", () => push(tx.set("session-revoked", ALICE, {}, { corruptSignature: true }).jws), "invalid_key"],
      ["a kid not in the JWKS", () => push(tx.set("session-revoked", ALICE, {}, { rogueKey: true }).jws), "invalid_key"],
      ["wrong iss", () => push(good({ claims: { iss: "https://evil.example" } })), "invalid_issuer"],
      ["wrong aud", () => push(good({ claims: { aud: ["https://a.example", "https://b.example"] } })), "invalid_audience"],
      ["no aud", () => push(good({ claims: { aud: undefined } })), "invalid_audience"],
      ["sub present", () => push(good({ claims: { sub: "alice" } })), "invalid_request"],
      ["exp present", () => push(good({ claims: { exp: now + 60 } })), "invalid_request"],
      ["no jti", () => push(good({ claims: { jti: undefined } })), "invalid_request"],
      ["iat in the future", () => push(good({ iat: now + 3600 })), "invalid_request"],
      ["a replay of an old jti (iat past the replay window)", () => push(good({ iat: now - 8 * 86_400 })), "invalid_request"],
      ["two events", () => push(good({ claims: { events: { "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}, "https://schemas.openid.net/secevent/risc/event-type/account-disabled": {} } } })), "invalid_request"],
      ["an oversized token", () => push(good({ claims: { padding: "x".repeat(40_000) } })), "invalid_request"],
      ["a nested subject", () => push(good({}, undefined, undefined, { format: "aliases", identifiers: [{ format: "aliases", identifiers: [ALICE] }] })), "invalid_request"],
      ["a complex subject inside a complex subject", () => push(good({}, undefined, undefined, { format: "complex", user: { format: "complex", user: ALICE } })), "invalid_request"],
      ["a huge subject", () => push(good({}, undefined, undefined, { format: "aliases", identifiers: Array.from({ length: 500 }, (_, i) => ({ format: "opaque", id: `id-${i}` })) })), "invalid_request"],
      ["an identifier with members its format lacks", () => push(good({}, undefined, undefined, { format: "email", email: "alice@example.org", password: "x" })), "invalid_request"],
      ["an event payload outside its definition", () => push(good({}, { current_status: "broken", previous_status: "compliant" }, "device-compliance-change")), "invalid_request"],
      ["a subject-less CAEP event", () => push(good({ claims: { sub_id: undefined } })), "invalid_request"],
      ["the wrong content type", () => push(good(), { "content-type": "application/json" }), "invalid_request"],
      ["no Authorization", () => push(good(), { authorization: "" }), "authentication_failed"],
      ["a wrong Authorization", () => push(good(), { authorization: "Bearer not-the-stream-credential-0123456789" }), "authentication_failed"],
      ["the API token instead of the stream's credential", () => push(good(), { authorization: `Bearer ${TOKEN}` }), "authentication_failed"],
    ];
    for (const [name, send, code] of cases) {
      const res = await send();
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res)}`);
      assert.equal(res.body?.err, code, `${name}: ${JSON.stringify(res.body)}`);
      assert.ok(res.body?.description && res.body.description.length > 0, `${name}: a description`);
      assert.ok(!res.body!.description!.includes(auth.slice(7)), `${name}: the credential is never echoed`);
    }
    const unknown = await push(good(), {}, `http://127.0.0.1:${w.port}/v1/signals/ssf/nobody`);
    assert.deepEqual([unknown.status, unknown.body?.err], [400, "authentication_failed"], "an unknown transmitter looks like a wrong credential");

    assert.equal((await w.agent.service.readAudit({ type: "signal" })).length, 0, "nothing reached a decision");
    const ok = await push(good());
    assert.equal(ok.status, 202, "the daemon is up and still takes a valid SET");
    assert.equal(ok.body, undefined);

    const text = await (await fetch(`http://${w.agent.metricsAddress!.host}:${w.agent.metricsAddress!.port}/metrics`)).text();
    const count = (transmitter: string, result: string) => Number(new RegExp(`vigil_ssf_sets_total\\{transmitter="${transmitter}",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    const expected = new Map<string, number>();
    for (const [, , code] of cases) expected.set(code, (expected.get(code) ?? 0) + 1);
    for (const [code, n] of expected) assert.equal(count("idp", code), n, `vigil_ssf_sets_total{result="${code}"}`);
    assert.equal(count("unknown", "authentication_failed"), 1);
    assert.equal(count("idp", "accepted"), 1);
    assert.ok(!text.includes(auth.slice(7)), "no credential in the metrics");
    assert.deepEqual(w.tx.violations, []);
  } finally {
    await w.stop();
  }
});
