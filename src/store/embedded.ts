import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { resultSlot } from "../policy/model.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { VigilError } from "../errors.ts";
import type { AccessLevel, CheckResult } from "../policy/model.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { AuditLog, type AuditHead } from "./audit.ts";
import type { AuditEntry, AuditEvent, AuditQuery, DecidedGeneration, DesiredEnforcement, EnforcementEvent, EnforcementKey, EnforcementRecord, StateStore, StoredState } from "./contract.ts";
import { EnforcementTable } from "./embedded-enforcement.ts";
import { BatchInsert, ensureSchema, storeError, transaction } from "../db/sqlite.ts";

/** File name of the audit log inside the data directory. */
export const AUDIT_FILE = "audit.jsonl";

const SCHEMA_VERSION = 1;

/**
 * The JSON in `data` is the source of truth; the other columns exist for lookups only. The partial index
 * holds just the rows whose decision has not been handed to enforcement, so `unenforced()` reads only those.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS states (
  policy TEXT NOT NULL,
  subject TEXT NOT NULL,
  access TEXT NOT NULL,
  generation INTEGER NOT NULL,
  enforced_generation INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (policy, subject)
);
CREATE INDEX IF NOT EXISTS states_by_subject ON states (subject);
CREATE INDEX IF NOT EXISTS states_by_access ON states (policy, access);
CREATE INDEX IF NOT EXISTS states_unenforced ON states (policy, subject) WHERE enforced_generation < generation;
CREATE TABLE IF NOT EXISTS results (
  subject TEXT NOT NULL,
  "check" TEXT NOT NULL,
  source TEXT NOT NULL,
  observed_at INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (subject, "check", source)
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
`;

/** Largest IN list in one statement. */
const IN_CHUNK = 500;
/** Prepared statements kept per store. */
const STATEMENT_CACHE = 256;

/** Head of the audit chain as last recorded in the database, for `audit verify`. */
export function auditHead(db: DatabaseSync): AuditHead | undefined {
  try {
    const row = db.prepare("SELECT seq, hash FROM audit_head WHERE id = 1").get() as { seq: number; hash: string } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : undefined;
  } catch {
    // No audit_head table yet: nothing was ever recorded.
    return undefined;
  }
}

/** States, latest check results and the audit log, on the local SQLite database and `<dataDir>/audit.jsonl`. */
export class EmbeddedStore implements StateStore {
  readonly #db: DatabaseSync;
  readonly #dataDir: string;
  readonly #audit: AuditLog;
  #stopped = false;
  readonly #statements = new Map<string, StatementSync>();
  #putStates: BatchInsert | undefined;
  #putResults: BatchInsert | undefined;
  readonly #enforcement: EnforcementTable;

  constructor(db: DatabaseSync, dataDir: string, options: { clock?: Clock } = {}) {
    this.#db = db;
    this.#dataDir = dataDir;
    this.#audit = new AuditLog(join(dataDir, AUDIT_FILE), { clock: options.clock ?? systemClock });
    ensureSchema(db, "store", SCHEMA_VERSION, DDL);
    this.#enforcement = new EnforcementTable(db);
  }

