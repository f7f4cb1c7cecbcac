import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { clearSessionsAction } from "../../../src/actions/okta/clear-sessions.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { assertNoSecrets, assertPlanMatchesSent, assertResetHint, startOrg, type Org } from "./setup.ts";

const USER = "00u1alice0000000x7";
const alice = () => request({ subject: { id: "alice", attributes: { okta_id: USER } } });

describe("okta:clear_sessions", () => {
  let org: Org;
  before(async () => {
    org = await startOrg();
  });
  after(() => org.close());
  beforeEach(() => {
    org.fake.users.clear();
    org.fake.addUser(USER, "ACTIVE", { sessions: 3, oauthTokens: 5 });
    org.fake.allowAll();
    org.fake.api.clear();
    org.fake.universalLogouts.length = 0;
  });
  afterEach(() => assert.equal(org.fake.api.pendingFaults, 0, "unused injected faults"));

  const action = (extra: Record<string, unknown> = {}) => clearSessionsAction.create(clearSessionsAction.configSchema.parse(extra), org.ctx);

  test("apply ends the sessions and revokes OAuth tokens; verified stays undefined", async () => {
    const outcome = await action().apply(alice());
    assert.equal(org.fake.users.get(USER)!.sessions, 0);
    assert.equal(org.fake.users.get(USER)!.oauthTokens, 0);
    assert.equal(outcome.verified, undefined);
    assert.deepEqual(outcome.detail, { user: USER, oauth_tokens: true, universal_logout: false });
    assert.deepEqual(org.fake.apiLines(), [`DELETE /api/v1/users/${USER}/sessions?oauthTokens=true`]);
  });

  test("oauth_tokens: false keeps the tokens and says so in the query", async () => {
    await action({ oauth_tokens: false }).apply(alice());
    assert.equal(org.fake.users.get(USER)!.sessions, 0);
    assert.equal(org.fake.users.get(USER)!.oauthTokens, 5);
    assert.deepEqual(org.fake.apiLines(), [`DELETE /api/v1/users/${USER}/sessions?oauthTokens=false`]);
  });

  test("universal_logout adds the global token revocation with an opaque sub_id", async () => {
    const a = action({ universal_logout: true });
    const plan = a.plan(alice());
    await a.apply(alice());
    assert.deepEqual(org.fake.universalLogouts, [USER]);
    assertPlanMatchesSent(plan, org.fake);
    assert.deepEqual(plan[1]!.body, { sub_id: { format: "opaque", id: USER } });
  });

  test("is not revertible and applying twice succeeds", async () => {
    const a = action();
    assert.equal(a.revert, undefined);
    assert.equal(clearSessionsAction.revertible, false);
    await a.apply(alice());
    await a.apply(alice());
    assert.equal(org.fake.users.get(USER)!.sessions, 0);
    assert.equal(org.fake.apiLines().length, 2);
  });

  test("429 is transient with the X-Rate-Limit-Reset hint; the retry succeeds", async () => {
    const reset = org.fake.rateLimit({ method: "DELETE", path: /\/sessions$/ }, 12);
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 2);
    assertResetHint(result.retryAfter[0], reset);
    assert.equal(org.fake.users.get(USER)!.sessions, 0);
  });

  test("403 is permanent: one attempt, one request", async () => {
    org.fake.deny({ path: /\/sessions$/ });
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 1);
    assert.ok(result.error instanceof UpstreamError && result.error.status === 403 && !result.error.transient);
    assert.equal(org.fake.api.requests.length, 1);
    assert.equal(org.fake.users.get(USER)!.sessions, 3);
  });

  test("an unknown user is a permanent 404", async () => {
    org.fake.users.clear();
    const result = await attempt(() => action().apply(alice()));
    assert.equal(result.attempts, 1);
    assert.ok(result.error instanceof UpstreamError && result.error.status === 404);
  });

  test("a subject without okta_id is an input error", async () => {
    const err = await action().apply(request({ subject: { id: "bob" } })).catch((e: unknown) => e);
    assert.ok(err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
    assert.equal(org.fake.api.requests.length, 0);
  });

  test("the plan sends nothing, shows the flag, masks the token, and equals what apply sends", async () => {
    const a = action();
    const plan = a.plan(alice());
    assert.equal(org.fake.api.requests.length, 0);
    assert.equal(plan.length, 1);
    assert.equal(plan[0]!.url, `${org.fake.base}/api/v1/users/${USER}/sessions?oauthTokens=true`);
    assert.equal(plan[0]!.headers["Authorization"], "[REDACTED]");
    assertNoSecrets(JSON.stringify(plan));
    await a.apply(alice());
    assertPlanMatchesSent(plan, org.fake);
  });
});

describe("okta:clear_sessions config", () => {
  test("defaults and example", () => {
    assert.deepEqual(clearSessionsAction.configSchema.parse({}), { user: "{{attributes.okta_id}}", oauth_tokens: true, universal_logout: false });
    const { type: _t, ...example } = clearSessionsAction.example;
    assert.equal(clearSessionsAction.configSchema.safeParse(example).success, true);
    assert.equal(clearSessionsAction.configSchema.safeParse({ oauth_tokens: "yes" }).success, false);
    assert.equal(clearSessionsAction.configSchema.safeParse({ name: "x" }).success, false);
  });
});
