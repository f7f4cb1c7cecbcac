import { test } from "node:test";
import assert from "node:assert/strict";
import { SubjectIndex } from "../../src/engine/subjects.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import type { Inventory } from "../../src/plugin/inventory.ts";
import type { Subject } from "../../src/policy/model.ts";

const subject = (id: string): Subject => ({ id, kind: "user", attributes: {}, labels: {} });
const ok = (ids: string[]): Inventory => ({ list: async () => ids.map(subject) });
const broken: Inventory = { list: async () => Promise.reject(new Error("backend down")) };

test("a failing inventory keeps its last good list instead of emptying the index", async () => {
  const index = new SubjectIndex([ok(["a", "b"])], silentLogger());
  await index.refresh();
  index.replace([broken], true);
  await index.refresh();
  assert.deepEqual([...index.all()].map((s) => s.id), ["a", "b"], "same sources: the last good list carries over a reload");
  index.replace([broken], false);
  await index.refresh();
  assert.equal(index.size, 0, "changed sources: the old list belongs to another inventory and is dropped");
});

test("the first inventory listing a subject id wins", async () => {
  const index = new SubjectIndex([ok(["a"]), { list: async () => [{ ...subject("a"), kind: "device" }] }], silentLogger());
  await index.refresh();
  assert.equal(index.get("a")!.kind, "user");
});

test("refreshes asked for at the same time share one listing of the inventories", async () => {
  let listings = 0;
  let release!: () => void;
  const listed = new Promise<void>((r) => (release = r));
  const counting: Inventory = {
    list: async () => {
      listings++;
      await listed;
      return [subject("a")];
    },
  };
  const index = new SubjectIndex([counting], silentLogger());
  // All three are asked for while the first listing is still out.
  const refreshes = Promise.all([index.refresh(), index.refresh(), index.refresh()]);
  release();
  await refreshes;
  assert.equal(listings, 1);
  await index.refresh();
  assert.equal(listings, 2, "a later refresh lists again");
});

test("a refresh of inventories replaced meanwhile neither serves nor overwrites the new ones", async () => {
  let release!: () => void;
  const slowOld: Inventory = { list: () => new Promise((r) => (release = () => r([subject("old")]))) };
  const index = new SubjectIndex([slowOld], silentLogger());
  const stale = index.refresh();
  index.replace([ok(["new"])]);
  await index.refresh();
  assert.deepEqual([...index.all()].map((s) => s.id), ["new"], "the reload's refresh lists the new inventories");
  release();
  await stale;
  assert.deepEqual([...index.all()].map((s) => s.id), ["new"], "the late old refresh does not land");
});
