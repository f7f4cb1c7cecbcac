/**
 * Cluster mode's store (Redis, a real redis-server started here): the StateStore contract suite
 * (test/store/contract.ts), and what stores shared by replicas must do: appends from several
 * replicas at once make one chain, the guard's budget is one for all, a chain changed outside vigil
 * is caught, and the persistence check says what Redis would lose.
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { RedisStore } from "../../src/store/redis.ts";
import { auditKey, auditVerifier } from "../../src/store/audit.ts";
import { closeRedis, openRedis, waitReady } from "../../src/db/redis/connection.ts";
import { checkPersistence } from "../../src/db/redis/persistence.ts";
import { admit, resumeGuard, type GuardState } from "../../src/policy/decide.ts";
import { FakeClock } from "../../src/util/clock.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";
import { until } from "../helpers/wait.ts";
import { state, stateStoreContract, type StoreBackend } from "./contract.ts";

const KEY = auditKey("k".repeat(32) + "-audit-key-for-tests");
let server: RedisServer | undefined;
let counter = 0;

before(async () => {
  if (!REDIS_MISSING) server = await RedisServer.start({ fsync: "everysec" });
});
after(async () => {
  await server?.stop();
});

const connection = (t: TestContext): Promise<Redis> => server!.connection(t, "test:store");

/** The chain as `vigil audit verify` checks it in cluster mode. */
async function verify(store: RedisStore, key?: typeof KEY) {
  const s = await store.auditState();
  const v = auditVerifier("redis", { head: s.head, key });
  for await (const { seq, text } of store.auditLines()) v.line({ text: text ?? "", line: seq, terminated: true });
  const r = v.finish();
  return { ok: r.ok, entries: r.entries, problems: r.problems };
}

const redis: StoreBackend = {
  name: "Redis",
  skip: REDIS_MISSING,
  async setup(t) {
    const prefix = `s${++counter}`;
    const conn = await connection(t);
    return {
      store: (options = {}) => new RedisStore(conn, { prefix, ...options }),
      verify: () => verify(new RedisStore(conn, { prefix })),
    };
  },
};

stateStoreContract(redis);

