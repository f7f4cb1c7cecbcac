import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { AgentProcess, TOKEN, tempConfig, runCli } from "../helpers/agent-process.ts";
import { entryHash } from "../../src/store/audit.ts";
import { canonicalJSON } from "../../src/util/canonical-json.ts";

function config(dir: string, dataDir = join(dir, "var")): string {
  return `
agent:
  data_dir: ${dataDir}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
inventories:
  - type: static
    subjects:
      - {id: frontend, kind: workload}
      - {id: api, kind: workload}
checks:
  anomaly_detection: {on_unknown: ignore}
communication_policies:
  - {name: frontend-to-api, source: frontend, destination: api, port: 443, continuous_verification: {interval: 1h, checks: [anomaly_detection]}}
`;
}

/** A config dir whose agent's generated audit key lands in its own $XDG_CONFIG_HOME. */
function setup(): { dir: string; file: string; env: NodeJS.ProcessEnv; dataDir: string } {
  const { dir, file } = tempConfig((d) => config(d));
  return { dir, file, env: { XDG_CONFIG_HOME: join(dir, "xdg") }, dataDir: join(dir, "var") };
}

/** Runs an agent, denies frontend by a signal and stops: the log then holds signal and decision lines. */
async function history(s: ReturnType<typeof setup>): Promise<void> {
  const agent = await AgentProcess.start(s.file, s.env);
  try {
    const res = await agent.request("POST", "/v1/signals", { subject: "frontend", check: "anomaly_detection", status: "fail", risk: "high" });
    assert.equal(res.status, 202);
    await agent.idle();
  } finally {
    assert.equal(await agent.stop(), 0);
  }
}

function lines(path: string): string[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l !== "");
}

async function startFails(s: ReturnType<typeof setup>): Promise<{ code: number | null; stderr: string }> {
  const r = await runCli(["run", "-c", s.file], s.env);
  return { code: r.code, stderr: r.stderr };
}

describe("state that cannot fork or lie (real processes)", () => {
  it("a second agent on the same data_dir exits 2 naming the first one's pid", async () => {
    const s = setup();
    const first = await AgentProcess.start(s.file, s.env);
    try {
      const second = await runCli(["run", "-c", s.file], s.env);
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`in use by another vigil process \\(pid ${first.child.pid}\\)`));
      // The first one is unharmed and still answering.
      assert.equal((await first.request("GET", "/v1/status")).status, 200);
    } finally {
      await first.stop("SIGKILL");
    }
    // Killed without a chance to clean up: the kernel released the lock, so the next start works.
    const again = await AgentProcess.start(s.file, s.env);
    assert.equal(await again.stop(), 0);
    rmSync(s.dir, { recursive: true, force: true });
  });

  it("audit verify detects a rewritten chain with an updated head, and a duplicate key", async () => {
    const s = setup();
    await history(s);
    const path = join(s.dataDir, "audit.jsonl");
    const good = await runCli(["audit", "verify", "-c", s.file], s.env);
    assert.equal(good.code, 0, good.stdout);
    assert.match(good.stdout, /HMAC-SHA256 of every keyed line under key id [0-9a-f]{16}/);
    const original = readFileSync(path, "utf8");

    // Rewrite: the decision says full_access; every hash after it and the recorded head are recomputed.
    let prev = "0".repeat(64);
    const forged = lines(path).map((line) => {
      const e = JSON.parse(line) as Record<string, unknown>;
      if (e["type"] === "decision") e["access"] = "full_access";
      e["prev"] = prev;
      delete e["hash"];
      prev = entryHash(e);
      return `${canonicalJSON(e).slice(0, -1)},"hash":"${prev}"}\n`;
    });
    writeFileSync(path, forged.join(""));
    const db = new DatabaseSync(join(s.dataDir, "vigil.db"));
    db.prepare("UPDATE audit_head SET hash = ? WHERE id = 1").run(prev);
    db.close();
    const rewritten = await runCli(["audit", "verify", "-c", s.file], s.env);
    assert.equal(rewritten.code, 1, rewritten.stdout);
    assert.match(rewritten.stdout, /HMAC does not verify/);

    writeFileSync(path, original);
    const db2 = new DatabaseSync(join(s.dataDir, "vigil.db"));
    db2.prepare("UPDATE audit_head SET hash = ? WHERE id = 1").run(JSON.parse(lines(path).at(-1) as string).hash);
    db2.close();
    const ls = lines(path);
    const i = ls.findIndex((l) => l.startsWith('{"access":"deny"'));
    ls[i] = (ls[i] as string).replace('{"access":"deny"', '{"access":"full_access","access":"deny"');
    writeFileSync(path, ls.map((l) => l + "\n").join(""));
    const dup = await runCli(["audit", "verify", "-c", s.file], s.env);
    assert.equal(dup.code, 1, dup.stdout);
    assert.match(dup.stdout, new RegExp(`line ${i + 1}: duplicate key "access"`));
    rmSync(s.dir, { recursive: true, force: true });
  });

  it("lines appended past the head stop the start until vigil audit truncate moves them aside", async () => {
    const s = setup();
    await history(s);
    const path = join(s.dataDir, "audit.jsonl");
    const last = JSON.parse(lines(path).at(-1) as string) as Record<string, unknown>;
    const extra: Record<string, unknown> = { type: "decision", policy: "frontend-to-api", subject: "frontend", access: "full_access", seq: (last["seq"] as number) + 1, ts: last["ts"], prev: last["hash"] };
    appendFileSync(path, `${canonicalJSON(extra).slice(0, -1)},"hash":"${entryHash(extra)}"}\n`);

    const refused = await startFails(s);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /1 line\(s\) past the recorded head .*vigil audit truncate/);

    const cut = await runCli(["audit", "truncate", "-c", s.file], s.env);
    assert.equal(cut.code, 0, cut.stderr);
    assert.match(cut.stdout, /moved 1 line\(s\)/);
    const verified = await runCli(["audit", "verify", "-c", s.file], s.env);
    assert.equal(verified.code, 0, verified.stdout);
    const entry = JSON.parse(lines(path).at(-1) as string) as Record<string, unknown>;
    assert.equal(entry["type"], "audit_tail_quarantined");
    assert.equal(entry["lines"], 1);
    const agent = await AgentProcess.start(s.file, s.env);
    assert.equal(await agent.stop(), 0);
    rmSync(s.dir, { recursive: true, force: true });
  });

  it("a missing or damaged vigil.db stops the agent instead of starting afresh", async () => {
    const s = setup();
    await history(s);
    const db = join(s.dataDir, "vigil.db");
    const saved = mkdtempSync(join(tmpdir(), "vigil-db-"));
    cpSync(db, join(saved, "vigil.db"));

    rmSync(db);
    const missing = await startFails(s);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /vigil\.db is missing, but the audit log .* records earlier decisions/);

    // Damage: the third page (a table's root) overwritten with garbage. The page size is the
    // header's big-endian 16-bit value at offset 16 (1 stands for 65536).
    const bytes = readFileSync(join(saved, "vigil.db"));
    const field = bytes.readUInt16BE(16);
    const pageSize = field === 1 ? 65_536 : field;
    bytes.fill(0x5a, pageSize * 2, pageSize * 3);
    writeFileSync(db, bytes);
    const damaged = await startFails(s);
    assert.equal(damaged.code, 1);
    assert.match(damaged.stderr, /VIGIL_ERR_STORE|is damaged|not a database|malformed/);
    assert.match(damaged.stderr, /restore .*vigil\.db from a backup/);
    rmSync(saved, { recursive: true, force: true });
    rmSync(s.dir, { recursive: true, force: true });
  });
});
