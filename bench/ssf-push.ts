/**
 * Shared Signals push at a sustained rate through the real agent: RS256-signed CAEP
 * `device-compliance-change` SETs POSTed to /v1/signals/ssf/{transmitter} (RFC 8935) at a fixed
 * offered rate (open loop: the next SET goes out on schedule, whatever the previous one's answer),
 * and for each the time until its decision is in the audit log.
 *
 * Subjects take turns: SET k goes to subject k mod N and alternates not-compliant / compliant per
 * subject, so every SET changes that subject's decision (full_access ↔ deny) exactly once and
 * "0 lost" is checkable: the k-th decision of a subject answers its k-th SET. Decisions are read by
 * tailing `<data_dir>/audit.jsonl` from this process (the agent's own `ts`, so the clock is the
 * agent's), which puts no load on the agent. RSS is sampled from /proc every 500 ms.
 *
 * SETs are signed before the run (RSA signing is the transmitter's cost, not vigil's).
 * Env: BENCH_SSF_RATE (default 1000 per s), BENCH_SSF_SECONDS (30), BENCH_SSF_SUBJECTS (2000),
 * BENCH_SSF_WARMUP (2 s, sent first and not counted).
 */
import { generateKeyPairSync, createPublicKey, randomBytes, sign } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { Agent as Dispatcher, request } from "undici";
import { Agent, TOKEN, cleanup, freePort, memory, metricSum, nowMs, r2, report, sleep, summary, tempDir, writeConfig, type Row } from "./lib.ts";

const RATE = Number(process.env.BENCH_SSF_RATE ?? 1000);
const SECONDS = Number(process.env.BENCH_SSF_SECONDS ?? 30);
const SUBJECTS = Number(process.env.BENCH_SSF_SUBJECTS ?? 2000);
const WARMUP_S = Number(process.env.BENCH_SSF_WARMUP ?? 2);
const GOAL_P99_MS = 50;
const ISSUER = "https://idp.bench.example";
const AUDIENCE = "https://vigil.bench.example/receiver";
const PUSH_AUTH = "Bearer bench-push-credential-0123456789abcdef";
const EVENT = "https://schemas.openid.net/secevent/caep/event-type/device-compliance-change";

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const { kty, n, e } = createPublicKey(privateKey).export({ format: "jwk" });
const jwks = JSON.stringify({ keys: [{ kty, n, e, kid: "bench-1", use: "sig", alg: "RS256" }] });

async function serveJwks(): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => res.writeHead(200, { "content-type": "application/json" }).end(jwks));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`, server };
}

function config(dir: string, port: number, jwksUrl: string): string {
  // A file inventory: a static one holds at most 1,000 subjects.
  const subjects = Array.from({ length: SUBJECTS }, (_, i) => ({ id: `u${i}`, kind: "user", attributes: { email: `u${i}@bench.example` } }));
  writeFileSync(join(dir, "users.json"), JSON.stringify(subjects));
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:${port}", token: "${TOKEN}", max_connections: 1024}
  metrics: {listen: "127.0.0.1:0"}
  log_level: info
inventories:
  - {type: file, path: users.json}
checks:
  device_compliance: {on_unknown: ignore}
identity_perimeter:
  require_location_check: false
  require_managed_device: false
  require_mfa: false
  continuous_verification: {interval: 1h, checks: [device_compliance]}
signals:
  ssf:
    transmitters:
      - name: idp
        issuer: ${ISSUER}
        jwks_uri: ${jwksUrl}
        manage: false
        delivery: push
        push: {endpoint_url: "http://127.0.0.1:${port}/v1/signals/ssf/idp", authorization: "${PUSH_AUTH}"}
        audience: ${AUDIENCE}
        algorithms: [RS256]
`;
}

interface Planned {
  readonly subject: string;
  readonly status: "not-compliant" | "compliant";
  readonly jws: string;
}

