/**
 * The commands that talk to a running agent, each driven through the real bin/vigil against a real
 * `vigil run`: tables and -o json/yaml, --watch and --follow receiving a change, and how the address
 * and token are found (config, generated token file, --addr/VIGIL_ADDR, --token-file/VIGIL_TOKEN).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { AgentProcess, BIN, TOKEN, runCli, tempConfig } from "../helpers/agent-process.ts";
import { WebhookReceiver } from "../helpers/webhook-receiver.ts";
import { until } from "../helpers/wait.ts";

const SECRET = "whsec-cli-0123456789abcdef";
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/;

function config(dir: string, opts: { hook: string; listen?: string; token?: boolean; extra?: string; users?: string[] }): string {
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "${opts.listen ?? "127.0.0.1:0"}"${opts.token === false ? "" : `, token: "${TOKEN}"`}}
  metrics: {listen: false}
inventories:
  - type: static
    subjects:
      - {id: frontend, kind: workload, identity: "spiffe://example.org/ns/web/sa/frontend", labels: {app: frontend}}
      - {id: api, kind: workload, identity: "spiffe://example.org/ns/api/sa/api"}
      - {id: carol, kind: user, attributes: {mfa: true, device_managed: true, country: DE}}
${(opts.users ?? []).map((id) => `      - {id: ${id}, kind: user, attributes: {mfa: true, device_managed: true, country: DE}}`).join("\n")}
checks:
  anomaly_detection: {on_unknown: ignore}
communication_policies:
  - name: frontend-to-api
    source: frontend
    destination: api
    port: 443
    continuous_verification: {interval: 1h, checks: [anomaly_detection]}
identity_perimeter:
  require_location_check: false
enforcement:
  deny:
    - {type: webhook, name: notify, url: "${opts.hook}", secret: "${SECRET}", timeout: 2s}
  retry: {attempts: 2, delay: 100ms, max_delay: 200ms}
  # Failed work waits for an operator in these tests: the scheduled re-drive is an hour away.
  redrive: {delay: 1h, max_delay: 1h}
${opts.extra ?? ""}`;
}

/** A long-running CLI command (--watch, --follow) whose stdout lines are collected as they come. */
class CliProcess {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = "";
  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let buf = "";
    this.child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    this.child.stderr!.setEncoding("utf8").on("data", (c: string) => (this.stderr += c));
  }
  async waitFor(pred: (lines: string[]) => boolean, ms = 10_000): Promise<void> {
    try {
      await until(() => pred(this.lines), ms);
    } catch (err) {
      throw new Error(`${(err as Error).message}; stdout: ${JSON.stringify(this.lines.slice(-10))}; stderr: ${this.stderr}`);
    }
  }
  /** Ctrl-C, as a user stops it; returns the exit code. */
  async interrupt(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = once(this.child, "exit");
    this.child.kill("SIGINT");
    const [code] = (await exited) as [number | null];
    return code;
  }
}

