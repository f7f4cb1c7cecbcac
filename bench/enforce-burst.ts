/**
 * 1,000 subjects denied at once under the blast-radius guard, through the real agent.
 *
 * 1,000 users under the identity perimeter; `enforcement.deny` holds two provider actions,
 * okta:suspend (GET user, POST lifecycle/suspend, GET user: 3 calls) and entra:revoke_sessions
 * (POST revokeSignInSessions: 1 call), against local contract-enforcing fakes in their own process
 * (bench/enforce-lib.ts). `enforcement.limits: {max_actions: 100, window: 10m, auto_resume: false}`.
 *
 * Phase 1: failing signals for all 1,000 subjects at once (BENCH_BURST_BATCH signals per request,
 * default 100, all requests concurrently). The guard admits whole transitions (2 actions each) until
 * the next one would pass 100, then pauses: exactly 100 actions (50 subjects) may reach the fakes.
 * Measured: when the pause was logged, when the admitted actions arrived, calls/s until then.
 * Phase 2: once all 1,000 decisions are recorded as deny, POST /v1/enforcement/resume releases the
 * held decisions; measured: time until the remaining 1,900 actions (3,800 calls) have all arrived,
 * and calls/s. Then the fakes' own records are checked: every subject's calls arrived exactly once
 * (okta: GET, POST suspend, GET; entra: one POST), every user is SUSPENDED, nothing was refused.
 *
 * Env: BENCH_BURST_SUBJECTS (default 1000), BENCH_BURST_LIMIT (default 100), BENCH_BURST_BATCH
 * (default 100; 1 sends 1,000 single-signal requests at once), BENCH_FAKE_PROCS=one|each.
 */
import { readFileSync } from "node:fs";
import { Agent, TOKEN, cleanup, memory, nowMs, r2, report, sleep, tempDir, writeConfig, type Row } from "./lib.ts";
import { Fakes, OKTA_TOKEN, getJson, metricWith, post, type FakeName } from "./enforce-lib.ts";
import { CLIENT_ID, CLIENT_SECRET, TENANT } from "../test/helpers/fakes/entra.ts";

const SUBJECTS = Number(process.env.BENCH_BURST_SUBJECTS ?? 1000);
const LIMIT = Number(process.env.BENCH_BURST_LIMIT ?? 100);
const BATCH = Number(process.env.BENCH_BURST_BATCH ?? 100);
const ACTIONS_PER_SUBJECT = 2;
const OKTA_CALLS = 3; // GET, POST lifecycle/suspend, GET
const ENTRA_CALLS = 1; // POST revokeSignInSessions

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const ids = Array.from({ length: SUBJECTS }, (_, i) => `user${String(i).padStart(4, "0")}`);
const oktaId = (i: number) => `00ubench${String(i).padStart(12, "0")}`;
const entraId = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;

function config(dir: string, b: Partial<Record<FakeName, string>>): string {
  const subjects = ids.map((id, i) => `      - {id: ${id}, kind: user, identity: ${id}@example.org, attributes: {okta_id: "${oktaId(i)}", entra_id: "${entraId(i)}", mfa: true, device_managed: true, country: DE}}`).join("\n");
  return `
agent:
  data_dir: ${dir}/var
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  log_level: info
inventories:
  - type: static
    subjects:
${subjects}
checks:
  user_risk_score: {on_unknown: ignore, ttl: 4h}
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
identity_perimeter:
  require_location_check: false
  continuous_verification: {interval: 1h, checks: [user_risk_score]}
enforcement:
  deny:
    - {type: okta:suspend, name: okta-suspend}
    - {type: entra:revoke_sessions, name: entra-revoke}
  limits: {max_actions: ${LIMIT}, window: 10m, auto_resume: false}
  retry: {attempts: 3, delay: 100ms, max_delay: 1s}
`;
}

