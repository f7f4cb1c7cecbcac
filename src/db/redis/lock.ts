/**
 * A keyed lock shared by every process on one Redis: `run(keys, fn)` holds all the keys while `fn`
 * runs, so two replicas never evaluate one subject at once, nor run two jobs of one action for one
 * subject at once.
 *
 * All keys are taken in one script or none, so two holders of overlapping sets cannot deadlock.
 * Each holds for `ttlMs` and is renewed every third of it while `fn` runs: a holder that dies (a
 * SIGKILL, a lost host) frees its keys at most `ttlMs` later. Contenders in the same process queue
 * in memory first, so only one of them polls Redis for a key.
 *
 * A holder that cannot renew (Redis away longer than `ttlMs`, an event loop blocked that long) may
 * lose its keys while `fn` still runs; it is told so in the log. What it does meanwhile is what a
 * single process would do after a crash: the engine's writes are level-triggered and keyed by
 * generation, so the next holder works from what is stored.
 */
import { randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { redisError } from "./connection.ts";
import { script, type Script } from "./script.ts";

/** The shape the engine's in-process lock has; `KeyedLock` in engine/keyed-lock.ts is the other. */
export interface LockLike {
  run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;
}

export interface RedisLockOptions {
  /** Key prefix, e.g. `vigil:lock:subject:`. */
  readonly prefix: string;
  /** How long a claim lasts without renewal. */
  readonly ttlMs: number;
  /** The in-process lock contenders queue on first. */
  readonly local: LockLike;
  readonly logger?: { warn(obj: object, msg?: string): void };
}

const ACQUIRE = script(`
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and v ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 1`);

const EXTEND = script(`
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('PEXPIRE', KEYS[i], ARGV[2]); n = n + 1 end
end
return n`);

const RELEASE = script(`
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1`);

/** Most keys one script call takes: a batch of subjects larger than this is taken in steps, in key order. */
const MAX_KEYS = 1_000;

export class RedisKeyedLock implements LockLike {
  readonly #redis: Redis;
  readonly #o: RedisLockOptions;
  readonly #owner = randomBytes(12).toString("base64url");
  #counter = 0;

  constructor(redis: Redis, options: RedisLockOptions) {
    this.#redis = redis;
    this.#o = options;
  }

  run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    return this.#o.local.run(unique, async () => {
      const token = `${this.#owner}:${++this.#counter}`;
      const redisKeys = unique.map((k) => this.#o.prefix + encodeURIComponent(k)).sort();
      await this.#acquire(redisKeys, token);
      let lost = false;
      const renew = setInterval(() => {
        this.#call(EXTEND, redisKeys, token, "renew a lock")
          .then((n) => {
            if (n < redisKeys.length && !lost) {
              lost = true;
              this.#o.logger?.warn({ keys: unique.length }, "cluster lock: a claim expired before it was renewed (Redis away, or the event loop blocked); another replica may now work on the same subject");
            }
          })
          .catch(() => undefined);
      }, Math.max(100, Math.floor(this.#o.ttlMs / 3)));
      renew.unref();
      try {
        return await fn();
      } finally {
        clearInterval(renew);
        // Not waited for: the next claim of these keys from this process goes out on the same
        // connection after it, and Redis runs a connection's commands in order; another process
        // retries until it is through. A release that fails leaves the keys to expire.
        this.#call(RELEASE, redisKeys, token, "release a lock").catch(() => undefined);
      }
    });
  }

  /** Takes every key or waits: polls with a backoff from 2 ms to 100 ms. A Redis error ends the wait. */
  async #acquire(keys: readonly string[], token: string): Promise<void> {
    const chunks: string[][] = [];
    for (let i = 0; i < keys.length; i += MAX_KEYS) chunks.push(keys.slice(i, i + MAX_KEYS));
    const taken: string[][] = [];
    try {
      for (const chunk of chunks) {
        let wait = 2;
        while ((await this.#call(ACQUIRE, chunk, token, "take a lock")) !== 1) {
          await new Promise((r) => setTimeout(r, wait + Math.random() * wait));
          wait = Math.min(100, wait * 2);
        }
        taken.push(chunk);
      }
    } catch (err) {
      for (const chunk of taken) await this.#call(RELEASE, chunk, token, "release a lock").catch(() => undefined);
      throw err;
    }
  }

  async #call(run: Script, keys: readonly string[], token: string, what: string): Promise<number> {
    try {
      return Number(await run(this.#redis, keys, [token, this.#o.ttlMs]));
    } catch (err) {
      throw redisError(what, err);
    }
  }
}