  /**
   * Opens the audit log and reconciles the recorded head with it: a log that runs ahead of the head
   * (stopped between the two writes) moves the head forward; a log that ends before the head, or differs
   * at it, is refused (`VIGIL_ERR_AUDIT_CORRUPT`) rather than continued, which would hide the truncation.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#openAudit();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#audit.close();
  }

  async getState(policy: string, subject: string): Promise<StoredState | undefined> {
    const row = this.#run("read a state", () => this.#stmt("SELECT data FROM states WHERE policy = ? AND subject = ?").get(policy, subject)) as
      | { data: string }
      | undefined;
    return row ? (JSON.parse(row.data) as StoredState) : undefined;
  }

  async getStates(policy: string, subjects: readonly string[]): Promise<Map<string, StoredState>> {
    const out = new Map<string, StoredState>();
    const unique = [...new Set(subjects)];
    this.#run("read states", () => {
      for (let i = 0; i < unique.length; i += IN_CHUNK) {
        const chunk = unique.slice(i, i + IN_CHUNK);
        const rows = this.#stmt(`SELECT subject, data FROM states WHERE policy = ? AND subject IN (${marks(chunk.length)})`).all(policy, ...chunk) as {
          subject: string;
          data: string;
        }[];
        for (const row of rows) out.set(row.subject, JSON.parse(row.data) as StoredState);
      }
    });
    return out;
  }

  async listStates(filter: { policy?: string; subject?: string } = {}): Promise<StoredState[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.policy !== undefined) {
      where.push("policy = ?");
      params.push(filter.policy);
    }
    if (filter.subject !== undefined) {
      where.push("subject = ?");
      params.push(filter.subject);
    }
    const sql = `SELECT data FROM states${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY policy, subject`;
    const rows = this.#run("list states", () => this.#stmt(sql).all(...params)) as { data: string }[];
    return rows.map((row) => JSON.parse(row.data) as StoredState);
  }

  async putStates(states: readonly StoredState[]): Promise<void> {
    if (states.length === 0) return;
    const rows = states.map((s) => [s.decision.policy, s.decision.subject, s.decision.access, s.decision.generation, s.enforced_generation, JSON.stringify(s)] as const);
    this.#run("write states", () => {
      this.#putStates ??= new BatchInsert(this.#db, {
        head: "INSERT INTO states (policy, subject, access, generation, enforced_generation, data)",
        row: "(?, ?, ?, ?, ?, ?)",
        tail: "ON CONFLICT (policy, subject) DO UPDATE SET access = excluded.access, generation = excluded.generation, enforced_generation = excluded.enforced_generation, data = excluded.data",
      });
      const insert = this.#putStates;
      transaction(this.#db, () => insert.run(rows));
    });
  }

  async unenforced(): Promise<StoredState[]> {
    const rows = this.#run("list unenforced states", () =>
      this.#stmt("SELECT data FROM states INDEXED BY states_unenforced WHERE enforced_generation < generation ORDER BY policy, subject").all(),
    ) as { data: string }[];
    return rows.map((row) => JSON.parse(row.data) as StoredState);
  }

  /** Records that `generation` was handed to enforcement. Never moves backwards (an older generation is ignored). */
  async markEnforced(policy: string, subject: string, generation: number, access: AccessLevel): Promise<void> {
    this.#run("mark a state enforced", () =>
      this.#stmt(
        `UPDATE states SET enforced_generation = ?1, data = json_set(data, '$.enforced_generation', ?1, '$.enforced_access', ?2)
         WHERE policy = ?3 AND subject = ?4 AND enforced_generation <= ?1`,
      ).run(generation, access, policy, subject),
    );
  }

  /** Subjects per policy and access level in force (a walk of the (policy, access) index). */
  async countByAccess(): Promise<Record<string, Record<string, number>>> {
    const rows = this.#run("count states by access", () =>
      this.#stmt("SELECT policy, access, count(*) AS n FROM states GROUP BY policy, access").all(),
    ) as { policy: string; access: string; n: number }[];
    const out: Record<string, Record<string, number>> = {};
    for (const row of rows) (out[row.policy] ??= {})[row.access] = row.n;
    return out;
  }

  async putResults(results: readonly CheckResult[]): Promise<void> {
    if (results.length === 0) return;
    const rows = results.map((r) => [r.subject, r.check, resultSlot(r), r.observed_at, JSON.stringify(r)] as const);
    this.#run("write check results", () => {
      this.#putResults ??= new BatchInsert(this.#db, {
        head: `INSERT INTO results (subject, "check", source, observed_at, data)`,
        row: "(?, ?, ?, ?, ?)",
        tail: `ON CONFLICT (subject, "check", source) DO UPDATE SET observed_at = excluded.observed_at, data = excluded.data
         WHERE excluded.observed_at >= results.observed_at`,
      });
      const insert = this.#putResults;
      transaction(this.#db, () => insert.run(rows));
    });
  }

  async getResults(subjects: readonly string[], checks: readonly string[]): Promise<CheckResult[]> {
    const subjectList = [...new Set(subjects)];
    const checkList = [...new Set(checks)];
    if (subjectList.length === 0 || checkList.length === 0) return [];
    const out: CheckResult[] = [];
    const subjectChunk = Math.max(1, IN_CHUNK - Math.min(checkList.length, IN_CHUNK / 2));
    const checkChunk = IN_CHUNK / 2;
    this.#run("read check results", () => {
      for (let c = 0; c < checkList.length; c += checkChunk) {
        const cs = checkList.slice(c, c + checkChunk);
        for (let s = 0; s < subjectList.length; s += subjectChunk) {
          const ss = subjectList.slice(s, s + subjectChunk);
          const rows = this.#stmt(
            `SELECT data FROM results WHERE subject IN (${marks(ss.length)}) AND "check" IN (${marks(cs.length)}) ORDER BY subject, "check", source`,
          ).all(...ss, ...cs) as { data: string }[];
          for (const row of rows) out.push(JSON.parse(row.data) as CheckResult);
        }
      }
    });
    return out;
  }

  /** Appends to the audit log, then records the new head in the database (`audit verify` compares the two). */
  async getMeta(key: string): Promise<unknown> {
    const row = this.#run("read meta", () => this.#stmt("SELECT data FROM meta WHERE key = ?").get(key)) as { data: string } | undefined;
    return row ? JSON.parse(row.data) : undefined;
  }

  async putMeta(key: string, value: unknown): Promise<void> {
    this.#run("write meta", () =>
      this.#stmt("INSERT INTO meta (key, data) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data").run(key, JSON.stringify(value)),
    );
  }

  async desireEnforcement(desired: readonly DesiredEnforcement[], decided: readonly DecidedGeneration[]): Promise<void> {
    this.#enforcement.desire(desired, decided);
  }

  async getEnforcement(policy: string, subject: string): Promise<EnforcementRecord[]> {
    return this.#enforcement.get(policy, subject);
  }

  async listEnforcement(filter: { readonly unreconciled: true; readonly policy?: string } | { readonly ids: readonly string[] }): Promise<EnforcementRecord[]> {
    return this.#enforcement.list(filter);
  }

  async updateEnforcement(key: EnforcementKey, event: EnforcementEvent): Promise<void> {
    this.#enforcement.update(key, event);
  }

  async appendAudit(events: readonly AuditEvent[]): Promise<AuditEntry[]> {
    this.#openAudit();
    if (events.length === 0) return [];
    const entries = this.#audit.append(events);
    const last = entries[entries.length - 1];
    if (last) this.#recordHead({ seq: last.seq, hash: last.hash });
    return entries;
  }

  async readAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    return this.#audit.read(query);
  }

  #openAudit(): void {
    if (this.#stopped) throw new VigilError("VIGIL_ERR_SHUTDOWN", "the state store is stopped");
    if (this.#audit.isOpen) return;
    try {
      mkdirSync(this.#dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storeError(`cannot create ${this.#dataDir}`, err);
    }
    const { head } = this.#audit.open();
    const recorded = auditHead(this.#db);
    if (recorded && (head.seq < recorded.seq || (head.seq === recorded.seq && head.hash !== recorded.hash))) {
      this.#audit.close();
      throw new VigilError(
        "VIGIL_ERR_AUDIT_CORRUPT",
        `the audit log ${this.#audit.path} ends at seq ${head.seq} but seq ${recorded.seq} was recorded: it was truncated or rewritten; run \`vigil audit verify\``,
        { details: { path: this.#audit.path, fileHead: head, recordedHead: recorded } },
      );
    }
    if (head.seq > (recorded?.seq ?? 0)) this.#recordHead(head);
  }

  #recordHead(head: AuditHead): void {
    this.#run("record the audit head", () =>
      this.#stmt("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash").run(
        head.seq,
        head.hash,
      ),
    );
  }

  #stmt(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      // IN lists of varying length make many distinct statements; keep the cache bounded.
      if (this.#statements.size >= STATEMENT_CACHE) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  #run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(`cannot ${what}`, err);
    }
  }
}

function marks(n: number): string {
  return n === 1 ? "?" : "?,".repeat(n - 1) + "?";
}
