/**
 * device_compliance at scale: 100,000 devices served by the Intune contract server (the fake of
 * test/helpers/fakes/intune.ts: token endpoint, bearer checks, $select, $top=1000, @odata.nextLink
 * paging) to the real agent, whose Intune inventory lists them as subjects and whose
 * device_compliance check judges every one of them from the same scan.
 *
 * Measured: spawn → every device has a decision (the sum of vigil_evaluations_total reaches N), the
 * scan alone (first to last managedDevices page served), the evaluation after the scan, the agent's
 * peak RSS (VmHWM), and the Graph calls made (goal: 100 list calls of 1,000, not 100,000).
 *
 * The fake runs in this process; the agent in its own. Env: BENCH_DEVICES (default 100000),
 * BENCH_PAGE (default 1000).
 */
import { join } from "node:path";
import { Agent, MemorySampler, TOKEN, cleanup, freePort, metricSum, nowMs, r2, report, sleep, tempDir, writeConfig } from "./lib.ts";
import { FakeIntune } from "../test/helpers/fakes/intune.ts";

const N = Number(process.env.BENCH_DEVICES ?? 100_000);
const PAGE = Number(process.env.BENCH_PAGE ?? 1000);
const GOAL_S = 10;
const GOAL_RSS_MIB = 250;
const DEADLINE_MS = 180_000;

const fake = new FakeIntune();
await fake.start();
// A realistic tenant: most devices compliant, some not, a few in grace or stale.
const now = Date.now();
fake.addDevices(N, (i) =>
  i % 50 === 0 ? { complianceState: "noncompliant" } : i % 97 === 0 ? { complianceState: "inGracePeriod", complianceGracePeriodExpirationDateTime: new Date(now + 86_400_000).toISOString() } : i % 211 === 0 ? { lastSyncDateTime: new Date(now - 3 * 86_400_000).toISOString() } : {},
);

const dir = tempDir("devices");
const apiPort = await freePort();
const metricsPort = await freePort();
const conn = `
    tenant_id: ${fake.tenant}
    client_id: ${fake.clientId}
    auth: {client_secret: "${fake.clientSecret}"}
    login_url: "${fake.loginUrl}"
    graph_url: "${fake.graphUrl}"
    page_size: ${PAGE}`;
const file = writeConfig(
  dir,
  `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${apiPort}", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:${metricsPort}"}
  log_level: warn
inventories:
  - type: intune${conn}
checks:
  device_compliance:
    timeout: 60s
    sources:
      - type: intune${conn.replace(/\n {4}/g, "\n        ")}
identity_perimeter:
  applies_to: {kind: device}
  require_mfa: false
  require_managed_device: false
  require_location_check: false
  continuous_verification: {interval: 1h, checks: [device_compliance]}
`,
);

const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
const agent = new Agent(file);
/** (wall ms, RSS MiB) every 20 ms: what the agent held when the scan ended, before the evaluation. */
const mem = new MemorySampler(() => agent.pid);
const sample = () => mem.sample();
const pageTimes: number[] = [];
mem.every(20);

try {
  let doneAt = NaN;
  let evaluated = 0;
  while (nowMs() - agent.spawnedAt < DEADLINE_MS) {
    if (agent.child.exitCode !== null) throw new Error(`vigil exited: ${agent.stderr.join("")}`);
    try {
      const text = await (await fetch(metricsUrl)).text();
      evaluated = metricSum(text, "vigil_evaluations_total");
    } catch {
      // not listening yet
    }
    sample();
    if (evaluated >= N) {
      doneAt = nowMs();
      break;
    }
    await sleep(50);
  }
  if (!(evaluated >= N)) throw new Error(`only ${evaluated} of ${N} evaluated after ${DEADLINE_MS} ms`);
  const atDone = sample()!;
  // The figures are the agent's own work: stop sampling before this bench asks the API for anything.
  mem.stop();
  await sleep(1_000);
  const after = sample()!;
  const lists = fake.listRequests();
  for (const r of lists) pageTimes.push(r.at);
  // Request times are wall-clock ms of this process; convert the spawn instant (monotonic) to wall time.
  const spawnWall = Date.now() - (nowMs() - agent.spawnedAt);
  const scanStart = Math.min(...pageTimes);
  const scanEnd = Math.max(...pageTimes);
  const doneWall = Date.now() - (nowMs() - doneAt);
  const fromSpawn = (doneAt - agent.spawnedAt) / 1000;
  const scanAndEval = (doneWall - scanStart) / 1000;
  const settings = fake.handled.filter((r) => r.path === "/v1.0/deviceManagement").length;
  const atScanEnd = mem.timeline.find(([t]) => t >= scanEnd + 200)?.[1] ?? NaN;
  const subjectsPage = await (await fetch(`http://127.0.0.1:${apiPort}/v1/subjects?limit=1&access=full_access`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { total: number };
  report(
    "device-compliance",
    [
      { metric: `Intune devices`, value: String(N) },
      { metric: "managedDevices list calls (pages)", value: String(lists.length), goal: `${Math.ceil(N / PAGE)}`, met: lists.length === Math.ceil(N / PAGE) },
      { metric: "other Graph calls (tenant setting) / token requests", value: `${settings} / ${fake.tokenRequests}` },
      { metric: "spawn → first page asked (s)", value: r2((scanStart - spawnWall) / 1000).toString() },
      { metric: "scan: first → last page (s)", value: r2((scanEnd - scanStart) / 1000).toString() },
      { metric: "full scan + evaluation: first page → all evaluated (s)", value: r2(scanAndEval).toString(), goal: `≤ ${GOAL_S} s`, met: scanAndEval <= GOAL_S },
      { metric: `spawn → all ${N} evaluated (s)`, value: r2(fromSpawn).toString() },
      { metric: "devices with full_access (compliant, fresh)", value: String(subjectsPage.total) },
      { metric: "peak RSS, VmHWM (MiB)", value: r2(mem.peak).toString(), goal: `≤ ${GOAL_RSS_MIB} MiB`, met: mem.peak <= GOAL_RSS_MIB },
      { metric: "RSS 0.2 s after the last page / at done / 1 s after (MiB)", value: `${r2(atScanEnd)} / ${r2(atDone.rss)} / ${r2(after.rss)}` },
    ],
    {
      devices: N,
      page_size: PAGE,
      list_calls: lists.length,
      settings_calls: settings,
      token_requests: fake.tokenRequests,
      spawn_to_first_page_s: (scanStart - spawnWall) / 1000,
      scan_s: (scanEnd - scanStart) / 1000,
      scan_and_evaluation_s: scanAndEval,
      spawn_to_done_s: fromSpawn,
      full_access: subjectsPage.total,
      peak_rss_mib: mem.peak,
      rss_after_scan_mib: atScanEnd,
      rss_at_done_mib: atDone.rss,
      rss_after_mib: after.rss,
    },
  );
} finally {
  mem.stop();
  await agent.stop();
  await fake.stop();
  cleanup(dir);
}
