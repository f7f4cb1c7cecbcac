/**
 * The StateStore of cluster mode, on the Redis the replicas share: decisions, check results, the
 * engine's small documents (the blast-radius guard), the enforcement records and the keyed,
 * hash-chained audit log.
 *
 * Each document is one hash field holding the same JSON the embedded store keeps. Writes that
 * depend on what is stored (newest result wins, enforcement transitions, the guard's admission)
 * are optimistic: read, apply the pure rule shared by every store (`enforcement.ts`, `decide.ts`),
 * then write in one script that first checks every field read is unchanged, and start over when
 * another replica got there first. Indexes (subjects per access level, states not yet enforced,
 * unreconciled records, result expiry) change in the same script as what they index.
 *
 * The audit log is appended by a script that takes the head (seq, hash) the lines were chained
 * from and refuses them unless it is still the head: two replicas never fork the chain, and one
 * that lost the race chains its lines again from the new head. Lines are kept in canonical JSON
 * exactly as the embedded log writes them, so `vigil audit verify` checks them the same way.
 *
 * Every key starts with `<prefix>:store:` or `<prefix>:audit:`; dynamic parts are URI-encoded.
 */
import type { Redis } from "ioredis";
import { VigilError } from "../errors.ts";
import { resultSlot, type AccessLevel, type CheckResult } from "../policy/model.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import { redisError } from "../db/redis/connection.ts";
import { script } from "../db/redis/script.ts";
import { chainEvents, GENESIS_HASH, type AuditHead, type AuditKey } from "./audit.ts";
import { isUnsettled, recordInSteps, type AuditEntry, type AuditEvent, type AuditQuery, type DecidedGeneration, type DesiredEnforcement, type EnforcementEvent, type EnforcementKey, type EnforcementRecord, type EvaluationRecord, type StateStore, type StoredState } from "./contract.ts";
import { applyEnforcementEvent, byFirstFailure, desire, isUnreconciled, supersede } from "./enforcement.ts";
import type { KeyValueEntry } from "../plugin/state.ts";
import { compareCodeUnits } from "../util/compare.ts";

const SEP = "\u0000";
const NIL = "\u0000nil";
/** Most attempts of one optimistic write before it gives up as `VIGIL_ERR_STORE`. */
const MAX_TRIES = 64;
/** Fields read or written per command. */
const CHUNK = 1_000;
/** Audit events chained and appended in one script. */
const AUDIT_BATCH = 500;

/**
 * Applies ops only when every checked hash field still holds what was read. ARGV: the number of
 * checks, then (key index, field, expected | NIL) per check, then (op, key index, a, b) per op.
 */
const APPLY = script(`
local nil_ = '\\0nil'
local n = tonumber(ARGV[1])
local i = 2
for c = 1, n do
  local cur = redis.call('HGET', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  if cur == false then cur = nil_ end
  if cur ~= ARGV[i + 2] then return 0 end
  i = i + 3
end
while i <= #ARGV do
  local op, k, a, b = ARGV[i], KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]
  if op == 'hset' then redis.call('HSET', k, a, b)
  elseif op == 'hdel' then redis.call('HDEL', k, a)
  elseif op == 'hincr' then
    if redis.call('HINCRBY', k, a, tonumber(b)) <= 0 then redis.call('HDEL', k, a) end
  elseif op == 'sadd' then redis.call('SADD', k, a)
  elseif op == 'srem' then redis.call('SREM', k, a)
  elseif op == 'zadd' then redis.call('ZADD', k, tonumber(b), a)
  elseif op == 'zrem' then redis.call('ZREM', k, a)
  elseif op == 'del' then redis.call('DEL', k)
  end
  i = i + 4
end
return 1`);

/**
 * Appends chained audit lines if the head is still the one they were chained from. KEYS: head,
 * lines, then per line its type index and subject index. ARGV: expected seq, expected hash, key id,
 * count, then per line (text, hash, has subject). Returns {1|0, head seq, head hash}.
 */
const APPEND_AUDIT = script(`
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local hash = redis.call('HGET', KEYS[1], 'hash') or ARGV[2]
if seq ~= tonumber(ARGV[1]) or (seq > 0 and hash ~= ARGV[2]) then
  return {0, tostring(seq), hash}
end
local n = tonumber(ARGV[4])
local last = hash
for i = 1, n do
  local s = seq + i
  local a = 4 + 3 * (i - 1)
  redis.call('HSET', KEYS[2], s, ARGV[a + 1])
  redis.call('ZADD', KEYS[2 + 2 * (i - 1) + 1], s, s)
  if ARGV[a + 3] == '1' then redis.call('ZADD', KEYS[2 + 2 * (i - 1) + 2], s, s) end
  last = ARGV[a + 2]
end
redis.call('HSET', KEYS[1], 'seq', seq + n, 'hash', last, 'key_id', ARGV[3])
return {1, tostring(seq + n), last}`);

/**
 * Removes expired results: KEYS: expiry index, then the results hash of each member. ARGV: before,
 * then per member (member, field). A member whose result was replaced by a newer one meanwhile has
 * a later score and stays.
 */
const PRUNE_RESULTS = script(`
local before = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) < before then
    redis.call('HDEL', KEYS[i / 2 + 1], ARGV[i + 1])
    redis.call('ZREM', KEYS[1], ARGV[i])
    n = n + 1
  end
end
return n`);

/**
 * Deletes plugin values in one step. KEYS: values hash, keys by name (lex), keys by age, owners hash.
 * ARGV: mode ("age": delete each key last written before ARGV[2]; "owner": each key still owned by
 * ARGV[2]), then the keys. Returns how many were deleted. The condition is checked here, so a value
 * written again since it was read is kept.
 */
const DELETE_VALUES = script(`
local n = 0
for i = 3, #ARGV do
  local k = ARGV[i]
  local hit
  if ARGV[1] == 'age' then
    local score = redis.call('ZSCORE', KEYS[3], k)
    hit = score and tonumber(score) < tonumber(ARGV[2])
  else
    hit = redis.call('HGET', KEYS[4], k) == ARGV[2]
  end
  if hit then
    redis.call('HDEL', KEYS[1], k)
    redis.call('ZREM', KEYS[2], k)
    redis.call('ZREM', KEYS[3], k)
    redis.call('HDEL', KEYS[4], k)
    n = n + 1
  end
end
return n`);

