import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { VigilError, errorMessage } from "../errors.ts";

/** Lock file inside the data directory: a tiny SQLite database held in exclusive locking mode. */
export const LOCK_FILE = "vigil.lock";
/** The lock holder's pid, written beside the lock so a second process can name it. */
export const PID_FILE = "vigil.pid";

const SQLITE_BUSY = 5;

/**
 * One process per data directory. The lock is SQLite's file lock on `vigil.lock` (a POSIX record
 * lock), taken by a write in `locking_mode=EXCLUSIVE` and never released until the connection
 * closes, so the kernel drops it when the holder dies however it dies (`kill -9`, OOM): no stale
 * lock to clean up after a crash. Two agents on one directory would interleave their audit chains
 * and enforce twice.
 */
export class DataDirLock {
  readonly #db: DatabaseSync;
  readonly dataDir: string;

  private constructor(db: DatabaseSync, dataDir: string) {
    this.#db = db;
    this.dataDir = dataDir;
  }

  /** Takes the lock or throws `VIGIL_ERR_DATA_DIR_LOCKED` naming the holder's pid. */
  static acquire(dataDir: string): DataDirLock {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = join(dataDir, LOCK_FILE);
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(file);
      db.exec("PRAGMA busy_timeout = 0");
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE");
      db.exec("CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, since TEXT NOT NULL)");
      db.prepare("INSERT INTO holder (id, pid, since) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, since = excluded.since").run(
        process.pid,
        new Date().toISOString(),
      );
      db.exec("COMMIT");
    } catch (err) {
      try {
        db?.close();
      } catch {
        // the first error is the one to report
      }
      if ((err as { errcode?: number }).errcode === SQLITE_BUSY || /database is locked/i.test(errorMessage(err))) {
        const pid = holderPid(dataDir);
        throw new VigilError(
          "VIGIL_ERR_DATA_DIR_LOCKED",
          `data_dir ${dataDir} is in use by another vigil process${pid === undefined ? "" : ` (pid ${pid})`}; stop it first, or give this one its own agent.data_dir`,
          { details: { data_dir: dataDir, ...(pid === undefined ? {} : { pid }) } },
        );
      }
      throw new VigilError("VIGIL_ERR_STORE", `cannot lock ${file}: ${errorMessage(err)}`, { cause: err, details: { file } });
    }
    try {
      writeFileSync(join(dataDir, PID_FILE), `${process.pid}\n`, { mode: 0o600 });
    } catch (err) {
      db.close();
      throw new VigilError("VIGIL_ERR_STORE", `cannot write ${join(dataDir, PID_FILE)}: ${errorMessage(err)}`, { cause: err });
    }
    return new DataDirLock(db, dataDir);
  }

  get held(): boolean {
    return this.#db.isOpen;
  }

  /** Releases the lock (idempotent). The pid file stays: the next holder overwrites it. */
  release(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

/** The pid recorded by the current (or last) holder, if readable. */
export function holderPid(dataDir: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(join(dataDir, PID_FILE), "utf8").trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}
