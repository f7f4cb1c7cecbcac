import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { resultSlot } from "../policy/model.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { VigilError } from "../errors.ts";
import type { AccessLevel, CheckResult } from "../policy/model.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { AuditLog, lineRefs, offsetAfter, verifyTail, type AuditHead, type AuditKey, type AuditLineRef } from "./audit.ts";
import type { AuditEntry, AuditEvent, AuditQuery, DecidedGeneration, DesiredEnforcement, EnforcementEvent, EnforcementKey, EnforcementRecord, EvaluationRecord, StateStore, StoredState } from "./contract.ts";
import { EnforcementTable } from "./embedded-enforcement.ts";
import type { KeyValueEntry } from "../plugin/state.ts";
import { BatchInsert, ensureSchema, storeError, transaction } from "../db/sqlite.ts";
import { own, setOwn } from "../util/own.ts";
import { compareCodeUnits } from "../util/compare.ts";

const GENESIS = "0".repeat(64);

/** File name of the audit log inside the data directory. */
export const AUDIT_FILE = "audit.jsonl";

/** 2: pulled results moved from `results` into `pull_results`, one row per subject. */
const SCHEMA_VERSION = 2;

/**
 * The JSON in `data` is the source of truth; the other columns exist for lookups only. The partial index
 * holds just the rows whose decision has not been handed to enforcement, so `unenforced()` reads only those.
 *
 * A subject's pulled results (source `pull`, one per check) share one row of `pull_results`, its
 * `data` an object of check name → result: an evaluation writes one row per subject instead of one
 * per check (a 100,000-subject pass with four checks: 100,000 rows instead of 400,000, half of the
 * pass's insert time; BENCHMARKS.md section 21). Pushed results, one per (subject, check, stream),
 * stay in `results`.
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
CREATE TABLE IF NOT EXISTS pull_results (
  subject TEXT PRIMARY KEY,
  data TEXT NOT NULL
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

/**
 * Where each audit line sits in the file, by seq, with the two fields `/v1/audit` filters on: a
 * filtered read looks the lines up here and reads just those, instead of scanning the file on the
 * event loop. Written in the same transaction as the recorded head. A component of its own, so it
 * is created on an existing database without touching the store's schema version.
 */
const AUDIT_INDEX_DDL = `
CREATE TABLE IF NOT EXISTS audit_index (
  seq INTEGER PRIMARY KEY,
  offset INTEGER NOT NULL,
  length INTEGER NOT NULL,
  type TEXT NOT NULL,
  subject TEXT
);
CREATE INDEX IF NOT EXISTS audit_index_by_subject ON audit_index (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_index_by_type ON audit_index (type, seq);
`;

/**
 * What plugins keep across restarts (`KeyValueStore`): a component of its own, like the audit index,
 * so it is added to an existing database without touching the store's schema version. `subject`
 * lets `forgetSubjects` remove a subject's values; `updated_at` lets old values be pruned.
 */
const PLUGIN_VALUES_DDL = `
CREATE TABLE IF NOT EXISTS plugin_values (
  space TEXT NOT NULL,
  key TEXT NOT NULL,
  subject TEXT,
  updated_at INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (space, key)
);
CREATE INDEX IF NOT EXISTS plugin_values_by_subject ON plugin_values (subject) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS plugin_values_by_age ON plugin_values (space, updated_at);
`;

