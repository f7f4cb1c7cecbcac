import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { VigilError, errorMessage } from "../errors.ts";

/** File name of the shared queue + state database inside the data directory. */
export const DATABASE_FILE = "vigil.db";

/** Page size of a database this creates (bytes). */
export const PAGE_SIZE = 16_384;

/**
 * Opens (creating when needed) `<dataDir>/vigil.db`. The agent opens it once and hands the same
 * connection to the embedded queue and the embedded store; each creates its own tables.
 *
 * Durability: WAL journal with `synchronous=NORMAL`. Every committed transaction is in the WAL file
 * (in the OS page cache) before `COMMIT` returns, so it survives a crash or `kill -9` of this process.
 * Only a power loss / kernel crash can lose the last transactions (the database itself stays consistent);
 * `synchronous=FULL` would close that window at the price of an fsync per commit. Process-crash
 * durability is the requirement, so NORMAL is chosen for throughput.
 *
 * Pages of 16 KiB (a new database; an existing one keeps the size it was created with): a commit
 * writes every page it changed to the WAL, two system calls a page, so bigger pages make fewer calls
 * for the same rows (a 100,000-subject pass: 25,000 frames instead of 48,000). Temporary data in
 * memory: a multi-row upsert inside a transaction keeps the before-images of the pages it changes
 * in a statement journal, otherwise a temporary file written page by page (50 MB in such a pass).
 * Together 0.17 s less for that pass (BENCHMARKS.md section 24).
 */
export function openDatabase(dataDir: string, options: { busyTimeoutMs?: number; manualCheckpoint?: boolean; walSizeLimit?: number } = {}): DatabaseSync {
  const file = join(dataDir, DATABASE_FILE);
  let db: DatabaseSync | undefined;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    db = new DatabaseSync(file);
    // Takes effect only while the file is still empty: before the journal mode writes the header.
    db.exec(`PRAGMA page_size = ${PAGE_SIZE}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5_000))}`);
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA temp_store = MEMORY");
    // The agent checkpoints from its housekeeping timer instead: an automatic checkpoint runs inside
    // whichever commit crosses the threshold and fsyncs there, putting milliseconds on that signal's path.
    if (options.manualCheckpoint) db.exec("PRAGMA wal_autocheckpoint = 0");
    // Without a limit the WAL file keeps the largest size it ever reached; with one, SQLite cuts it
    // back when a writer restarts the log after a complete checkpoint.
    if (options.walSizeLimit !== undefined) db.exec(`PRAGMA journal_size_limit = ${Math.max(0, Math.floor(options.walSizeLimit))}`);
    db.exec("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID");
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    throw new VigilError("VIGIL_ERR_STORE", `cannot open database ${file}: ${errorMessage(err)}`, { cause: err, details: { file } });
  }
}

/**
 * Creates the tables of one component (`ddl` must be idempotent: `CREATE … IF NOT EXISTS`) and records
 * its schema version. Refuses a database written by a newer schema version. `migrate(from)` runs, in
 * the same transaction and after `ddl`, when the component's tables were written by an older version.
 */
export function ensureSchema(db: DatabaseSync, component: string, version: number, ddl: string, migrate?: (from: number) => void): void {
  try {
    transaction(db, () => {
      db.exec("CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID");
      const row = db.prepare("SELECT version FROM schema_version WHERE component = ?").get(component) as { version: number } | undefined;
      if (row && row.version > version) {
        throw new VigilError("VIGIL_ERR_STORE", `the ${component} tables have schema version ${row.version}, newer than this vigil supports (${version})`, {
          details: { component, found: row.version, supported: version },
        });
      }
      db.exec(ddl);
      if (row && row.version < version) migrate?.(row.version);
      if (!row || row.version !== version) {
        db.prepare("INSERT INTO schema_version (component, version) VALUES (?, ?) ON CONFLICT(component) DO UPDATE SET version = excluded.version").run(component, version);
      }
    });
  } catch (err) {
    throw storeError(`cannot create the ${component} tables`, err);
  }
}

