/**
 * Where an agent keeps its state and queue, and how its work is coordinated: embedded (one process,
 * SQLite in `data_dir`) or cluster (replicas sharing Redis; `cluster.ts`, loaded only in that
 * mode). The engine above works on the contracts alone.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { StateStore } from "../store/contract.ts";
import type { WorkQueue } from "../queue/contract.ts";
import type { AuditHead, AuditKey } from "../store/audit.ts";
import { DATABASE_FILE, openDatabase, quickCheck } from "../db/sqlite.ts";
import { DataDirLock } from "../db/lock.ts";
import { Checkpointer } from "../db/checkpointer.ts";
import { AUDIT_FILE, EmbeddedStore } from "../store/embedded.ts";
import { EmbeddedQueue } from "../queue/embedded.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Clock } from "../util/clock.ts";
import { errorMessage, VigilError } from "../errors.ts";
import { KeyedLock, type Lock } from "./keyed-lock.ts";

export interface Backend {
  readonly mode: "embedded" | "cluster";
  /** The embedded database (embedded mode only), for components that keep their own tables in it. */
  readonly db?: DatabaseSync;
  readonly store: StateStore;
  readonly queue: WorkQueue;
  /** One (policy, subject) worked out by one evaluation or enforcement at a time. */
  readonly subjectLock: Lock;
  /** One action job per (policy, subject, action) at a time. */
  readonly jobLock: Lock;
  /** Whether this process does what must be done once (scheduling, sweeps); always, embedded. */
  leader(): boolean;
  /** Why the backend cannot serve now (cluster: Redis out of reach); empty when it can. */
  unavailable(): string[];
  /** The audit head as this process knows it, for checkpoints. */
  auditHead(): AuditHead;
  /** Periodic upkeep: the WAL checkpoint (embedded), the head other replicas moved (cluster). */
  housekeeping(): Promise<void>;
  /** Releases what the backend holds; after the queue and the store have stopped. */
  close(): Promise<void>;
}

export interface BackendOptions {
  readonly dataDir: string;
  readonly walSizeLimit: number;
  readonly key: AuditKey;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly drainTimeoutMs: number;
  readonly maxStreams: number;
  readonly onStreamsDropped: (check: string, n: number) => void;
}

/** One process per `data_dir`: its lock, the SQLite database, the audit file, in-process locks. */
export function openEmbedded(o: BackendOptions): Backend {
  const lock = DataDirLock.acquire(o.dataDir);
  let db: DatabaseSync;
  try {
    db = openStateDatabase(o.dataDir, o.walSizeLimit);
  } catch (err) {
    lock.release();
    throw err;
  }
  let store: EmbeddedStore;
  let queue: EmbeddedQueue;
  try {
    store = new EmbeddedStore(db, o.dataDir, { clock: o.clock, key: o.key, maxStreams: o.maxStreams, onStreamsDropped: o.onStreamsDropped });
    queue = new EmbeddedQueue(db, { clock: o.clock, logger: o.logger, drainTimeoutMs: o.drainTimeoutMs });
  } catch (err) {
    db.close();
    lock.release();
    throw err;
  }
  const checkpointer = new Checkpointer(join(o.dataDir, DATABASE_FILE), o.walSizeLimit);
  return {
    mode: "embedded",
    db,
    store,
    queue,
    subjectLock: new KeyedLock(),
    jobLock: new KeyedLock(),
    leader: () => true,
    unavailable: () => [],
    auditHead: () => store.auditHead,
    housekeeping: async () => {
      if (db.isOpen) await checkpointer.checkpoint();
    },
    close: async () => {
      await checkpointer.close().catch((err: unknown) => o.logger.warn({ err }, "checkpoint worker stop failed"));
      if (db.isOpen) db.close();
      lock.release();
    },
  };
}

/**
 * Opens `vigil.db` and refuses to start on one that is damaged, or missing while the audit log
 * shows an earlier run: either way the agent would start with every subject at full access and
 * nothing to revert, silently forgetting what it had enforced.
 */
function openStateDatabase(dataDir: string, walSizeLimit: number): DatabaseSync {
  const file = join(dataDir, DATABASE_FILE);
  const audit = join(dataDir, AUDIT_FILE);
  const restore = `Stop here and restore ${file} from a backup. To start afresh on purpose, move the whole data_dir aside (keep it for investigation) and start again`;
  if (!existsSync(file) && sizeOf(audit) > 0) {
    throw new VigilError("VIGIL_ERR_STORE", `${file} is missing, but the audit log ${audit} records earlier decisions: starting without it would put every subject back to full access with no reverts. ${restore}`, {
      details: { file, audit },
    });
  }
  let db: DatabaseSync;
  try {
    db = openDatabase(dataDir, { manualCheckpoint: true, walSizeLimit });
  } catch (err) {
    throw new VigilError("VIGIL_ERR_STORE", `${errorMessage(err)}. ${restore}`, { cause: err, details: { file } });
  }
  const problems = quickCheck(db);
  if (problems.length > 0) {
    db.close();
    throw new VigilError("VIGIL_ERR_STORE", `${file} is damaged (PRAGMA quick_check: ${problems.slice(0, 3).join("; ")}). ${restore}`, { details: { file, problems: problems.slice(0, 20) } });
  }
  return db;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}
