import { join, resolve } from "node:path";
import { closeSync, copyFileSync, existsSync, ftruncateSync, openSync, readFileSync, readSync, statSync, writeSync } from "node:fs";
import { createHash } from "node:crypto";
import { loadOrExplain, parse, out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./common.ts";
import { auditVerifier, offsetAfter, openCheckpoint, verifyAudit, type AuditHead, type AuditKey, type AuditReport } from "../store/audit.ts";
import type { LoadedConfig } from "../config/load.ts";
import { resolveAuditKey } from "../store/audit-key.ts";
import { openDatabase, DATABASE_FILE } from "../db/sqlite.ts";
import { DataDirLock } from "../db/lock.ts";
import { AUDIT_FILE, EmbeddedStore, auditHead } from "../store/embedded.ts";
import { auditKey } from "../store/audit.ts";
import { VigilError } from "../errors.ts";
import { TAIL_OPTIONS, tail, tailHelp, tailOptionsHelp } from "./audit-tail.ts";
import { REMOTE_OPTIONS } from "./remote.ts";

const FILE_OPTIONS = { config: { type: "string", short: "c" }, "data-dir": { type: "string" }, "key-file": { type: "string" }, checkpoints: { type: "string" }, json: { type: "boolean" } } as const;
/** The options `audit` accepts, over its subcommands (its help lists each). */
export const options = { ...FILE_OPTIONS, ...REMOTE_OPTIONS, ...TAIL_OPTIONS } as const;

export const help = `Usage: vigil audit verify   [-c FILE | --data-dir DIR] [--key-file FILE] [--checkpoints FILE] [--json]
       vigil audit truncate [-c FILE | --data-dir DIR] [--key-file FILE]
${tailHelp}

verify: checks the audit log (<data_dir>/audit.jsonl) line by line: well-formed
canonical JSON (no duplicate keys), seq and prev links, each line's HMAC under the
audit key (agent.audit.key from the config, else the generated key file), that the
file ends at the head recorded in vigil.db, and, with --checkpoints, that every
checkpoint the agent shipped off the host (syslog or HTTP lines, one per line) is
in the log. Prints what it checked and every problem with its line number.
In cluster mode (agent.mode: cluster in the config) it checks the chain the
replicas keep in Redis the same way, a line number being the entry's seq.
Exit 0 when intact, 1 when not, 2 on usage errors.

truncate: when the agent refuses to start because lines were appended past the
recorded head, moves those lines to <data_dir>/audit.jsonl.quarantine-<time> and
records that it did so (count, bytes, sha256) in the log. The agent must be
stopped. Exit 0 when done or nothing was past the head.

${tailOptionsHelp}`;

export const audit: Command = async (argv) => {
  // tail asks the running agent; verify and truncate read the files themselves.
  if (argv[0] === "tail") return tail(argv.slice(1));
  const { values, positionals } = parse(
    argv,
    FILE_OPTIONS,
    true,
  );
  const sub = positionals[0];
  if ((sub !== "verify" && sub !== "truncate") || positionals.length > 1) throw new UsageError('audit takes one subcommand: "verify", "truncate" or "tail"');
  const config = values["data-dir"] ? undefined : await loadOrExplain(values.config);
  if (config?.raw.agent.mode === "cluster") {
    if (sub === "truncate") throw new UsageError("cluster mode appends the audit chain atomically in Redis: there are never lines past the head to truncate");
    const key = values["key-file"] ? auditKey(readFileSync(resolve(values["key-file"]), "utf8").replace(/\r?\n$/, "")) : auditKey(config.raw.agent.audit.key!);
    return verifyCluster(config, key, values.checkpoints, values.json === true);
  }
  const dataDir = values["data-dir"] ? resolve(values["data-dir"]) : resolve(config!.raw.agent.data_dir);
  const file = join(dataDir, AUDIT_FILE);
  if (!existsSync(file)) throw new UsageError(`no audit log at ${file}`);
  const key = values["key-file"]
    ? auditKey(readFileSync(resolve(values["key-file"]), "utf8").replace(/\r?\n$/, ""))
    : resolveAuditKey({ configured: config?.raw.agent.audit.key, dataDir, create: false })?.key;
  if (sub === "truncate") return truncate(dataDir, file, key);

  let head: AuditHead | undefined;
  if (existsSync(join(dataDir, DATABASE_FILE))) {
    const db = openDatabase(dataDir);
    try {
      head = auditHead(db);
    } finally {
      db.close();
    }
  }
  const { checkpoints, badCheckpoints } = readCheckpoints(values.checkpoints, key);
  const result = verifyAudit(file, { head, key, checkpoints });
  return report(file, result, key, badCheckpoints, values.json === true);
};

/** The signed checkpoints in a file (one syslog line or JSON object per line), and those that do not open. */
function readCheckpoints(path: string | undefined, key: AuditKey | undefined): { checkpoints: AuditHead[]; badCheckpoints: string[] } {
  const checkpoints: AuditHead[] = [];
  const badCheckpoints: string[] = [];
  if (!path) return { checkpoints, badCheckpoints };
  if (!key) throw new UsageError("--checkpoints needs the audit key to check their signatures");
  readFileSync(resolve(path), "utf8")
    .split("\n")
    .forEach((line, i) => {
      const start = line.indexOf("{");
      if (start === -1) return;
      let raw: unknown;
      try {
        raw = JSON.parse(line.slice(start));
      } catch {
        return;
      }
      const opened = openCheckpoint(key, raw);
      if (opened.ok) checkpoints.push(opened.head);
      else badCheckpoints.push(`checkpoint on line ${i + 1} of ${path}: ${opened.reason}`);
    });
  return { checkpoints, badCheckpoints };
}

function report(file: string, result: AuditReport, key: AuditKey | undefined, badCheckpoints: readonly string[], json: boolean): number {
  const ok = result.ok && badCheckpoints.length === 0;
  if (json) out(JSON.stringify({ file, ...result, ok, checkpoint_problems: badCheckpoints }, null, 2));
  else {
    out(`${file}: ${result.entries} entries (${result.keyed} keyed), ${ok ? "chain intact" : `${result.problems.length + badCheckpoints.length} problem(s)`}`);
    out(key ? `key id ${key.id}` : "no audit key found: keyed lines cannot be verified (set agent.audit.key or pass --key-file)");
    out("checked:");
    for (const c of result.checked) out(`  - ${c}`);
    for (const p of result.problems) out(`  line ${p.line}: ${p.problem}`);
    for (const p of badCheckpoints) out(`  ${p}`);
  }
  return ok ? EXIT_OK : EXIT_FAIL;
}

/**
 * Cluster mode: the chain the replicas keep in Redis, read a thousand lines at a time and checked
 * by the same rules as the file (a line number is the entry's seq), ending at the head recorded
 * beside it; a line kept past that head is a problem too.
 */
async function verifyCluster(config: LoadedConfig, key: AuditKey, checkpointsFile: string | undefined, json: boolean): Promise<number> {
  const { openRedis, waitReady, closeRedis, describeRedis } = await import("../db/redis/connection.ts");
  const { RedisStore } = await import("../store/redis.ts");
  const c = config.raw.agent.cluster;
  const settings = c.redis!;
  const label = `${describeRedis(settings)} (prefix ${c.prefix})`;
  const redis = openRedis(settings, "command", "vigil:audit-verify");
  redis.on("error", () => undefined);
  try {
    const timeout = AbortSignal.timeout(settings.connect_timeout);
    await waitReady(redis, { signal: timeout }).catch(() => {
      throw new VigilError("VIGIL_ERR_UNAVAILABLE", `cannot reach Redis at ${describeRedis(settings)} within ${settings.connect_timeout} ms`);
    });
    const store = new RedisStore(redis, { prefix: c.prefix, key });
    const state = await store.auditState();
    const { checkpoints, badCheckpoints } = readCheckpoints(checkpointsFile, key);
    const v = auditVerifier(label, { head: state.head, key, checkpoints });
    try {
      for await (const { seq, text } of store.auditLines()) v.line({ text: text ?? "", line: seq, terminated: true });
    } catch (err) {
      v.fail(err);
    }
    let result = v.finish();
    if (state.lines > state.head.seq) {
      result = { ...result, ok: false, problems: [...result.problems, { line: state.head.seq, problem: `${state.lines - state.head.seq} line(s) are kept past the recorded head seq ${state.head.seq}: written outside vigil` }] };
    }
    return report(label, result, key, badCheckpoints, json);
  } finally {
    await closeRedis(redis);
  }
}

/** Moves the lines past the recorded head aside and records the move, keyed, in the log. */
async function truncate(dataDir: string, file: string, key: AuditKey | undefined): Promise<number> {
  if (!key) throw new UsageError("truncate needs the audit key (agent.audit.key, or --key-file): it records what it moved in the keyed log");
  if (!existsSync(join(dataDir, DATABASE_FILE))) throw new UsageError(`no ${DATABASE_FILE} in ${dataDir}: there is no recorded head to cut back to`);
  const lock = DataDirLock.acquire(dataDir);
  const db = openDatabase(dataDir);
  try {
    const head = auditHead(db) ?? { seq: 0, hash: "0".repeat(64) };
    const cut = offsetAfter(file, head.seq);
    if (cut === undefined) {
      throw new VigilError("VIGIL_ERR_AUDIT_CORRUPT", `the recorded head seq ${head.seq} is not in ${file}: the log was cut or rewritten, not appended to; see \`vigil audit verify\``);
    }
    const size = statSync(file).size;
    if (size <= cut) {
      out(`${file}: nothing past the recorded head seq ${head.seq}`);
      return EXIT_OK;
    }
    const moved = Buffer.alloc(size - cut);
    const fd = openSync(file, "r+");
    let aside: string;
    try {
      readSync(fd, moved, 0, moved.length, cut);
      aside = `${file}.quarantine-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      copyFileSync(file, aside);
      // The copy holds the whole log as it was; cut it down to just the quarantined lines.
      const afd = openSync(aside, "r+");
      try {
        ftruncateSync(afd, 0);
        writeSync(afd, moved, 0, moved.length, 0);
      } finally {
        closeSync(afd);
      }
      ftruncateSync(fd, cut);
    } finally {
      closeSync(fd);
    }
    const lines = moved.toString("utf8").split("\n").filter((l) => l !== "").length;
    const store = new EmbeddedStore(db, dataDir, { key });
    await store.start();
    try {
      await store.appendAudit([
        { type: "audit_tail_quarantined", after_seq: head.seq, lines, bytes: moved.length, sha256: createHash("sha256").update(moved).digest("hex"), file: aside, by: "vigil audit truncate" },
      ]);
    } finally {
      await store.stop();
    }
    out(`${file}: moved ${lines} line(s) (${moved.length} bytes) past seq ${head.seq} to ${aside}; recorded in the log`);
    return EXIT_OK;
  } finally {
    db.close();
    lock.release();
  }
}
