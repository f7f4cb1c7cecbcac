/**
 * The identity perimeter at scale: a 100,000-user Entra ID directory served by the Graph contract
 * server of the tests (test/helpers/fakes/graph-identity.ts: token endpoint, bearer and permission
 * checks, `$select`, `$top=999` pages, `users/delta` with delta links, the beta sign-in log with its
 * time filter, Identity Protection) to the real agent. The Entra inventory lists every user with the
 * facts of their sign-in; the identity perimeter judges them (require_mfa, session_duration) with
 * user_risk_score (Identity Protection and the computed score) on top.
 *
 * Measured:
 * - first full sync + evaluation: the first Graph request → every user evaluated (the sum of
 *   vigil_evaluations_total reaches N), and the Graph calls it took;
 * - the agent's peak RSS (VmHWM) over the whole run;
 * - an incremental tick: 100 users change in the directory (renamed, disabled, deleted, added),
 *   100 sign in again and 10 get risk; the Graph calls the next tick makes to pick all of that up,
 *   by path (goal: a handful, not one per user), and that the changes arrived.
 *
 * The fake runs in this process; the agent in its own. Env: BENCH_USERS (default 100000),
 * BENCH_INTERVAL_S (default 30: the policy interval, so the incremental tick comes soon).
 */
import { join } from "node:path";
import { Agent, MemorySampler, TOKEN, cleanup, freePort, metricSum, nowMs, r2, report, sleep, tempDir, writeConfig } from "./lib.ts";
import { FakeGraphIdentity } from "../test/helpers/fakes/graph-identity.ts";
import { CLIENT_SECRET } from "../test/helpers/fakes/entra.ts";

const N = Number(process.env.BENCH_USERS ?? 100_000);
const INTERVAL_S = Number(process.env.BENCH_INTERVAL_S ?? 30);
const CHANGED = 100;
const GOAL_S = 15;
const GOAL_RSS_MIB = 300;
const GOAL_CALLS = 10;
const DEADLINE_MS = 240_000;

const fake = new FakeGraphIdentity();
await fake.start();
const now = Date.now();
// A realistic tenant: one interactive sign-in per user within the day (about 70 a minute; 2 % without
// MFA, a few abroad), 1 % of users known to Identity Protection, their risk last updated days ago.
fake.addUsers(N, (i) => (i % 500 === 0 ? { userType: "Guest" } : {}));
const ids = [...fake.users.keys()];
const DAY_MS = 86_400_000;
ids.forEach((id, i) =>
  fake.addSignIn(id, {
    at: now - 60_000 - Math.floor(((i * 7919) % N) * ((DAY_MS - 3_600_000) / N)),
    mfa: i % 50 !== 0,
    country: i % 97 === 0 ? "FR" : "DE",
    city: i % 97 === 0 ? "Paris" : "Berlin",
    lat: i % 97 === 0 ? 48.85 : 52.52,
    lon: i % 97 === 0 ? 2.35 : 13.4,
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  }),
);
for (let i = 0; i < N; i += 100) {
  fake.setRisk(ids[i]!, i % 300 === 0 ? { riskLevel: "none", riskState: "dismissed", riskDetail: "adminDismissedAllRiskForUser" } : { riskLevel: i % 200 === 0 ? "high" : "low", riskState: "atRisk" });
  fake.riskyUsers.get(ids[i]!)!.riskLastUpdatedDateTime = new Date(now - (1 + ((i / 100) % 30)) * DAY_MS).toISOString();
}

const dir = tempDir("identity");
const apiPort = await freePort();
const metricsPort = await freePort();
const conn = `
    tenant_id: ${fake.tenant}
    client_id: ${fake.clientId}
    auth: {client_secret: "${CLIENT_SECRET}"}
    login_url: "${fake.loginUrl}"
    graph_url: "${fake.graphUrl}"
    scan_timeout: 3m`;
const file = writeConfig(
  dir,
  `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${apiPort}", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:${metricsPort}"}
  log_level: warn
enforcement:
  limits: {max_actions: 1000000}
inventories:
  - type: entra${conn}
    refresh: 10s
checks:
  mfa: {on_unknown: ignore}
  user_risk_score:
    timeout: 120s
    on_unknown: hold
    sources:
      - type: entra${conn.replace(/\n {4}/g, "\n        ")}
      - type: computed
identity_perimeter:
  applies_to: {kind: user}
  require_mfa: true
  require_managed_device: false
  require_location_check: false
  session_duration: 24h
  continuous_verification: {interval: ${INTERVAL_S}s, checks: [user_risk_score]}
`,
);

