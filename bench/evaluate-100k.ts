/**
 * First full evaluation of a large inventory: a file inventory of 100,000 users (mfa, managed device,
 * country DE) under the identity perimeter (mfa, managed_device, location, session_age: attribute
 * checks). Starts the real agent with log_level warn and measures how long until every subject has a
 * decision, the evaluation rate, and memory.
 *
 * "vigil started" is an info line, so with log_level warn it is not printed: the API and metrics ports
 * are chosen before spawn and "ready" is the first 200 from GET /readyz (polled every 5 ms), which the
 * agent sets in the same synchronous step as it would log "vigil started".
 * "Done" is the first metrics scrape (every 50 ms) whose sum of vigil_evaluations_total reaches N.
 * How long each of those scrapes waits for its answer shows how the agent answers while it works.
 * Memory: VmHWM (peak) and VmRSS from /proc/<pid>/status, sampled with each scrape, and 2 s after done.
 *
 * Goals (issue "Footprint", with the runtime settings as shipped, lib.ts `shippedRuntimeEnv`): 100,000 subjects all evaluated within 3 s with a peak RSS of at most 250 MiB;
 * 300,000 within 9 s and at most 450 MiB. Other counts print the figures without a goal.
 *
 * Env: BENCH_SUBJECTS (default 100000; 300000 for the larger goal). BENCH_SECOND_PASS=1 then reloads the
 * agent (SIGHUP: the inventory read again and every subject evaluated again, now against the stored
 * states and results) and times that pass too, from the signal until the counter reaches 2N: the cost
 * of a pass in steady state, which the first pass does not show.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, MemorySampler, TOKEN, cleanup, freePort, metricSum, nowMs, percentile, r2, report, shippedRuntimeEnv, sleep, tempDir, writeConfig } from "./lib.ts";

const N = Number(process.env.BENCH_SUBJECTS ?? 100_000);
/** Seconds from spawn until every subject is evaluated, and peak RSS (MiB), by subject count. */
const GOALS: Record<number, { s: number; mib: number }> = { 100_000: { s: 3, mib: 250 }, 300_000: { s: 9, mib: 450 } };
const goal = GOALS[N];
const DEADLINE_MS = 120_000;

const dir = tempDir("eval");
const subjects = Array.from({ length: N }, (_, i) => ({
  id: `user-${String(i).padStart(6, "0")}`,
  kind: "user",
  identity: `user-${i}@example.org`,
  attributes: { mfa: true, device_managed: true, country: "DE" },
}));
writeFileSync(join(dir, "users.json"), JSON.stringify(subjects));
const apiPort = await freePort();
const metricsPort = await freePort();
const file = writeConfig(
  dir,
  `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${apiPort}", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:${metricsPort}"}
  log_level: warn
inventories:
  - type: file
    path: users.json
identity_perimeter:
  require_mfa: true
  require_managed_device: true
  require_location_check: true
  allowed_locations: [DE, FR, NL]
  continuous_verification: {interval: 1h}
`,
);

const api = `http://127.0.0.1:${apiPort}`;
const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
const agent = new Agent(file, shippedRuntimeEnv());
const mem = new MemorySampler(() => agent.pid);
const sample = () => mem.sample();