const addrOf = (agent: AgentProcess) => agent.api.replace(/^http:\/\//, "");

describe("the CLI against a running agent", () => {
  const receiver = new WebhookReceiver(SECRET);
  let agent: AgentProcess;
  let file: string;
  let cli: (args: string[], env?: NodeJS.ProcessEnv) => ReturnType<typeof runCli>;

  before(async () => {
    const hook = await receiver.start();
    ({ file } = tempConfig((dir) => config(dir, { hook })));
    agent = await AgentProcess.start(file);
    await agent.idle();
    // Address and token from the environment: the config is not read (that is tested below), which keeps each call quick.
    cli = (args, env = {}) => runCli(args, { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: TOKEN, ...env });
  });

  after(async () => {
    await agent?.stop();
    await receiver.stop();
  });

  it("status: a table, and the same facts as JSON", async () => {
    const table = await cli(["status"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^Agent: +${agent.api.replace(/[.]/g, "\\.")} — ready$`, "m"));
    assert.match(table.stdout, /^Subjects: +3 \(2 full_access, 0 read_only, 1 deny, 0 pending\)$/m);
    assert.match(table.stdout, /^Paused: +none$/m);
    assert.match(table.stdout, /^Unreconciled: +none$/m);
    assert.match(table.stdout, /^POLICY +SUBJECTS +FULL_ACCESS +READ_ONLY +DENY +PENDING +ENFORCEMENT$/m);
    assert.match(table.stdout, /^frontend-to-api +1 +1 +0 +0 +0 +active$/m);
    const json = await cli(["status", "-o", "json"]);
    assert.equal(json.code, 0);
    const s = JSON.parse(json.stdout);
    assert.equal(s.ready, true);
    assert.deepEqual(s.reasons, []);
    assert.deepEqual(s.subjects, { total: 3, full_access: 2, read_only: 0, deny: 1, pending: 0 });
    assert.deepEqual(s.policies.map((p: { name: string }) => p.name), ["frontend-to-api", "identity-perimeter"]);
    assert.deepEqual(s.unreconciled, { total: 0, oldest_failed_at: null });
    const yaml = parseYaml((await cli(["status", "-o", "yaml"])).stdout);
    assert.equal(yaml.ready, true);
    assert.deepEqual(yaml.subjects, s.subjects);
  });

  it("subjects: table, JSON, YAML and filters", async () => {
    const table = await cli(["subjects"]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^ID +KIND +ACCESS +STATUS +POLICIES +DECIDED$/);
    assert.match(table.stdout, /^frontend +workload +full_access +evaluated +frontend-to-api=full_access +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
    assert.match(table.stdout, /^api +workload +deny +evaluated +- +-$/m, "covered by no policy: default_security_rule");
    const json = JSON.parse((await cli(["subjects", "-o", "json"])).stdout);
    assert.equal(json.total, 3);
    assert.deepEqual(json.subjects.map((s: { id: string }) => s.id).sort(), ["api", "carol", "frontend"]);
    assert.match(json.subjects.find((s: { id: string }) => s.id === "carol").policies[0].decided_at, ISO);
    const yaml = parseYaml((await cli(["subjects", "-o", "yaml", "--kind", "user"])).stdout);
    assert.deepEqual(yaml.subjects.map((s: { id: string }) => s.id), ["carol"]);
    const denied = JSON.parse((await cli(["subjects", "-o", "json", "--access", "deny"])).stdout);
    assert.deepEqual(denied.subjects.map((s: { id: string }) => s.id), ["api"]);
    const byPolicy = JSON.parse((await cli(["subjects", "-o", "json", "--policy", "identity-perimeter"])).stdout);
    assert.deepEqual(byPolicy.subjects.map((s: { id: string }) => s.id), ["carol"]);
    const bad = await cli(["subjects", "--access", "nope"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--access must be one of full_access, read_only, deny/);
  });

  it("subjects --watch prints the list again when a decision changes", async () => {
    const watch = new CliProcess(["subjects", "--watch", "-o", "json", "-c", file], { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: "" });
    try {
      await watch.waitFor((l) => l.length >= 1);
      const first = JSON.parse(watch.lines[0]!);
      assert.equal(first.subjects.find((s: { id: string }) => s.id === "carol").access, "full_access");
      const signal = await cli(["signal", "carol", "--check", "mfa", "--status", "fail", "--reason", "watch test"]);
      assert.equal(signal.code, 0, signal.stderr);
      await watch.waitFor((l) => l.some((line) => JSON.parse(line).subjects.find((s: { id: string }) => s.id === "carol").access === "deny"));
      await cli(["signal", "carol", "--check", "mfa", "--status", "pass", "--wait"]);
      await watch.waitFor((l) => JSON.parse(l.at(-1)!).subjects.find((s: { id: string }) => s.id === "carol").access === "full_access");
      assert.equal(await watch.interrupt(), 0, "Ctrl-C ends a watch cleanly");
    } finally {
      await watch.interrupt();
    }
    // The table form, to a pipe: each version of the list follows the last.
    const table = new CliProcess(["subjects", "--watch", "--kind", "user"], { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: TOKEN });
    try {
      await table.waitFor((l) => l.some((line) => /^carol +user +full_access /.test(line)));
      await cli(["signal", "carol", "--check", "mfa", "--status", "fail", "--wait"]);
      await table.waitFor((l) => l.some((line) => /^carol +user +deny /.test(line)));
      assert.equal(table.lines.filter((line) => /^ID +KIND/.test(line)).length >= 2, true, "the table was printed again");
      await cli(["signal", "carol", "--check", "mfa", "--status", "pass", "--wait"]);
    } finally {
      await table.interrupt();
    }
  });

  it("signal: accepted and evaluated; --wait reports the access it led to; usage errors exit 2", async () => {
    const start = receiver.deliveries.length;
    const r = await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "fail", "--risk", "high", "--ttl", "1h", "--reason", "beaconing", "--wait"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Accepted: +signal [0-9a-f-]{36}: anomaly_detection=fail for frontend$/m);
    assert.match(r.stdout, /^Evaluated by: +frontend-to-api$/m);
    assert.match(r.stdout, /^Access: +deny$/m);
    await receiver.waitForDeliveries(start + 1);
    const json = await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "fail", "-o", "json"]);
    const body = JSON.parse(json.stdout);
    assert.equal(body.accepted, true);
    assert.deepEqual(body.policies, ["frontend-to-api"]);
    assert.equal((await cli(["signal", "frontend", "--check", "anomaly_detection"])).code, 2, "--status is required");
    assert.equal((await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "broken"])).code, 2);
    assert.equal((await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "fail", "--ttl", "soon"])).code, 2);
    const unknown = await cli(["signal", "ghost", "--check", "anomaly_detection", "--status", "fail"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no inventory knows subject "ghost"/);
    await agent.idle();
  });

  it("subject: decisions with reasons and evidence, results and recent audit; JSON times are ISO 8601", async () => {
    const table = await cli(["subject", "frontend"]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^Subject: +frontend \(workload\)$/m);
    assert.match(table.stdout, /^Identity: +spiffe:\/\/example\.org\/ns\/web\/sa\/frontend$/m);
    assert.match(table.stdout, /^Access: +deny$/m);
    assert.match(table.stdout, /^ {2}frontend-to-api: deny \(risk high, generation 2, decided \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, /m);
    assert.match(table.stdout, /^ {4}SIGNAL: /m);
    assert.match(table.stdout, /^ {4}evidence: \{"target":"deny"/m);
    assert.match(table.stdout, /^ {2}anomaly_detection +fail +- +signal +\d{4}-/m, "the latest result: the second signal, without a risk");
    assert.match(table.stdout, /^Recent audit entries:$/m);
    assert.match(table.stdout, /decision +frontend-to-api: full_access → deny \(risk high, signal\) SIGNAL$/m);
    assert.match(table.stdout, /signal +anomaly_detection=fail risk high for 1h from api: beaconing$/m);
    const json = JSON.parse((await cli(["subject", "frontend", "-o", "json", "-n", "3"])).stdout);
    assert.equal(json.subject.id, "frontend");
    assert.equal(json.access, "deny");
    assert.match(json.decisions[0].decided_at, ISO, "times are printed as ISO 8601, as the API sends them");
    assert.match(json.results[0].observed_at, ISO);
    assert.equal(json.audit.length, 3);
    assert.ok(json.audit.every((e: { subject: string }) => e.subject === "frontend"));
    const missing = await cli(["subject", "ghost"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^vigil: unknown subject: ghost$/m);
  });

  it("audit tail: the newest entries as lines or JSON; --follow prints new ones as they are written", async () => {
    const table = await cli(["audit", "tail", "-n", "3"]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^TIME +SEQ +TYPE +SUBJECT +DETAIL$/);
    assert.equal(lines.length, 4);
    assert.ok(lines.slice(1).every((l) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +\d+ +\w+/.test(l)), table.stdout);
    const json = JSON.parse((await cli(["audit", "tail", "-n", "5", "-o", "json", "--type", "signal"])).stdout);
    assert.ok(json.entries.length > 0 && json.entries.every((e: { type: string }) => e.type === "signal"));
    const seqs = json.entries.map((e: { seq: number }) => e.seq);
    assert.deepEqual(seqs, [...seqs].sort((a: number, b: number) => a - b), "oldest first");

    const follow = new CliProcess(["audit", "tail", "--follow", "-n", "1", "-o", "json", "--subject", "frontend"], { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: TOKEN });
    try {
      await follow.waitFor((l) => l.length >= 1);
      const last = JSON.parse(follow.lines[0]!).seq as number;
      const r = await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "pass", "--reason", "follow test"]);
      assert.equal(r.code, 0, r.stderr);
      await follow.waitFor((l) => l.some((line) => JSON.parse(line).type === "decision" && JSON.parse(line).access === "full_access"));
      const entries = follow.lines.map((line) => JSON.parse(line) as { seq: number; subject: string; type: string; reason?: string });
      assert.ok(entries.every((e) => e.subject === "frontend"), "the filter holds on the stream");
      assert.ok(entries.some((e) => e.type === "signal" && e.reason === "follow test"));
      const s = entries.map((e) => e.seq);
      assert.ok(s[0] === last && s.every((v, i) => i === 0 || v > s[i - 1]!), `each entry once, in order: ${s}`);
      assert.equal(await follow.interrupt(), 0);
    } finally {
      await follow.interrupt();
    }
    await agent.idle();
    // The table form follows too, under one header.
    const lines2 = new CliProcess(["audit", "tail", "-f", "-n", "0", "--type", "signal", "-c", file], { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: "" });
    try {
      await lines2.waitFor((l) => l.length >= 1);
      assert.match(lines2.lines[0]!, /^TIME +SEQ +TYPE +SUBJECT +DETAIL$/);
      await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "pass", "--reason", "line test"]);
      await lines2.waitFor((l) => l.some((line) => / signal +frontend +anomaly_detection=pass for 2h from api: line test$/.test(line)));
    } finally {
      await lines2.interrupt();
    }
    await agent.idle();
  });

  it("enforcement failed, retry (by id and --all) and status", async () => {
    receiver.respond = () => 503;
    try {
      await cli(["signal", "frontend", "--check", "anomaly_detection", "--status", "fail", "--reason", "receiver down"]);
      await until(async () => JSON.parse((await cli(["enforcement", "failed", "-o", "json"])).stdout).total === 1, 15_000);
      const table = await cli(["enforcement", "failed"]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^ID +POLICY +SUBJECT +ACTION +ACCESS +ATTEMPTS +NEXT RETRY +LAST ERROR$/m);
      assert.match(table.stdout, /^[0-9a-f]+ +frontend-to-api +frontend +apply notify \(webhook\) +deny +2 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in \d+[hm]\w*\) +.*503/m);
      const { items } = JSON.parse((await cli(["enforcement", "failed", "-o", "json"])).stdout);
      const id = items[0].id as string;
      assert.match(items[0].first_failed_at, ISO);
      const status = JSON.parse((await cli(["status", "-o", "json"])).stdout);
      assert.equal(status.unreconciled.total, 1);
      assert.match(status.unreconciled.oldest_failed_at, ISO);
      // Under a second after the failure it is "just now", as every "ago" people read (not "894ms ago").
      assert.match((await cli(["status"])).stdout, /^Unreconciled: +1, oldest failed \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+s ago|just now)\) \(vigil enforcement failed\)$/m);

      // Still down: a retry by id runs again and fails again.
      const start = receiver.deliveries.length;
      const byId = await cli(["enforcement", "retry", id, "unknown-id"]);
      assert.equal(byId.code, 0, byId.stderr);
      assert.match(byId.stdout, new RegExp(`^retried: ${id}$`, "m"));
      assert.match(byId.stdout, /^nothing to retry \(achieved, superseded or unknown\): unknown-id$/m);
      await receiver.waitForDeliveries(start + 1);
      await until(async () => {
        const [item] = JSON.parse((await cli(["enforcement", "failed", "-o", "json"])).stdout).items;
        return item?.status === "failed" && item.attempts === 4;
      }, 15_000);

      receiver.respond = () => 200;
      const all = JSON.parse((await cli(["enforcement", "retry", "--all", "-o", "json"])).stdout);
      assert.deepEqual(all, { retried: [id], in_progress: [], not_failed: [] });
      await until(async () => JSON.parse((await cli(["enforcement", "failed", "-o", "json"])).stdout).total === 0, 15_000);
      assert.equal((await cli(["enforcement", "failed"])).stdout.trim(), "no failed enforcement");
    } finally {
      receiver.respond = () => 200;
    }
    assert.equal((await cli(["enforcement", "retry"])).code, 2, "ids or --all");
    assert.equal((await cli(["enforcement", "retry", "x", "--all"])).code, 2);
    assert.equal((await cli(["enforcement", "nope"])).code, 2);
    const guards = await cli(["enforcement", "status"]);
    assert.match(guards.stdout, /^POLICY +ENFORCEMENT +ACTIONS +WINDOW$/m);
    assert.match(guards.stdout, /^frontend-to-api +active +\d+\/20 +10m$/m);
    await agent.idle();
  });

  it("version and --version; version is in the help", async () => {
    const v = await runCli(["version", "-o", "json"]);
    assert.equal(v.code, 0);
    assert.deepEqual(Object.keys(JSON.parse(v.stdout)), ["version", "node", "platform"]);
    const plain = await runCli(["--version"]);
    assert.equal(plain.stdout.trim(), JSON.parse(v.stdout).version);
    const help = await runCli(["--help"]);
    assert.match(help.stdout, /^ {2}version +print vigil's version$/m);
    assert.match(help.stdout, /^ {2}-v, --version +print vigil's version$/m);
    assert.match((await runCli(["version"])).stdout, /^vigil \d+\.\d+\.\d+ \(node v\d+/);
  });
});

describe("finding the agent and its token", () => {
  const receiver = new WebhookReceiver(SECRET);
  let hook: string;
  before(async () => {
    hook = await receiver.start();
  });
  after(async () => {
    await receiver.stop();
  });

  it("from the config alone: agent.api.listen and the generated <data_dir>/api-token", async () => {
    const port = await freePort();
    const { dir, file } = tempConfig((d) => config(d, { hook, listen: `127.0.0.1:${port}`, token: false }));
    const agent = await AgentProcess.start(file);
    try {
      const r = await runCli(["status", "-o", "json", "-c", file], { VIGIL_ADDR: "", VIGIL_TOKEN: "" });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).ready, true);
      // VIGIL_CONFIG names the config as -c does.
      assert.equal((await runCli(["subjects"], { VIGIL_CONFIG: file, VIGIL_ADDR: "", VIGIL_TOKEN: "" })).code, 0);
      // --token-file and VIGIL_TOKEN take precedence; a wrong token is refused with a way out.
      const wrong = join(dir, "wrong-token");
      writeFileSync(wrong, "not-the-token-0123456789\n");
      const refused = await runCli(["status", "-c", file, "--token-file", wrong], { VIGIL_ADDR: "", VIGIL_TOKEN: "" });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /the agent refused the token .*--token-file, VIGIL_TOKEN, agent\.api\.token or <data_dir>\/api-token/);
      assert.ok(!refused.stderr.includes("not-the-token-0123456789"), "the token is not echoed");
      assert.equal((await runCli(["status", "-c", file], { VIGIL_ADDR: "", VIGIL_TOKEN: "not-the-token-0123456789" })).code, 1);
      // An address given beats the config's.
      const closed = await freePort();
      const elsewhere = await runCli(["status", "-c", file, "--addr", `127.0.0.1:${closed}`], { VIGIL_ADDR: "", VIGIL_TOKEN: "" });
      assert.equal(elsewhere.code, 1);
      assert.match(elsewhere.stderr, new RegExp(`cannot reach the agent at http://127\\.0\\.0\\.1:${closed}: connection refused`));
    } finally {
      await agent.stop();
    }
    const down = await runCli(["status", "-c", file], { VIGIL_ADDR: "", VIGIL_TOKEN: "" });
    assert.equal(down.code, 1);
    assert.match(down.stderr, new RegExp(`cannot reach the agent at http://127\\.0\\.0\\.1:${port}: connection refused \\(is "vigil run" running there\\?\\)`));
  });

  it("--addr, VIGIL_ADDR, --token-file and VIGIL_TOKEN without any config", async () => {
    const { dir, file } = tempConfig((d) => config(d, { hook }));
    const agent = await AgentProcess.start(file);
    try {
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, `${TOKEN}\n`);
      const none = join(dir, "no-such-config.yaml");
      const byFlags = await runCli(["status", "-o", "json", "--addr", agent.api, "--token-file", tokenFile, "-c", none], { VIGIL_ADDR: "", VIGIL_TOKEN: "" });
      assert.equal(byFlags.code, 0, byFlags.stderr);
      const byEnv = await runCli(["subjects", "-o", "json"], { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: TOKEN, VIGIL_CONFIG: none });
      assert.equal(byEnv.code, 0, byEnv.stderr);
      assert.equal(JSON.parse(byEnv.stdout).total, 3);
    } finally {
      await agent.stop();
    }
  });

  it("a token on the command line is refused, and a config listening on port 0 needs --addr", async () => {
    for (const args of [["status", "--token", TOKEN], ["subjects", `--token=${TOKEN}`]]) {
      const r = await runCli(args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /a token is never taken on the command line .*use --token-file FILE or the VIGIL_TOKEN environment variable/);
      assert.ok(!r.stderr.includes(TOKEN));
    }
    const { file } = tempConfig((d) => config(d, { hook }));
    const r = await runCli(["status", "-c", file], { VIGIL_ADDR: "", VIGIL_TOKEN: "" });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /agent\.api\.listen in .* has port 0 \(any free port\): name the address the agent listens on with --addr or VIGIL_ADDR/);
  });
});

