import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { groupDowngradeAction } from "../../../src/actions/okta/group-downgrade.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { attempt, EnforcementRecordFake, request } from "../../helpers/action-context.ts";
import { assertNoSecrets, assertPlanMatchesSent, assertResetHint, startOrg, type Org } from "./setup.ts";

const USER = "00u1alice0000000x7";
const FULL = "00g1fullAccess0000x7";
const RO = "00g1readOnly000000x7";
const OTHER = "00g1everyone000000x7";
const alice = (operation: "apply" | "revert" = "apply") => request({ subject: { id: "alice", attributes: { okta_id: USER } }, operation, access: "read_only" });

describe("okta:group_downgrade", () => {
  let org: Org;
  before(async () => {
    org = await startOrg();
  });
  after(() => org.close());
  beforeEach(() => {
    org.fake.users.clear();
    org.fake.groups.clear();
    org.fake.addUser(USER);
    org.fake.addGroup(FULL, "app-full");
    org.fake.addGroup(RO, "app-read-only");
    org.fake.addGroup(OTHER, "Everyone");
    org.fake.addMember(FULL, USER);
    org.fake.addMember(OTHER, USER);
    org.fake.groupPageSize = undefined;
    org.fake.allowAll();
    org.fake.api.clear();
  });
  afterEach(() => assert.equal(org.fake.api.pendingFaults, 0, "unused injected faults"));

  const action = () => groupDowngradeAction.create(groupDowngradeAction.configSchema.parse({ full_group: FULL, read_only_group: RO }), org.ctx);

  test("apply reads the memberships, adds the read-only group, then removes the full group, and verifies", async () => {
    const outcome = await action().apply(alice());
    assert.deepEqual(org.fake.groupsOf(USER), [OTHER, RO].sort());
    assert.equal(outcome.verified, true);
    assert.deepEqual(outcome.detail, { user: USER, member_of: RO, removed_from: FULL });
    assert.deepEqual(outcome.prior, { full_member: true, read_only_member: false });
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}/groups`, `PUT /api/v1/groups/${RO}/users/${USER}`, `DELETE /api/v1/groups/${FULL}/users/${USER}`, `GET /api/v1/users/${USER}/groups`]);
  });

  test("revert restores the full group and leaves the read-only group", async () => {
    await action().apply(alice());
    org.fake.api.clear();
    const outcome = await action().revert!(alice("revert"));
    assert.deepEqual(org.fake.groupsOf(USER), [FULL, OTHER].sort());
    assert.equal(outcome.verified, true);
    assert.deepEqual(org.fake.apiLines(), [`PUT /api/v1/groups/${FULL}/users/${USER}`, `DELETE /api/v1/groups/${RO}/users/${USER}`, `GET /api/v1/users/${USER}/groups`]);
  });

  test("apply twice gives the same state without error (PUT of a member, DELETE of a non-member: 204)", async () => {
    const a = action();
    await a.apply(alice());
    const second = await a.apply(alice());
    assert.equal(second.verified, true);
    assert.deepEqual(org.fake.groupsOf(USER), [OTHER, RO].sort());
  });

  test("a DELETE answered 404 E0000007 (the group is gone) counts as not a member", async () => {
    org.fake.groups.delete(FULL);
    const outcome = await action().apply(alice());
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.remove_answer, "not_found");
  });

  test("verification follows Okta's Link pagination inside the org", async () => {
    org.fake.groupPageSize = 1;
    const outcome = await action().apply(alice());
    assert.equal(outcome.verified, true);
    const lines = org.fake.apiLines();
    // Two pages read before the change, two to verify it.
    assert.equal(lines.filter((l) => l.startsWith(`GET /api/v1/users/${USER}/groups`)).length, 4);
  });

  test("verification is false when the user is still in the full group afterwards", async () => {
    // Models an Okta group rule that keeps the membership: the DELETE answers 204 but nothing changes.
    const full = org.fake.groups.get(FULL)!;
    full.members.delete = () => true;
    const outcome = await action().apply(alice());
    assert.equal(outcome.verified, false);
    assert.deepEqual(org.fake.groupsOf(USER), [FULL, OTHER, RO].sort());
  });

  test("429 on the DELETE: transient with the reset hint; the retry finishes the move", async () => {
    const reset = org.fake.rateLimit({ method: "DELETE", path: /^\/api\/v1\/groups\// }, 5);
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 2);
    assertResetHint(result.retryAfter[0], reset);
    assert.equal(result.value?.verified, true);
    assert.deepEqual(org.fake.groupsOf(USER), [OTHER, RO].sort());
  });

  test("403 is permanent: one attempt, one request after the membership read", async () => {
    org.fake.deny({ method: "PUT" });
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 1);
    assert.ok(result.error instanceof UpstreamError && result.error.status === 403 && !result.error.transient);
    assert.equal(org.fake.api.requests.filter((r) => r.method === "PUT").length, 1);
    assert.equal(org.fake.api.requests.length, 2);
    assert.deepEqual(org.fake.groupsOf(USER), [FULL, OTHER].sort());
  });

  test("an unknown read-only group stops at the PUT with a permanent 404", async () => {
    org.fake.groups.delete(RO);
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 1);
    assert.ok(result.error instanceof UpstreamError && result.error.status === 404);
    assert.deepEqual(org.fake.groupsOf(USER), [FULL, OTHER].sort());
  });

  test("an APP_GROUP cannot be changed: permanent 400", async () => {
    org.fake.addGroup(RO, "imported", "APP_GROUP");
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 1);
    assert.ok(result.error instanceof UpstreamError && result.error.status === 400);
  });

  test("revert undoes only vigil's change: a membership the user already had, or never had, is left as it was", async () => {
    // An administrator had already moved the user: in the read-only group, not in the full one.
    org.fake.groups.get(FULL)!.members.delete(USER);
    org.fake.addMember(RO, USER);
    const a = action();
    const record = new EnforcementRecordFake(alice());
    const applied = await a.apply(record.forApply(alice()));
    record.applied(applied);
    assert.deepEqual(applied.prior, { full_member: false, read_only_member: true });
    org.fake.api.clear();
    const req = record.forRevert(alice("revert"));
    const plan = a.plan(req);
    const outcome = await a.revert!(req);
    assert.deepEqual(org.fake.groupsOf(USER), [OTHER, RO].sort(), "not added to the full group, not taken out of the read-only one");
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.changed, false);
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}/groups`]);
    assertPlanMatchesSent(plan, org.fake);
  });

  test("revert puts the user back into the full group vigil took them out of, and leaves the read-only group they already had", async () => {
    org.fake.addMember(RO, USER);
    const a = action();
    const record = new EnforcementRecordFake(alice());
    record.applied(await a.apply(record.forApply(alice())));
    org.fake.api.clear();
    const outcome = await a.revert!(record.forRevert(alice("revert")));
    assert.deepEqual(org.fake.groupsOf(USER), [FULL, OTHER, RO].sort());
    assert.equal(outcome.verified, true);
    assert.deepEqual(org.fake.apiLines(), [`PUT /api/v1/groups/${FULL}/users/${USER}`, `GET /api/v1/users/${USER}/groups`]);
  });

  test("the plan sends nothing and equals what apply and revert send", async () => {
    const a = action();
    const plan = a.plan(alice());
    assert.equal(org.fake.api.requests.length, 0);
    assertNoSecrets(JSON.stringify(plan));
    await a.apply(alice());
    assertPlanMatchesSent(plan, org.fake);
    const revertPlan = a.plan(alice("revert"));
    org.fake.api.clear();
    await a.revert!(alice("revert"));
    assertPlanMatchesSent(revertPlan, org.fake);
  });
});

describe("okta:group_downgrade config", () => {
  test("requires two different group ids", () => {
    const s = groupDowngradeAction.configSchema;
    assert.equal(s.safeParse({ full_group: FULL }).success, false);
    assert.equal(s.safeParse({ full_group: FULL, read_only_group: FULL }).success, false);
    assert.equal(s.safeParse({ full_group: "../x", read_only_group: RO }).success, false);
    assert.equal(s.safeParse({ full_group: FULL, read_only_group: RO, extra: 1 }).success, false);
    const { type: _t, ...example } = groupDowngradeAction.example;
    assert.equal(s.safeParse(example).success, true);
    assert.equal(s.parse(example).user, "{{attributes.okta_id}}");
  });
});
