/**
 * Decision → last provider call: one subject, FIVE provider actions on five local contract-enforcing
 * fakes, through the real agent (`bin/vigil run`).
 *
 * One communication policy (frontend → api) whose `deny` level lists okta:clear_sessions,
 * entra:revoke_sessions, consul:intention (a reconciler: it also runs on the way back),
 * caep:transmit (session-revoked, a signed SET verified by the receiver) and
 * aws:revoke_role_sessions (SigV4-checked; reverted on restore). `decision: {confirm: 1,
 * restore_after: 1, cooldown: 0s}`, so every signal flips the decision.
 *
 * Each iteration: POST a failing signal → wait until every fake has received exactly the calls
 * `vigil plan` lists for full_access → deny (compared line by line); then a passing signal → wait
 * for the restore's calls (consul reconcile, aws revert) the same way. Timed on CLOCK_MONOTONIC:
 * from the moment the 202 arrived (and from when the request was sent) to the moment the last fake
 * received its last call of the transition. The fakes run in their own process (bench/enforce-lib.ts).
 *
 * Env: BENCH_FLIPS (default 500), BENCH_WARMUP (default 20 flips, not counted),
 * BENCH_FAKE_PROCS=one|each (one process for all fakes, default, or one per fake).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, TOKEN, cleanup, memory, metricSum, nowMs, r2, r3, report, summary, tempDir, writeConfig, type Row } from "./lib.ts";
import { CONSUL_TOKEN, FAKES, Fakes, OKTA_TOKEN, SSF_AUTH, ecKeyPem, fetchDocuments, metricWith, planLines, post, type FakeName } from "./enforce-lib.ts";
import { CLIENT_ID, CLIENT_SECRET, TENANT } from "../test/helpers/fakes/entra.ts";
import { TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY } from "../test/helpers/fakes/aws.ts";

const N = Number(process.env.BENCH_FLIPS ?? 500);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 20);
const GOAL_P99_MS = 50;
const OKTA_USER = "00u1benchfrontend001";
const ENTRA_USER = "0f8a1c2e-3b4d-4e5f-8a9b-1c2d3e4f5a6b";
const ROLE = "frontend-irsa";

function config(dir: string, b: Partial<Record<FakeName, string>>): string {
  writeFileSync(join(dir, "caep.pem"), ecKeyPem(), { mode: 0o600 });
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  log_level: info
decision: {confirm: 1, restore_after: 1, cooldown: 0s}
inventories:
  - type: static
    subjects:
      - id: frontend
        kind: workload
        identity: "spiffe://example.org/ns/web/sa/frontend"
        attributes: {okta_id: ${OKTA_USER}, entra_id: ${ENTRA_USER}, aws_role: ${ROLE}, consul_service: web, email: frontend@example.org}
      - {id: api, kind: workload, identity: "spiffe://example.org/ns/api/sa/api"}
checks:
  anomaly_detection: {on_unknown: ignore}
providers:
  okta:
    org_url: "${b.okta}"
    auth: {type: ssws, token: "${OKTA_TOKEN}"}
  entra:
    tenant_id: ${TENANT}
    client_id: ${CLIENT_ID}
    auth: {client_secret: "${CLIENT_SECRET}"}
    login_url: "${b.entra}"
    graph_url: "${b.entra}/v1.0"
  consul:
    address: "${b.consul}"
    token: "${CONSUL_TOKEN}"
  caep:
    issuer: https://vigil.example.com
    keys: [{kid: bench-1, alg: ES256, private_key: "\${file:${join(dir, "caep.pem")}}"}]
    receivers:
      - {name: rp, endpoint: "${b.ssf}/events", authorization: "${SSF_AUTH}"}
  aws:
    endpoint: "${b.iam}/"
    region: us-east-1
    credentials: {access_key_id: ${TEST_ACCESS_KEY_ID}, secret_access_key: "${TEST_SECRET_ACCESS_KEY}"}
communication_policies:
  - name: frontend-to-api
    source: frontend
    destination: api
    protocol: http
    port: 8080
    continuous_verification: {interval: 1h, checks: [anomaly_detection]}
    enforcement:
      deny:
        - {type: okta:clear_sessions, name: okta-sessions}
        - {type: entra:revoke_sessions, name: entra-sessions}
        - {type: consul:intention, name: consul-intention, source: "{{attributes.consul_service}}", destination: api}
        - {type: caep:transmit, name: caep-revoked, event: session-revoked}
        - {type: aws:revoke_role_sessions, name: aws-revoke}
enforcement:
  limits: {max_actions: 1000000, window: 10m}
  retry: {attempts: 3, delay: 100ms, max_delay: 1s}
`;
}

const fakes = await Fakes.start({
  okta: { users: [OKTA_USER] },
  entra: { users: [{ id: ENTRA_USER, upn: "frontend@contoso.example" }] },
  consul: { write: ["api"], protocols: { api: "http" } },
  ssf: {},
  iam: { roles: [ROLE] },
});
const dir = tempDir("enforce-latency");
let agent: Agent | undefined;
const broken: string[] = [];
try {
  const file = writeConfig(dir, config(dir, fakes.bases));
  const firstPlan = planLines(file, "frontend", "full_access", "full_access", fakes.bases);
  const first = firstPlan.lines;
  const denyPlan = planLines(file, "frontend", "full_access", "deny", fakes.bases);
  const restorePlan = planLines(file, "frontend", "deny", "full_access", fakes.bases);
  const involved = FAKES.filter((f) => (denyPlan.lines.get(f)?.length ?? 0) > 0);
  if (involved.length !== 5) throw new Error(`expected five fakes in the deny plan, got ${involved.join(", ")}`);

  agent = new Agent(file);
  await agent.started();
  await fakes.setDocuments(await fetchDocuments(agent.api));
  // The subject's first decision (full_access) runs the reconciler once: the declared allow.
  await fakes.until(() => FAKES.every((f) => fakes.count(f) >= (first.get(f)?.length ?? 0)), 20_000, "the first reconcile");

  /** Sends one signal and waits for exactly the planned calls; returns the timings. */
  async function transition(status: "fail" | "pass", expected: Map<FakeName, string[]>) {
    const from = new Map(FAKES.map((f) => [f, fakes.count(f)]));
    const t0 = nowMs();
    const res = await post(agent!.api + "/v1/signals", TOKEN, { subject: "frontend", check: "anomaly_detection", status, reason: "bench" });
    if (res.status !== 202) throw new Error(`signal: HTTP ${res.status} ${JSON.stringify(res.json)}`);
    const want = (f: FakeName) => expected.get(f)?.length ?? 0;
    await fakes.until(() => FAKES.every((f) => fakes.count(f) - from.get(f)! >= want(f)), 10_000, `the ${status} transition's calls`);
    const last = new Map<FakeName, number>();
    for (const f of FAKES) {
      const got = fakes.list(f).slice(from.get(f)!);
      const lines = got.map((c) => c.line);
      const exp = expected.get(f) ?? [];
      if (lines.length !== exp.length || lines.some((l, i) => l !== exp[i])) broken.push(`${status}: ${f} received ${JSON.stringify(lines)}, plan ${JSON.stringify(exp)}`);
      if (got.length) last.set(f, got[got.length - 1]!.t);
    }
    const tLast = Math.max(...last.values());
    return { sent: t0, accepted: res.at, tLast, last };
  }

  const fromAccepted: number[] = [];
  const fromSent: number[] = [];
  const accept: number[] = [];
  const restore: number[] = [];
  /** [ms, flip, seconds into the run] of every measured flip, to place the slow ones in time. */
  const when: [number, number, number][] = [];
  const perFake = new Map<FakeName, number[]>(involved.map((f) => [f, []]));
  const t0run = nowMs();
  for (let i = 0; i < WARMUP + N; i++) {
    const d = await transition("fail", denyPlan.lines);
    const r = await transition("pass", restorePlan.lines);
    if (broken.length) break;
    if (i < WARMUP) continue;
    fromAccepted.push(d.tLast - d.accepted);
    when.push([d.tLast - d.accepted, i, (d.accepted - t0run) / 1000]);
    fromSent.push(d.tLast - d.sent);
    accept.push(d.accepted - d.sent);
    restore.push(r.tLast - r.accepted);
    for (const [f, t] of d.last) perFake.get(f)?.push(t - d.accepted);
  }
  const runSeconds = (nowMs() - t0run) / 1000;

  // Nothing more may arrive, and the fakes' own records must hold exactly the planned calls.
  await new Promise((r) => setTimeout(r, 300));
  const rec = await fakes.record();
  const flips = broken.length ? 0 : WARMUP + N;
  for (const f of FAKES) {
    const r = rec[f]!;
    const exp = (first.get(f)?.length ?? 0) + flips * ((denyPlan.lines.get(f)?.length ?? 0) + (restorePlan.lines.get(f)?.length ?? 0));
    if (!broken.length && r.handled.length !== exp) broken.push(`${f}: the fake recorded ${r.handled.length} calls, expected ${exp}`);
    if (r.unhandled.length) broken.push(`${f}: ${r.unhandled.length} refused/unrouted requests, e.g. ${r.unhandled[0]}`);
  }
  const ssf = rec.ssf!.state as { accepted: number; duplicates: number; rejected: unknown[] };
  if (ssf.rejected.length) broken.push(`ssf: ${ssf.rejected.length} SETs rejected: ${JSON.stringify(ssf.rejected[0])}`);
  if (!broken.length && ssf.accepted !== flips) broken.push(`ssf: ${ssf.accepted} distinct SETs accepted, expected ${flips}`);

  const metrics = await (await fetch(agent.metrics + "/metrics")).text();
  const aSum = metricSum(metrics, "vigil_signal_to_enforcement_seconds_sum");
  const aCount = metricSum(metrics, "vigil_signal_to_enforcement_seconds_count");
  const outcome = (o: string) => metricWith(metrics, "vigil_actions_total", { outcome: o });
  const agentOutcomes = { success: outcome("success"), failed: outcome("failed"), retried: outcome("retried"), superseded: outcome("superseded") };
  const nActions = (p: { actions: Map<FakeName, string[]> }) => [...p.actions.values()].reduce((n, l) => n + l.length, 0);
  const wantSuccess = nActions(firstPlan) + flips * (nActions(denyPlan) + nActions(restorePlan));
  if (!broken.length && (agentOutcomes.success !== wantSuccess || agentOutcomes.failed || agentOutcomes.retried)) broken.push(`agent action outcomes ${JSON.stringify(agentOutcomes)}, expected ${wantSuccess} successes only`);
  const mem = memory(agent.pid);

  if (broken.length) {
    for (const b of broken.slice(0, 10)) console.error(`INVARIANT BROKEN: ${b}`);
    process.exitCode = 1;
  }
  const s = summary(fromAccepted);
  const sent = summary(fromSent);
  const rows: Row[] = [
    { metric: "202 → last of 5 fakes' last call p50 / p90 (ms)", value: `${r3(s.p50)} / ${r3(s.p90)}` },
    { metric: "202 → last call p99 (ms)", value: String(r3(s.p99)), goal: `< ${GOAL_P99_MS} ms`, met: s.p99 < GOAL_P99_MS },
    { metric: "202 → last call max / mean (ms)", value: `${r3(s.max)} / ${r3(s.mean)}` },
    { metric: "request sent → last call p50 / p99 / max (ms)", value: `${r3(sent.p50)} / ${r3(sent.p99)} / ${r3(sent.max)}` },
    { metric: "request sent → 202 p50 / p99 (ms)", value: `${r3(summary(accept).p50)} / ${r3(summary(accept).p99)}` },
  ];
  for (const [f, v] of perFake) {
    const ps = summary(v);
    rows.push({ metric: `  ${denyPlan.actions.get(f)!.join("+")} (${f}, ${denyPlan.lines.get(f)!.length} calls) p50 / p99 (ms)`, value: `${r3(ps.p50)} / ${r3(ps.p99)}` });
  }
  const rs = summary(restore);
  rows.push({ metric: `restore: 202 → last call p50 / p99 (ms) (consul reconcile + aws revert)`, value: `${r3(rs.p50)} / ${r3(rs.p99)}` });
  rows.push({ metric: "agent metric signal→action mean (ms)", value: aCount ? `${r2((aSum / aCount) * 1000)} (${aCount} actions)` : "n/a" });
  rows.push({ metric: "agent action outcomes", value: JSON.stringify(agentOutcomes) });
  rows.push({ metric: "flips measured / warm-up / run time", value: `${fromAccepted.length} / ${WARMUP} / ${r2(runSeconds)} s` });
  rows.push({ metric: "agent RSS / peak (MiB)", value: `${r2(mem.rss)} / ${r2(mem.hwm)}` });
  rows.push({ metric: "invariants (exact planned calls, nothing extra)", value: broken.length ? `BROKEN (${broken.length})` : "held" });
  console.log(`\ngoal p99 < ${GOAL_P99_MS} ms: ${s.p99 < GOAL_P99_MS ? "MET" : "MISSED"} (p99 ${r3(s.p99)} ms over ${fromAccepted.length} flips)`);
  report("enforce-latency", rows, {
    flips: fromAccepted.length,
    warmup: WARMUP,
    fake_procs: process.env.BENCH_FAKE_PROCS ?? "one",
    goal_p99_ms: GOAL_P99_MS,
    met: s.p99 < GOAL_P99_MS,
    from_accepted: s,
    from_sent: sent,
    accepted: summary(accept),
    restore: rs,
    per_action: Object.fromEntries([...perFake].map(([f, v]) => [denyPlan.actions.get(f)!.join("+"), summary(v)])),
    calls_per_flip: Object.fromEntries(FAKES.map((f) => [f, { deny: denyPlan.lines.get(f)?.length ?? 0, restore: restorePlan.lines.get(f)?.length ?? 0 }])),
    agent_metric_mean_ms: aCount ? (aSum / aCount) * 1000 : null,
    agent_outcomes: agentOutcomes,
    rss_mib: r2(mem.rss),
    slowest: when.sort((x, y) => y[0] - x[0]).slice(0, 5).map(([ms, flip, at]) => ({ ms: r3(ms), flip, at_s: r2(at) })),
    invariants_broken: broken,
  });
} finally {
  await agent?.stop();
  await fakes.stop();
  cleanup(dir);
}