function plan(total: number): Planned[] {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const header = enc({ alg: "RS256", typ: "secevent+jwt", kid: "bench-1" });
  const visits = new Map<string, number>();
  const iat = Math.floor(Date.now() / 1000);
  const out: Planned[] = [];
  for (let k = 0; k < total; k++) {
    const subject = `u${k % SUBJECTS}`;
    const v = visits.get(subject) ?? 0;
    visits.set(subject, v + 1);
    const status = v % 2 === 0 ? "not-compliant" : "compliant";
    const claims = {
      iss: ISSUER,
      jti: randomBytes(12).toString("hex"),
      iat,
      aud: AUDIENCE,
      sub_id: { format: "email", email: `${subject}@bench.example` },
      events: { [EVENT]: { current_status: status, previous_status: status === "compliant" ? "not-compliant" : "compliant", initiating_entity: "policy", event_timestamp: iat } },
    };
    const input = `${header}.${enc(claims)}`;
    out.push({ subject, status, jws: `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}` });
  }
  return out;
}

/** Decision lines of the audit log as they are appended. */
function tailDecisions(file: string): { poll(): { subject: string; access: string; ts: number }[]; close(): void } {
  let offset = 0;
  let rest = "";
  let fd: number | undefined;
  const buf = Buffer.alloc(1 << 20);
  return {
    poll() {
      const out: { subject: string; access: string; ts: number }[] = [];
      try {
        fd ??= openSync(file, "r");
      } catch {
        return out;
      }
      for (;;) {
        const read = readSync(fd, buf, 0, buf.length, offset);
        if (read <= 0) break;
        offset += read;
        rest += buf.toString("utf8", 0, read);
        let i: number;
        while ((i = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, i);
          rest = rest.slice(i + 1);
          if (!line.includes('"type":"decision"')) continue;
          const entry = JSON.parse(line) as { subject: string; access: string; ts: string };
          out.push({ subject: entry.subject, access: entry.access, ts: Date.parse(entry.ts) });
        }
      }
      return out;
    },
    close() {
      if (fd !== undefined) closeSync(fd);
    },
  };
}

