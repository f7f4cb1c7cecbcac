import { test } from "node:test";
import assert from "node:assert/strict";
import { SubjectIndex } from "../../src/engine/subjects.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import type { Inventory } from "../../src/inventories/contract.ts";
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
