/**
 * Cluster mode's backend: replicas sharing one Redis for the queue (BullMQ), the state, the audit
 * chain, the locks that keep two replicas off one subject and the lease that makes one of them the
 * leader. Loaded only in cluster mode, so an embedded agent never loads BullMQ or ioredis.
 *
 * Nothing is kept on local disk: a replica is stateless and replaceable, and `data_dir` is neither
 * locked nor written (two replicas may share a host, and a pod needs no volume).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { closeRedis, describeRedis, openRedis, RedisHealth, waitReady, type RedisSettings } from "../db/redis/connection.ts";
import { RedisKeyedLock } from "../db/redis/lock.ts";
import { RedisLease } from "../db/redis/lease.ts";
import { checkPersistence } from "../db/redis/persistence.ts";
import { RedisStore } from "../store/redis.ts";
import { BullQueue } from "../queue/bullmq.ts";
import type { BackendOptions, Backend } from "./backend.ts";
import { KeyedLock } from "./keyed-lock.ts";

export interface ClusterOptions extends Omit<BackendOptions, "dataDir" | "walSizeLimit"> {
  readonly redis: RedisSettings;
  readonly prefix: string;
  readonly lockDurationMs: number;
  readonly leaseMs: number;
  readonly keepCompleted: number;
  readonly keepFailed: number;
  /** Cluster-wide caps per job kind. */
  readonly concurrency: Readonly<Record<string, number | undefined>>;
  /** Aborts the wait for Redis at start (the agent was asked to stop). */
  readonly signal: AbortSignal;
  /** Told each time this replica gains or loses the leadership. */
  readonly onLeadership?: (leader: boolean) => void;
  /** Told why start is still waiting for Redis (every few seconds), and undefined once connected. */
  readonly onWait?: (reason: string | undefined) => void;
  /** Told each time Redis comes or goes. */
  readonly onRedis?: (up: boolean, reason: string | undefined) => void;
}

export interface ClusterBackend extends Backend {
  readonly mode: "cluster";
  readonly store: RedisStore;
  readonly queue: BullQueue;
  /** The fencing token of this replica's leadership, 0 when it does not lead. */
  token(): number;
  /** True when `token` is still the newest leadership, for writes a deposed leader must not make. */
  fence(token: number): Promise<boolean>;
  /** Whether the connections to Redis are up. */
  redisUp(): boolean;
  /** Takes part in the leader election (after the engine is ready to act as leader). */
  elect(): Promise<void>;
}

/**
 * Connects (waiting as long as it takes, telling why every few seconds: `vigil run` does not exit
 * and retry, and never falls back to embedded), checks the persistence settings, and builds the
 * parts.
 */
export async function openCluster(o: ClusterOptions): Promise<ClusterBackend> {
  const where = describeRedis(o.redis);
  const command = openRedis(o.redis, "command", "vigil:command");
  const worker = openRedis(o.redis, "worker", "vigil:worker");
  const health = [new RedisHealth(command, where, (up, reason) => o.onRedis?.(up, reason)), new RedisHealth(worker, where)];
  let lastWait = 0;
  const onWait = (reason: string) => {
    o.onWait?.(`waiting for Redis at ${where}: ${reason}`);
    if (Date.now() - lastWait < 4_000) return;
    lastWait = Date.now();
    o.logger.warn({ redis: where, reason }, `waiting for Redis at ${where}: ${reason}`);
  };
  try {
    await waitReady(command, { signal: o.signal, onWait });
    await waitReady(worker, { signal: o.signal, onWait });
  } catch (err) {
    await Promise.all([closeRedis(command), closeRedis(worker)]);
    throw err;
  }
  o.onWait?.(undefined);
  o.logger.info({ redis: where }, "connected to Redis");
  await warnOnPersistence(command, where, o);

  const store = new RedisStore(command, { prefix: o.prefix, clock: o.clock, key: o.key, maxStreams: o.maxStreams, onStreamsDropped: o.onStreamsDropped });
  const queue = new BullQueue({
    prefix: o.prefix,
    connection: command,
    workerConnection: worker,
    logger: o.logger,
    lockDurationMs: o.lockDurationMs,
    drainTimeoutMs: o.drainTimeoutMs,
    keepCompleted: o.keepCompleted,
    keepFailed: o.keepFailed,
    globalConcurrency: o.concurrency,
  });
  const lease = new RedisLease(command, {
    key: `${o.prefix}:leader`,
    owner: `${hostname()}/${process.pid}/${randomBytes(6).toString("base64url")}`,
    ttlMs: o.leaseMs,
    logger: o.logger,
    onChange: (leader) => o.onLeadership?.(leader),
  });
  const fenceKey = `${o.prefix}:leader:fence`;
  return {
    mode: "cluster",
    store,
    queue,
    subjectLock: new RedisKeyedLock(command, { prefix: `${o.prefix}:lock:subject:`, ttlMs: o.lockDurationMs, local: new KeyedLock(), logger: o.logger }),
    jobLock: new RedisKeyedLock(command, { prefix: `${o.prefix}:lock:action:`, ttlMs: o.lockDurationMs, local: new KeyedLock(), logger: o.logger }),
    leader: () => lease.leader,
    token: () => lease.token,
    fence: (token) => lease.fence(fenceKey, token),
    unavailable: () => [...new Set(health.map((h) => h.reason).filter((r): r is string => r !== undefined))],
    redisUp: () => health.every((h) => h.up),
    auditHead: () => store.auditHead,
    elect: () => lease.start(),
    housekeeping: async () => {
      await store.refreshAuditHead();
    },
    close: async () => {
      await lease.stop();
      await Promise.all([closeRedis(command), closeRedis(worker)]);
    },
  };
}

async function warnOnPersistence(redis: Redis, where: string, o: ClusterOptions): Promise<void> {
  try {
    const report = await checkPersistence(redis);
    for (const warning of report.warnings) o.logger.warn({ redis: where, appendonly: report.appendonly ?? null, appendfsync: report.appendfsync ?? null, maxmemory_policy: report.maxmemory_policy ?? null }, `Redis persistence: ${warning}`);
  } catch (err) {
    o.logger.warn({ redis: where, err }, "cannot check Redis's persistence settings");
  }
}