const fakes = await Fakes.start({
  okta: { users: ids.map((_, i) => oktaId(i)) },
  entra: { users: ids.map((id, i) => ({ id: entraId(i), upn: `${id}@contoso.example` })) },
});
const dir = tempDir("enforce-burst");
let agent: Agent | undefined;
const broken: string[] = [];
try {
  agent = new Agent(writeConfig(dir, config(dir, fakes.bases)));
  await agent.started(60_000);
  const a = agent;
  const metrics = async () => (await fetch(a.metrics + "/metrics")).text();
  const waitMetric = async (pred: (text: string) => boolean, timeoutMs: number, what: string) => {
    const until = nowMs() + timeoutMs;
    for (;;) {
      const text = await metrics();
      if (pred(text)) return text;
      if (nowMs() > until) throw new Error(`timed out waiting for ${what}`);
      await sleep(50);
    }
  };
  // The start-up pass: every subject evaluated (full_access; no reconcilers, so no calls).
  await waitMetric((t) => metricWith(t, "vigil_evaluations_total", {}) >= SUBJECTS, 60_000, "the start-up evaluation");
  const policy = (await getJson<{ policies: { policy: string }[] }>(a.api + "/v1/enforcement", TOKEN)).policies[0]!.policy;

  // An action has reached its fake when its state-changing call arrived: okta's POST suspend, entra's POST.
  let nSuspends = 0;
  let nRevokes = 0;
  fakes.onCall = (c) => {
    if (c.fake === "okta" && c.line.endsWith("/lifecycle/suspend")) nSuspends++;
    else if (c.fake === "entra" && c.line.endsWith("/revokeSignInSessions")) nRevokes++;
  };
  const suspends = () => nSuspends;
  const revokes = () => nRevokes;
  const actionsArrived = () => suspends() + revokes();
  const allCalls = () => fakes.list("okta").concat(fakes.list("entra"));

  // ---- phase 1: the burst
  const cpu0 = cpuSeconds(a.pid);
  const tSend = nowMs();
  const batches: { subject: string; check: string; status: string; reason: string }[][] = [];
  for (let i = 0; i < SUBJECTS; i += BATCH) batches.push(ids.slice(i, i + BATCH).map((subject) => ({ subject, check: "user_risk_score", status: "fail", reason: "burst" })));
  const responses = await Promise.all(batches.map((b) => post(a.api + "/v1/signals", TOKEN, BATCH === 1 ? b[0] : b)));
  const tAccepted = Math.max(...responses.map((r) => r.at));
  const refused = responses.filter((r) => r.status !== 202);
  if (refused.length) throw new Error(`${refused.length} signal requests refused: HTTP ${refused[0]!.status} ${JSON.stringify(refused[0]!.json)}`);
  const paused = await a.waitFor((l) => l.msg === "blast-radius guard: enforcement paused", 60_000);
  await waitMetric((t) => metricWith(t, "vigil_decision_changes_total", { access: "deny" }) >= SUBJECTS, 60_000, "1,000 deny decisions");
  const tDecided = nowMs();
  const admittedActions = Math.floor(LIMIT / ACTIONS_PER_SUBJECT) * ACTIONS_PER_SUBJECT;
  await fakes.until(() => actionsArrived() >= admittedActions && fakes.count("okta") >= (admittedActions / 2) * OKTA_CALLS, 30_000, "the admitted actions");
  await sleep(1_000); // nothing more may arrive while paused
  const phase1 = allCalls();
  const mark = { okta: fakes.list("okta").length, entra: fakes.list("entra").length };
  const phase1Actions = actionsArrived();
  const status1 = (await getJson<{ policies: { policy: string; paused: boolean; recent_actions: number; max_actions: number }[] }>(a.api + "/v1/enforcement", TOKEN)).policies[0]!;
  const denied = (await getJson<{ total: number }>(a.api + "/v1/subjects?access=deny&limit=1", TOKEN)).total;
  if (phase1Actions !== LIMIT) broken.push(`${phase1Actions} actions reached the fakes before the pause; the limit is ${LIMIT}`);
  if (!status1.paused) broken.push("GET /v1/enforcement does not show the policy paused");
  if (denied !== SUBJECTS) broken.push(`${denied} subjects at deny, expected ${SUBJECTS}`);
  const p1First = Math.min(...phase1.map((c) => c.t));
  const p1Last = Math.max(...phase1.map((c) => c.t));

  // ---- phase 2: operator resume
  const cpu1 = cpuSeconds(a.pid);
  const tResume = nowMs();
  const resumed = await post(a.api + "/v1/enforcement/resume", TOKEN, { policy });
  if (resumed.status !== 200) throw new Error(`resume: HTTP ${resumed.status} ${JSON.stringify(resumed.json)}`);
  await fakes.until(() => suspends() >= SUBJECTS && revokes() >= SUBJECTS && fakes.count("okta") >= SUBJECTS * OKTA_CALLS, 90_000, "every action after the resume");
  const phase2 = fakes.list("okta").slice(mark.okta).concat(fakes.list("entra").slice(mark.entra));
  const p2Last = Math.max(...allCalls().map((c) => c.t));
  const cpu2 = cpuSeconds(a.pid);
  await sleep(1_000); // nothing more may arrive

  // ---- invariants, from the fakes' own records
  const rec = await fakes.record();
  const okta = rec.okta!;
  const entra = rec.entra!;
  const byUser = new Map<string, string[]>();
  for (const line of okta.handled) {
    const id = /\/api\/v1\/users\/([^/?\s]+)/.exec(line)?.[1] ?? "?";
    byUser.set(id, [...(byUser.get(id) ?? []), line]);
  }
  let lost = 0;
  let twice = 0;
  let wrong = 0;
  for (let i = 0; i < SUBJECTS; i++) {
    const id = oktaId(i);
    const got = byUser.get(id) ?? [];
    const want = [`GET /api/v1/users/${id}`, `POST /api/v1/users/${id}/lifecycle/suspend`, `GET /api/v1/users/${id}`];
    if (got.length === 0) lost++;
    else if (got.length > want.length) twice++;
    else if (got.join("\n") !== want.join("\n")) wrong++;
    if ((okta.state as Record<string, string>)[id] !== "SUSPENDED") wrong++;
    byUser.delete(id);
  }
  const revokedBy = new Map<string, number>();
  for (const line of entra.handled) {
    const m = /\/v1\.0\/users\/([^/]+)\/revokeSignInSessions$/.exec(line);
    if (!m) {
      wrong++;
      continue;
    }
    revokedBy.set(m[1]!.toLowerCase(), (revokedBy.get(m[1]!.toLowerCase()) ?? 0) + 1);
  }
  for (let i = 0; i < SUBJECTS; i++) {
    const n = revokedBy.get(entraId(i)) ?? 0;
    if (n === 0) lost++;
    if (n > 1) twice++;
  }
  if (byUser.size) broken.push(`okta: calls for ${byUser.size} unknown users`);
  if (lost) broken.push(`${lost} subject actions lost (no call at the fake)`);
  if (twice) broken.push(`${twice} subject actions arrived more than once`);
  if (wrong) broken.push(`${wrong} subject actions with unexpected calls or end state`);
  for (const [name, r] of Object.entries(rec)) if (r.unhandled.length) broken.push(`${name}: ${r.unhandled.length} requests refused/unrouted, e.g. ${r.unhandled[0]}`);
  const okCalls = okta.handled.length === SUBJECTS * OKTA_CALLS && entra.handled.length === SUBJECTS * ENTRA_CALLS;
  if (!okCalls) broken.push(`call totals: okta ${okta.handled.length} (want ${SUBJECTS * OKTA_CALLS}), entra ${entra.handled.length} (want ${SUBJECTS * ENTRA_CALLS})`);
  const text = await metrics();
  const outcome = (o: string) => metricWith(text, "vigil_actions_total", { outcome: o });
  const agentOutcomes = { success: outcome("success"), failed: outcome("failed"), retried: outcome("retried"), superseded: outcome("superseded") };
  if (agentOutcomes.success !== SUBJECTS * ACTIONS_PER_SUBJECT || agentOutcomes.failed) broken.push(`agent action outcomes: ${JSON.stringify(agentOutcomes)}`);
  const mem = memory(a.pid);

  if (broken.length) {
    for (const b of broken) console.error(`INVARIANT BROKEN: ${b}`);
    process.exitCode = 1;
  }
  const s = (ms: number) => r2(ms / 1000);
  const p1Seconds = (p1Last - tSend) / 1000;
  const p2Seconds = (p2Last - tResume) / 1000;
  const p2Actions = SUBJECTS * ACTIONS_PER_SUBJECT - phase1Actions;
  const result = {
    subjects: SUBJECTS,
    limit: LIMIT,
    actions_per_subject: ACTIONS_PER_SUBJECT,
    batch: BATCH,
    requests: batches.length,
    fake_procs: process.env.BENCH_FAKE_PROCS ?? "one",
    signals_accepted_s: s(tAccepted - tSend),
    pause_logged_s: s(paused.at - tSend),
    decisions_recorded_s: s(tDecided - tSend),
    phase1: { actions: phase1Actions, calls: phase1.length, first_call_s: s(p1First - tSend), last_call_s: s(p1Last - tSend), calls_per_s: Math.round(phase1.length / p1Seconds), window_calls_per_s: Math.round(phase1.length / ((p1Last - p1First) / 1000)), guard: status1 },
    resume: { http_ms: r2(resumed.at - tResume), body: resumed.json },
    phase2: { actions: p2Actions, calls: phase2.length, all_arrived_s: s(p2Last - tResume), calls_per_s: Math.round(phase2.length / p2Seconds), actions_per_s: Math.round(p2Actions / p2Seconds), agent_cpu_s: r2(cpu2 - cpu1), agent_cpu_share: r2((cpu2 - cpu1) / p2Seconds) },
    phase1_agent_cpu_s: r2(cpu1 - cpu0),
    agent_outcomes: agentOutcomes,
    rss_mib: r2(mem.rss),
    peak_rss_mib: r2(mem.hwm),
    invariants_broken: broken,
  };
  const rows: Row[] = [
    { metric: `signals: ${SUBJECTS} in ${batches.length} concurrent requests, all 202 after (s)`, value: String(result.signals_accepted_s) },
    { metric: "guard paused (log line) after (s)", value: String(result.pause_logged_s) },
    { metric: "all 1,000 deny decisions recorded after (s)", value: String(result.decisions_recorded_s) },
    { metric: "actions reached the fakes before the pause", value: `${phase1Actions} (${phase1.length} calls)`, goal: `= limit ${LIMIT}`, met: phase1Actions === LIMIT },
    { metric: "first / last admitted call arrived after (s)", value: `${result.phase1.first_call_s} / ${result.phase1.last_call_s}` },
    { metric: "calls/s before the pause (from the burst / first→last call)", value: `${result.phase1.calls_per_s} / ${result.phase1.window_calls_per_s}` },
    { metric: "POST /v1/enforcement/resume answered in (ms)", value: String(result.resume.http_ms) },
    { metric: `after resume: ${p2Actions} actions (${phase2.length} calls) all arrived in (s)`, value: String(result.phase2.all_arrived_s) },
    { metric: "after resume: calls/s / actions/s", value: `${result.phase2.calls_per_s} / ${result.phase2.actions_per_s}` },
    { metric: "agent CPU during resume→last call (s of CPU / share of one core)", value: `${result.phase2.agent_cpu_s} / ${Math.round(((cpu2 - cpu1) / p2Seconds) * 100)} %` },
    { metric: "every subject's calls exactly once (fakes' records)", value: lost || twice || wrong || !okCalls ? `NO: lost ${lost}, twice ${twice}, wrong ${wrong}` : `yes (${okta.handled.length} okta + ${entra.handled.length} entra calls)`, met: !(lost || twice || wrong || !okCalls) },
    { metric: "agent action outcomes", value: JSON.stringify(agentOutcomes) },
    { metric: "agent RSS at the end / peak (MiB)", value: `${r2(mem.rss)} / ${r2(mem.hwm)}` },
  ];
  report("enforce-burst", rows, result);
} finally {
  await agent?.stop();
  await fakes.stop();
  cleanup(dir);
}
