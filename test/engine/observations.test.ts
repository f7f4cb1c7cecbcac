/**
 * POST /v1/observations through a real agent (in process, the embedded store): authentication,
 * batch bounds (413), per-point rejections, idempotent re-sends, a spike that denies the subject
 * at once, and learned state that is still there after a restart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { until } from "../helpers/wait.ts";

const TOKEN = "observations-token-0123456789";

function configFile(): string {
  const dir = mkdtempSync(join(tmpdir(), "vigil-obs-"));
  const file = join(dir, "vigil.yaml");
  writeFileSync(
    file,
    `agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: false}}
inventories: [{type: static, subjects: [{id: web, kind: workload}, {id: api, kind: workload}, {id: batch, kind: workload}]}]
checks:
  anomaly_detection:
    ttl: 1h
    warmup: 20
    params: {window: 60, seasonality: none}
    series: [{name: logins, push: true}]
communication_policies:
  - {source: web, destination: api, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
`,
  );
  return file;
}

async function post(agent: Agent, body: unknown, token: string | null = TOKEN): Promise<{ status: number; json: any }> {
  const { host, port } = agent.apiAddress!;
  const res = await fetch(`http://${host}:${port}/v1/observations`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

test("observations: bounds, rejections, idempotent re-sends, a spike denies at once, and the learning survives a restart", async () => {
  const file = configFile();
  const t0 = Math.floor(Date.now() / 1000) - 3600;
  const point = (i: number, value: unknown, subject = "web", series = "logins") => ({ subject, series, timestamp: t0 + i * 60, value });
  let agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  try {
    assert.equal((await post(agent, [point(0, 1)], null)).status, 401);
    assert.equal((await post(agent, Array.from({ length: 1001 }, (_, i) => point(i, 1)))).json.error?.code ?? "", "VIGIL_ERR_PAYLOAD_TOO_LARGE");
    assert.equal((await post(agent, { subject: "web" })).status, 400);
    const bad = await post(agent, [point(0, 1), { subject: "web", series: "logins", timestamp: "yesterday", value: 1 }]);
    assert.deepEqual([bad.status, bad.json.error.code], [400, "VIGIL_ERR_BAD_REQUEST"]);
    assert.match(bad.json.error.message, /^\[1\]\.timestamp: expected Unix seconds or an RFC 3339 date and time/);
    const future = await post(agent, [point(0, 1), { ...point(0, 1), timestamp: Date.now() / 1000 + 3600 }]);
    assert.match(future.json.error.message, /^\[1\]\.timestamp: more than 5 minutes in the future/);

    const normal = Array.from({ length: 40 }, (_, i) => point(i, 10 + (i % 4)));
    const mixed = await post(agent, [...normal, point(40, "NaN"), point(41, null), point(0, 1, "ghost"), point(0, 1, "web", "bytes_out"), point(0, 1, "batch")]);
    assert.equal(mixed.status, 202);
    assert.deepEqual(mixed.json.accepted, 40);
    assert.deepEqual(mixed.json.skipped, { non_finite: 2, out_of_order: 0, dropped: 0, not_watched: 0 });
    assert.deepEqual(
      mixed.json.rejected.map((r: { index: number; code: string }) => [r.index, r.code]),
      [
        [42, "VIGIL_ERR_UNKNOWN_SUBJECT"],
        [43, "VIGIL_ERR_BAD_REQUEST"],
        [44, "VIGIL_ERR_BAD_REQUEST"],
      ],
    );
    assert.match(mixed.json.rejected[1].message, /no check watches pushed series "bytes_out"/);
    assert.match(mixed.json.rejected[2].message, /no policy covering subject "batch" verifies anomaly_detection/);
    assert.deepEqual(mixed.json.evaluating, []);

    const resent = await post(agent, normal.slice(0, 5));
    assert.deepEqual([resent.json.accepted, resent.json.skipped.out_of_order], [0, 5], "a re-send changes nothing");

    const spike = await post(agent, [{ ...point(42, 400), timestamp: new Date((t0 + 42 * 60) * 1000).toISOString() }]);
    assert.deepEqual([spike.status, spike.json.accepted, spike.json.evaluating], [202, 1, ["web"]]);
    await agent.idle({ timeoutMs: 10_000 });
    const detail = (await agent.service.getSubject("web"))!;
    assert.equal(detail.access, "deny");
    const reason = detail.decisions[0]!.reasons.find((r) => r.message.includes("logins = 400"));
    assert.ok(reason, JSON.stringify(detail.decisions[0]!.reasons));
  } finally {
    await agent.stop();
  }

  // A restart: the detector's state and the standing spike come back from the store.
  agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  try {
    const [d] = (await agent.service.evaluate("web"))!;
    assert.equal(d!.access, "deny", JSON.stringify(d!.reasons));
    const again = await post(agent, [point(41, 11), point(43, 12)]);
    assert.deepEqual([again.json.accepted, again.json.skipped.out_of_order], [1, 1], "the restored detector knows its last point");
    await until(async () => (await agent.service.getSubject("web"))!.access === "deny");
  } finally {
    await agent.stop();
  }
});