/** Largest IN list in one statement. */
const IN_CHUNK = 500;
/** Most pulled rows kept between an evaluation's read and its write (a few batches' worth). */
const PULLED_READ_MAX = 4_096;
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
  #indexAudit: BatchInsert | undefined;
  /** Index rows of lines written whose head write failed; written with the next head. */
  #unindexed: AuditLineRef[] = [];
  /** Where the pruning sweeps of the results and pull_results tables go on from (rowids). */
  #pruneCursor = 0;
  #prunePullCursor = 0;
  #putPulled: BatchInsert | undefined;
  /**
   * Pulled rows as `getResults` last read them (null: the subject had none), until the next write of
   * the subject's row, which uses and drops its entry: an evaluation reads its batch's rows, runs its
   * checks, then merges their results into the same rows, which need not be read and parsed twice.
   * Every write path drops the entries it touches, and this store is its database's only writer
   * (the data-dir lock), so an entry is the row as stored. Bounded: cleared past `PULLED_READ_MAX`.
   */
  readonly #pulledRead = new Map<string, Record<string, CheckResult> | null>();
  readonly #enforcement: EnforcementTable;

  readonly #maxStreams: number | undefined;
  readonly #onStreamsDropped: ((check: string, n: number) => void) | undefined;

  /**
   * `key` keys the audit chain (the agent always passes one; see `AuditKey`). `maxStreams` caps the
   * pushed result streams kept per (subject, check), the oldest dropped first and counted through
   * `onStreamsDropped`: one sender with ever-new stream names must not grow a subject without bound.
   */
  constructor(
    db: DatabaseSync,
    dataDir: string,
    options: { clock?: Clock; key?: AuditKey; maxStreams?: number; onStreamsDropped?: (check: string, n: number) => void } = {},
  ) {
    this.#db = db;
    this.#maxStreams = options.maxStreams;
    this.#onStreamsDropped = options.onStreamsDropped;
    this.#dataDir = dataDir;
    this.#audit = new AuditLog(join(dataDir, AUDIT_FILE), { clock: options.clock ?? systemClock, ...(options.key ? { key: options.key } : {}) });
    ensureSchema(db, "store", SCHEMA_VERSION, DDL, (from) => {
      // Version 1 kept pulled results one row per check: each subject's become one row.
      if (from < 2) {
        db.exec(`INSERT INTO pull_results (subject, data)
          SELECT subject, json_group_object("check", json(data)) FROM results WHERE source = 'pull' GROUP BY subject`);
        db.exec("DELETE FROM results WHERE source = 'pull'");
      }
    });
    ensureSchema(db, "audit_index", 1, AUDIT_INDEX_DDL);
    this.#enforcement = new EnforcementTable(db);
    ensureSchema(db, "plugin_values", 1, PLUGIN_VALUES_DDL);
  }

  /**
   * Opens the audit log and reconciles the recorded head with it. A log that ends before the head, or
   * differs at it, is refused (`VIGIL_ERR_AUDIT_CORRUPT`) rather than continued, which would hide the
   * truncation. Lines past the head are adopted only when they are explained: chained from the head
   * and keyed under this store's key (vigil stopped, or the disk filled, between writing them and
   * recording the head). Anything else is refused until an operator has looked (`vigil audit verify`,
   * then `vigil audit truncate`).
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
    this.#run("write states", () => transaction(this.#db, () => this.#writeStates(states)));
  }

  /** Inserts or replaces the states; the caller holds the transaction. */
  #writeStates(states: readonly StoredState[]): void {
    if (states.length === 0) return;
    this.#putStates ??= new BatchInsert(this.#db, {
      head: "INSERT INTO states (policy, subject, access, generation, enforced_generation, data)",
      row: "(?, ?, ?, ?, ?, ?)",
      tail: "ON CONFLICT (policy, subject) DO UPDATE SET access = excluded.access, generation = excluded.generation, enforced_generation = excluded.enforced_generation, data = excluded.data",
    });
    this.#putStates.run(states.map((s) => [s.decision.policy, s.decision.subject, s.decision.access, s.decision.generation, s.enforced_generation, JSON.stringify(s)]));
  }

  /** Compared inside SQLite: on a restart or reload of 100,000 states, parsing every state here would take a second. */
  async unsettled(): Promise<StoredState[]> {
    const rows = this.#run("list unsettled states", () =>
      this.#stmt("SELECT data FROM states WHERE access <> json_extract(data, '$.enforced_access') ORDER BY policy, subject").all(),
    ) as { data: string }[];
    return rows.map((row) => JSON.parse(row.data) as StoredState);
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
    // A Map, then own properties: a policy named __proto__ or constructor must count as itself.
    const out = new Map<string, Record<string, number>>();
    for (const row of rows) out.set(row.policy, { ...out.get(row.policy), [row.access]: row.n });
    return Object.fromEntries(out);
  }

  async putResults(results: readonly CheckResult[]): Promise<void> {
    if (results.length === 0) return;
    const dropped = this.#run("write check results", () => transaction(this.#db, () => this.#writeResults(results)));
    this.#streamsDropped(dropped);
  }

  /**
   * Records one evaluation in one transaction: one commit instead of three for each batch of an
   * evaluation pass, and a batch's results, index rows and states land together or not at all.
   * The audit lines are appended to the log inside it, before the states: a failure after the
   * append rolls the database back and leaves the lines in the log, unindexed until the next
   * append indexes them, as when recording the head fails (`#recordHead`).
   */
  async recordEvaluation(batch: EvaluationRecord): Promise<void> {
    const { results, audit, states } = batch;
    if (audit.length > 0) this.#openAudit();
    const unindexed = this.#unindexed;
    let appended: readonly AuditLineRef[] = [];
    let dropped: Map<string, number>;
    try {
      dropped = this.#run("record an evaluation", () =>
        transaction(this.#db, () => {
          const streams = this.#writeResults(results);
          if (audit.length > 0) {
            const { entries, refs } = this.#audit.appendWithRefs(audit);
            appended = refs;
            const last = entries[entries.length - 1]!;
            this.#recordHead({ seq: last.seq, hash: last.hash }, refs);
          }
          this.#writeStates(states);
          return streams;
        }),
      );
    } catch (err) {
      if (appended.length > 0) this.#unindexed = [...unindexed, ...appended];
      throw err;
    }
    this.#streamsDropped(dropped);
  }

  /** Inserts the results that are newer than the stored ones; the caller holds the transaction. Returns the pushed streams dropped by check. */
  #writeResults(results: readonly CheckResult[]): Map<string, number> {
    if (results.length === 0) return new Map();
    const pulled: CheckResult[] = [];
    const other: CheckResult[] = [];
    for (const r of results) (resultSlot(r) === "pull" ? pulled : other).push(r);
    this.#writePulled(pulled);
    if (other.length === 0) return new Map();
    this.#putResults ??= new BatchInsert(this.#db, {
      head: `INSERT INTO results (subject, "check", source, observed_at, data)`,
      row: "(?, ?, ?, ?, ?)",
      tail: `ON CONFLICT (subject, "check", source) DO UPDATE SET observed_at = excluded.observed_at, data = excluded.data
         WHERE excluded.observed_at >= results.observed_at`,
    });
    this.#putResults.run(other.map((r) => [r.subject, r.check, resultSlot(r), r.observed_at, JSON.stringify(r)]));
    return this.#capStreams(other);
  }

  /**
   * Merges pulled results into their subjects' rows, each check's newest kept (a result no older than
   * the stored one replaces it, as in `results`); the caller holds the transaction.
   */
  #writePulled(pulled: readonly CheckResult[]): void {
    if (pulled.length === 0) return;
    const incoming = new Map<string, Map<string, CheckResult>>();
    for (const r of pulled) {
      let checks = incoming.get(r.subject);
      if (!checks) incoming.set(r.subject, (checks = new Map()));
      const had = checks.get(r.check);
      if (!had || r.observed_at >= had.observed_at) checks.set(r.check, r);
    }
    const stored = new Map<string, Record<string, CheckResult>>();
    const unread: string[] = [];
    for (const subject of incoming.keys()) {
      const known = this.#pulledRead.get(subject);
      if (known === undefined) unread.push(subject);
      else if (known !== null) stored.set(subject, known);
      this.#pulledRead.delete(subject);
    }
    for (const [subject, row] of this.#readPulled(unread)) stored.set(subject, row);
    const rows: [string, string][] = [];
    for (const [subject, checks] of incoming) {
      const row = stored.get(subject) ?? {};
      let changed = false;
      for (const [check, r] of checks) {
        const had = own(row, check);
        if (had && r.observed_at < had.observed_at) continue;
        setOwn(row, check, r);
        changed = true;
      }
      if (changed) rows.push([subject, JSON.stringify(row)]);
    }
    this.#putPulled ??= new BatchInsert(this.#db, {
      head: "INSERT INTO pull_results (subject, data)",
      row: "(?, ?)",
      tail: "ON CONFLICT (subject) DO UPDATE SET data = excluded.data",
    });
    this.#putPulled.run(rows);
  }

  /** The stored pull_results rows of these subjects (those that have one), parsed; `remember` keeps them for the next write (`#pulledRead`). */
  #readPulled(subjects: readonly string[], remember = false): Map<string, Record<string, CheckResult>> {
    const out = new Map<string, Record<string, CheckResult>>();
    for (let i = 0; i < subjects.length; i += IN_CHUNK) {
      const chunk = subjects.slice(i, i + IN_CHUNK);
      const rows = this.#stmt(`SELECT subject, data FROM pull_results WHERE subject IN (${marks(chunk.length)})`).all(...chunk) as { subject: string; data: string }[];
      for (const row of rows) out.set(row.subject, JSON.parse(row.data) as Record<string, CheckResult>);
    }
    // A read larger than the bound (a one-shot command seeding from the agent's store) is not kept.
    if (remember && subjects.length <= PULLED_READ_MAX) {
      if (this.#pulledRead.size + subjects.length > PULLED_READ_MAX) this.#pulledRead.clear();
      for (const subject of subjects) this.#pulledRead.set(subject, out.get(subject) ?? null);
    }
    return out;
  }

  #streamsDropped(dropped: ReadonlyMap<string, number>): void {
    for (const [check, n] of dropped) this.#onStreamsDropped?.(check, n);
  }

  /** Drops the oldest pushed streams of each (subject, check) in the batch beyond the cap. */
  #capStreams(results: readonly CheckResult[]): Map<string, number> {
    const dropped = new Map<string, number>();
    const max = this.#maxStreams;
    if (max === undefined) return dropped;
    const pairs = new Map<string, { subject: string; check: string }>();
    for (const r of results) if (r.source === "push" && r.stream) pairs.set(`${r.subject}\u0000${r.check}`, { subject: r.subject, check: r.check });
    for (const { subject, check } of pairs.values()) {
      const n = Number(
        this.#stmt(
          `DELETE FROM results WHERE subject = ?1 AND "check" = ?2 AND source LIKE 'push:%' AND source NOT IN
           (SELECT source FROM results WHERE subject = ?1 AND "check" = ?2 AND source LIKE 'push:%' ORDER BY observed_at DESC, source LIMIT ?3)`,
        ).run(subject, check, max).changes,
      );
      if (n > 0) dropped.set(check, (dropped.get(check) ?? 0) + n);
    }
    return dropped;
  }

  /**
   * Looks at the next `limit` pushed results (by rowid, wrapping around) and removes those that
   * expired before `before`; when that slice reaches the end of the table, goes on through the
   * subjects' pulled results with what is left of `limit`. Returns how many results it removed, at
   * most `limit`. A sweep in slices rather than an index on expiry: an index would cost every result
   * write, and pruning days-old rows can take its time.
   */
  async pruneResults(before: number, limit = 2_000): Promise<number> {
    return this.#run("prune check results", () =>
      transaction(this.#db, () => {
        const slice = this.#stmt("SELECT max(rowid) AS last, count(*) AS n FROM (SELECT rowid FROM results WHERE rowid > ? ORDER BY rowid LIMIT ?)").get(this.#pruneCursor, limit) as {
          last: number | null;
          n: number;
        };
        const from = this.#pruneCursor;
        // At the end of the table: start over from the beginning at the next round.
        this.#pruneCursor = slice.last === null || slice.n < limit ? 0 : slice.last;
        const removed =
          slice.last === null ? 0 : Number(this.#stmt(`DELETE FROM results WHERE rowid > ? AND rowid <= ? AND json_extract(data, '$.expires_at') < ?`).run(from, slice.last, before).changes);
        if (this.#pruneCursor !== 0 || removed >= limit) return removed;
        return removed + this.#prunePulled(before, limit - removed);
      }),
    );
  }

  /** The pulled-results part of `pruneResults`: removes at most `budget` expired results; the caller holds the transaction. */
  #prunePulled(before: number, budget: number): number {
    const rows = this.#stmt("SELECT rowid AS id, subject, data FROM pull_results WHERE rowid > ? ORDER BY rowid LIMIT ?").all(this.#prunePullCursor, budget) as {
      id: number;
      subject: string;
      data: string;
    }[];
    let removed = 0;
    let cursor = this.#prunePullCursor;
    let done = true;
    for (const row of rows) {
      const data = JSON.parse(row.data) as Record<string, CheckResult>;
      const checks = Object.keys(data);
      const expired = checks.filter((check) => data[check]!.expires_at < before);
      // More than the budget has room for: the rest of this row waits for the next round.
      const taken = expired.slice(0, budget - removed);
      removed += taken.length;
      if (taken.length > 0) this.#pulledRead.delete(row.subject);
      if (taken.length === checks.length) this.#stmt("DELETE FROM pull_results WHERE rowid = ?").run(row.id);
      else if (taken.length > 0) {
        for (const check of taken) delete data[check];
        this.#stmt("UPDATE pull_results SET data = ? WHERE rowid = ?").run(JSON.stringify(data), row.id);
      }
      if (taken.length < expired.length) {
        done = false;
        break;
      }
      cursor = row.id;
    }
    // Every row up to the end of the table looked at: start over from the beginning at the next round.
    this.#prunePullCursor = done && rows.length < budget ? 0 : cursor;
    return removed;
  }

  async pruneEnforcement(limit = 2_000): Promise<number> {
    return this.#enforcement.pruneOrphans(limit);
  }

  async stateSubjects(): Promise<string[]> {
    const rows = this.#run("list subjects with a state", () => this.#stmt("SELECT DISTINCT subject FROM states INDEXED BY states_by_subject").all()) as { subject: string }[];
    return rows.map((r) => r.subject);
  }

  /** Removes every state and result of these subjects (they left every inventory). */
  async forgetSubjects(subjects: readonly string[]): Promise<void> {
    if (subjects.length === 0) return;
    this.#run("forget subjects", () =>
      transaction(this.#db, () => {
        for (let i = 0; i < subjects.length; i += IN_CHUNK) {
          const chunk = subjects.slice(i, i + IN_CHUNK);
          this.#stmt(`DELETE FROM states WHERE subject IN (${marks(chunk.length)})`).run(...chunk);
          this.#stmt(`DELETE FROM results WHERE subject IN (${marks(chunk.length)})`).run(...chunk);
          this.#stmt(`DELETE FROM pull_results WHERE subject IN (${marks(chunk.length)})`).run(...chunk);
          for (const subject of chunk) this.#pulledRead.delete(subject);
          this.#stmt(`DELETE FROM plugin_values WHERE subject IN (${marks(chunk.length)})`).run(...chunk);
        }
      }),
    );
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
          const rows = this.#stmt(`SELECT data FROM results WHERE subject IN (${marks(ss.length)}) AND "check" IN (${marks(cs.length)})`).all(...ss, ...cs) as {
            data: string;
          }[];
          for (const row of rows) out.push(JSON.parse(row.data) as CheckResult);
        }
      }
      for (const row of this.#readPulled(subjectList, true).values()) {
        for (const check of checkList) {
          const r = own(row, check);
          if (r) out.push(r);
        }
      }
    });
    // As the table's key orders them: by subject, check, then source (`pull` before `push…`).
    out.sort((a, b) => compareCodeUnits(a.subject, b.subject) || compareCodeUnits(a.check, b.check) || compareCodeUnits(resultSlot(a), resultSlot(b)));
    // One result per (subject, check, source), the newest (the later one on a tie): a vigil of schema
    // version 1 still running while a newer one migrated the database (a one-shot command after an
    // upgrade, before the restart) goes on writing pulled results into `results`.
    const kept: CheckResult[] = [];
    for (const r of out) {
      const last = kept.at(-1);
      if (!last || last.subject !== r.subject || last.check !== r.check || resultSlot(last) !== resultSlot(r)) kept.push(r);
      else if (r.observed_at >= last.observed_at) kept[kept.length - 1] = r;
    }
    return kept;
  }

  // --- KeyValueStore: what plugins keep across restarts -------------------------------------

  async getValues(space: string, keys: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const unique = [...new Set(keys)];
    this.#run("read plugin values", () => {
      for (let i = 0; i < unique.length; i += IN_CHUNK) {
        const chunk = unique.slice(i, i + IN_CHUNK);
        const rows = this.#stmt(`SELECT key, data FROM plugin_values WHERE space = ? AND key IN (${marks(chunk.length)})`).all(space, ...chunk) as { key: string; data: Uint8Array }[];
        for (const row of rows) out.set(row.key, row.data);
      }
    });
    return out;
  }

  async putValues(space: string, entries: readonly KeyValueEntry[], updatedAt: number): Promise<void> {
    if (entries.length === 0) return;
    this.#run("write plugin values", () =>
      transaction(this.#db, () => {
        const upsert = this.#stmt(
          `INSERT INTO plugin_values (space, key, subject, updated_at, data) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (space, key) DO UPDATE SET subject = excluded.subject, updated_at = excluded.updated_at, data = excluded.data`,
        );
        const remove = this.#stmt("DELETE FROM plugin_values WHERE space = ? AND key = ?");
        for (const e of entries) {
          if (e.value === null) remove.run(space, e.key);
          else upsert.run(space, e.key, e.subject ?? null, updatedAt, e.value);
        }
      }),
    );
  }

  async listKeys(space: string, prefixes: readonly string[], limit = 10_000): Promise<string[]> {
    const out: string[] = [];
    this.#run("list plugin values", () => {
      // A range on the primary key: every key from the prefix up to the prefix followed by the highest code point.
      const stmt = this.#stmt("SELECT key FROM plugin_values WHERE space = ? AND key >= ? AND key < ? ORDER BY key LIMIT ?");
      for (const prefix of new Set(prefixes)) for (const row of stmt.all(space, prefix, `${prefix}\u{10FFFF}`, limit) as { key: string }[]) out.push(row.key);
    });
    return out;
  }

  async pruneValues(space: string, before: number, limit = 2_000): Promise<number> {
    return this.#run("prune plugin values", () =>
      Number(
        this.#stmt("DELETE FROM plugin_values WHERE rowid IN (SELECT rowid FROM plugin_values WHERE space = ? AND updated_at < ? LIMIT ?)").run(space, before, limit).changes,
      ),
    );
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

  async updateMeta<R>(key: string, change: (current: unknown) => { value: unknown; result: R }): Promise<R> {
    return this.#run("update meta", () =>
      transaction(this.#db, () => {
        const row = this.#stmt("SELECT data FROM meta WHERE key = ?").get(key) as { data: string } | undefined;
        const { value, result } = change(row ? JSON.parse(row.data) : undefined);
        this.#stmt("INSERT INTO meta (key, data) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET data = excluded.data").run(key, JSON.stringify(value));
        return result;
      }),
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
    const { entries, refs } = this.#audit.appendWithRefs(events);
    const last = entries[entries.length - 1];
    if (last) this.#recordHead({ seq: last.seq, hash: last.hash }, refs);
    return entries;
  }

  /**
   * Filtered reads and reads after a cursor go through the audit index (only the matching lines are
   * read); the newest entries without a filter are read from the end of the file.
   */
  async readAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    if (query.type === undefined && query.subject === undefined && query.after === undefined) return this.#audit.read(query);
    if (!this.#audit.isOpen || this.#unindexed.length > 0) return this.#audit.read(query);
    const limit = query.limit ?? 100;
    if (limit <= 0) return [];
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (query.subject !== undefined) {
      where.push("subject = ?");
      params.push(query.subject);
    }
    if (query.type !== undefined) {
      where.push("type = ?");
      params.push(query.type);
    }
    if (query.after !== undefined) {
      where.push("seq > ?");
      params.push(query.after);
    }
    const order = query.after !== undefined ? "ASC" : "DESC";
    const rows = this.#run("read the audit index", () =>
      this.#stmt(`SELECT offset, length FROM audit_index WHERE ${where.join(" AND ")} ORDER BY seq ${order} LIMIT ?`).all(...params, limit),
    ) as { offset: number; length: number }[];
    const out: AuditEntry[] = [];
    try {
      for (const row of rows) {
        const e = this.#audit.readAt(row.offset, row.length);
        if (e) out.push(e);
      }
    } catch (err) {
      throw storeError(`cannot read the audit log ${this.#audit.path}`, err);
    }
    return order === "ASC" ? out : out.reverse();
  }

  /** Head of the audit log as written (for checkpoints). */
  get auditHead(): AuditHead {
    return this.#audit.head;
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
    const path = this.#audit.path;
    if (recorded && (head.seq < recorded.seq || (head.seq === recorded.seq && head.hash !== recorded.hash))) {
      this.#audit.close();
      throw new VigilError(
        "VIGIL_ERR_AUDIT_CORRUPT",
        `the audit log ${path} ends at seq ${head.seq} but seq ${recorded.seq} was recorded: it was truncated or rewritten; run \`vigil audit verify\``,
        { details: { path, fileHead: head, recordedHead: recorded } },
      );
    }
    const from = recorded ?? { seq: 0, hash: GENESIS };
    const indexed = this.#indexedEnd();
    if (head.seq > from.seq) {
      const start = from.seq === 0 ? 0 : (indexed.seq === from.seq ? indexed.end : offsetAfter(path, from.seq));
      const tail = start === undefined ? { ok: false as const, reason: `seq ${from.seq} is not in the log`, count: head.seq - from.seq } : verifyTail(path, from, this.#audit.key, start);
      if (!tail.ok) {
        this.#audit.close();
        throw new VigilError(
          "VIGIL_ERR_AUDIT_CORRUPT",
          `the audit log ${path} has ${tail.count} line(s) past the recorded head seq ${from.seq} that vigil cannot account for (${tail.reason}): ` +
            "they were appended outside vigil. Run `vigil audit verify` to see them, then `vigil audit truncate` to move them aside (it is recorded in the log)",
          { details: { path, fileHead: head, recordedHead: recorded ?? null, reason: tail.reason } },
        );
      }
      this.#unindexed = tail.refs.filter((r) => r.seq > indexed.seq);
      this.#recordHead(head, []);
    } else if (indexed.seq < head.seq) {
      // An index older than the log (first start after an upgrade): catch it up once.
      this.#unindexed = lineRefs(path, indexed.end).filter((r) => r.seq > indexed.seq);
      this.#recordHead(head, []);
    }
    // A log written before it was keyed: a keyed entry vouches for everything before it.
    const key = this.#audit.key;
    if (key && this.#audit.lastKeyId === null) {
      const last = this.#audit.head;
      const { entries, refs } = this.#audit.appendWithRefs([{ type: "audit_keyed", key_id: key.id, legacy_head: { seq: last.seq, hash: last.hash } }]);
      const entry = entries[0];
      if (entry) this.#recordHead({ seq: entry.seq, hash: entry.hash }, refs);
    } else if (key && this.#audit.lastKeyId !== undefined && this.#audit.lastKeyId !== key.id) {
      this.#audit.close();
      throw new VigilError(
        "VIGIL_ERR_AUDIT_CORRUPT",
        `the audit log ${path} was written with audit key id ${this.#audit.lastKeyId}, but the configured key is ${key.id}: configure the key the log was written with (agent.audit.key)`,
        { details: { path, written_with: this.#audit.lastKeyId, configured: key.id } },
      );
    }
  }

  /** Last seq in the audit index and the byte offset just past its line. */
  #indexedEnd(): { seq: number; end: number } {
    const row = this.#run("read the audit index", () => this.#stmt("SELECT seq, offset + length AS end FROM audit_index ORDER BY seq DESC LIMIT 1").get()) as
      | { seq: number; end: number }
      | undefined;
    return row ?? { seq: 0, end: 0 };
  }

  /**
   * Records the head and the new lines' index rows in one transaction. When that fails (a full disk),
   * the lines are in the log but not yet indexed: they are kept and written with the next head, and
   * until then `audit verify` accepts keyed lines past the recorded head.
   */
  #recordHead(head: AuditHead, refs: readonly AuditLineRef[]): void {
    const rows = this.#unindexed.length > 0 ? [...this.#unindexed, ...refs] : refs;
    try {
      this.#run("record the audit head", () =>
        transaction(this.#db, () => {
          this.#stmt("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash").run(head.seq, head.hash);
          this.#indexAudit ??= new BatchInsert(this.#db, { head: "INSERT OR REPLACE INTO audit_index (seq, offset, length, type, subject)", row: "(?, ?, ?, ?, ?)" });
          this.#indexAudit.run(rows.map((r) => [r.seq, r.offset, r.length, r.type, r.subject]));
        }),
      );
      this.#unindexed = [];
    } catch (err) {
      this.#unindexed = [...rows];
      throw err;
    }
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
