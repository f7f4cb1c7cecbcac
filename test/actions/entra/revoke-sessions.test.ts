import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { revokeSessionsAction } from "../../../src/actions/entra/revoke-sessions.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { ALL_PERMISSIONS, CLIENT_SECRET } from "../../helpers/fakes/entra.ts";
import { ALICE, aliceRequest, assertNoSecrets, assertPlanSent, currentToken, tenant, type Tenant } from "./setup.ts";

const REVOKE = /\/revokeSignInSessions$/;

describe("entra:revoke_sessions", () => {
  let t: Tenant;
  afterEach(() => t.close());

  const create = (config: Record<string, unknown> = {}) => revokeSessionsAction.create(revokeSessionsAction.configSchema.parse(config), t.ctx);

  test("apply revokes the user's sessions and is verified from Graph's answer", async () => {
    t = await tenant();
    t.clock.advance(60_000);
    const out = await create().apply(aliceRequest());
    assert.equal(out.verified, true);
    assert.deepEqual(out.detail, { user: ALICE.id, status: 200, value: true });
    assert.equal(t.fake.users.get(ALICE.id)!.signInSessionsValidFromDateTime, "2026-11-24T10:01:00Z");
    assert.deepEqual(t.fake.graphLines(), [`POST /v1.0/users/${ALICE.id}/revokeSignInSessions`]);
  });

  test("takes a user principal name from a template", async () => {
    t = await tenant();
    const out = await create({ user: "{{identity}}" }).apply(aliceRequest());
    assert.equal(out.verified, true);
    assert.deepEqual(t.fake.graphLines(), ["POST /v1.0/users/alice@contoso.example/revokeSignInSessions"]);
  });

  test("a user principal name starting with $ is sent as a key, as Graph requires", async () => {
    t = await tenant();
    t.fake.addUser({ id: "5d1b7f3a-1111-4222-8333-944455556666", userPrincipalName: "$svc'ops@contoso.example" });
    const action = create({ user: "{{identity}}" });
    const req = request({ subject: { id: "svc", identity: "$svc'ops@contoso.example" } });
    assert.equal((await action.apply(req)).verified, true);
    assert.deepEqual(t.fake.graphLines(), ["POST /v1.0/users('$svc''ops@contoso.example')/revokeSignInSessions"]);
    assertPlanSent(t.fake, action.plan(req));
  });

  test("applying twice is harmless: both runs revoke and verify", async () => {
    t = await tenant();
    const action = create();
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal(t.fake.graphLines().length, 2);
  });

  test("is not revertible", async () => {
    t = await tenant();
    assert.equal(revokeSessionsAction.revertible, false);
    assert.equal(create().revert, undefined);
  });

  test("a 429 is retried after Graph's Retry-After, then succeeds", async () => {
    t = await tenant();
    t.fake.throttle({ method: "POST", path: REVOKE }, 7);
    const action = create();
    const r = await attempt(() => action.apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [7000]);
    assert.equal(r.value?.verified, true);
    assert.notEqual(t.fake.users.get(ALICE.id)!.signInSessionsValidFromDateTime, "2026-01-01T00:00:00Z");
  });

  test("a 403 (permission not granted) is not retried", async () => {
    t = await tenant({ fake: { permissions: ALL_PERMISSIONS.filter((p) => p !== "User.RevokeSessions.All") } });
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.equal(r.error.status, 403);
    assert.match(r.error.message, /Authorization_RequestDenied/);
    assert.equal(t.fake.graphRequests().filter((q) => REVOKE.test(q.path)).length, 1);
    assert.equal(t.fake.users.get(ALICE.id)!.signInSessionsValidFromDateTime, "2026-01-01T00:00:00Z");
  });

  test("an unknown user is a permanent 404", async () => {
    t = await tenant();
    const req = request({ subject: { id: "ghost", attributes: { entra_id: "00000000-0000-4000-8000-00000000dead" } } });
    const r = await attempt(() => create().apply(req));
    assert.equal(r.attempts, 1);
    assert.equal((r.error as UpstreamError).status, 404);
    assert.match((r.error as Error).message, /Request_ResourceNotFound/);
  });

  test("plan sends nothing, equals what apply sends, and holds no secret", async () => {
    t = await tenant();
    const action = create();
    const plan = action.plan(aliceRequest());
    assert.equal(t.fake.requests.length, 0, "planning reached the server");
    await action.apply(aliceRequest());
    assertPlanSent(t.fake, plan);
    assert.equal(plan[0]!.headers.Authorization, "[REDACTED]");
    assertNoSecrets(action.plan(aliceRequest()), CLIENT_SECRET, await currentToken(t.client));
  });

  test("a subject without the attribute, or with a value that is no Entra id, is an input error before any request", async () => {
    t = await tenant();
    const action = create();
    for (const attributes of [{}, { entra_id: "alice" }]) {
      const req = request({ subject: { id: "alice", attributes } });
      assert.throws(() => action.plan(req), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
      await assert.rejects(action.apply(req), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
    }
    assert.equal(t.fake.requests.length, 0);
  });

});

describe("entra:revoke_sessions config", () => {
  test("user defaults to {{attributes.entra_id}}; unknown keys and bad templates are refused", () => {
    assert.deepEqual(revokeSessionsAction.configSchema.parse({}), { user: "{{attributes.entra_id}}" });
    assert.equal(revokeSessionsAction.configSchema.safeParse({ user: "{{attributes.x" }).success, false);
    assert.equal(revokeSessionsAction.configSchema.safeParse({ user: "{{nope}}" }).success, false);
    assert.equal(revokeSessionsAction.configSchema.safeParse({ users: "x" }).success, false);
    const { type, ...example } = revokeSessionsAction.example;
    assert.equal(type, "entra:revoke_sessions");
    assert.equal(revokeSessionsAction.configSchema.safeParse(example).success, true);
    assert.deepEqual(revokeSessionsAction.requiredPermissions, ["User.RevokeSessions.All"]);
  });
});