try {
  // Ready: first /readyz 200. A request the kernel accepted but the agent answers late shows how long
  // its event loop was busy: the longest such wait is reported as the API stall.
  let readyAt = NaN;
  let stall = 0;
  let listeningAt = NaN;
  while (nowMs() - agent.spawnedAt < DEADLINE_MS) {
    if (agent.child.exitCode !== null) throw new Error(`vigil exited: ${agent.stderr.join("")}`);
    const t = nowMs();
    try {
      const res = await fetch(api + "/readyz");
      await res.arrayBuffer();
      stall = Math.max(stall, nowMs() - t);
      if (Number.isNaN(listeningAt)) listeningAt = t;
      if (res.status === 200) {
        readyAt = nowMs();
        break;
      }
    } catch {
      // not listening yet
    }
    sample();
    await sleep(5);
  }
  // Done: evaluations counter reaches N.
  let doneAt = NaN;
  let evaluated = 0;
  const progress: { t_s: number; evaluated: number }[] = [];
  // How long each scrape waits for its answer during the pass: the agent's responsiveness while it works.
  const scrapeWaits: number[] = [];
  while (nowMs() - agent.spawnedAt < DEADLINE_MS) {
    const asked = nowMs();
    const text = await (await fetch(metricsUrl)).text();
    scrapeWaits.push(nowMs() - asked);
    evaluated = metricSum(text, "vigil_evaluations_total");
    sample();
    progress.push({ t_s: r2((nowMs() - agent.spawnedAt) / 1000), evaluated });
    if (evaluated >= N) {
      doneAt = nowMs();
      break;
    }
    await sleep(50);
  }
  if (!(evaluated >= N)) throw new Error(`only ${evaluated} of ${N} evaluated after ${DEADLINE_MS} ms`);
  const atDone = sample()!;
  await sleep(2_000);
  const after = sample()!;
  let secondPass: number | undefined;
  if (process.env.BENCH_SECOND_PASS === "1") {
    const sentAt = nowMs();
    agent.child.kill("SIGHUP");
    for (;;) {
      if (nowMs() - sentAt > DEADLINE_MS) throw new Error("the reload's pass did not finish");
      if (metricSum(await (await fetch(metricsUrl)).text(), "vigil_evaluations_total") >= 2 * N) break;
      await sleep(50);
    }
    secondPass = (nowMs() - sentAt) / 1000;
  }
  // Decisions per access level, from the agent (the vigil_subjects gauge is refreshed every 5 s).
  const subj = await (await fetch(api + "/v1/subjects?limit=1&access=full_access", { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { total: number };

  const longestScrape = scrapeWaits.length > 0 ? Math.max(...scrapeWaits) : NaN;
  const fromSpawn = (doneAt - agent.spawnedAt) / 1000;
  const fromReady = (doneAt - readyAt) / 1000;
  // The agent's API accepts connections before the pass and answers only after it: rate over
  // [first accepted /readyz request, done], which includes the initial tick (so it is a lower bound).
  const rate = N / ((doneAt - listeningAt) / 1000);
  report(
    "evaluate-100k",
    [
      { metric: "spawn → ready (/readyz 200) (s)", value: r2((readyAt - agent.spawnedAt) / 1000).toString() },
      { metric: `spawn → all ${N} evaluated (s)`, value: r2(fromSpawn).toString(), ...(goal ? { goal: `≤ ${goal.s} s`, met: fromSpawn <= goal.s } : {}) },
      { metric: `ready → all ${N} evaluated (s)`, value: r2(fromReady).toString() },
      { metric: "spawn → API accepting connections (s)", value: r2((listeningAt - agent.spawnedAt) / 1000).toString() },
      { metric: "evaluations / s (API accepting → done)", value: Math.round(rate).toString() },
      { metric: "longest /readyz wait before ready: API stall (s)", value: r2(stall / 1000).toString() },
      { metric: "/metrics scrape during the pass, p50 / p99 / max (ms)", value: `${r2(percentile(scrapeWaits, 50))} / ${r2(percentile(scrapeWaits, 99))} / ${r2(longestScrape)}` },
      { metric: "subjects with full_access", value: String(subj.total) },
      { metric: "peak RSS, VmHWM (MiB)", value: r2(mem.peak).toString(), ...(goal ? { goal: `≤ ${goal.mib} MiB`, met: mem.peak <= goal.mib } : {}) },
      { metric: "RSS at done (MiB)", value: r2(atDone.rss).toString() },
      { metric: "RSS 2 s after done (MiB)", value: r2(after.rss).toString() },
      ...(secondPass === undefined ? [] : [{ metric: `reload (SIGHUP) → all ${N} evaluated again (s)`, value: r2(secondPass).toString() }]),
    ],
    {
      subjects: N,
      spawn_to_ready_s: (readyAt - agent.spawnedAt) / 1000,
      spawn_to_listening_s: (listeningAt - agent.spawnedAt) / 1000,
      spawn_to_done_s: fromSpawn,
      ready_to_done_s: fromReady,
      evaluations_per_s: rate,
      api_stall_s: stall / 1000,
      scrape_wait_ms: { p50: percentile(scrapeWaits, 50), p99: percentile(scrapeWaits, 99), max: longestScrape, n: scrapeWaits.length },
      full_access: subj.total,
      peak_rss_mib: mem.peak,
      rss_at_done_mib: atDone.rss,
      rss_after_mib: after.rss,
      ...(secondPass === undefined ? {} : { second_pass_s: secondPass }),
      progress: progress.filter((_, i) => i % 10 === 0 || i === progress.length - 1),
    },
  );
} finally {
  await agent.stop();
  cleanup(dir);
}
