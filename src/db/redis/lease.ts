/**
 * Leadership among the replicas: a lease in Redis that one replica holds at a time, for the work
 * that must be done once (upserting the schedules, housekeeping sweeps).
 *
 * Every replica tries to take or renew the lease every third of its time. Taking it draws a new
 * fencing token from a counter that never goes back; a leader's writes that must not come from a
 * deposed leader carry it (`fence`), and a write with an older token than the last one seen is
 * refused. A leader that cannot renew stops acting as leader as soon as its lease may have expired
 * (by its own clock, from the moment it sent the renewal), before anyone else can take it over; a
 * leader that stops cleanly gives the lease up, so the next one takes over at its next try instead
 * of waiting the lease out.
 */
import type { Redis } from "ioredis";
import { errorMessage } from "../../errors.ts";
import { scrub } from "../../util/redact.ts";
import { script } from "./script.ts";

/** KEYS: lease, counter. ARGV: owner, ttl ms. Returns the token held (0: someone else holds it). */
const TAKE_OR_RENEW = script(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  local t = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. t, 'PX', ARGV[2])
  return t
end
local sp = string.find(cur, ' ', 1, true)
if sp and string.sub(cur, 1, sp - 1) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return tonumber(string.sub(cur, sp + 1))
end
return 0`);

/** KEYS: lease. ARGV: owner. */
const GIVE_UP = script(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp and string.sub(cur, 1, sp - 1) == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return 1`);

/** KEYS: fence. ARGV: token. Records the token unless a newer one was seen; returns 1 when it is current. */
const FENCE = script(`
local seen = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(ARGV[1])
if t < seen then return 0 end
if t > seen then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`);

export interface LeaseOptions {
  /** Key of the lease; the fencing counter is `<key>:token`. */
  readonly key: string;
  /** Who this replica is (unique per process). */
  readonly owner: string;
  readonly ttlMs: number;
  readonly logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** Told each time this replica gains (with its token) or loses the lease. */
  readonly onChange?: (leader: boolean, token: number) => void;
}

export class RedisLease {
  readonly #redis: Redis;
  readonly #o: LeaseOptions;
  #token = 0;
  /** Until when (epoch ms, own clock) the lease is surely ours. */
  #validUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #running = false;
  #busy: Promise<void> = Promise.resolve();

  constructor(redis: Redis, options: LeaseOptions) {
    this.#redis = redis;
    this.#o = options;
  }

  /** Whether this replica leads now. */
  get leader(): boolean {
    return this.#token > 0 && Date.now() < this.#validUntil;
  }

  /** The fencing token of the current leadership (0 when not leader). */
  get token(): number {
    return this.leader ? this.#token : 0;
  }

  /** Tries at once, then every third of the lease. */
  start(): Promise<void> {
    if (this.#running) return this.#busy;
    this.#running = true;
    this.#timer = setInterval(() => void this.#tick(), Math.max(100, Math.floor(this.#o.ttlMs / 3)));
    this.#timer.unref();
    return this.#tick();
  }

  /** Stops trying and gives the lease up if held. */
  async stop(): Promise<void> {
    this.#running = false;
    clearInterval(this.#timer);
    await this.#busy;
    const held = this.#token > 0;
    this.#lose();
    if (held) await GIVE_UP(this.#redis, [this.#o.key], [this.#o.owner]).catch(() => undefined);
  }

  /** True when `token` is the newest leadership seen by the fence at `key` (and records it). */
  async fence(key: string, token = this.token): Promise<boolean> {
    if (token <= 0) return false;
    return Number(await FENCE(this.#redis, [key], [token])) === 1;
  }

  #tick(): Promise<void> {
    this.#busy = this.#busy.then(() => this.#try());
    return this.#busy;
  }

  async #try(): Promise<void> {
    if (!this.#running) return;
    const sent = Date.now();
    let token: number;
    try {
      token = Number(await TAKE_OR_RENEW(this.#redis, [this.#o.key, `${this.#o.key}:token`], [this.#o.owner, this.#o.ttlMs]));
    } catch (err) {
      // Not renewed: the expiry timer ends the leadership when the lease may have run out.
      if (this.#token > 0) this.#o.logger.warn({ err: scrub(errorMessage(err)) }, "cluster: cannot renew the leader lease");
      return;
    }
    if (!this.#running) return;
    if (token === 0) {
      if (this.#token > 0) this.#lose();
      return;
    }
    const gained = this.#token !== token;
    if (gained && this.#token > 0) this.#lose();
    this.#token = token;
    // Counted from before the call: the lease may have been set at any moment after it was sent.
    this.#validUntil = sent + this.#o.ttlMs - Math.min(500, Math.floor(this.#o.ttlMs / 10));
    clearTimeout(this.#expiry);
    this.#expiry = setTimeout(() => this.#lose(), Math.max(0, this.#validUntil - Date.now()));
    this.#expiry.unref();
    if (gained) {
      this.#o.logger.info({ token }, "cluster: this replica is now the leader");
      this.#o.onChange?.(true, token);
    }
  }

  #lose(): void {
    clearTimeout(this.#expiry);
    const token = this.#token;
    if (token === 0) return;
    this.#token = 0;
    this.#validUntil = 0;
    this.#o.logger.info({ token }, "cluster: this replica is no longer the leader");
    this.#o.onChange?.(false, token);
  }
}
