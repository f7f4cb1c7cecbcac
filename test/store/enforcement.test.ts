/**
 * Enforcement records in every store (embedded SQLite, memory, Redis), through the StateStore contract:
 * desired state, failure and re-drive, supersession, what vigil achieved at the target, and (embedded)
 * that all of it survives a restart.
 */
import { after, before, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DesiredEnforcement, EnforcementKey, StateStore } from "../../src/store/contract.ts";
import { enforcementId } from "../../src/store/enforcement.ts";
import { EmbeddedStore } from "../../src/store/embedded.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { openDatabase } from "../../src/db/sqlite.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { REDIS_MISSING, RedisServer } from "../helpers/redis-server.ts";

function desired(action: string, o: Partial<DesiredEnforcement> = {}): DesiredEnforcement {
  return {
    policy: "perimeter",
    subject: "alice",
    action,
    action_type: "webhook",
    operation: "apply",
    access: "deny",
    previous_access: "full_access",
    generation: 2,
    decided_at: 1_000,
    idempotency_key: `key-${action}-${o.generation ?? 2}-${o.operation ?? "apply"}`,
    ...o,
  };
}

const key = (action: string, subject = "alice"): EnforcementKey => ({ policy: "perimeter", subject, action });

function embedded(t: TestContext): { store: StateStore; reopen(): StateStore } {
  const dir = mkdtempSync(join(tmpdir(), "vigil-enf-store-"));
  const opened: { store: EmbeddedStore; close(): void }[] = [];
  const open = () => {
    const db = openDatabase(dir);
    const store = new EmbeddedStore(db, dir);
    opened.push({ store, close: () => db.isOpen && db.close() });
    return store;
  };
  t.after(async () => {
    for (const o of opened) {
      await o.store.stop();
      o.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { store: open(), reopen: open };
}

let server: RedisServer | undefined;
let prefixes = 0;
before(async () => {
  if (!REDIS_MISSING) server = await RedisServer.start({ fsync: "everysec" });
});
after(async () => {
  await server?.stop();
});

async function redis(t: TestContext): Promise<StateStore> {
  return new RedisStore(await server!.connection(t, "test:enforcement"), { prefix: `e${++prefixes}` });
}

for (const [name, make, skip] of [
  ["embedded", async (t: TestContext) => embedded(t).store, undefined],
  ["memory", async () => new MemoryStore(), undefined],
  ["Redis", redis, REDIS_MISSING],
] as const) {
  describe(`enforcement records (${name} store)`, { skip: skip ?? false }, () => {
    test("a failed desired state is unreconciled until a re-drive achieves it", async (t) => {
      const store = await make(t);
      await store.desireEnforcement([desired("notify")], []);
      const [pending] = await store.getEnforcement("perimeter", "alice");
      assert.equal(pending!.id, enforcementId("perimeter", "alice", "notify"));
      assert.equal(pending!.status, "pending");
      assert.equal(pending!.in_effect, false);
      assert.deepEqual(await store.listEnforcement({ unreconciled: true }), [], "pending work the queue still holds is not failed work");

      await store.updateEnforcement(key("notify"), { kind: "attempted" });
      const failure = { kind: "failed", generation: 2, operation: "apply", at: 5_000, error: "503", attempts: 3, next_retry_at: 65_000 } as const;
      await store.updateEnforcement(key("notify"), failure);
      await store.updateEnforcement(key("notify"), { ...failure, at: 6_000 });
      const [failed] = await store.listEnforcement({ unreconciled: true });
      assert.equal(failed!.status, "failed");
      assert.equal(failed!.attempts, 3, "one failure of one job counts once");
      assert.equal(failed!.first_failed_at, 5_000);
      assert.equal(failed!.next_retry_at, 65_000);
      assert.equal(failed!.in_effect, true, "its attempts may have reached the target");

      await store.updateEnforcement(key("notify"), { kind: "due", at: 7_000 });
      assert.equal((await store.listEnforcement({ ids: [failed!.id] }))[0]!.next_retry_at, 7_000);
      await store.updateEnforcement(key("notify"), { kind: "redriven", generation: 2, operation: "apply" });
      const [retrying] = await store.listEnforcement({ unreconciled: true, policy: "perimeter" });
      assert.equal(retrying!.status, "pending");
      assert.equal(retrying!.redrives, 1);
      assert.equal(retrying!.next_retry_at, undefined);
      await store.updateEnforcement(key("notify"), { ...failure, at: 70_000, attempts: 3, next_retry_at: 190_000 });
      const [again] = await store.listEnforcement({ unreconciled: true });
      assert.equal(again!.attempts, 6);
      assert.equal(again!.first_failed_at, 5_000, "the age counts from the first failure");

      await store.updateEnforcement(key("notify"), { kind: "redriven", generation: 2, operation: "apply" });
      await store.updateEnforcement(key("notify"), { kind: "achieved", generation: 2, operation: "apply", prior: { status: "ACTIVE" } });
      const [done] = await store.getEnforcement("perimeter", "alice");
      assert.equal(done!.status, "achieved");
      assert.equal(done!.first_failed_at, undefined);
      assert.deepEqual(done!.prior, { status: "ACTIVE" });
      assert.deepEqual(await store.listEnforcement({ unreconciled: true }), []);
      assert.deepEqual(await store.listEnforcement({ unreconciled: true, policy: "other" }), []);
    });

    test("records of a forgotten subject are pruned once reconciled; unreconciled ones wait", async (t) => {
      const store = await make(t);
      const decision = { policy: "perimeter", access: "deny" as const, risk: "high" as const, reasons: [], generation: 2, decided_at: 1_000, evidence: {}, exempt: false };
      const state = (subject: string) => ({ decision: { ...decision, subject }, candidate: "deny" as const, streak: 1, changed_at: 1_000, enforced_generation: 2, enforced_access: "deny" as const });
      await store.putStates([state("alice"), state("bob")]);
      await store.desireEnforcement([desired("notify"), desired("notify", { subject: "bob" }), desired("suspend", { subject: "bob" })], []);
      await store.updateEnforcement(key("notify"), { kind: "achieved", generation: 2, operation: "apply" });
      await store.updateEnforcement(key("notify", "bob"), { kind: "achieved", generation: 2, operation: "apply" });
      assert.equal(await store.pruneEnforcement(), 0, "subjects that still have a state keep their records");
      await store.forgetSubjects(["bob"]);
      assert.equal(await store.pruneEnforcement(), 1, "bob's reconciled record goes");
      assert.deepEqual((await store.getEnforcement("perimeter", "bob")).map((r) => r.action), ["suspend"], "bob's pending record stays until achieved");
      assert.deepEqual((await store.getEnforcement("perimeter", "alice")).map((r) => r.action), ["notify"]);
      await store.updateEnforcement(key("suspend", "bob"), { kind: "achieved", generation: 2, operation: "apply" });
      assert.equal(await store.pruneEnforcement(), 1);
      assert.deepEqual(await store.getEnforcement("perimeter", "bob"), []);
    });

    test("a later decision supersedes what an older one wanted and did not achieve; what vigil achieved is kept", async (t) => {
      const store = await make(t);
      await store.desireEnforcement([desired("ro", { access: "read_only" }), desired("dn")], []);
      await store.updateEnforcement(key("dn"), { kind: "attempted" });
      await store.updateEnforcement(key("dn"), { kind: "prior", prior: { status: "ACTIVE" } });
      await store.updateEnforcement(key("dn"), { kind: "achieved", generation: 2, operation: "apply" });
      await store.updateEnforcement(key("ro"), { kind: "attempted" });
      await store.updateEnforcement(key("ro"), { kind: "failed", generation: 2, operation: "apply", at: 1, error: "x", attempts: 1, next_retry_at: 2 });
      // Generation 3 reverts dn; ro is not part of it.
      await store.desireEnforcement([desired("dn", { operation: "revert", access: "full_access", previous_access: "deny", generation: 3 })], [{ policy: "perimeter", subject: "alice", generation: 3 }]);
      const byAction = new Map((await store.getEnforcement("perimeter", "alice")).map((r) => [r.action, r]));
      assert.equal(byAction.get("ro")!.status, "superseded");
      assert.equal(byAction.get("ro")!.in_effect, true, "superseding forgets the failure, not what may be at the target");
      const dn = byAction.get("dn")!;
      assert.deepEqual([dn.status, dn.operation, dn.generation], ["pending", "revert", 3]);
      assert.deepEqual(dn.prior, { status: "ACTIVE" });
      assert.deepEqual(await store.listEnforcement({ unreconciled: true }), []);
      // Events of the older job no longer touch the newer desired state, except what the target carries.
      await store.updateEnforcement(key("dn"), { kind: "failed", generation: 2, operation: "apply", at: 1, error: "late", attempts: 1, next_retry_at: 2 });
      assert.equal((await store.getEnforcement("perimeter", "alice")).find((r) => r.action === "dn")!.status, "pending");
      await store.updateEnforcement(key("dn"), { kind: "achieved", generation: 3, operation: "revert" });
      const reverted = (await store.getEnforcement("perimeter", "alice")).find((r) => r.action === "dn")!;
      assert.deepEqual([reverted.status, reverted.in_effect, reverted.prior], ["achieved", false, undefined]);
    });

    test("a revert with no record comes from an unrecorded history: it counts as in effect", async (t) => {
      const store = await make(t);
      await store.desireEnforcement([desired("dn", { operation: "revert", access: "full_access", previous_access: "deny" })], []);
      const [r] = await store.getEnforcement("perimeter", "alice");
      assert.equal(r!.in_effect, true);
      assert.equal(r!.prior, undefined);
      await store.updateEnforcement(key("nobody"), { kind: "attempted" });
      assert.equal((await store.getEnforcement("perimeter", "alice")).length, 1, "an event for a missing record creates none");
    });

    test("unreconciled work lists oldest failure first, and by ids", async (t) => {
      const store = await make(t);
      await store.desireEnforcement([desired("a"), desired("b"), desired("a", { subject: "bob" })], []);
      const fail = (k: EnforcementKey, at: number) => store.updateEnforcement(k, { kind: "failed", generation: 2, operation: "apply", at, error: "e", attempts: 1, next_retry_at: at + 1 });
      await fail(key("a"), 300);
      await fail(key("b"), 100);
      await fail(key("a", "bob"), 200);
      assert.deepEqual((await store.listEnforcement({ unreconciled: true })).map((r) => `${r.subject}/${r.action}`), ["alice/b", "bob/a", "alice/a"]);
      const id = enforcementId("perimeter", "bob", "a");
      assert.deepEqual((await store.listEnforcement({ ids: [id, "unknown"] })).map((r) => r.id), [id]);
    });
  });
}

test("enforcement records survive a restart of the embedded store", async (t) => {
  const { store, reopen } = embedded(t);
  await store.desireEnforcement([desired("notify")], []);
  await store.updateEnforcement(key("notify"), { kind: "attempted" });
  await store.updateEnforcement(key("notify"), { kind: "prior", prior: { accountEnabled: true } });
  await store.updateEnforcement(key("notify"), { kind: "failed", generation: 2, operation: "apply", at: 10, error: "503", attempts: 8, next_retry_at: 60_010 });
  await store.stop();
  const again = reopen();
  await again.start();
  const [r] = await again.listEnforcement({ unreconciled: true });
  assert.deepEqual(
    { status: r!.status, attempts: r!.attempts, next: r!.next_retry_at, prior: r!.prior, in_effect: r!.in_effect },
    { status: "failed", attempts: 8, next: 60_010, prior: { accountEnabled: true }, in_effect: true },
  );
});
