import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { suspendAction } from "../../../src/actions/okta/suspend.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, EnforcementRecordFake, request } from "../../helpers/action-context.ts";
import { API_TOKEN, assertNoSecrets, assertPlanMatchesSent, assertResetHint, startOrg, type Org } from "./setup.ts";

const USER = "00u1alice0000000x7";
const alice = (operation: "apply" | "revert" = "apply") => request({ subject: { id: "alice", attributes: { okta_id: USER } }, operation });

describe("okta:suspend", () => {
  let org: Org;
  before(async () => {
    org = await startOrg();
  });
  after(() => org.close());
  beforeEach(() => {
    org.fake.users.clear();
    org.fake.addUser(USER, "ACTIVE");
    org.fake.allowAll();
    org.fake.api.clear();
  });
  afterEach(() => assert.equal(org.fake.api.pendingFaults, 0, "unused injected faults"));

  const action = () => suspendAction.create(suspendAction.configSchema.parse({}), org.ctx);

  test("apply suspends an ACTIVE user and verifies the status", async () => {
    const outcome = await action().apply(alice());
    assert.equal(org.fake.status(USER), "SUSPENDED");
    assert.equal(outcome.verified, true);
    assert.deepEqual(outcome.detail, { user: USER, status_before: "ACTIVE", status: "SUSPENDED", changed: true });
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`, `POST /api/v1/users/${USER}/lifecycle/suspend`, `GET /api/v1/users/${USER}`]);
    const sent = org.fake.apiRequests()[1]!;
    assert.equal(sent.headers["authorization"], `SSWS ${API_TOKEN}`);
  });

  test("revert unsuspends and verifies ACTIVE", async () => {
    await action().apply(alice());
    org.fake.api.clear();
    const outcome = await action().revert!(alice("revert"));
    assert.equal(org.fake.status(USER), "ACTIVE");
    assert.equal(outcome.verified, true);
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`, `POST /api/v1/users/${USER}/lifecycle/unsuspend`, `GET /api/v1/users/${USER}`]);
  });

  test("apply twice: the second run only reads the status and sends no lifecycle call", async () => {
    const a = action();
    await a.apply(alice());
    org.fake.api.clear();
    const outcome = await a.apply(alice());
    assert.equal(org.fake.status(USER), "SUSPENDED");
    // Without a record of the first apply (no engine here), the second one takes SUSPENDED for the prior state.
    assert.deepEqual(outcome, { verified: true, detail: { user: USER, status: "SUSPENDED", changed: false }, prior: { status: "SUSPENDED" } });
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`]);
  });

  test("revert of a user that is already ACTIVE sends nothing but the read", async () => {
    const outcome = await action().revert!(alice("revert"));
    assert.equal(outcome.verified, true);
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`]);
  });

  for (const status of ["DEPROVISIONED", "STAGED", "LOCKED_OUT"] as const) {
    test(`apply on a ${status} user is a permanent error naming the status, with no lifecycle call`, async () => {
      org.fake.addUser(USER, status);
      const result = await attempt(() => action().apply(alice()));
      assert.equal(result.attempts, 1);
      assert.ok(result.error instanceof UpstreamError && !result.error.transient);
      assert.match((result.error as Error).message, new RegExp(`status ${status}`));
      assert.equal(org.fake.status(USER), status);
      assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`]);
    });
  }

  test("revert on a DEPROVISIONED user leaves it alone and reports it unverified", async () => {
    org.fake.addUser(USER, "DEPROVISIONED");
    const outcome = await action().revert!(alice("revert"));
    assert.equal(outcome.verified, false);
    assert.equal(org.fake.status(USER), "DEPROVISIONED");
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`]);
  });

  test("429 on the lifecycle call: transient with the X-Rate-Limit-Reset hint, then succeeds", async () => {
    const reset = org.fake.rateLimit({ method: "POST", path: /lifecycle\/suspend$/ }, 40);
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 2);
    assert.equal(result.retryAfter.length, 1);
    assertResetHint(result.retryAfter[0], reset);
    assert.equal(result.value?.verified, true);
    assert.equal(org.fake.status(USER), "SUSPENDED");
  });

  test("403 is permanent: one attempt, one request to the lifecycle endpoint", async () => {
    org.fake.deny({ method: "POST", path: /lifecycle\/suspend$/ });
      const result = await attempt(() => action().apply(alice()));
      assert.equal(result.attempts, 1);
      assert.ok(result.error instanceof UpstreamError);
      assert.equal(result.error.status, 403);
      assert.equal(result.error.transient, false);
      assert.match(result.error.message, /E0000006/);
      assert.equal(org.fake.api.requests.filter((r) => r.path.endsWith("/lifecycle/suspend")).length, 1);
      assert.equal(org.fake.status(USER), "ACTIVE");
  });

  test("an unknown user is a permanent 404 (E0000007)", async () => {
    org.fake.users.clear();
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 1);
    assert.ok(result.error instanceof UpstreamError && result.error.status === 404);
    assert.match((result.error as Error).message, /E0000007/);
  });

  test("a subject without okta_id is an input error before any request", async () => {
    const err = await action().apply(request({ subject: { id: "bob" } })).catch((e: unknown) => e);
    assert.ok(err instanceof VigilError);
    assert.equal(err.code, "VIGIL_ERR_ACTION_INPUT");
    assert.equal(org.fake.api.requests.length, 0);
  });

  test("an id that would change the path is an input error", async () => {
    for (const id of ["..", "a/b", "x y", "."]) {
      const err = await action().apply(request({ subject: { id: "eve", attributes: { okta_id: id } } })).catch((e: unknown) => e);
      assert.ok(err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT", `id ${id}`);
    }
    assert.equal(org.fake.api.requests.length, 0);
  });

  test("the plan sends nothing and equals what apply sends, with the token masked", async () => {
    const a = action();
    const req = alice();
    const plan = a.plan(req);
    assert.equal(org.fake.api.requests.length, 0);
    assert.equal(plan.length, 3);
    assert.equal(plan[0]!.headers["Authorization"], "[REDACTED]");
    assertNoSecrets(JSON.stringify(plan));
    await a.apply(req);
    assertPlanMatchesSent(plan, org.fake);
    const revertPlan = a.plan(alice("revert"));
    org.fake.api.clear();
    await a.revert!(alice("revert"));
    assertPlanMatchesSent(revertPlan, org.fake);
  });

  test("a user an administrator had suspended stays suspended through vigil's apply and revert", async () => {
    org.fake.addUser(USER, "SUSPENDED");
    const a = action();
    const record = new EnforcementRecordFake(alice());
    const applied = await a.apply(record.forApply(alice()));
    record.applied(applied);
    assert.deepEqual(applied.prior, { status: "SUSPENDED" });
    org.fake.api.clear();
    const req = record.forRevert(alice("revert"));
    const plan = a.plan(req);
    const outcome = await a.revert!(req);
    assert.equal(org.fake.status(USER), "SUSPENDED", "vigil undoes only its own change");
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.changed, false);
    assert.match(String(outcome.detail?.reason), /already SUSPENDED before vigil's apply; left as it is/);
    assert.deepEqual(org.fake.apiLines(), [`GET /api/v1/users/${USER}`]);
    assertPlanMatchesSent(plan, org.fake);
  });

  test("a user vigil suspended is unsuspended by the revert", async () => {
    const a = action();
    const record = new EnforcementRecordFake(alice());
    record.applied(await a.apply(record.forApply(alice())));
    assert.deepEqual(record.record.prior, { status: "ACTIVE" });
    await a.revert!(record.forRevert(alice("revert")));
    assert.equal(org.fake.status(USER), "ACTIVE");
  });

  test("a retry after vigil's own suspend keeps the status read before it, so the revert still unsuspends", async () => {
    const a = action();
    const record = new EnforcementRecordFake(alice());
    // The first read answers the truth; the read-back after the suspend fails, so the attempt fails.
    org.fake.api.fail({ method: "GET", path: /^\/api\/v1\/users\/[^/]+$/ }, { status: 200, body: { id: USER, status: "ACTIVE" } });
    org.fake.serverError({ method: "GET" }, 503);
    const result = await attempt(() => a.apply(record.forApply(alice())));
    assert.equal(result.attempts, 2);
    assert.equal(org.fake.status(USER), "SUSPENDED");
    assert.deepEqual(result.value?.prior, { status: "ACTIVE" }, "the retry found SUSPENDED, vigil's own doing, not the prior state");
    record.applied(result.value!);
    await a.revert!(record.forRevert(alice("revert")));
    assert.equal(org.fake.status(USER), "ACTIVE");
  });

  test("a revert whose apply never reached its suspend leaves the user alone", async () => {
    const a = action();
    const record = new EnforcementRecordFake(alice());
    org.fake.deny({ method: "GET" });
    assert.equal((await attempt(() => a.apply(record.forApply(alice())))).attempts, 1);
    org.fake.allowAll();
    org.fake.addUser(USER, "SUSPENDED"); // an administrator's own suspension, meanwhile
    const outcome = await a.revert!(record.forRevert(alice("revert")));
    assert.equal(org.fake.status(USER), "SUSPENDED");
    assert.match(String(outcome.detail?.reason), /never sent/);
  });

  test("the custom user template is rendered", async () => {
    const a = suspendAction.create(suspendAction.configSchema.parse({ user: "{{labels.okta}}" }), org.ctx);
    await a.apply(request({ subject: { id: "carol", labels: { okta: USER } } }));
    assert.equal(org.fake.status(USER), "SUSPENDED");
  });
});

describe("okta:suspend factory", () => {
  test("declares the provider, permissions and an example that validates", () => {
    assert.equal(suspendAction.type, "okta:suspend");
    assert.equal(suspendAction.provider, "okta");
    assert.equal(suspendAction.revertible, true);
    assert.ok(suspendAction.requiredPermissions.some((p) => p.startsWith("okta.users.lifecycle.suspend")));
    const { type: _t, ...example } = suspendAction.example;
    assert.equal(suspendAction.configSchema.safeParse(example).success, true);
    assert.equal(suspendAction.configSchema.safeParse({ type: "okta:suspend" }).success, false);
    assert.equal(suspendAction.configSchema.safeParse({ user: "{{nope}}" }).success, false);
  });

  test("create without an okta provider fails clearly", () => {
    assert.throws(() => suspendAction.create(suspendAction.configSchema.parse({}), { provider: undefined } as never), /providers\.okta/);
  });
});
