import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { groupDowngradeAction } from "../../../src/actions/entra/group-downgrade.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, EnforcementRecordFake } from "../../helpers/action-context.ts";
import { ALL_PERMISSIONS, CLIENT_SECRET, graphError } from "../../helpers/fakes/entra.ts";
import { ALICE, aliceRequest, assertNoSecrets, assertPlanSent, currentToken, FULL_GROUP, READ_ONLY_GROUP, tenant, type Tenant } from "./setup.ts";

const GROUPS = { full_group: FULL_GROUP, read_only_group: READ_ONLY_GROUP };
const ADD = /\/members\/\$ref$/;

describe("entra:group_downgrade", () => {
  let t: Tenant;
  afterEach(() => t.close());

  /** A tenant where alice is in the full-access group. */
  async function start(options: Parameters<typeof tenant>[0] = {}): Promise<Tenant> {
    const made = await tenant(options);
    made.fake.addGroup(FULL_GROUP, [ALICE.id]);
    made.fake.addGroup(READ_ONLY_GROUP);
    return made;
  }

  const create = (config: Record<string, unknown> = {}) => groupDowngradeAction.create(groupDowngradeAction.configSchema.parse({ ...GROUPS, ...config }), t.ctx);

  test("apply adds the user to the read-only group, removes them from the full group, and verifies both", async () => {
    t = await start();
    const out = await create().apply(aliceRequest("apply", "read_only"));
    assert.equal(out.verified, true);
    assert.deepEqual(out.detail, { user: ALICE.id, joined: READ_ONLY_GROUP, left: FULL_GROUP, added: true, removed: true, member_of_joined: true, member_of_left: false });
    assert.equal(t.fake.isMember(READ_ONLY_GROUP, ALICE.id), true);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), false);
    assert.deepEqual(t.fake.graphLines(), [
      `POST /v1.0/groups/${READ_ONLY_GROUP}/members/$ref`,
      `DELETE /v1.0/groups/${FULL_GROUP}/members/${ALICE.id}/$ref`,
      `POST /v1.0/users/${ALICE.id}/checkMemberGroups`,
    ]);
    assert.deepEqual(JSON.parse(t.fake.graphRequests()[0]!.body), { "@odata.id": `${t.fake.graphUrl}/directoryObjects/${ALICE.id}` });
  });

  test("revert moves the user back", async () => {
    t = await start();
    const action = create();
    await action.apply(aliceRequest("apply", "read_only"));
    const out = await action.revert!(aliceRequest("revert", "full_access"));
    assert.equal(out.verified, true);
    assert.equal(out.detail?.joined, FULL_GROUP);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), true);
    assert.equal(t.fake.isMember(READ_ONLY_GROUP, ALICE.id), false);
  });

  test("applying twice accepts Graph's 'already exist' 400 and the non-member 404", async () => {
    t = await start();
    const action = create();
    await action.apply(aliceRequest("apply", "read_only"));
    const again = await action.apply(aliceRequest("apply", "read_only"));
    assert.equal(again.verified, true);
    assert.equal(again.detail?.added, false);
    assert.equal(again.detail?.removed, false);
    assert.equal(t.fake.isMember(READ_ONLY_GROUP, ALICE.id), true);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), false);
    await action.revert!(aliceRequest("revert"));
    assert.equal((await action.revert!(aliceRequest("revert"))).verified, true);
  });

  test("a retry after a failure between the two steps completes the move", async () => {
    t = await start();
    t.fake.unavailable({ method: "DELETE" }, 1, 5);
    const action = create();
    const r = await attempt(() => action.apply(aliceRequest("apply", "read_only")));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [5000]);
    assert.equal(r.value?.verified, true);
    assert.equal(r.value?.detail?.added, false);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), false);
  });

  test("revert leaves the read-only group the user was already in, and restores the full group vigil took", async () => {
    t = await start();
    t.fake.groups.get(READ_ONLY_GROUP)!.add(ALICE.id);
    const action = create();
    const record = new EnforcementRecordFake(aliceRequest("apply", "read_only"));
    const applied = await action.apply(record.forApply(aliceRequest("apply", "read_only")));
    record.applied(applied);
    assert.deepEqual(applied.prior, { read_only_member: true, full_member: true });
    const from = t.fake.graphRequests().length;
    const req = record.forRevert(aliceRequest("revert", "full_access"));
    const plan = action.plan(req);
    const outcome = await action.revert!(req);
    assert.equal(t.fake.isMember(READ_ONLY_GROUP, ALICE.id), true, "vigil did not add them there, so it does not take them out");
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), true);
    assert.equal(outcome.verified, true);
    assert.deepEqual(t.fake.graphLines().slice(from), [`POST /v1.0/groups/${FULL_GROUP}/members/$ref`, `POST /v1.0/users/${ALICE.id}/checkMemberGroups`]);
    assertPlanSent(t.fake, plan, from);
  });

  test("revert adds nobody to the full group vigil never took them out of", async () => {
    t = await tenant();
    t.fake.addGroup(FULL_GROUP);
    t.fake.addGroup(READ_ONLY_GROUP);
    const action = create();
    const record = new EnforcementRecordFake(aliceRequest("apply", "read_only"));
    record.applied(await action.apply(record.forApply(aliceRequest("apply", "read_only"))));
    assert.deepEqual(record.record.prior, { read_only_member: false, full_member: false });
    await action.revert!(record.forRevert(aliceRequest("revert", "full_access")));
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), false);
    assert.equal(t.fake.isMember(READ_ONLY_GROUP, ALICE.id), false);
  });

  test("a retry after a failure between the two steps keeps the first answer, so the revert undoes the add", async () => {
    t = await start();
    t.fake.unavailable({ method: "DELETE" }, 1, 1);
    const action = create();
    const record = new EnforcementRecordFake(aliceRequest("apply", "read_only"));
    const r = await attempt(() => action.apply(record.forApply(aliceRequest("apply", "read_only"))));
    assert.equal(r.attempts, 2);
    assert.equal(r.value?.detail?.added, false, "the retry's add found vigil's own membership");
    assert.deepEqual(r.value?.prior, { read_only_member: false, full_member: true });
    record.applied(r.value!);
    await action.revert!(record.forRevert(aliceRequest("revert", "full_access")));
    assert.equal(t.fake.isMember(READ_ONLY_GROUP, ALICE.id), false);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), true);
  });

  test("another 400 on the add is not taken for 'already a member'", async () => {
    t = await start();
    t.fake.fail({ method: "POST", path: ADD }, graphError(400, "Request_BadRequest", "Invalid object identifier 'x'."));
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.equal(r.error.status, 400);
    assert.match(r.error.message, /Request_BadRequest: Invalid object identifier/);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), true, "the user must not leave the full group when the add failed");
  });

  test("a 404 that is not Graph's not-found (a wrong graph_url) is not taken for 'not a member'", async () => {
    t = await start();
    t.fake.fail({ method: "DELETE" }, { status: 404, body: "<html>Not Found</html>" });
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.equal((r.error as UpstreamError).status, 404);
  });

  test("verification fails while membership through a nested group still grants the full group", async () => {
    t = await start();
    const nested = "33333333-aaaa-4bbb-8ccc-000000000003";
    t.fake.addGroup(nested, [ALICE.id]);
    t.fake.groups.get(FULL_GROUP)!.add(nested);
    const out = await create().apply(aliceRequest());
    assert.equal(out.verified, false);
    assert.equal(out.detail?.member_of_left, true);
  });

  test("a 429 is retried after Retry-After, then succeeds", async () => {
    t = await start();
    t.fake.throttle({ method: "POST", path: ADD }, 4);
    const action = create();
    const r = await attempt(() => action.apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [4000]);
    assert.equal(r.value?.verified, true);
  });

  test("a 403 without GroupMember.ReadWrite.All is not retried", async () => {
    t = await start({ fake: { permissions: ALL_PERMISSIONS.filter((p) => p !== "GroupMember.ReadWrite.All") } });
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.equal((r.error as UpstreamError).status, 403);
    assert.equal((r.error as UpstreamError).transient, false);
    assert.equal(t.fake.graphRequests().filter((q) => ADD.test(q.path)).length, 1);
    assert.equal(t.fake.isMember(FULL_GROUP, ALICE.id), true);
  });

  test("a user principal name is refused: member references take object ids", async () => {
    t = await start();
    await assert.rejects(create({ user: "{{identity}}" }).apply(aliceRequest()), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
    assert.equal(t.fake.requests.length, 0);
  });

  test("plan sends nothing, then equals what apply and revert send, without secrets", async () => {
    t = await start();
    const action = create();
    const plan = action.plan(aliceRequest("apply", "read_only"));
    const revertPlan = action.plan(aliceRequest("revert", "full_access"));
    assert.equal(t.fake.requests.length, 0);
    await action.apply(aliceRequest("apply", "read_only"));
    assertPlanSent(t.fake, plan);
    await action.revert!(aliceRequest("revert", "full_access"));
    assertPlanSent(t.fake, revertPlan, 3);
    assert.deepEqual(revertPlan[2]!.body, { groupIds: [FULL_GROUP, READ_ONLY_GROUP] });
    assertNoSecrets([...plan, ...revertPlan], CLIENT_SECRET, await currentToken(t.client));
  });
});

describe("entra:group_downgrade config", () => {
  test("needs two different group object ids", () => {
    assert.equal(groupDowngradeAction.configSchema.safeParse(GROUPS).success, true);
    assert.equal(groupDowngradeAction.configSchema.parse(GROUPS).user, "{{attributes.entra_id}}");
    assert.equal(groupDowngradeAction.configSchema.safeParse({ full_group: FULL_GROUP }).success, false);
    assert.equal(groupDowngradeAction.configSchema.safeParse({ ...GROUPS, read_only_group: FULL_GROUP.toUpperCase() }).success, false);
    assert.equal(groupDowngradeAction.configSchema.safeParse({ ...GROUPS, full_group: "Finance Admins" }).success, false);
    assert.equal(groupDowngradeAction.configSchema.safeParse({ ...GROUPS, extra: 1 }).success, false);
    const { type, ...example } = groupDowngradeAction.example;
    assert.equal(type, "entra:group_downgrade");
    assert.equal(groupDowngradeAction.configSchema.safeParse(example).success, true);
    assert.deepEqual(groupDowngradeAction.requiredPermissions, ["GroupMember.ReadWrite.All", "GroupMember.Read.All", "User.Read.All"]);
  });
});
