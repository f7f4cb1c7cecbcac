/**
 * The state store's plugin values (KeyValueStore), the same on the embedded, the memory and the
 * Redis store (cluster mode; a real redis-server started here):
 * written and read back byte for byte, deleted, pruned by age, removed with their subject, and (for
 * the embedded store) kept across a reopen of the database.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/db/sqlite.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { StateStore } from "../../src/store/contract.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";

const bytes = (...b: number[]) => Uint8Array.from(b);

async function contract(store: StateStore): Promise<void> {
  await store.putValues("space-a", [
    { key: "one", value: bytes(1, 2, 3), subject: "web" },
    { key: "two", value: bytes(0, 255, 0), subject: "api" },
    { key: "three", value: bytes(9) },
  ], 1_000);
  await store.putValues("space-b", [{ key: "one", value: bytes(42) }], 1_000);
  const got = await store.getValues("space-a", ["one", "two", "three", "absent"]);
  assert.deepEqual([...got.keys()].sort(), ["one", "three", "two"]);
  assert.deepEqual([...got.get("two")!], [0, 255, 0]);
  assert.deepEqual([...(await store.getValues("space-b", ["one"])).get("one")!], [42], "spaces are separate");

  await store.putValues("space-a", [{ key: "ab/1", value: bytes(1) }, { key: "ab/2", value: bytes(2) }, { key: "ac/1", value: bytes(3) }], 1_000);
  assert.deepEqual(await store.listKeys("space-a", ["ab/", "zz/"]), ["ab/1", "ab/2"]);
  assert.deepEqual(await store.listKeys("space-a", ["ab/", "ac/"], 1), ["ab/1", "ac/1"], "at most `limit` per prefix");
  await store.putValues("space-a", [{ key: "ab/1", value: null }, { key: "ab/2", value: null }, { key: "ac/1", value: null }], 1_000);

  // Overwrite and delete in one step.
  await store.putValues("space-a", [{ key: "one", value: bytes(7), subject: "web" }, { key: "three", value: null }], 2_000);
  const after = await store.getValues("space-a", ["one", "three"]);
  assert.deepEqual([...after.get("one")!], [7]);
  assert.equal(after.has("three"), false);

  // Pruned by the time they were last written: "two" (1,000) goes, "one" (2,000) stays.
  assert.equal(await store.pruneValues("space-a", 1_500), 1);
  assert.deepEqual([...(await store.getValues("space-a", ["one", "two"])).keys()], ["one"]);
  assert.equal((await store.getValues("space-b", ["one"])).size, 1, "pruning one space leaves the others");

  // Values tied to a subject go with it; the others stay.
  await store.putValues("space-a", [{ key: "free", value: bytes(5) }], 3_000);
  await store.forgetSubjects(["web"]);
  assert.deepEqual([...(await store.getValues("space-a", ["one", "free"])).keys()], ["free"]);
}

test("the memory store keeps plugin values like the embedded one", async () => {
  await contract(new MemoryStore());
});

test("the embedded store keeps plugin values, and they survive a reopen of the database", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-values-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = openDatabase(dir);
  const store = new EmbeddedStore(db, dir);
  await store.start();
  await contract(store);
  const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
  await store.putValues("space-c", [{ key: "big", value: big }], 5_000);
  await store.stop();
  db.close();

  const db2 = openDatabase(dir);
  const reopened = new EmbeddedStore(db2, dir);
  await reopened.start();
  t.after(async () => {
    await reopened.stop();
    db2.close();
  });
  assert.deepEqual((await reopened.getValues("space-c", ["big"])).get("big"), big);
});

test("the Redis store keeps plugin values like the embedded one, shared by replicas", { skip: REDIS_MISSING }, async (t) => {
  const server = await RedisServer.start({ fsync: "everysec" });
  t.after(() => server.stop());
  const connect = () => server.connection(t, "test:values");
  const store = new RedisStore(await connect(), { prefix: "kv" });
  await store.start();
  await contract(store);
  // Binary values come back byte for byte, on another replica's connection too.
  const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 255);
  await store.putValues("space-c", [{ key: "big", value: big }, { key: "é/ü", value: bytes(0, 0xff) }], 5_000);
  const other = new RedisStore(await connect(), { prefix: "kv" });
  await other.start();
  assert.deepEqual((await other.getValues("space-c", ["big"])).get("big"), big);
  assert.deepEqual(await other.listKeys("space-c", ["é/"]), ["é/ü"], "prefixes of non-ASCII keys");
  // A value moved to another subject is not removed with the first.
  await store.putValues("space-c", [{ key: "moved", value: bytes(1), subject: "a" }], 6_000);
  await store.putValues("space-c", [{ key: "moved", value: bytes(2), subject: "b" }], 6_000);
  await other.forgetSubjects(["a"]);
  assert.deepEqual([...(await store.getValues("space-c", ["moved"])).get("moved")!], [2]);
  await other.forgetSubjects(["b"]);
  assert.equal((await store.getValues("space-c", ["moved"])).size, 0);
});