describe("Redis store: shared by replicas", { skip: REDIS_MISSING ?? false }, () => {
  async function replicas(t: TestContext, n: number, prefix = `r${++counter}`): Promise<RedisStore[]> {
    const out: RedisStore[] = [];
    for (let i = 0; i < n; i++) {
      // Each on its own connection, as each replica has its own.
      const s = new RedisStore(await connection(t), { prefix, key: KEY });
      await s.start();
      out.push(s);
    }
    return out;
  }

  test("three replicas appending at once make one chain: no fork, no gap, every entry once", async (t) => {
    const stores = await replicas(t, 3);
    const written = await Promise.all(
      stores.map((s, r) => Promise.all(Array.from({ length: 100 }, (_, i) => s.appendAudit([{ type: "decision", subject: `r${r}-${i}` }, { type: "action", subject: `r${r}-${i}` }])))),
    );
    const seqs = written.flat(2).map((e) => e.seq).sort((a, b) => a - b);
    assert.deepEqual(seqs, Array.from({ length: 600 }, (_, i) => i + 1));
    const v = await verify(stores[0]!, KEY);
    assert.deepEqual(v, { ok: true, entries: 600, problems: [] });
    // Each call's entries are consecutive: one event batch is never split by another replica's.
    for (const batch of written.flat()) assert.equal(batch[1]!.seq, batch[0]!.seq + 1);
  });

  test("the blast-radius guard admits across replicas up to the limit, not the limit per replica", async (t) => {
    const stores = await replicas(t, 3);
    const limits = { max_actions: 10, window: 60_000, auto_resume: false };
    const admitted = await Promise.all(
      stores.flatMap((s) =>
        Array.from({ length: 10 }, () =>
          s.updateMeta("guard:p", (stored) => {
            const r = admit((stored as GuardState | undefined) ?? resumeGuard(), 1, 1_000, limits);
            return { value: r.state, result: r.admitted };
          }),
        ),
      ),
    );
    assert.equal(admitted.filter(Boolean).length, 10);
    assert.equal(((await stores[1]!.getMeta("guard:p")) as GuardState).paused, true);
  });

  test("markEnforced rewrites a state in one step, and the long way when its fields are laid out otherwise", async (t) => {
    const store = new RedisStore(await connection(t), { prefix: `m${++counter}` });
    await store.start();
    const base = state("p", "a", { generation: 3, enforced: 1, access: "deny" });
    // The last two fields as every store writes them, and the same state with them first.
    const { enforced_generation, enforced_access, ...rest } = base;
    await store.putStates([base, { enforced_generation, enforced_access, ...rest, decision: { ...rest.decision, subject: "b" } } as typeof base]);
    for (const subject of ["a", "b"]) {
      await store.markEnforced("p", subject, 3, "deny");
      const s = await store.getState("p", subject);
      assert.deepEqual([s?.enforced_generation, s?.enforced_access, s?.decision.reasons], [3, "deny", base.decision.reasons], subject);
      await store.markEnforced("p", subject, 2, "full_access");
      assert.equal((await store.getState("p", subject))?.enforced_access, "deny", `${subject}: never backwards`);
    }
    assert.deepEqual(await store.unenforced(), []);
  });

  test("a chain changed in Redis is caught by verify, and refused at start", async (t) => {
    const conn = await connection(t);
    const prefix = `x${++counter}`;
    const store = new RedisStore(conn, { prefix, key: KEY, clock: new FakeClock() });
    await store.start();
    await store.appendAudit([{ type: "decision", subject: "a", access: "deny" }, { type: "decision", subject: "b", access: "deny" }, { type: "signal", subject: "c" }]);
    assert.equal((await verify(store, KEY)).ok, true);

    const lines = `${prefix}:audit:lines`;
    const second = (await conn.hget(lines, "2"))!;
    await conn.hset(lines, "2", second.replace('"access":"deny"', '"access":"full_access"'));
    const changed = await verify(store, KEY);
    assert.equal(changed.ok, false);
    assert.match(changed.problems.map((p) => p.problem).join("\n"), /seq 2 was changed after it was written/);
    await conn.hset(lines, "2", second);

    await conn.hdel(lines, "3");
    const cut = await verify(store, KEY);
    assert.equal(cut.ok, false, "the last line removed: the chain ends before the recorded head");
    await assert.rejects(new RedisStore(conn, { prefix, key: KEY }).start(), { code: "VIGIL_ERR_AUDIT_CORRUPT" });

    const other = new RedisStore(await connection(t), { prefix: `y${++counter}`, key: KEY });
    await other.start();
    await other.appendAudit([{ type: "x" }]);
    await assert.rejects(new RedisStore(conn, { prefix: `y${counter}`, key: auditKey("o".repeat(40)) }).start(), /written with audit key id/);
  });

  test("the persistence check is quiet with AOF fsynced always, and says what weaker settings lose", async (t) => {
    const conn = await connection(t);
    try {
      await conn.config("SET", "appendonly", "yes");
      await conn.config("SET", "appendfsync", "always");
      assert.deepEqual((await checkPersistence(conn)).warnings, []);
      await conn.config("SET", "appendfsync", "everysec");
      assert.match((await checkPersistence(conn)).warnings.join("\n"), /everysec: acknowledged work survives a Redis crash but up to about 2 s of it is lost/);
      await conn.config("SET", "appendonly", "no");
      await conn.config("SET", "maxmemory-policy", "allkeys-lru");
      const weak = await checkPersistence(conn);
      assert.match(weak.warnings.join("\n"), /appendonly is no/);
      assert.match(weak.warnings.join("\n"), /maxmemory-policy is allkeys-lru/);
      assert.equal(weak.source, "config");
    } finally {
      // The server is shared with the other tests of this file: put it back as it was started.
      await conn.config("SET", "maxmemory-policy", "noeviction");
      await conn.config("SET", "appendonly", "yes");
      await conn.config("SET", "appendfsync", "everysec");
    }
  });

  test("a managed Redis that refuses CONFIG: the check falls back to INFO; credentials reach no error", async (t) => {
    const admin = await connection(t);
    const password = "s3cret-redis-password-for-tests";
    await admin.call("ACL", "SETUSER", "limited", "on", `>${password}`, "~*", "&*", "+@all", "-config");
    const settings = { url: server!.url, username: "limited", password, connect_timeout: 2_000, command_timeout: 2_000 };
    const conn = openRedis(settings, "command", "test:limited");
    conn.on("error", () => undefined);
    await waitReady(conn);
    t.after(() => closeRedis(conn));
    const report = await checkPersistence(conn);
    assert.equal(report.source, "info");
    assert.equal(report.appendonly, "yes");
    assert.equal(report.maxmemory_policy, "noeviction");
    assert.match(report.warnings.join("\n"), /cannot read appendfsync \(CONFIG GET: NOPERM/);

    // A wrong password: the error says so, and never what was sent.
    const wrong = openRedis({ ...settings, password: "not-the-password-at-all" }, "command", "test:wrong");
    const errors: string[] = [];
    wrong.on("error", (err: Error) => errors.push(err.message));
    await until(() => errors.length > 0, 5_000);
    await closeRedis(wrong);
    assert.match(errors[0]!, /WRONGPASS|invalid username-password/);
    assert.ok(errors.every((e) => !e.includes("not-the-password-at-all") && !e.includes(password)));
  });
});
