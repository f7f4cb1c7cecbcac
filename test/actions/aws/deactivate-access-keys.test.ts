import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { DEACTIVATED_KEYS_TAG, deactivateAccessKeysAction, PLACEHOLDER } from "../../../src/actions/aws/deactivate-access-keys.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { TEST_SECRET_ACCESS_KEY } from "../../helpers/fakes/aws.ts";
import { awsSetup, plannedShape, resolved, sentShape, type AwsSetup } from "./setup.ts";

const K1 = "AKIAUSERKEY000000001";
const K2 = "AKIAUSERKEY000000002";
const subject = { id: "bob", kind: "user" as const, attributes: { aws_user: "bob" } };
const apply = () => request({ subject });
const revert = () => request({ subject, operation: "revert" });

describe("aws:deactivate_access_keys", () => {
  let s: AwsSetup;
  before(async () => {
    s = await awsSetup();
  });
  after(async () => {
    await s.close();
  });
  beforeEach(() => {
    s.fake.users.clear();
    s.fake.denied.clear();
    s.fake.clear();
  });

  const action = (ctx = s.ctx) => deactivateAccessKeysAction.create(deactivateAccessKeysAction.configSchema.parse({}), ctx);
  const statuses = () => Object.fromEntries(s.fake.users.get("bob")!.keys.map((k) => [k.id, k.status]));
  const tag = () => s.fake.users.get("bob")!.tags.get(DEACTIVATED_KEYS_TAG);

  test("apply deactivates the Active keys, records them on the user first, and verifies", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Active" }] });
    const out = await action().apply(apply());
    assert.deepEqual(out, { verified: true, detail: { user: "bob", deactivated: [K1, K2], keys: 2 } });
    assert.deepEqual(statuses(), { [K1]: "Inactive", [K2]: "Inactive" });
    assert.equal(tag(), `${K1} ${K2}`);
    assert.deepEqual(s.fake.actions(), ["ListAccessKeys", "ListUserTags", "TagUser", "UpdateAccessKey", "UpdateAccessKey", "ListAccessKeys"]);
  });

  test("revert reactivates exactly the keys vigil deactivated, not one that was already inactive", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Inactive" }] });
    await action().apply(apply());
    assert.equal(tag(), K1);
    const out = await action().revert!(revert());
    assert.deepEqual(out, { verified: true, detail: { user: "bob", reactivated: [K1] } });
    assert.deepEqual(statuses(), { [K1]: "Active", [K2]: "Inactive" });
    assert.equal(tag(), undefined);
  });

  test("revert works from another client (a restarted agent, another replica): the record is on the user", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Inactive" }] });
    await action().apply(apply());
    const other = s.fresh();
    await action(other.ctx).revert!(revert());
    assert.deepEqual(statuses(), { [K1]: "Active", [K2]: "Inactive" });
  });

  test("apply again changes nothing; revert again changes nothing", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }] });
    const a = action();
    await a.apply(apply());
    s.fake.clear();
    const again = await a.apply(apply());
    assert.equal(again.verified, true);
    assert.deepEqual(s.fake.actions(), ["ListAccessKeys", "ListUserTags", "ListAccessKeys"]);
    await a.revert!(revert());
    s.fake.clear();
    const r2 = await a.revert!(revert());
    assert.deepEqual(r2, { verified: true, detail: { user: "bob", reactivated: [] } });
    assert.deepEqual(s.fake.actions(), ["ListUserTags"]);
    assert.deepEqual(statuses(), { [K1]: "Active" });
  });

  test("a key re-activated by hand after apply is deactivated again and stays recorded", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Active" }] });
    const a = action();
    await a.apply(apply());
    s.fake.users.get("bob")!.keys[1]!.status = "Active";
    await a.apply(apply());
    assert.deepEqual(statuses(), { [K1]: "Inactive", [K2]: "Inactive" });
    assert.equal(tag(), `${K1} ${K2}`);
  });

  test("a recorded key deleted before revert is skipped (NoSuchEntity accepted)", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Active" }] });
    await action().apply(apply());
    s.fake.users.get("bob")!.keys.splice(0, 1);
    const out = await action().revert!(revert());
    assert.deepEqual(out, { verified: true, detail: { user: "bob", reactivated: [K2] } });
    assert.deepEqual(statuses(), { [K2]: "Active" });
  });

  test("429 mid-way: the retry finishes the job and the record still names only vigil's keys", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Inactive" }] });
    s.fake.tooManyRequests(3, { action: "UpdateAccessKey" });
    const r = await attempt(() => action().apply(apply()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [3000]);
    assert.equal(r.value?.verified, true);
    assert.deepEqual(statuses(), { [K1]: "Inactive", [K2]: "Inactive" });
    assert.equal(tag(), K1);
    await action().revert!(revert());
    assert.deepEqual(statuses(), { [K1]: "Active", [K2]: "Inactive" });
  });

  test("403 on UpdateAccessKey is not retried: one attempt, the server saw it once", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }] });
    s.fake.denied.add("iam:UpdateAccessKey");
    const r = await attempt(() => action().apply(apply()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError && !r.error.transient && r.error.status === 403);
    assert.equal(s.fake.api.requests.filter((q) => new URLSearchParams(q.body).get("Action") === "UpdateAccessKey").length, 1);
  });

  test("the plan, with its placeholders filled in, is exactly what apply and revert send", async () => {
    s.fake.addUser("bob", { keys: [{ id: K1, status: "Active" }, { id: K2, status: "Active" }] });
    const a = action();
    const plan = a.plan(apply());
    assert.equal(s.fake.api.requests.length, 0, "plan() made a request");
    await a.apply(apply());
    const [list, tags, record, update, verify] = plan;
    assert.deepEqual(
      [plannedShape(list!), plannedShape(tags!), resolved(record!, { [PLACEHOLDER.record]: `${K1} ${K2}` }), resolved(update!, { [PLACEHOLDER.activeKey]: K1 }), resolved(update!, { [PLACEHOLDER.activeKey]: K2 }), plannedShape(verify!)],
      s.fake.api.handled.map((r) => sentShape(s.fake, r)),
    );

    s.fake.clear();
    const rplan = a.plan(revert());
    await a.revert!(revert());
    const [rtags, rupdate, untag, rverify] = rplan;
    assert.deepEqual(
      [plannedShape(rtags!), resolved(rupdate!, { [PLACEHOLDER.recordedKey]: K1 }), resolved(rupdate!, { [PLACEHOLDER.recordedKey]: K2 }), plannedShape(untag!), plannedShape(rverify!)],
      s.fake.api.handled.map((r) => sentShape(s.fake, r)),
    );
    assert.ok(!JSON.stringify([...plan, ...rplan]).includes(TEST_SECRET_ACCESS_KEY));
  });

  test("a user that is gone by revert time has nothing to restore", async () => {
    const out = await action().revert!(revert());
    assert.deepEqual(out, { verified: true, detail: { user: "bob", reactivated: [], user_gone: true } });
  });

  test("an unknown user on apply is a permanent NoSuchEntity", async () => {
    await assert.rejects(action().apply(apply()), (err: unknown) => err instanceof UpstreamError && err.status === 404 && /NoSuchEntity/.test(err.message));
  });
});
