/**
 * The example SETs of the SSF 1.0 and CAEP 1.0 specifications (test/fixtures/ssf/spec-examples.json,
 * with their sources) are accepted and mapped: re-issued by the local transmitter with its own iss,
 * aud, iat and a unique jti, pushed, and checked against the results they produce.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startWorld, verified } from "./world.ts";

interface Example {
  readonly source: string;
  readonly title: string;
  readonly claims: Record<string, unknown>;
  readonly expect: { result?: string; check?: string; status?: string; subjects?: string[] };
}

const fixture = JSON.parse(readFileSync(new URL("../../fixtures/ssf/spec-examples.json", import.meta.url), "utf8")) as { examples: Example[] };

test("the specifications' example SETs are accepted and mapped", async () => {
  const now = new Date().toISOString();
  const w = await startWorld({
    delivery: "push",
    metrics: true,
    subjects: [
      "{id: foo, kind: user, attributes: {email: foo@example.com}}",
      "{id: user1, kind: user, attributes: {email: user@example.com}}",
      "{id: foo2, kind: user, attributes: {email: foo@example2.com}}",
      "{id: jane, kind: user, attributes: {sub: jane.smith@example.com, phone_number: '+12065550123'}}",
      "{id: jane-laptop, kind: device, attributes: {sub: e9297990-14d2-42ec-a4a9-4036db86509a}}",
      "{id: jane-doe, kind: user, attributes: {sub: jane.doe@example.com}}",
      "{id: '99beb27c', kind: user, attributes: {sub: 99beb27c-c1c2-4955-882a-e0dc4996fcbc}}",
      "{id: someuser, kind: user, attributes: {email: someuser@somedomain.com}}",
      `{id: 'dMTlD|1600802906337.16|16008.16', kind: session, attributes: {authenticated_at: '${now}'}}`,
    ],
    entry: `        subjects:
          - {format: email, match: attributes.email}
          - {format: iss_sub, match: attributes.sub}
          - {format: opaque, match: id}
          - {format: phone_number, match: attributes.phone_number}
`,
  });
  try {
    await verified(w);
    const tx = w.tx;
    const stream = tx.stream!;
    let n = 0;
    for (const ex of fixture.examples) {
      const jti = `spec-example-${++n}`;
      const uri = Object.keys(ex.claims.events as object)[0]!;
      const claims: Record<string, unknown> = { ...ex.claims, iss: tx.issuer, aud: stream.config.aud[0], iat: Math.floor(Date.now() / 1000), jti };
      if (uri.endsWith("/stream-updated")) claims.sub_id = { format: "opaque", id: stream.config.stream_id };
      const jws = tx.jws({ alg: "RS256", typ: "secevent+jwt", kid: tx.kid }, claims);
      const d = await tx.deliver(jti, jws, uri);
      assert.ok(d.kind === "push" && d.status === 202, `${ex.source}: ${ex.title}: ${JSON.stringify(d)}`);
      await w.agent.idle({ timeoutMs: 10_000 });
      const lines = (await w.agent.service.readAudit({ type: "signal", limit: 1000 })).filter((l) => (l.evidence as { jti?: string } | undefined)?.jti === jti);
      if (ex.expect.subjects) {
        assert.deepEqual(lines.map((l) => l.subject).sort(), [...ex.expect.subjects].sort(), `${ex.title}: subjects`);
        for (const l of lines) assert.deepEqual([l.check, l.status], [ex.expect.check, ex.expect.status], `${ex.title}: result`);
      } else assert.equal(lines.length, 0, `${ex.title}: no signal`);
    }
    assert.equal(w.agent.ssf!.transmitter("idp")!.health().status, "paused", "the stream-updated example was followed");
    const text = await (await fetch(`http://${w.agent.metricsAddress!.host}:${w.agent.metricsAddress!.port}/metrics`)).text();
    const count = (result: string) => Number(new RegExp(`vigil_ssf_sets_total\\{transmitter="idp",result="${result}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    assert.equal(count("accepted"), fixture.examples.filter((e) => e.expect.subjects).length);
    assert.equal(count("unmatched"), fixture.examples.filter((e) => e.expect.result === "unmatched").length);
    assert.equal(count("stream_updated"), 1);
    assert.deepEqual(tx.violations, []);
  } finally {
    await w.stop();
  }
});