describe("pausing and resuming enforcement from the CLI", () => {
  const receiver = new WebhookReceiver(SECRET);
  let agent: AgentProcess;
  let file: string;
  before(async () => {
    const hook = await receiver.start();
    ({ file } = tempConfig((dir) => config(dir, { hook, users: ["dave"], extra: "  limits: {max_actions: 1, window: 1h, auto_resume: false}" })));
    agent = await AgentProcess.start(file);
    await agent.idle();
  });
  after(async () => {
    await agent?.stop();
    await receiver.stop();
  });

  it("status and enforcement status show the pause; enforcement resume lifts it and sends what waited", async () => {
    const cli = (args: string[]) => runCli(args, { VIGIL_ADDR: addrOf(agent), VIGIL_TOKEN: TOKEN });
    const start = receiver.deliveries.length;
    // One downgrade per hour: carol's deny goes out, dave's waits.
    await cli(["signal", "carol", "--check", "mfa", "--status", "fail", "--wait"]);
    await receiver.waitForDeliveries(start + 1);
    await cli(["signal", "dave", "--check", "mfa", "--status", "fail", "--wait"]);
    const s = JSON.parse((await cli(["status", "-o", "json"])).stdout);
    const paused = s.paused as string[];
    assert.deepEqual(paused, ["identity-perimeter"], JSON.stringify(s));
    assert.equal(receiver.deliveries.length, start + 1, "dave's deny waits");
    assert.deepEqual(s.policies.find((p: { name: string }) => p.name === "identity-perimeter"), {
      name: "identity-perimeter",
      subjects: { total: 2, full_access: 0, read_only: 0, deny: 2, pending: 0 },
      paused: true,
    });
    assert.match((await cli(["status"])).stdout, new RegExp(`^Paused: +${paused[0]} \\(vigil enforcement resume\\)$`, "m"));
    const guards = await cli(["enforcement", "status", "--policy", paused[0]!]);
    assert.match(guards.stdout, new RegExp(`^${paused[0]} +paused since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ \\(.*\\) +1/1 +1h$`, "m"));
    assert.equal((await cli(["enforcement", "status", "--policy", "frontend-to-api"])).stdout.match(/ active /g)?.length, 1);
    const resumed = await cli(["enforcement", "resume", "--policy", paused[0]!]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(resumed.stdout.trim(), `resumed: ${paused[0]}`);
    await receiver.waitForDeliveries(start + 2);
    assert.deepEqual(JSON.parse((await cli(["enforcement", "resume", "-o", "json"])).stdout), { resumed: [] });
    assert.equal((await cli(["enforcement", "resume"])).stdout.trim(), "nothing was paused");
    const unknown = await cli(["enforcement", "resume", "--policy", "nope"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /nope/);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
