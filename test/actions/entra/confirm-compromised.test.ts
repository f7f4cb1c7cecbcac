import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { confirmCompromisedAction } from "../../../src/actions/entra/confirm-compromised.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { ALL_PERMISSIONS, CLIENT_SECRET } from "../../helpers/fakes/entra.ts";
import { ALICE, aliceRequest, assertNoSecrets, assertPlanSent, currentToken, tenant, type Tenant } from "./setup.ts";

const CONFIRM = /\/riskyUsers\/confirmCompromised$/;

describe("entra:confirm_compromised", () => {
  let t: Tenant;
  afterEach(() => t.close());

  const create = (config: Record<string, unknown> = {}) => confirmCompromisedAction.create(confirmCompromisedAction.configSchema.parse(config), t.ctx);

  test("apply confirms the user compromised and reads the risk state back", async () => {
    t = await tenant();
    const out = await create().apply(aliceRequest());
    assert.equal(out.verified, true);
    assert.deepEqual(out.detail, { user: ALICE.id, status: 204, riskState: "confirmedCompromised", riskLevel: "high" });
    assert.equal(t.fake.riskyUsers.get(ALICE.id)!.riskState, "confirmedCompromised");
    assert.deepEqual(t.fake.graphLines(), ["POST /v1.0/identityProtection/riskyUsers/confirmCompromised", `GET /v1.0/identityProtection/riskyUsers/${ALICE.id}`]);
    assert.deepEqual(JSON.parse(t.fake.graphRequests()[0]!.body), { userIds: [ALICE.id] });
  });

  test("revert dismisses the risk", async () => {
    t = await tenant();
    const action = create();
    await action.apply(aliceRequest());
    const out = await action.revert!(aliceRequest("revert", "full_access"));
    assert.equal(out.verified, true);
    assert.equal(out.detail?.riskState, "dismissed");
    assert.equal(t.fake.riskyUsers.get(ALICE.id)!.riskState, "dismissed");
    assert.equal(t.fake.riskyUsers.get(ALICE.id)!.riskDetail, "adminDismissedAllRiskForUser");
  });

  test("revert for a user Identity Protection never flagged is verified (no risk record)", async () => {
    t = await tenant();
    const out = await create().revert!(aliceRequest("revert"));
    assert.equal(out.verified, true);
    assert.equal(out.detail?.riskState, "none");
    assert.equal(t.fake.riskyUsers.size, 0);
  });

  test("apply and revert are idempotent", async () => {
    t = await tenant();
    const action = create();
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal((await action.revert!(aliceRequest("revert"))).verified, true);
    assert.equal((await action.revert!(aliceRequest("revert"))).verified, true);
    assert.equal(t.fake.riskyUsers.get(ALICE.id)!.riskState, "dismissed");
  });

  test("while Identity Protection is still processing, verification is left open", async () => {
    t = await tenant();
    t.fake.deferRiskUpdates = true;
    const out = await create().apply(aliceRequest());
    assert.equal(out.verified, undefined);
    assert.equal(out.detail?.isProcessing, true);
  });

  test("a user principal name is refused before any request: these APIs take object ids", async () => {
    t = await tenant();
    const action = create({ user: "{{identity}}" });
    assert.throws(() => action.plan(aliceRequest()), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT" && /object id/.test(err.message));
    await assert.rejects(action.apply(aliceRequest()), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
    assert.equal(t.fake.requests.length, 0);
  });

  test("a 429 is retried after Retry-After, then succeeds", async () => {
    t = await tenant();
    t.fake.throttle({ method: "POST", path: CONFIRM }, 30);
    const action = create();
    const r = await attempt(() => action.apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [30_000]);
    assert.equal(r.value?.verified, true);
    assert.equal(t.fake.riskyUsers.get(ALICE.id)!.riskState, "confirmedCompromised");
  });

  test("a 403 without IdentityRiskyUser.ReadWrite.All is not retried", async () => {
    t = await tenant({ fake: { permissions: ALL_PERMISSIONS.filter((p) => p !== "IdentityRiskyUser.ReadWrite.All") } });
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.equal(r.error.status, 403);
    assert.equal(t.fake.graphRequests().filter((q) => CONFIRM.test(q.path)).length, 1);
    assert.equal(t.fake.riskyUsers.size, 0);
  });

  test("an object id the tenant does not know is a permanent 404", async () => {
    t = await tenant();
    const req = request({ subject: { id: "ghost", attributes: { entra_id: "00000000-0000-4000-8000-00000000dead" } } });
    const r = await attempt(() => create().apply(req));
    assert.equal(r.attempts, 1);
    assert.equal((r.error as UpstreamError).status, 404);
  });

  test("plan sends nothing, then equals what apply and revert send, without secrets", async () => {
    t = await tenant();
    const action = create();
    const plan = action.plan(aliceRequest());
    const revertPlan = action.plan(aliceRequest("revert"));
    assert.equal(t.fake.requests.length, 0);
    await action.apply(aliceRequest());
    assertPlanSent(t.fake, plan);
    await action.revert!(aliceRequest("revert"));
    assertPlanSent(t.fake, revertPlan, 2);
    assert.match(revertPlan[0]!.url, /\/riskyUsers\/dismiss$/);
    assertNoSecrets([...plan, ...revertPlan], CLIENT_SECRET, await currentToken(t.client));
  });
});

describe("entra:confirm_compromised factory", () => {
  test("declares its permissions, example and revertibility", () => {
    assert.deepEqual(confirmCompromisedAction.requiredPermissions, ["IdentityRiskyUser.ReadWrite.All"]);
    assert.equal(confirmCompromisedAction.revertible, true);
    const { type, ...example } = confirmCompromisedAction.example;
    assert.equal(type, "entra:confirm_compromised");
    assert.equal(confirmCompromisedAction.configSchema.safeParse(example).success, true);
  });
});