/**
 * markEnforced in one step: KEYS: states hash, unenforced set. ARGV: subject, generation, access,
 * unenforced member. Reads the state's generations (decoded, never re-encoded: the JSON stays the
 * bytes JSON.stringify wrote) and, unless it already records a later one, rewrites the two fields
 * every store writes last, `"enforced_generation":N,"enforced_access":"…"}`. Returns 1 when
 * written, 0 when there is nothing to write, -1 when the state is not laid out that way (the caller
 * then writes it the long way).
 */
const MARK_ENFORCED = script(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local s = cjson.decode(raw)
local gen = tonumber(ARGV[2])
if type(s.enforced_generation) ~= 'number' or type(s.decision) ~= 'table' or type(s.decision.generation) ~= 'number' then return -1 end
if s.enforced_generation > gen then return 0 end
local tail = '"enforced_generation":' .. string.format('%d', s.enforced_generation) .. ',"enforced_access":"' .. tostring(s.enforced_access) .. '"}'
if string.sub(raw, -#tail) ~= tail then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], string.sub(raw, 1, #raw - #tail) .. '"enforced_generation":' .. ARGV[2] .. ',"enforced_access":"' .. ARGV[3] .. '"}')
if gen < s.decision.generation then redis.call('SADD', KEYS[2], ARGV[4]) else redis.call('SREM', KEYS[2], ARGV[4]) end
return 1`);

/** A write assembled from checks and ops, run by APPLY. */
class Tx {
  readonly keys: string[] = [];
  readonly #index = new Map<string, number>();
  readonly #checks: (string | number)[] = [];
  readonly #ops: (string | number)[] = [];
  #nChecks = 0;

  #k(key: string): number {
    let i = this.#index.get(key);
    if (i === undefined) {
      this.keys.push(key);
      i = this.keys.length;
      this.#index.set(key, i);
    }
    return i;
  }

  /** The write applies only if `field` of `key` still holds `value` (undefined: absent). */
  expect(key: string, field: string, value: string | undefined): this {
    this.#checks.push(this.#k(key), field, value ?? NIL);
    this.#nChecks++;
    return this;
  }

  #op(op: string, key: string, a: string | number, b: string | number = ""): this {
    this.#ops.push(op, this.#k(key), a, b);
    return this;
  }

  hset(key: string, field: string, value: string): this {
    return this.#op("hset", key, field, value);
  }
  hdel(key: string, field: string): this {
    return this.#op("hdel", key, field);
  }
  /** Adds `n`; a count that reaches 0 or less is removed. */
  hincr(key: string, field: string, n: number): this {
    return this.#op("hincr", key, field, n);
  }
  sadd(key: string, member: string): this {
    return this.#op("sadd", key, member);
  }
  srem(key: string, member: string): this {
    return this.#op("srem", key, member);
  }
  zadd(key: string, member: string, score: number): this {
    return this.#op("zadd", key, member, score);
  }
  zrem(key: string, member: string): this {
    return this.#op("zrem", key, member);
  }
  del(key: string): this {
    return this.#op("del", key, "");
  }

  get empty(): boolean {
    return this.#ops.length === 0;
  }

  args(): (string | number)[] {
    return [this.#nChecks, ...this.#checks, ...this.#ops];
  }
}

export interface RedisStoreOptions {
  /** `agent.cluster.prefix`. */
  readonly prefix: string;
  readonly clock?: Clock;
  /** Keys the audit chain; the agent always passes one. */
  readonly key?: AuditKey;
  /** Pushed result streams kept per (subject, check); see the embedded store. */
  readonly maxStreams?: number;
  readonly onStreamsDropped?: (check: string, n: number) => void;
}

interface PendingAudit {
  readonly events: readonly AuditEvent[];
  readonly resolve: (entries: AuditEntry[]) => void;
  readonly reject: (err: unknown) => void;
}

export class RedisStore implements StateStore {
  readonly #redis: Redis;
  readonly #clock: Clock;
  readonly #key: AuditKey | undefined;
  readonly #maxStreams: number | undefined;
  readonly #onStreamsDropped: ((check: string, n: number) => void) | undefined;
  readonly #s: string;
  readonly #a: string;
  #stopped = false;
  #head: AuditHead = { seq: 0, hash: GENESIS_HASH };
  #auditQueue: PendingAudit[] = [];
  #appending = false;
  #pruneEnforcementCursor = "0";

  constructor(redis: Redis, options: RedisStoreOptions) {
    this.#redis = redis;
    this.#clock = options.clock ?? systemClock;
    this.#key = options.key;
    this.#maxStreams = options.maxStreams;
    this.#onStreamsDropped = options.onStreamsDropped;
    this.#s = `${options.prefix}:store:`;
    this.#a = `${options.prefix}:audit:`;
  }

  // ---- keys ---------------------------------------------------------------------------------

  get #policies(): string {
    return `${this.#s}policies`;
  }
  #states(policy: string): string {
    return `${this.#s}states:${enc(policy)}`;
  }
  #access(policy: string): string {
    return `${this.#s}access:${enc(policy)}`;
  }
  #counts(policy: string): string {
    return `${this.#s}counts:${enc(policy)}`;
  }
  get #unenforcedKey(): string {
    return `${this.#s}unenforced`;
  }
  #results(subject: string): string {
    return `${this.#s}results:${enc(subject)}`;
  }
  get #expiry(): string {
    return `${this.#s}results-expiry`;
  }
  get #meta(): string {
    return `${this.#s}meta`;
  }
  #enf(policy: string, subject: string): string {
    return `${this.#s}enf:${enc(policy)}:${enc(subject)}`;
  }
  get #enfIds(): string {
    return `${this.#s}enf-ids`;
  }
  get #enfUnreconciled(): string {
    return `${this.#s}enf-unreconciled`;
  }
  get #enfPairs(): string {
    return `${this.#s}enf-pairs`;
  }
  /** Plugin values of a space: the bytes, the keys in name order (for prefixes), by age, and their subject. */
  #kv(space: string, part: "values" | "names" | "ages" | "owners"): string {
    return `${this.#s}kv-${part}:${enc(space)}`;
  }
  /** The plugin values tied to a subject, as `space SEP key` (a member may be stale: its owner decides). */
  #kvSubject(subject: string): string {
    return `${this.#s}kv-subject:${enc(subject)}`;
  }
  get #auditHeadKey(): string {
    return `${this.#a}head`;
  }
  get #auditLines(): string {
    return `${this.#a}lines`;
  }
  #auditType(type: string): string {
    return `${this.#a}type:${enc(type)}`;
  }
  #auditSubject(subject: string): string {
    return `${this.#a}subject:${enc(subject)}`;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Reads the audit head and refuses a chain written under another key, or one whose last line does
   * not match the recorded head (`VIGIL_ERR_AUDIT_CORRUPT`), as the embedded store does.
   */
  async start(): Promise<void> {
    this.#stopped = false;
    const head = await this.#call("read the audit head", () => this.#redis.hmget(this.#auditHeadKey, "seq", "hash", "key_id"));
    const seq = Number(head[0] ?? 0);
    if (seq === 0) {
      this.#head = { seq: 0, hash: GENESIS_HASH };
      return;
    }
    const hash = head[1] ?? "";
    const keyId = head[2] ?? null;
    const where = `the audit log in Redis (${this.#a}*)`;
    if (this.#key && keyId !== this.#key.id) {
      throw new VigilError("VIGIL_ERR_AUDIT_CORRUPT", `${where} was written with audit key id ${keyId}, but the configured key is ${this.#key.id}: configure the key the log was written with (agent.audit.key)`, {
        details: { written_with: keyId, configured: this.#key.id },
      });
    }
    const last = await this.#call("read the audit log", () => this.#redis.hget(this.#auditLines, String(seq)));
    const entry = last === null ? undefined : parseLine(last);
    if (!entry || entry.seq !== seq || entry.hash !== hash) {
      throw new VigilError("VIGIL_ERR_AUDIT_CORRUPT", `${where} records head seq ${seq}, but its line ${last === null ? "is missing" : "differs"}: it was changed outside vigil; run \`vigil audit verify\``, {
        details: { recordedHead: { seq, hash } },
      });
    }
    this.#head = { seq, hash };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
  }

  // ---- states -------------------------------------------------------------------------------

  async getState(policy: string, subject: string): Promise<StoredState | undefined> {
    const raw = await this.#call("read a state", () => this.#redis.hget(this.#states(policy), subject));
    return raw === null ? undefined : (JSON.parse(raw) as StoredState);
  }

  async getStates(policy: string, subjects: readonly string[]): Promise<Map<string, StoredState>> {
    const unique = [...new Set(subjects)];
    const out = new Map<string, StoredState>();
    for (const chunk of chunks(unique, CHUNK)) {
      const raws = await this.#call("read states", () => this.#redis.hmget(this.#states(policy), ...chunk));
      raws.forEach((raw, i) => {
        if (raw !== null) out.set(chunk[i]!, JSON.parse(raw) as StoredState);
      });
    }
    return out;
  }

  async unsettled(): Promise<StoredState[]> {
    return (await this.listStates()).filter(isUnsettled);
  }

  async listStates(filter: { policy?: string; subject?: string } = {}): Promise<StoredState[]> {
    if (filter.policy !== undefined && filter.subject !== undefined) {
      const s = await this.getState(filter.policy, filter.subject);
      return s ? [s] : [];
    }
    const policies = filter.policy !== undefined ? [filter.policy] : await this.#policyNames();
    const out: StoredState[] = [];
    if (filter.subject !== undefined) {
      const subject = filter.subject;
      const raws = await this.#call("list states", async () => {
        const p = this.#redis.pipeline();
        for (const policy of policies) p.hget(this.#states(policy), subject);
        return pipelined<string | null>(await p.exec());
      });
      for (const raw of raws) if (raw !== null) out.push(JSON.parse(raw) as StoredState);
    } else {
      for (const policy of policies) {
        for await (const [, raw] of this.#hscan(this.#states(policy))) out.push(JSON.parse(raw) as StoredState);
      }
    }
    return out.sort((a, b) => compareCodeUnits(a.decision.policy, b.decision.policy) || compareCodeUnits(a.decision.subject, b.decision.subject));
  }

  async putStates(states: readonly StoredState[]): Promise<void> {
    if (states.length === 0) return;
    const last = new Map<string, StoredState>();
    for (const s of states) last.set(`${s.decision.policy}${SEP}${s.decision.subject}`, s);
    const list = [...last.values()];
    await this.#optimistic("write states", async () => {
      const accessNow = await this.#accessOf(list.map((s) => [s.decision.policy, s.decision.subject] as const));
      const tx = new Tx();
      for (const [i, s] of list.entries()) {
        const { policy, subject, access } = s.decision;
        const before = accessNow[i];
        tx.expect(this.#access(policy), subject, before);
        tx.hset(this.#states(policy), subject, JSON.stringify(s));
        tx.hset(this.#access(policy), subject, access);
        if (before !== access) {
          if (before !== undefined) tx.hincr(this.#counts(policy), before, -1);
          tx.hincr(this.#counts(policy), access, 1);
        }
        if (s.enforced_generation < s.decision.generation) tx.sadd(this.#unenforcedKey, `${policy}${SEP}${subject}`);
        else tx.srem(this.#unenforcedKey, `${policy}${SEP}${subject}`);
        tx.sadd(this.#policies, policy);
      }
      return { tx, result: undefined };
    });
  }

  async unenforced(): Promise<StoredState[]> {
    const members = await this.#call("list unenforced states", () => this.#redis.smembers(this.#unenforcedKey));
    const byPolicy = new Map<string, string[]>();
    for (const m of members) {
      const [policy, subject] = splitPair(m);
      const list = byPolicy.get(policy);
      if (list) list.push(subject);
      else byPolicy.set(policy, [subject]);
    }
    const out: StoredState[] = [];
    for (const [policy, subjects] of byPolicy) {
      for (const s of (await this.getStates(policy, subjects)).values()) if (s.enforced_generation < s.decision.generation) out.push(s);
    }
    return out.sort((a, b) => compareCodeUnits(a.decision.policy, b.decision.policy) || compareCodeUnits(a.decision.subject, b.decision.subject));
  }

  /** Records that `generation` was handed to enforcement; never moves backwards. One script, no read first. */
  async markEnforced(policy: string, subject: string, generation: number, access: AccessLevel): Promise<void> {
    const done = Number(
      await this.#call("mark a state enforced", () =>
        MARK_ENFORCED(this.#redis, [this.#states(policy), this.#unenforcedKey], [subject, Math.floor(generation), access, `${policy}${SEP}${subject}`]),
      ),
    );
    if (done !== -1) return;
    await this.#optimistic("mark a state enforced", async () => {
      const raw = await this.#call("read a state", () => this.#redis.hget(this.#states(policy), subject));
      if (raw === null) return undefined;
      const s = JSON.parse(raw) as StoredState;
      if (s.enforced_generation > generation) return undefined;
      const next: StoredState = { ...s, enforced_generation: generation, enforced_access: access };
      const tx = new Tx().expect(this.#states(policy), subject, raw).hset(this.#states(policy), subject, JSON.stringify(next));
      if (next.enforced_generation < next.decision.generation) tx.sadd(this.#unenforcedKey, `${policy}${SEP}${subject}`);
      else tx.srem(this.#unenforcedKey, `${policy}${SEP}${subject}`);
      return { tx, result: undefined };
    });
  }

  async countByAccess(): Promise<Record<string, Record<string, number>>> {
    const policies = await this.#policyNames();
    const counts = await this.#call("count states by access", async () => {
      const p = this.#redis.pipeline();
      for (const policy of policies) p.hgetall(this.#counts(policy));
      return pipelined<Record<string, string>>(await p.exec());
    });
    // A Map, then own properties: a policy named __proto__ or constructor must count as itself.
    const out = new Map<string, Record<string, number>>();
    policies.forEach((policy, i) => {
      const byAccess = new Map<string, number>();
      for (const [access, n] of Object.entries(counts[i] ?? {})) if (Number(n) > 0) byAccess.set(access, Number(n));
      if (byAccess.size > 0) out.set(policy, Object.fromEntries(byAccess));
    });
    return Object.fromEntries(out);
  }

  async stateSubjects(): Promise<string[]> {
    const out = new Set<string>();
    for (const policy of await this.#policyNames()) for await (const [subject] of this.#hscan(this.#states(policy))) out.add(subject);
    return [...out];
  }

  async forgetSubjects(subjects: readonly string[]): Promise<void> {
    const unique = [...new Set(subjects)];
    if (unique.length === 0) return;
    const policies = await this.#policyNames();
    for (const chunk of chunks(unique, 200)) {
      await this.#optimistic("forget subjects", async () => {
        const pairs = chunk.flatMap((subject) => policies.map((policy) => [policy, subject] as const));
        const access = await this.#accessOf(pairs);
        const fields = await this.#call("read check results", async () => {
          const p = this.#redis.pipeline();
          for (const subject of chunk) p.hkeys(this.#results(subject));
          return pipelined<string[]>(await p.exec());
        });
        const tx = new Tx();
        pairs.forEach(([policy, subject], i) => {
          const before = access[i];
          tx.expect(this.#access(policy), subject, before);
          if (before === undefined) return;
          tx.hdel(this.#states(policy), subject).hdel(this.#access(policy), subject).hincr(this.#counts(policy), before, -1);
          tx.srem(this.#unenforcedKey, `${policy}${SEP}${subject}`);
        });
        chunk.forEach((subject, i) => {
          for (const field of fields[i] ?? []) tx.zrem(this.#expiry, `${subject}${SEP}${field}`);
          tx.del(this.#results(subject));
        });
        return { tx, result: undefined };
      });
    }
    await this.#forgetValues(unique);
  }

  // ---- check results ------------------------------------------------------------------------

  async putResults(results: readonly CheckResult[]): Promise<void> {
    if (results.length === 0) return;
    await this.#optimistic("write check results", async () => {
      const wanted = new Map<string, { subject: string; field: string }>();
      for (const r of results) wanted.set(`${r.subject}${SEP}${fieldOf(r)}`, { subject: r.subject, field: fieldOf(r) });
      const targets = [...wanted.values()];
      const stored = await this.#call("read check results", async () => {
        const p = this.#redis.pipeline();
        for (const t of targets) p.hget(this.#results(t.subject), t.field);
        return pipelined<string | null>(await p.exec());
      });
      const current = new Map<string, { raw: string | undefined; observed: number }>();
      targets.forEach((t, i) => {
        const raw = stored[i] ?? undefined;
        current.set(`${t.subject}${SEP}${t.field}`, { raw, observed: raw === undefined ? -Infinity : (JSON.parse(raw) as CheckResult).observed_at });
      });
      const next = new Map<string, CheckResult>();
      for (const r of results) {
        const k = `${r.subject}${SEP}${fieldOf(r)}`;
        const best = next.get(k)?.observed_at ?? current.get(k)!.observed;
        if (r.observed_at >= best) next.set(k, r);
      }
      const tx = new Tx();
      for (const [k, r] of next) {
        const field = fieldOf(r);
        tx.expect(this.#results(r.subject), field, current.get(k)!.raw);
        tx.hset(this.#results(r.subject), field, JSON.stringify(r));
        tx.zadd(this.#expiry, `${r.subject}${SEP}${field}`, r.expires_at);
      }
      return { tx, result: undefined };
    });
    if (this.#maxStreams !== undefined) await this.#capStreams(results, this.#maxStreams);
  }

  /** Drops the oldest pushed streams of each (subject, check) in the batch beyond the cap. */
  async #capStreams(results: readonly CheckResult[], max: number): Promise<void> {
    const pairs = new Map<string, { subject: string; check: string }>();
    for (const r of results) if (r.source === "push" && r.stream) pairs.set(`${r.subject}${SEP}${r.check}`, { subject: r.subject, check: r.check });
    const dropped = new Map<string, number>();
    for (const { subject, check } of pairs.values()) {
      const n = await this.#optimistic("cap result streams", async () => {
        const all = await this.#call("read check results", () => this.#redis.hgetall(this.#results(subject)));
        const streams = Object.entries(all)
          .filter(([field]) => field.startsWith(`${check}${SEP}push:`))
          .map(([field, raw]) => ({ field, raw, observed: (JSON.parse(raw) as CheckResult).observed_at, source: field.slice(check.length + 1) }))
          .sort((a, b) => b.observed - a.observed || compareCodeUnits(a.source, b.source));
        const gone = streams.slice(max);
        if (gone.length === 0) return { tx: new Tx(), result: 0 };
        const tx = new Tx();
        for (const g of gone) tx.expect(this.#results(subject), g.field, g.raw).hdel(this.#results(subject), g.field).zrem(this.#expiry, `${subject}${SEP}${g.field}`);
        return { tx, result: gone.length };
      });
      if (n && n > 0) dropped.set(check, (dropped.get(check) ?? 0) + n);
    }
    for (const [check, n] of dropped) this.#onStreamsDropped?.(check, n);
  }

  async getResults(subjects: readonly string[], checks: readonly string[]): Promise<CheckResult[]> {
    const subjectList = [...new Set(subjects)].sort(compareCodeUnits);
    const wanted = new Set(checks);
    if (subjectList.length === 0 || wanted.size === 0) return [];
    const out: CheckResult[] = [];
    for (const chunk of chunks(subjectList, CHUNK)) {
      const hashes = await this.#call("read check results", async () => {
        const p = this.#redis.pipeline();
        for (const subject of chunk) p.hgetall(this.#results(subject));
        return pipelined<Record<string, string>>(await p.exec());
      });
      for (const all of hashes) {
        const found = Object.entries(all ?? {})
          .filter(([field]) => wanted.has(field.slice(0, field.indexOf(SEP))))
          .sort(([a], [b]) => compareCodeUnits(a, b));
        for (const [, raw] of found) out.push(JSON.parse(raw) as CheckResult);
      }
    }
    return out;
  }

  /** Removes up to `limit` results that expired before `before` (the oldest first). */
  async pruneResults(before: number, limit = 2_000): Promise<number> {
    const members = await this.#call("prune check results", () => this.#redis.zrangebyscore(this.#expiry, "-inf", `(${before}`, "LIMIT", 0, limit));
    let n = 0;
    for (const chunk of chunks(members, 500)) {
      const keys = [this.#expiry];
      const args: (string | number)[] = [before];
      for (const m of chunk) {
        const i = m.indexOf(SEP);
        keys.push(this.#results(m.slice(0, i)));
        args.push(m, m.slice(i + 1));
      }
      n += Number(await this.#call("prune check results", () => PRUNE_RESULTS(this.#redis, keys, args)));
    }
    return n;
  }

  // ---- plugin values ------------------------------------------------------------------------

  async getValues(space: string, keys: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const unique = [...new Set(keys)];
    for (const chunk of chunks(unique, CHUNK)) {
      const values = await this.#call("read plugin values", () => this.#redis.hmgetBuffer(this.#kv(space, "values"), ...chunk));
      chunk.forEach((key, i) => {
        const v = values[i];
        if (v) out.set(key, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      });
    }
    return out;
  }

  async putValues(space: string, entries: readonly KeyValueEntry[], updatedAt: number): Promise<void> {
    if (entries.length === 0) return;
    const [values, names, ages, owners] = (["values", "names", "ages", "owners"] as const).map((p) => this.#kv(space, p)) as [string, string, string, string];
    await this.#call("write plugin values", async () => {
      const m = this.#redis.multi();
      for (const e of entries) {
        if (e.value === null) {
          m.hdel(values, e.key).zrem(names, e.key).zrem(ages, e.key).hdel(owners, e.key);
          continue;
        }
        m.hset(values, e.key, Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength)).zadd(names, 0, e.key).zadd(ages, updatedAt, e.key);
        if (e.subject === undefined) m.hdel(owners, e.key);
        else m.hset(owners, e.key, e.subject).sadd(this.#kvSubject(e.subject), `${space}${SEP}${e.key}`);
      }
      pipelined(await m.exec());
    });
  }

  async listKeys(space: string, prefixes: readonly string[], limit = 10_000): Promise<string[]> {
    const out: string[] = [];
    for (const prefix of new Set(prefixes)) {
      // Byte order: 0xFF never occurs in UTF-8, so "(prefix\xFF" ends the range of keys starting with the prefix.
      const p = Buffer.from(prefix);
      const keys = await this.#call("list plugin values", () =>
        this.#redis.zrangebylex(this.#kv(space, "names"), Buffer.concat([Buffer.from("["), p]), Buffer.concat([Buffer.from("("), p, Buffer.from([0xff])]), "LIMIT", 0, limit),
      );
      out.push(...keys);
    }
    return out;
  }

  async pruneValues(space: string, before: number, limit = 2_000): Promise<number> {
    const keys = await this.#call("prune plugin values", () => this.#redis.zrangebyscore(this.#kv(space, "ages"), "-inf", `(${before}`, "LIMIT", 0, limit));
    let n = 0;
    for (const chunk of chunks(keys, 500)) n += Number(await this.#call("prune plugin values", () => DELETE_VALUES(this.#redis, this.#kvKeys(space), ["age", before, ...chunk])));
    return n;
  }

  #kvKeys(space: string): string[] {
    return (["values", "names", "ages", "owners"] as const).map((p) => this.#kv(space, p));
  }

  /** Deletes the plugin values still tied to these subjects. */
  async #forgetValues(subjects: readonly string[]): Promise<void> {
    for (const batch of chunks(subjects, CHUNK)) {
      // One round trip for the batch's index sets; most subjects have no plugin values at all.
      const sets = await this.#call("read plugin values", async () => {
        const p = this.#redis.pipeline();
        for (const subject of batch) p.smembers(this.#kvSubject(subject));
        return pipelined<string[]>(await p.exec());
      });
      for (const [i, subject] of batch.entries()) {
        const members = sets[i] ?? [];
        if (members.length === 0) continue;
        const bySpace = new Map<string, string[]>();
        for (const m of members) {
          const [space, key] = splitPair(m);
          bySpace.set(space, [...(bySpace.get(space) ?? []), key]);
        }
        for (const [space, keys] of bySpace) {
          for (const chunk of chunks(keys, 500)) await this.#call("forget plugin values", () => DELETE_VALUES(this.#redis, this.#kvKeys(space), ["owner", subject, ...chunk]));
        }
        await this.#call("forget plugin values", () => this.#redis.del(this.#kvSubject(subject)));
      }
    }
  }

  // ---- meta ---------------------------------------------------------------------------------

  async getMeta(key: string): Promise<unknown> {
    const raw = await this.#call("read meta", () => this.#redis.hget(this.#meta, key));
    return raw === null ? undefined : JSON.parse(raw);
  }

  async putMeta(key: string, value: unknown): Promise<void> {
    await this.#call("write meta", () => this.#redis.hset(this.#meta, key, JSON.stringify(value)));
  }

  /** Reads, changes and writes one document atomically across replicas; returns what `change` returned. */
  async updateMeta<R>(key: string, change: (current: unknown) => { value: unknown; result: R }): Promise<R> {
    const r = await this.#optimistic("update meta", async () => {
      const raw = await this.#call("read meta", () => this.#redis.hget(this.#meta, key));
      const { value, result } = change(raw === null ? undefined : JSON.parse(raw));
      return { tx: new Tx().expect(this.#meta, key, raw ?? undefined).hset(this.#meta, key, JSON.stringify(value)), result };
    });
    return r as R;
  }

  // ---- enforcement records ------------------------------------------------------------------

  async desireEnforcement(desired: readonly DesiredEnforcement[], decided: readonly DecidedGeneration[]): Promise<void> {
    if (desired.length === 0 && decided.length === 0) return;
    const pairs = new Map<string, { policy: string; subject: string }>();
    for (const p of [...decided, ...desired]) pairs.set(`${p.policy}${SEP}${p.subject}`, { policy: p.policy, subject: p.subject });
    await this.#optimistic("record desired enforcement", async () => {
      const list = [...pairs.values()];
      const stored = await this.#call("read enforcement records", async () => {
        const p = this.#redis.pipeline();
        for (const { policy, subject } of list) p.hgetall(this.#enf(policy, subject));
        return pipelined<Record<string, string>>(await p.exec());
      });
      /** pair → action → [as read, as it will be]. */
      const records = new Map<string, Map<string, { raw: string | undefined; now: EnforcementRecord | undefined }>>();
      list.forEach(({ policy, subject }, i) => {
        const m = new Map<string, { raw: string | undefined; now: EnforcementRecord | undefined }>();
        for (const [action, raw] of Object.entries(stored[i] ?? {})) m.set(action, { raw, now: JSON.parse(raw) as EnforcementRecord });
        records.set(`${policy}${SEP}${subject}`, m);
      });
      const changed = new Set<string>();
      for (const d of decided) {
        const m = records.get(`${d.policy}${SEP}${d.subject}`)!;
        for (const [action, r] of m) {
          const next = r.now && supersede(r.now, d.generation);
          if (next) {
            r.now = next;
            changed.add(`${d.policy}${SEP}${d.subject}${SEP}${action}`);
          }
        }
      }
      for (const d of desired) {
        const m = records.get(`${d.policy}${SEP}${d.subject}`)!;
        const r = m.get(d.action) ?? { raw: undefined, now: undefined };
        r.now = desire(r.now, d);
        m.set(d.action, r);
        changed.add(`${d.policy}${SEP}${d.subject}${SEP}${d.action}`);
      }
      const tx = new Tx();
      for (const k of changed) {
        const [policy, subject, action] = k.split(SEP) as [string, string, string];
        const r = records.get(`${policy}${SEP}${subject}`)!.get(action)!;
        tx.expect(this.#enf(policy, subject), action, r.raw);
        this.#writeRecord(tx, r.now!);
      }
      return { tx, result: undefined };
    });
  }

  async getEnforcement(policy: string, subject: string): Promise<EnforcementRecord[]> {
    const all = await this.#call("read enforcement records", () => this.#redis.hgetall(this.#enf(policy, subject)));
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as EnforcementRecord)
      .sort((a, b) => a.action.localeCompare(b.action));
  }

  async listEnforcement(filter: { readonly unreconciled: true; readonly policy?: string } | { readonly ids: readonly string[] }): Promise<EnforcementRecord[]> {
    let triples: [string, string, string][];
    if ("ids" in filter) {
      const ids = [...new Set(filter.ids)];
      if (ids.length === 0) return [];
      const found: (string | null)[] = [];
      for (const chunk of chunks(ids, CHUNK)) found.push(...(await this.#call("list enforcement records", () => this.#redis.hmget(this.#enfIds, ...chunk))));
      triples = found.filter((k): k is string => k !== null).map((k) => k.split(SEP) as [string, string, string]);
    } else {
      const members = await this.#call("list enforcement records", () => this.#redis.smembers(this.#enfUnreconciled));
      triples = members.map((k) => k.split(SEP) as [string, string, string]).filter(([policy]) => filter.policy === undefined || policy === filter.policy);
    }
    const raws = await this.#call("list enforcement records", async () => {
      const out: (string | null)[] = [];
      for (const chunk of chunks(triples, CHUNK)) {
        const p = this.#redis.pipeline();
        for (const [policy, subject, action] of chunk) p.hget(this.#enf(policy, subject), action);
        out.push(...pipelined<string | null>(await p.exec()));
      }
      return out;
    });
    const records = raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as EnforcementRecord);
    return "ids" in filter ? records : records.filter(isUnreconciled).sort(byFirstFailure);
  }

  async updateEnforcement(key: EnforcementKey, event: EnforcementEvent): Promise<void> {
    await this.#optimistic("update an enforcement record", async () => {
      const raw = await this.#call("read an enforcement record", () => this.#redis.hget(this.#enf(key.policy, key.subject), key.action));
      if (raw === null) return undefined;
      const next = applyEnforcementEvent(JSON.parse(raw) as EnforcementRecord, event);
      if (!next) return undefined;
      const tx = new Tx().expect(this.#enf(key.policy, key.subject), key.action, raw);
      this.#writeRecord(tx, next);
      return { tx, result: undefined };
    });
  }

  /**
   * Removes up to `limit` settled records (neither pending nor failed) of (policy, subject) pairs
   * that have no state any more, sweeping the pairs a slice at a time.
   */
  async pruneEnforcement(limit = 2_000): Promise<number> {
    const [cursor, members] = await this.#call("prune enforcement records", () => this.#redis.sscan(this.#enfPairs, this.#pruneEnforcementCursor, "COUNT", Math.max(10, Math.min(limit, 1_000))));
    this.#pruneEnforcementCursor = cursor;
    let n = 0;
    for (const pair of members) {
      if (n >= limit) break;
      const [policy, subject] = splitPair(pair);
      n += await this.#optimistic("prune enforcement records", async () => {
        const [hasState, all] = await this.#call("read enforcement records", async () => {
          const p = this.#redis.pipeline();
          p.hexists(this.#states(policy), subject);
          p.hgetall(this.#enf(policy, subject));
          return pipelined<number | Record<string, string>>(await p.exec()) as [number, Record<string, string>];
        });
        if (hasState === 1) return { tx: new Tx(), result: 0 };
        const tx = new Tx().expect(this.#access(policy), subject, undefined);
        let removed = 0;
        let kept = 0;
        for (const [action, raw] of Object.entries(all)) {
          const r = JSON.parse(raw) as EnforcementRecord;
          if (r.status === "pending" || r.status === "failed" || removed >= limit - n) {
            kept++;
            continue;
          }
          tx.expect(this.#enf(policy, subject), action, raw).hdel(this.#enf(policy, subject), action).hdel(this.#enfIds, r.id);
          removed++;
        }
        if (kept === 0) tx.srem(this.#enfPairs, pair);
        return { tx, result: removed };
      }) ?? 0;
    }
    return n;
  }

  #writeRecord(tx: Tx, r: EnforcementRecord): void {
    const triple = `${r.policy}${SEP}${r.subject}${SEP}${r.action}`;
    tx.hset(this.#enf(r.policy, r.subject), r.action, JSON.stringify(r));
    tx.hset(this.#enfIds, r.id, triple);
    tx.sadd(this.#enfPairs, `${r.policy}${SEP}${r.subject}`);
    if (isUnreconciled(r)) tx.sadd(this.#enfUnreconciled, triple);
    else tx.srem(this.#enfUnreconciled, triple);
  }

  // ---- audit log ----------------------------------------------------------------------------

  /** Head of the chain as this replica last saw it (its own appends, and each refresh). */
  get auditHead(): AuditHead {
    return this.#head;
  }

  /** Reads the head again (for checkpoints of appends made by other replicas). */
  async refreshAuditHead(): Promise<AuditHead> {
    const [seq, hash] = await this.#call("read the audit head", () => this.#redis.hmget(this.#auditHeadKey, "seq", "hash"));
    if (seq != null && hash != null && Number(seq) >= this.#head.seq) this.#head = { seq: Number(seq), hash };
    return this.#head;
  }

  recordEvaluation(batch: EvaluationRecord): Promise<void> {
    return recordInSteps(this, batch);
  }

  /**
   * Appends in order. Calls made while an append is in flight are chained together in the next
   * one, so a busy replica writes one script per batch instead of racing itself for the head.
   */
  appendAudit(events: readonly AuditEvent[]): Promise<AuditEntry[]> {
    if (this.#stopped) return Promise.reject(new VigilError("VIGIL_ERR_SHUTDOWN", "the state store is stopped"));
    if (events.length === 0) return Promise.resolve([]);
    return new Promise<AuditEntry[]>((resolve, reject) => {
      this.#auditQueue.push({ events, resolve, reject });
      if (!this.#appending) void this.#drainAudit();
    });
  }

  async #drainAudit(): Promise<void> {
    this.#appending = true;
    try {
      while (this.#auditQueue.length > 0) {
        const batch: PendingAudit[] = [];
        let n = 0;
        while (this.#auditQueue.length > 0 && (batch.length === 0 || n + this.#auditQueue[0]!.events.length <= AUDIT_BATCH)) {
          const next = this.#auditQueue.shift()!;
          batch.push(next);
          n += next.events.length;
        }
        try {
          const entries = await this.#appendChained(batch.flatMap((b) => b.events));
          let at = 0;
          for (const b of batch) {
            b.resolve(entries.slice(at, at + b.events.length));
            at += b.events.length;
          }
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.#appending = false;
    }
  }

  async #appendChained(events: readonly AuditEvent[]): Promise<AuditEntry[]> {
    const key = this.#key;
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const from = this.#head;
      const { entries, lines, head } = chainEvents(events, from, key, this.#clock.now());
      const keys = [this.#auditHeadKey, this.#auditLines];
      const args: (string | number)[] = [from.seq, from.hash, key?.id ?? "", entries.length];
      for (const [i, e] of entries.entries()) {
        const subject = e["subject"];
        keys.push(this.#auditType(e.type), typeof subject === "string" ? this.#auditSubject(subject) : this.#auditSubject(""));
        args.push(lines[i]!, e.hash, typeof subject === "string" ? 1 : 0);
      }
      const reply = (await this.#call("append to the audit log", () => APPEND_AUDIT(this.#redis, keys, args))) as [number, string, string];
      if (Number(reply[0]) === 1) {
        this.#head = head;
        return entries;
      }
      // Another replica appended first: chain again from its head.
      this.#head = { seq: Number(reply[1]), hash: reply[2] };
    }
    throw new VigilError("VIGIL_ERR_STORE", "cannot append to the audit log: the head kept moving (too many replicas appending at once)");
  }

  async readAudit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    const limit = query.limit ?? 100;
    if (limit <= 0) return [];
    if (query.subject === undefined && query.type === undefined) {
      const [seqRaw] = await this.#call("read the audit head", () => this.#redis.hmget(this.#auditHeadKey, "seq"));
      const head = Number(seqRaw ?? 0);
      const from = query.after === undefined ? Math.max(1, head - limit + 1) : query.after + 1;
      const to = query.after === undefined ? head : Math.min(head, query.after + limit);
      const seqs: number[] = [];
      for (let s = from; s <= to; s++) seqs.push(s);
      return this.#lines(seqs);
    }
    // The narrower index (a subject's), filtered by the other field, a page at a time.
    const index = query.subject !== undefined ? this.#auditSubject(query.subject) : this.#auditType(query.type!);
    const out: AuditEntry[] = [];
    const page = Math.max(limit, 100);
    for (let offset = 0; out.length < limit; offset += page) {
      const seqs = await this.#call("read the audit index", () =>
        query.after !== undefined
          ? this.#redis.zrangebyscore(index, `(${query.after}`, "+inf", "LIMIT", offset, page)
          : this.#redis.zrevrangebyscore(index, "+inf", "-inf", "LIMIT", offset, page),
      );
      if (seqs.length === 0) break;
      for (const e of await this.#lines(seqs.map(Number))) {
        if (query.type !== undefined && e.type !== query.type) continue;
        if (query.subject !== undefined && e["subject"] !== query.subject) continue;
        out.push(e);
        if (out.length >= limit) break;
      }
      if (seqs.length < page) break;
    }
    return query.after !== undefined ? out : out.reverse();
  }

  /**
   * The chain for `vigil audit verify`: the recorded head, how many lines are kept, and the lines in
   * order, `CHUNK` at a time (a missing one as undefined).
   */
  async *auditLines(): AsyncGenerator<{ seq: number; text: string | undefined }> {
    const head = (await this.auditState()).head;
    for (let from = 1; from <= head.seq; from += CHUNK) {
      const seqs: string[] = [];
      for (let s = from; s < from + CHUNK && s <= head.seq; s++) seqs.push(String(s));
      const texts = await this.#call("read the audit log", () => this.#redis.hmget(this.#auditLines, ...seqs));
      for (const [i, text] of texts.entries()) yield { seq: from + i, text: text ?? undefined };
    }
  }

  /** The recorded head and the number of lines kept (for verify: more lines than the head is a problem). */
  async auditState(): Promise<{ head: AuditHead; lines: number; key_id: string | null }> {
    const [[seq, hash, keyId], n] = await this.#call("read the audit head", async () => [await this.#redis.hmget(this.#auditHeadKey, "seq", "hash", "key_id"), await this.#redis.hlen(this.#auditLines)] as const);
    return { head: { seq: Number(seq ?? 0), hash: hash ?? GENESIS_HASH }, lines: n, key_id: keyId ?? null };
  }

  async #lines(seqs: readonly number[]): Promise<AuditEntry[]> {
    if (seqs.length === 0) return [];
    const out: AuditEntry[] = [];
    for (const chunk of chunks(seqs, CHUNK)) {
      const texts = await this.#call("read the audit log", () => this.#redis.hmget(this.#auditLines, ...chunk.map(String)));
      for (const text of texts) {
        const e = text === null ? undefined : parseLine(text);
        if (e) out.push(e);
      }
    }
    return out;
  }

  // ---- helpers ------------------------------------------------------------------------------

  async #policyNames(): Promise<string[]> {
    return (await this.#call("list policies", () => this.#redis.smembers(this.#policies))).sort(compareCodeUnits);
  }

  /** The stored access of each (policy, subject), undefined when it has no state. */
  async #accessOf(pairs: readonly (readonly [string, string])[]): Promise<(string | undefined)[]> {
    const out: (string | undefined)[] = [];
    for (const chunk of chunks(pairs, CHUNK)) {
      const got = await this.#call("read states", async () => {
        const p = this.#redis.pipeline();
        for (const [policy, subject] of chunk) p.hget(this.#access(policy), subject);
        return pipelined<string | null>(await p.exec());
      });
      out.push(...got.map((v) => v ?? undefined));
    }
    return out;
  }

  async *#hscan(key: string): AsyncGenerator<[string, string]> {
    let cursor = "0";
    do {
      const [next, flat] = await this.#call("scan a hash", () => this.#redis.hscan(key, cursor, "COUNT", 1_000));
      cursor = next;
      for (let i = 0; i + 1 < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!];
    } while (cursor !== "0");
  }

  /**
   * Runs `attempt` until its checked write applies; `attempt` returns undefined when there is
   * nothing to write. Conflicts back off briefly (another replica is writing the same fields).
   */
  async #optimistic<R>(what: string, attempt: () => Promise<{ tx: Tx; result: R } | undefined>): Promise<R | undefined> {
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const r = await attempt();
      if (!r) return undefined;
      if (r.tx.empty) return r.result;
      const applied = Number(await this.#call(what, () => APPLY(this.#redis, r.tx.keys, r.tx.args())));
      if (applied === 1) return r.result;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 ** tries)));
    }
    throw new VigilError("VIGIL_ERR_STORE", `cannot ${what}: the same records kept changing under it (${MAX_TRIES} tries)`);
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#stopped) throw new VigilError("VIGIL_ERR_SHUTDOWN", "the state store is stopped");
    try {
      return await fn();
    } catch (err) {
      throw redisError(what, err);
    }
  }
}

/** A hash field of a result: its check and slot. */
function fieldOf(r: CheckResult): string {
  return `${r.check}${SEP}${resultSlot(r)}`;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function splitPair(member: string): [string, string] {
  const i = member.indexOf(SEP);
  return [member.slice(0, i), member.slice(i + 1)];
}

function* chunks<T>(list: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < list.length; i += size) yield list.slice(i, i + size);
}

/** The values of a pipeline's replies; the first error is thrown. */
function pipelined<T>(replies: [Error | null, unknown][] | null): T[] {
  if (!replies) throw new Error("the pipeline was discarded");
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value as T;
  });
}

function parseLine(text: string): AuditEntry | undefined {
  try {
    const e = JSON.parse(text) as AuditEntry;
    return typeof e === "object" && e !== null && Number.isSafeInteger(e.seq) && typeof e.hash === "string" ? e : undefined;
  } catch {
    return undefined;
  }
}
