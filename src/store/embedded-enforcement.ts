/**
 * The enforcement records of the embedded store, in their own table of the agent's SQLite database.
 * The JSON in `data` is the record; `id` and `unreconciled` exist for lookups only. The partial index
 * holds just the unreconciled records, so the re-drive sweep and the gauges read only those.
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { ensureSchema, storeError, transaction } from "../db/sqlite.ts";
import {
  applyEnforcementEvent,
  byFirstFailure,
  desire,
  isUnreconciled,
  supersede,
  type DecidedGeneration,
  type DesiredEnforcement,
  type EnforcementEvent,
  type EnforcementKey,
  type EnforcementRecord,
} from "./enforcement.ts";

const SCHEMA_VERSION = 1;

const DDL = `
CREATE TABLE IF NOT EXISTS enforcement (
  policy TEXT NOT NULL,
  subject TEXT NOT NULL,
  action TEXT NOT NULL,
  id TEXT NOT NULL,
  unreconciled INTEGER NOT NULL,
  data TEXT NOT NULL,
  PRIMARY KEY (policy, subject, action)
);
CREATE UNIQUE INDEX IF NOT EXISTS enforcement_by_id ON enforcement (id);
CREATE INDEX IF NOT EXISTS enforcement_unreconciled ON enforcement (policy) WHERE unreconciled = 1;
`;

/** Largest IN list in one statement. */
const IN_CHUNK = 500;

export class EnforcementTable {
  readonly #db: DatabaseSync;
  readonly #bySubject: StatementSync;
  readonly #one: StatementSync;
  readonly #upsert: StatementSync;
  readonly #unreconciled: StatementSync;
  readonly #unreconciledOf: StatementSync;

  constructor(db: DatabaseSync) {
    this.#db = db;
    ensureSchema(db, "enforcement", SCHEMA_VERSION, DDL);
    try {
      this.#bySubject = db.prepare("SELECT data FROM enforcement WHERE policy = ? AND subject = ? ORDER BY action");
      this.#one = db.prepare("SELECT data FROM enforcement WHERE policy = ? AND subject = ? AND action = ?");
      this.#upsert = db.prepare(
        `INSERT INTO enforcement (policy, subject, action, id, unreconciled, data) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (policy, subject, action) DO UPDATE SET id = excluded.id, unreconciled = excluded.unreconciled, data = excluded.data`,
      );
      this.#unreconciled = db.prepare("SELECT data FROM enforcement INDEXED BY enforcement_unreconciled WHERE unreconciled = 1");
      this.#unreconciledOf = db.prepare("SELECT data FROM enforcement INDEXED BY enforcement_unreconciled WHERE unreconciled = 1 AND policy = ?");
    } catch (err) {
      throw storeError("cannot prepare the enforcement statements", err);
    }
  }

  /** Deletes up to `limit` settled records (neither pending nor failed) of (policy, subject) pairs that no longer have a state. */
  pruneOrphans(limit: number): number {
    return this.#run("prune enforcement records", () =>
      Number(
        this.#db
          .prepare(
            `DELETE FROM enforcement WHERE rowid IN (SELECT e.rowid FROM enforcement e WHERE json_extract(e.data, '$.status') NOT IN ('pending', 'failed')
               AND NOT EXISTS (SELECT 1 FROM states s WHERE s.policy = e.policy AND s.subject = e.subject) LIMIT ?)`,
          )
          .run(limit).changes,
      ),
    );
  }

  desire(desired: readonly DesiredEnforcement[], decided: readonly DecidedGeneration[]): void {
    if (desired.length === 0 && decided.length === 0) return;
    this.#run("record desired enforcement", () =>
      transaction(this.#db, () => {
        for (const d of decided) {
          for (const r of this.#rows(d.policy, d.subject)) {
            const next = supersede(r, d.generation);
            if (next) this.#write(next);
          }
        }
        for (const d of desired) this.#write(desire(this.#get(d), d));
      }),
    );
  }

  get(policy: string, subject: string): EnforcementRecord[] {
    return this.#run("read enforcement records", () => this.#rows(policy, subject));
  }

  list(filter: { readonly unreconciled: true; readonly policy?: string } | { readonly ids: readonly string[] }): EnforcementRecord[] {
    return this.#run("list enforcement records", () => {
      if ("ids" in filter) {
        const ids = [...new Set(filter.ids)];
        const out: EnforcementRecord[] = [];
        for (let i = 0; i < ids.length; i += IN_CHUNK) {
          const chunk = ids.slice(i, i + IN_CHUNK);
          const rows = this.#db.prepare(`SELECT data FROM enforcement WHERE id IN (${chunk.map(() => "?").join(",")})`).all(...chunk) as { data: string }[];
          for (const row of rows) out.push(JSON.parse(row.data) as EnforcementRecord);
        }
        return out;
      }
      const rows = (filter.policy === undefined ? this.#unreconciled.all() : this.#unreconciledOf.all(filter.policy)) as { data: string }[];
      return rows.map((row) => JSON.parse(row.data) as EnforcementRecord).sort(byFirstFailure);
    });
  }

  update(key: EnforcementKey, event: EnforcementEvent): void {
    this.#run("update an enforcement record", () =>
      transaction(this.#db, () => {
        const r = this.#get(key);
        const next = r && applyEnforcementEvent(r, event);
        if (next) this.#write(next);
      }),
    );
  }

  #rows(policy: string, subject: string): EnforcementRecord[] {
    return (this.#bySubject.all(policy, subject) as { data: string }[]).map((row) => JSON.parse(row.data) as EnforcementRecord);
  }

  #get(key: EnforcementKey): EnforcementRecord | undefined {
    const row = this.#one.get(key.policy, key.subject, key.action) as { data: string } | undefined;
    return row ? (JSON.parse(row.data) as EnforcementRecord) : undefined;
  }

  #write(r: EnforcementRecord): void {
    this.#upsert.run(r.policy, r.subject, r.action, r.id, isUnreconciled(r) ? 1 : 0, JSON.stringify(r));
  }

  #run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(`cannot ${what}`, err);
    }
  }
}
