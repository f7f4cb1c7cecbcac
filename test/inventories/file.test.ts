/**
 * The file inventory: its quick check of a well-formed file gives exactly what the schema gives,
 * and anything the schema refuses falls through to the schema, which names the problem.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileInventory, fileSchema, wellFormedSubjects } from "../../src/inventories/file/index.ts";
import { checkPluginContext } from "../helpers/check-context.ts";

const good: unknown[] = [
  [],
  { subjects: [] },
  [{ id: "a", kind: "user" }],
  [{ id: "a", kind: "workload", identity: "spiffe://example.org/a", attributes: { mfa: true, n: 1, nested: { x: [1] } }, labels: { team: "x" } }],
  { subjects: [{ id: "d", kind: "device", labels: {} }, { id: "s", kind: "session", attributes: {} }] },
];

const bad: unknown[] = [
  null,
  "subjects",
  {},
  { subjects: [], extra: 1 },
  { subjects: "x" },
  [null],
  [[]],
  [{ id: "", kind: "user" }],
  [{ id: 1, kind: "user" }],
  [{ kind: "user" }],
  [{ id: "a", kind: "robot" }],
  [{ id: "a" }],
  [{ id: "a", kind: "user", identity: null }],
  [{ id: "a", kind: "user", identity: 7 }],
  [{ id: "a", kind: "user", attributes: [] }],
  [{ id: "a", kind: "user", attributes: null }],
  [{ id: "a", kind: "user", labels: { team: 1 } }],
  [{ id: "a", kind: "user", labels: [] }],
  [{ id: "a", kind: "user", unknown: true }],
  [{ id: "a", kind: "user" }, { id: "b", kind: "user", labels: { x: null } }],
];

test("the quick check and the schema agree on well-formed files", () => {
  for (const doc of good) {
    const quick = wellFormedSubjects(doc);
    assert.ok(quick, `the quick check took ${JSON.stringify(doc)}`);
    assert.deepEqual(quick, fileSchema.parse(doc), JSON.stringify(doc));
  }
});

test("what the schema refuses, the quick check refuses too", () => {
  for (const doc of bad) {
    assert.equal(fileSchema.safeParse(doc).success, false, `the schema refuses ${JSON.stringify(doc)}`);
    assert.equal(wellFormedSubjects(doc), undefined, JSON.stringify(doc));
  }
});

test("YAML maps that are not plain objects (!!omap, !!set, a timestamp) are left to the schema, which refuses them", async () => {
  const { parse } = await import("yaml");
  for (const text of ["- {id: a, kind: user, attributes: !!set {}}", "- {id: a, kind: user, labels: !!omap []}", "- {id: a, kind: user, attributes: !!omap [{mfa: true}]}", "%YAML 1.1\n---\n- {id: a, kind: user, labels: !!timestamp 2001-12-14}"]) {
    const doc: unknown = parse(text);
    assert.equal(fileSchema.safeParse(doc).success, false, text);
    assert.equal(wellFormedSubjects(doc), undefined, text);
  }
});

test("a __proto__ key is left to the schema", () => {
  const doc: unknown = JSON.parse('[{"id": "a", "kind": "user", "attributes": {"__proto__": {"mfa": true}}}]');
  assert.equal(wellFormedSubjects(doc), undefined);
});

test("an invalid file names its first problem by path; a valid one lists its subjects", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-file-inv-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = { ...checkPluginContext(), configDir: dir };
  writeFileSync(join(dir, "bad.json"), JSON.stringify([{ id: "a", kind: "user" }, { id: "b", kind: "robot" }]));
  const badInv = fileInventory.create(fileInventory.configSchema.parse({ path: "bad.json" }), ctx);
  await assert.rejects(badInv.list(AbortSignal.timeout(5_000)), (err: Error) => /inventory file .*bad\.json: 1\.kind: /.test(err.message));
  writeFileSync(join(dir, "good.yaml"), "subjects:\n  - {id: a, kind: user, attributes: {mfa: true}}\n");
  const goodInv = fileInventory.create(fileInventory.configSchema.parse({ path: "good.yaml" }), ctx);
  assert.deepEqual(await goodInv.list(AbortSignal.timeout(5_000)), [{ id: "a", kind: "user", attributes: { mfa: true }, labels: {} }]);
});

test("a file that is neither a list nor {subjects: [...]} says what it should be", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-file-inv-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "s.json"), '"subjects"');
  const inv = fileInventory.create(fileInventory.configSchema.parse({ path: "s.json" }), { ...checkPluginContext(), configDir: dir });
  await assert.rejects(inv.list(AbortSignal.timeout(5_000)), /s\.json: expected a list of subjects, or \{subjects: \[\.\.\.\]\}$/);
  writeFileSync(join(dir, "x.json"), JSON.stringify({ subjects: [], extra: 1 }));
  const extra = fileInventory.create(fileInventory.configSchema.parse({ path: "x.json" }), { ...checkPluginContext(), configDir: dir });
  await assert.rejects(extra.list(AbortSignal.timeout(5_000)), /x\.json: .*"extra"/);
});