const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
const agent = new Agent(file);
/** (wall ms, RSS MiB) every 20 ms: what the agent held when the sync ended, before the evaluation. */
const mem = new MemorySampler(() => agent.pid);
const sample = () => mem.sample();
mem.every(20);

async function evaluations(): Promise<number> {
  try {
    return metricSum(await (await fetch(metricsUrl)).text(), "vigil_evaluations_total");
  } catch {
    return 0;
  }
}

async function waitForEvaluations(target: number, deadline: number): Promise<number> {
  while (nowMs() < deadline) {
    if (agent.child.exitCode !== null) throw new Error(`vigil exited: ${agent.stderr.join("")}`);
    if ((await evaluations()) >= target) return nowMs();
    sample();
    await sleep(50);
  }
  throw new Error(`only ${await evaluations()} of ${target} evaluated in time`);
}

const pick = (k: number) => ids[k % ids.length]!;
/** A user still in the directory, from `pick(k)` on. */
const alive = (k: number): string => {
  for (let j = k; ; j++) if (fake.identityUser(pick(j))) return pick(j);
};
const api = async (path: string) => (await fetch(`http://127.0.0.1:${apiPort}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Promise<Record<string, unknown>>;
const countBy = (reqs: { path: string }[]) => {
  const out: Record<string, number> = {};
  for (const r of reqs) out[r.path] = (out[r.path] ?? 0) + 1;
  return out;
};

try {
  const doneAt = await waitForEvaluations(N, agent.spawnedAt + DEADLINE_MS);
  const atDone = sample()!;
  const spawnWall = Date.now() - (nowMs() - agent.spawnedAt);
  const doneWall = Date.now() - (nowMs() - doneAt);
  const first = fake.graphRequests();
  const firstAt = Math.min(...first.map((r) => r.at));
  const syncAndEval = (doneWall - firstAt) / 1000;
  // The first walk of each list (later refreshes within the pass read them again).
  const nth = (path: string, n: number) => first.filter((r) => r.path === path).map((r) => r.at).sort((a, b) => a - b)[n - 1] ?? NaN;
  const syncEnd = Math.max(nth("/v1.0/users", Math.ceil(N / 999)), nth("/beta/auditLogs/signIns", Math.ceil(N / 1000)));
  const firstCalls = countBy(first);
  const atSyncEnd = mem.timeline.find(([t]) => t >= syncEnd + 200)?.[1] ?? NaN;
  const firstTokens = fake.tokenRequests;
  const peakFirst = mem.peak;

  // 100 users change (spread over the directory; `pick` wraps for smaller BENCH_USERS): 40 renamed, 30 disabled, 20 deleted, 10 added; 100 sign in again; 10 get risk.
  const changeAt = Date.now();
  for (let i = 0; i < 40; i++) fake.identityUser(pick(1 + i * 997))!.displayName = `Renamed ${i}`;
  for (let i = 0; i < 30; i++) fake.identityUser(pick(3 + i * 1999))!.accountEnabled = false;
  for (let i = 0; i < 20; i++) fake.removeUser(pick(5 + i * 2999));
  const added = fake.addUsers(10, () => ({}));
  for (let i = 0; i < CHANGED; i++) fake.addSignIn(alive(7 + i * 499), { mfa: i % 4 !== 0, country: "NL", city: "Amsterdam", lat: 52.37, lon: 4.9 });
  for (let i = 0; i < 10; i++) fake.setRisk(alive(9 + i * 4999), { riskLevel: "medium", riskState: "atRisk" });

  // The next scheduled tick lists the inventory (the directory's delta, the sign-ins since) and
  // evaluates everyone once more, spread over the interval; the check refreshes its reads at most
  // once per interval. The calls of one interval after the change are what a tick costs.
  const arrived = async () => {
    const s = (await api(`/v1/subjects/${encodeURIComponent(`entra:${pick(3)}`)}`)).subject as { attributes?: Record<string, unknown> } | undefined;
    return s?.attributes?.account_enabled === false;
  };
  const windowEnd = changeAt + INTERVAL_S * 1000;
  let arrivedAt = NaN;
  while (Date.now() < windowEnd + 60_000) {
    if (Number.isNaN(arrivedAt) && (await arrived())) arrivedAt = Date.now();
    if (!Number.isNaN(arrivedAt) && Date.now() > windowEnd + 1_000) break;
    sample();
    await sleep(200);
  }
  const tick = fake.graphRequests().filter((r) => r.at > changeAt && r.at <= windowEnd);
  const tickCalls = countBy(tick);
  const tokensAfter = fake.tokenRequests - firstTokens;
  mem.stop();
  const after = sample()!;
  const newcomer = await api(`/v1/subjects/${encodeURIComponent(`entra:${added[0]!.id.toLowerCase()}`)}`);
  const gone = await api(`/v1/subjects/${encodeURIComponent(`entra:${pick(5)}`)}`);
  const picked = !Number.isNaN(arrivedAt) && newcomer.subject !== undefined && gone.subject === undefined;
  const usersPages = firstCalls["/v1.0/users"] ?? 0;
  const signInPages = firstCalls["/beta/auditLogs/signIns"] ?? 0;
  report(
    "identity-100k",
    [
      { metric: "Entra users (one sign-in each; 1 % risky)", value: String(N) },
      { metric: "first sync: users pages / delta token / sign-in pages / riskyUsers / detections / token", value: `${usersPages} / ${firstCalls["/v1.0/users/delta"] ?? 0} / ${signInPages} / ${firstCalls["/v1.0/identityProtection/riskyUsers"] ?? 0} / ${firstCalls["/v1.0/identityProtection/riskDetections"] ?? 0} / ${firstTokens}` },
      { metric: "spawn → first Graph request (s)", value: r2((firstAt - spawnWall) / 1000).toString() },
      { metric: "sync: first request → last user / sign-in page (s)", value: r2((syncEnd - firstAt) / 1000).toString() },
      { metric: "first full sync + evaluation: first request → all evaluated (s)", value: r2(syncAndEval).toString(), goal: `≤ ${GOAL_S} s`, met: syncAndEval <= GOAL_S },
      { metric: "peak RSS during the first pass, VmHWM (MiB)", value: r2(peakFirst).toString(), goal: `≤ ${GOAL_RSS_MIB} MiB`, met: peakFirst <= GOAL_RSS_MIB },
      { metric: "peak RSS over the whole run (MiB)", value: r2(mem.peak).toString() },
      { metric: "RSS 0.2 s after the sync / at done / after the incremental tick (MiB)", value: `${r2(atSyncEnd)} / ${r2(atDone.rss)} / ${r2(after.rss)}` },
      { metric: `incremental tick (${CHANGED} users changed, ${CHANGED} signed in, 10 risk changes): Graph calls in the ${INTERVAL_S} s interval after the change`, value: String(tick.length), goal: `≤ ${GOAL_CALLS}`, met: tick.length <= GOAL_CALLS },
      { metric: "  by path", value: Object.entries(tickCalls).map(([p, n]) => `${p.replace(/^\/(v1\.0|beta)/, "")} ${n}`).join(", ") + `; token ${tokensAfter}` },
      { metric: "changes arrived (a disabled user, a new user, a deleted user gone), s after the change", value: picked ? r2((arrivedAt - changeAt) / 1000).toString() : "no" },
    ],
    {
      users: N,
      first_calls: firstCalls,
      token_requests: firstTokens,
      spawn_to_first_request_s: (firstAt - spawnWall) / 1000,
      sync_s: (syncEnd - firstAt) / 1000,
      sync_and_evaluation_s: syncAndEval,
      peak_rss_first_pass_mib: peakFirst,
      peak_rss_mib: mem.peak,
      rss_after_sync_mib: atSyncEnd,
      rss_at_done_mib: atDone.rss,
      rss_after_tick_mib: after.rss,
      tick_calls: tick.length,
      tick_calls_by_path: tickCalls,
      changes_arrived: picked,
      changes_arrived_after_s: (arrivedAt - changeAt) / 1000,
    },
  );
} finally {
  mem.stop();
  await agent.stop();
  await fake.stop();
  cleanup(dir);
}
