/**
 * The two pieces of coordination cluster mode adds, each shared through a real redis-server by
 * instances on connections of their own, as replicas are: the keyed lock (one evaluation of a
 * subject, one job of an action for a subject, at a time across replicas) and the leader lease
 * (one leader, handed over when it stops or loses Redis, and fenced against a deposed one).
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { RedisKeyedLock } from "../../src/db/redis/lock.ts";
import { RedisLease } from "../../src/db/redis/lease.ts";
import { KeyedLock } from "../../src/engine/keyed-lock.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";
import { until } from "../helpers/wait.ts";

let server: RedisServer | undefined;
let counter = 0;

before(async () => {
  if (!REDIS_MISSING) server = await RedisServer.start({ fsync: "everysec" });
});
after(async () => {
  await server?.stop();
});

/** A connection of its own, as each replica has. */
const connection = (t: TestContext): Promise<Redis> => server!.connection(t, "test:coordination");

const quiet = { info: () => undefined, warn: () => undefined };

describe("Redis keyed lock across replicas", { skip: REDIS_MISSING ?? false }, () => {
  test("two replicas never hold one key at once; different keys run side by side", async (t) => {
    const prefix = `lock${++counter}:`;
    const locks = [await connection(t), await connection(t)].map((c) => new RedisKeyedLock(c, { prefix, ttlMs: 5_000, local: new KeyedLock() }));
    const inside = new Map<string, number>();
    let overlaps = 0;
    let mostAtOnce = 0;
    const work = (key: string) => async () => {
      inside.set(key, (inside.get(key) ?? 0) + 1);
      if (inside.get(key)! > 1) overlaps++;
      mostAtOnce = Math.max(mostAtOnce, [...inside.values()].reduce((a, b) => a + b, 0));
      // A turn of I/O inside the critical section, so a second holder would have the chance to enter.
      await new Promise((r) => setTimeout(r, 2));
      inside.set(key, inside.get(key)! - 1);
    };
    await Promise.all(Array.from({ length: 40 }, (_, i) => locks[i % 2]!.run([`policy/s${i % 4}`], work(`s${i % 4}`))));
    assert.equal(overlaps, 0, "one key was held by two holders at once");
    assert.ok(mostAtOnce > 1, "different keys waited for each other");
  });

  test("overlapping key sets taken from two replicas in opposite orders do not deadlock", async (t) => {
    const prefix = `lock${++counter}:`;
    const [a, b] = [await connection(t), await connection(t)].map((c) => new RedisKeyedLock(c, { prefix, ttlMs: 5_000, local: new KeyedLock() }));
    let done = 0;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0 ? a!.run(["x", "y", "z"], async () => void done++) : b!.run(["z", "y", "x"], async () => void done++),
      ),
    );
    assert.equal(done, 20);
  });

  test("a key a dead replica held is taken once its claim lapses, not before", async (t) => {
    const prefix = `lock${++counter}:`;
    const conn = await connection(t);
    // What a replica SIGKILLed while holding the key leaves behind: its claim, never renewed again.
    await conn.set(`${prefix}${encodeURIComponent("policy/s1")}`, "dead-replica:1", "PX", 600);
    const lock = new RedisKeyedLock(await connection(t), { prefix, ttlMs: 5_000, local: new KeyedLock() });
    const t0 = Date.now();
    const waited = await lock.run(["policy/s1"], async () => Date.now() - t0);
    assert.ok(waited >= 500, `ran after ${waited} ms, while the dead replica's claim still held`);
    assert.equal(await conn.exists(`${prefix}${encodeURIComponent("policy/s1")}`), 0, "released when done");
  });

  test("a holder renews its claim while its work outlasts the claim's time", async (t) => {
    const prefix = `lock${++counter}:`;
    const [a, b] = [await connection(t), await connection(t)].map((c) => new RedisKeyedLock(c, { prefix, ttlMs: 300, local: new KeyedLock() }));
    let aDone = 0;
    let bStarted = 0;
    const first = a!.run(["k"], async () => {
      // Three claim times long; b must still not get in.
      await new Promise((r) => setTimeout(r, 900));
      aDone = Date.now();
    });
    await until(async () => (await (await connection(t)).exists(`${prefix}k`)) === 1, 5_000);
    await b!.run(["k"], async () => void (bStarted = Date.now()));
    await first;
    assert.ok(bStarted >= aDone, "the second holder got in while the first was still working");
  });
});

describe("Redis leader lease", { skip: REDIS_MISSING ?? false }, () => {
  test("one leader at a time; a leader that stops hands over at the next try, with a newer token", async (t) => {
    const key = `lease${++counter}`;
    const changes: string[] = [];
    const leases = [await connection(t), await connection(t)].map(
      (c, i) => new RedisLease(c, { key, owner: `r${i}`, ttlMs: 1_500, logger: quiet, onChange: (leader, token) => changes.push(`r${i} ${leader ? "gained" : "lost"} ${token}`) }),
    );
    t.after(() => Promise.all(leases.map((l) => l.stop())));
    await Promise.all(leases.map((l) => l.start()));
    assert.equal(leases.filter((l) => l.leader).length, 1);
    const first = leases.findIndex((l) => l.leader);
    const other = leases[1 - first]!;
    const oldToken = leases[first]!.token;
    const stopped = Date.now();
    await leases[first]!.stop();
    await until(() => other.leader, 3_000);
    assert.ok(Date.now() - stopped < 1_500, "a clean stop hands over within one try, not after the whole lease");
    assert.ok(other.token > oldToken, "a new leadership draws a newer fencing token");
    assert.deepEqual(changes, [`r${first} gained ${oldToken}`, `r${first} lost ${oldToken}`, `r${1 - first} gained ${other.token}`]);
  });

  test("a leader cut off from Redis steps down before another takes over; its old token is fenced off", async (t) => {
    const key = `lease${++counter}`;
    const conns = [await connection(t), await connection(t)];
    const leases = conns.map((c, i) => new RedisLease(c, { key, owner: `r${i}`, ttlMs: 1_000, logger: quiet }));
    t.after(() => Promise.all(leases.map((l) => l.stop())));
    await leases[0]!.start();
    await leases[1]!.start();
    assert.ok(leases[0]!.leader && !leases[1]!.leader);
    const oldToken = leases[0]!.token;
    assert.equal(await leases[0]!.fence(`${key}:fence`), true);

    // Its connection gone (a partition): it cannot renew, and no longer leads once the lease may have run out.
    conns[0]!.disconnect();
    let steppedDownAt = 0;
    let tookOverAt = 0;
    await until(() => {
      if (!leases[0]!.leader && steppedDownAt === 0) steppedDownAt = Date.now();
      if (leases[1]!.leader && tookOverAt === 0) tookOverAt = Date.now();
      return steppedDownAt > 0 && tookOverAt > 0;
    }, 5_000);
    assert.ok(steppedDownAt <= tookOverAt, "two replicas led at once");
    assert.ok(leases[1]!.token > oldToken);
    assert.equal(await leases[1]!.fence(`${key}:fence`), true);
    // A write the deposed leader sends late, with its old token (through any connection), is refused.
    assert.equal(await leases[1]!.fence(`${key}:fence`, oldToken), false);
  });
});
