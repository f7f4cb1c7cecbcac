import { test } from "node:test";
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { createServer } from "node:http";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { loadConfig } from "../../src/config/load.ts";
import { Agent } from "../../src/engine/agent.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { auditKey, openCheckpoint, verifyAudit, type AuditHead } from "../../src/store/audit.ts";
import { until } from "../helpers/wait.ts";

const KEY = "c".repeat(48);

test("signed checkpoints of the audit head reach syslog and HTTP, and catch a rewrite of the whole data_dir", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-cp-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const datagrams: string[] = [];
  const udp = createSocket("udp4");
  udp.on("message", (m) => datagrams.push(m.toString("utf8")));
  udp.bind(0, "127.0.0.1");
  await once(udp, "listening");
  t.after(() => udp.close());
  const posted: unknown[] = [];
  const http = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      posted.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  t.after(() => http.close());
  const file = join(dir, "vigil.yaml");
  writeFileSync(
    file,
    `agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "checkpoint-token-0123456789"}
  metrics: {listen: false}
  audit:
    key: "${KEY}"
    checkpoint: {syslog: "127.0.0.1:${(udp.address() as AddressInfo).port}", url: "http://127.0.0.1:${(http.address() as AddressInfo).port}/anchor", interval: 1s}
inventories: [{type: static, subjects: [{id: w1, kind: workload}, {id: w2, kind: workload}]}]
checks: {anomaly_detection: {on_unknown: ignore}}
communication_policies:
  - {source: w1, destination: w2, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
`,
  );
  const agent = new Agent(await loadConfig(file), { logger: silentLogger() });
  await agent.start();
  let head: AuditHead;
  try {
    await agent.idle();
    await agent.service.acceptSignal({ subject: "w1", check: "anomaly_detection", status: "fail", risk: "high" });
    await agent.idle();
    const last = (await agent.service.readAudit({ limit: 1 }))[0]!;
    head = { seq: last.seq, hash: last.hash };
  } finally {
    await agent.stop();
  }
  const key = auditKey(KEY);
  // UDP: the last datagram may land just after the stop.
  await until(() => datagrams.some((d) => d.includes(`"seq":${head.seq},`)));
  const fromSyslog = datagrams.map((d) => {
    assert.match(d, /^<110>1 \S+ \S+ vigil \d+ audit_checkpoint - \{/);
    return openCheckpoint(key, JSON.parse(d.slice(d.indexOf("{"))));
  });
  const fromHttp = posted.map((p) => openCheckpoint(key, p));
  for (const c of [...fromSyslog, ...fromHttp]) assert.ok(c.ok, JSON.stringify(c));
  assert.ok(fromSyslog.some((c) => c.ok && c.head.seq === head.seq && c.head.hash === head.hash), "the final head went out over syslog");
  assert.ok(fromHttp.some((c) => c.ok && c.head.seq === head.seq && c.head.hash === head.hash), "the final head went out over HTTP too");

  // Someone with the key's reach cut back the log and the recorded head together: only the checkpoint knows.
  const path = join(dir, "var", "audit.jsonl");
  const lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
  writeFileSync(path, lines.slice(0, -1).map((l) => l + "\n").join(""));
  const anchors = fromSyslog.flatMap((c) => (c.ok ? [c.head] : []));
  const r = verifyAudit(path, { key, checkpoints: anchors });
  assert.equal(r.ok, false);
  assert.ok(r.problems.some((p) => /checkpoint at seq \d+ is past the end/.test(p.problem)), JSON.stringify(r.problems));
});