let savepointCounter = 0;

/** Runs `fn` in one transaction (a savepoint when one is already open). `fn` must be synchronous. */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  if (db.isTransaction) {
    const name = `vigil_sp_${++savepointCounter}`;
    db.exec(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      db.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      try {
        db.exec(`ROLLBACK TO ${name}`);
        db.exec(`RELEASE ${name}`);
      } catch {
        // SQLite rolled the whole transaction back itself (a full disk, an I/O error): the
        // savepoint is gone with it, and the first error is the one to report.
      }
      throw err;
    }
  }
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}

/** Wraps a database failure as `VIGIL_ERR_STORE` (VigilErrors pass through unchanged). */
export function storeError(what: string, err: unknown): VigilError {
  if (err instanceof VigilError) return err;
  return new VigilError("VIGIL_ERR_STORE", `${what}: ${errorMessage(err)}`, { cause: err });
}

/**
 * A multi-row `INSERT … VALUES (…), (…) …` run in batches: one native call per `batch` rows instead of
 * per row, which is what makes 100,000-row writes fast. `tail` may hold `?` placeholders bound from
 * `tailParams` after each batch's row values. Does not open a transaction itself.
 */
export class BatchInsert {
  readonly #db: DatabaseSync;
  readonly #head: string;
  readonly #row: string;
  readonly #tail: string;
  readonly #width: number;
  readonly #batch: number;
  readonly #single: StatementSync;
  #full: StatementSync | undefined;

  constructor(db: DatabaseSync, sql: { head: string; row: string; tail?: string }, batch = 100) {
    this.#db = db;
    this.#head = sql.head;
    this.#row = sql.row;
    this.#tail = sql.tail ?? "";
    this.#width = (sql.row.match(/\?/g) ?? []).length;
    this.#batch = batch;
    this.#single = db.prepare(this.#sql(1));
  }

  #sql(rows: number): string {
    return `${this.#head} VALUES ${Array.from({ length: rows }, () => this.#row).join(", ")} ${this.#tail}`;
  }

  /** Inserts the rows (each `width` values); returns the number of rows changed. */
  run(rows: readonly (readonly SQLInputValue[])[], tailParams: readonly SQLInputValue[] = []): number {
    let changes = 0;
    let i = 0;
    if (rows.length >= this.#batch) {
      this.#full ??= this.#db.prepare(this.#sql(this.#batch));
      const params: SQLInputValue[] = new Array(this.#batch * this.#width + tailParams.length);
      for (; i + this.#batch <= rows.length; i += this.#batch) {
        let k = 0;
        for (let r = i; r < i + this.#batch; r++) {
          const row = rows[r] as readonly SQLInputValue[];
          for (let c = 0; c < this.#width; c++) params[k++] = row[c] as SQLInputValue;
        }
        for (const p of tailParams) params[k++] = p;
        changes += Number(this.#full.run(...params).changes);
      }
    }
    for (; i < rows.length; i++) changes += Number(this.#single.run(...(rows[i] as readonly SQLInputValue[]), ...tailParams).changes);
    return changes;
  }
}

/**
 * `PRAGMA quick_check`: a damaged database (torn pages, a file overwritten or cut short) must stop the
 * agent, not start it with part of its state read as missing. Returns the problems found (empty: ok).
 */
export function quickCheck(db: DatabaseSync): string[] {
  try {
    const rows = db.prepare("PRAGMA quick_check").all() as { quick_check: string }[];
    const problems = rows.map((r) => r.quick_check).filter((p) => p !== "ok");
    return problems;
  } catch (err) {
    return [errorMessage(err)];
  }
}

/** Copies the WAL back into the database without blocking readers or writers (PASSIVE). */
export function checkpoint(db: DatabaseSync): void {
  db.exec("PRAGMA wal_checkpoint(PASSIVE)");
}