const dir = tempDir("ssf");
const { url: jwksUrl, server: jwksServer } = await serveJwks();
const port = await freePort();
const total = Math.round(RATE * (SECONDS + WARMUP_S));
const warmup = Math.round(RATE * WARMUP_S);
const signStart = nowMs();
const sets = plan(total);
const signSeconds = (nowMs() - signStart) / 1000;
const agent = new Agent(writeConfig(dir, config(dir, port, jwksUrl)));
const dispatcher = new Dispatcher({ connections: 64, keepAliveTimeout: 60_000, pipelining: 1 });
try {
  await agent.started(60_000);
  // The initial evaluation of every subject writes SUBJECTS decisions first; the run starts after them.
  const tail = tailDecisions(join(dir, "var", "audit.jsonl"));
  for (;;) {
    const status = (await (await fetch(`${agent.api}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { idle: boolean };
    if (status.idle) break;
    await sleep(100);
  }
  tail.poll();
  const idle = memory(agent.pid);
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(memory(agent.pid).rss), 500);

  const sentAt = new Array<number>(total);
  const acceptedMs = new Array<number>(total);
  const statuses = new Map<number, number>();
  const pending: Promise<void>[] = [];
  const perSubject = new Map<string, number[]>();
  sets.forEach((s, k) => {
    const list = perSubject.get(s.subject);
    if (list) list.push(k);
    else perSubject.set(s.subject, [k]);
  });
  const decisions: { subject: string; access: string; ts: number }[] = [];
  const tailer = setInterval(() => decisions.push(...tail.poll()), 10);

  const cpu0 = cpuSeconds(agent.pid);
  const start = nowMs();
  const wallStart = Date.now();
  let k = 0;
  while (k < total) {
    const due = start + (k * 1000) / RATE;
    const now = nowMs();
    if (now < due) {
      await sleep(Math.min(5, due - now));
      continue;
    }
    while (k < total && start + (k * 1000) / RATE <= nowMs()) {
      const i = k++;
      const t0 = nowMs();
      sentAt[i] = wallStart + (t0 - start);
      pending.push(
        request(`http://127.0.0.1:${port}/v1/signals/ssf/idp`, { method: "POST", dispatcher, headers: { authorization: PUSH_AUTH, "content-type": "application/secevent+jwt" }, body: sets[i]!.jws })
          .then(async (res) => {
            await res.body.text();
            acceptedMs[i] = nowMs() - t0;
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          })
          .catch(() => void statuses.set(0, (statuses.get(0) ?? 0) + 1)),
      );
    }
  }
  const sendSeconds = (nowMs() - start) / 1000;
  const cpuShare = (cpuSeconds(agent.pid) - cpu0) / sendSeconds;
  await Promise.all(pending);
  const drainStart = nowMs();
  while (decisions.length < total && nowMs() - drainStart < 60_000) await sleep(50);
  clearInterval(tailer);
  decisions.push(...tail.poll());
  clearInterval(sampler);
  tail.close();

  // The k-th decision of a subject answers its k-th SET.
  const latency: number[] = [];
  let lost = 0;
  let wrong = 0;
  const bySubject = new Map<string, { access: string; ts: number }[]>();
  for (const d of decisions) {
    const list = bySubject.get(d.subject);
    if (list) list.push(d);
    else bySubject.set(d.subject, [d]);
  }
  for (const [subject, ks] of perSubject) {
    const got = bySubject.get(subject) ?? [];
    ks.forEach((i, visit) => {
      const d = got[visit];
      if (!d) return void lost++;
      if (d.access !== (sets[i]!.status === "not-compliant" ? "deny" : "full_access")) wrong++;
      if (i >= warmup) latency.push(d.ts - sentAt[i]!);
    });
  }
  const accepted = acceptedMs.filter((_, i) => i >= warmup);
  const text = await (await fetch(`${agent.metrics}/metrics`)).text();
  const agentAccepted = metricSum(text, 'vigil_ssf_sets_total{transmitter="idp",result="accepted"}');
  const s = summary(latency);
  const a = summary(accepted);
  const offered = (total - warmup) / SECONDS;
  const rows: Row[] = [
    { metric: "offered rate (SETs/s), measured send rate", value: `${RATE}, ${r2(total / sendSeconds)}` },
    { metric: "SETs sent (warm-up not counted)", value: `${total} (${warmup})` },
    { metric: "answers", value: [...statuses].map(([code, count]) => `${code === 0 ? "error" : code}: ${count}`).join(", ") },
    { metric: "SET sent → decision recorded p50 / p90 (ms)", value: `${s.p50} / ${s.p90}` },
    { metric: "SET sent → decision recorded p99 (ms)", value: `${s.p99}`, goal: `≤ ${GOAL_P99_MS} ms`, met: s.p99 <= GOAL_P99_MS },
    { metric: "SET sent → decision recorded max (ms)", value: `${s.max}` },
    { metric: "SET sent → 202 p50 / p99 (ms)", value: `${r2(a.p50)} / ${r2(a.p99)}` },
    { metric: "lost (no 202 or no decision) / wrong decision", value: `${lost + (total - (statuses.get(202) ?? 0))} / ${wrong}`, goal: "0", met: lost === 0 && wrong === 0 && statuses.get(202) === total },
    { metric: "agent CPU while sending (share of one core), per SET (ms)", value: `${Math.round(cpuShare * 100)} %, ${r2((cpuShare * 1000) / RATE)}` },
    { metric: "RSS idle before / max during / last (MiB)", value: `${r2(idle.rss)} / ${r2(Math.max(...rss))} / ${r2(rss[rss.length - 1] ?? NaN)}` },
    { metric: "agent: vigil_ssf_sets_total{result=accepted}", value: String(agentAccepted) },
    { metric: "signing the SETs beforehand (s)", value: `${r2(signSeconds)}` },
  ];
  report("ssf-push", rows, {
    rate: RATE,
    seconds: SECONDS,
    subjects: SUBJECTS,
    offered_per_s: offered,
    send_rate_per_s: total / sendSeconds,
    statuses: Object.fromEntries(statuses),
    decision_latency_ms: s,
    accepted_ms: a,
    lost,
    wrong,
    rss_mib: { idle: idle.rss, max: Math.max(...rss), last: rss[rss.length - 1] ?? null, samples: rss.length },
    agent_accepted: agentAccepted,
    agent_cpu_share: cpuShare,
  });
} finally {
  await dispatcher.close();
  await agent.stop();
  jwksServer.close();
  cleanup(dir);
}
