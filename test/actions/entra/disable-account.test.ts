import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { disableAccountAction } from "../../../src/actions/entra/disable-account.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, EnforcementRecordFake, request } from "../../helpers/action-context.ts";
import { ALL_PERMISSIONS, CLIENT_SECRET } from "../../helpers/fakes/entra.ts";
import { ALICE, aliceRequest, assertNoSecrets, assertPlanSent, currentToken, tenant, type Tenant } from "./setup.ts";

const USER_PATH = new RegExp(`^/v1\\.0/users/${ALICE.id}$`);

describe("entra:disable_account", () => {
  let t: Tenant;
  afterEach(() => t.close());

  const create = (config: Record<string, unknown> = {}) => disableAccountAction.create(disableAccountAction.configSchema.parse(config), t.ctx);

  test("apply records accountEnabled, disables the account and reads accountEnabled back", async () => {
    t = await tenant();
    const out = await create().apply(aliceRequest());
    assert.equal(out.verified, true);
    assert.deepEqual(out.detail, { user: ALICE.id, status: 204, accountEnabled: false });
    assert.deepEqual(out.prior, { accountEnabled: true });
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, false);
    const read = `GET /v1.0/users/${ALICE.id}?%24select=accountEnabled`;
    assert.deepEqual(t.fake.graphLines(), [read, `PATCH /v1.0/users/${ALICE.id}`, read]);
    assert.deepEqual(JSON.parse(t.fake.graphRequests()[1]!.body), { accountEnabled: false });
  });

  test("revert enables the account again", async () => {
    t = await tenant();
    const action = create();
    await action.apply(aliceRequest());
    const out = await action.revert!(aliceRequest("revert", "full_access"));
    assert.equal(out.verified, true);
    assert.equal(out.detail?.accountEnabled, true);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, true);
  });

  test("applying twice leaves the account disabled, without error", async () => {
    t = await tenant();
    const action = create();
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal((await action.apply(aliceRequest())).verified, true);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, false);
    assert.equal((await action.revert!(aliceRequest("revert"))).verified, true);
    assert.equal((await action.revert!(aliceRequest("revert"))).verified, true);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, true);
  });

  test("works with a user principal name", async () => {
    t = await tenant();
    const out = await create({ user: "{{identity}}" }).apply(aliceRequest());
    assert.equal(out.verified, true);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, false);
    assert.equal(t.fake.graphLines()[1], "PATCH /v1.0/users/alice@contoso.example");
  });

  test("verification fails when the account is found enabled after the change", async () => {
    t = await tenant();
    // Another administrator (or a sync from on-premises AD) re-enables the account between write and
    // read: the first read (before the change) answers the truth, the read-back the re-enabled account.
    t.fake.fail({ method: "GET", path: USER_PATH }, { status: 200, body: { id: ALICE.id, accountEnabled: true } }, { status: 200, body: { id: ALICE.id, accountEnabled: true } });
    const out = await create().apply(aliceRequest());
    assert.equal(out.verified, false);
    assert.equal(out.detail?.accountEnabled, true);
  });

  test("a 429 on the change is retried after Retry-After, then succeeds", async () => {
    t = await tenant();
    t.fake.throttle({ method: "PATCH", path: USER_PATH }, 12);
    const action = create();
    const r = await attempt(() => action.apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [12_000]);
    assert.equal(r.value?.verified, true);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, false);
  });

  test("a 503 on the read-back is transient too; the retry repeats the (idempotent) change", async () => {
    t = await tenant();
    // The read before the change answers the truth; the 503 is the read-back's.
    t.fake.fail({ method: "GET", path: USER_PATH }, { status: 200, body: { id: ALICE.id, accountEnabled: true } });
    t.fake.unavailable({ method: "GET", path: USER_PATH }, 1, 2);
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [2000]);
    assert.equal(r.value?.verified, true);
  });

  test("a 403 without User.EnableDisableAccount.All is not retried", async () => {
    t = await tenant({ fake: { permissions: ALL_PERMISSIONS.filter((p) => p !== "User.EnableDisableAccount.All") } });
    const r = await attempt(() => create().apply(aliceRequest()));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.transient, false);
    assert.equal(r.error.status, 403);
    assert.equal(t.fake.graphRequests().filter((q) => q.method === "PATCH").length, 1);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, true);
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
    assertPlanSent(t.fake, revertPlan, 3);
    assert.deepEqual(revertPlan[0]!.body, { accountEnabled: true });
    assertNoSecrets([...plan, ...revertPlan, ...action.plan(aliceRequest())], CLIENT_SECRET, await currentToken(t.client));
  });

  test("an account an administrator had disabled stays disabled through vigil's apply and revert", async () => {
    t = await tenant();
    t.fake.users.get(ALICE.id)!.accountEnabled = false;
    const action = create();
    const record = new EnforcementRecordFake(aliceRequest());
    const applied = await action.apply(record.forApply(aliceRequest()));
    record.applied(applied);
    assert.deepEqual(applied.prior, { accountEnabled: false });
    const from = t.fake.graphRequests().length;
    const req = record.forRevert(aliceRequest("revert", "full_access"));
    const plan = action.plan(req);
    const outcome = await action.revert!(req);
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, false, "vigil undoes only its own change");
    assert.equal(outcome.verified, true);
    assert.equal(outcome.detail?.changed, false);
    assert.match(String(outcome.detail?.reason), /already disabled before vigil's apply/);
    assert.deepEqual(t.fake.graphLines().slice(from), [`GET /v1.0/users/${ALICE.id}?%24select=accountEnabled`]);
    assertPlanSent(t.fake, plan, from);
  });

  test("a retry after vigil's own change keeps the state read before it, so the revert enables the account", async () => {
    t = await tenant();
    const action = create();
    const record = new EnforcementRecordFake(aliceRequest());
    t.fake.fail({ method: "GET", path: USER_PATH }, { status: 200, body: { id: ALICE.id, accountEnabled: true } });
    t.fake.unavailable({ method: "GET", path: USER_PATH }, 1, 1);
    const r = await attempt(() => action.apply(record.forApply(aliceRequest())));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.value?.prior, { accountEnabled: true }, "the retry read false, vigil's own doing, not the prior state");
    record.applied(r.value!);
    await action.revert!(record.forRevert(aliceRequest("revert", "full_access")));
    assert.equal(t.fake.users.get(ALICE.id)!.accountEnabled, true);
  });

  test("a missing attribute is an input error", async () => {
    t = await tenant();
    await assert.rejects(create().apply(request({ subject: { id: "x" } })), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
    assert.equal(t.fake.requests.length, 0);
  });
});

describe("entra:disable_account factory", () => {
  test("declares its permissions, example and revertibility", () => {
    assert.deepEqual(disableAccountAction.requiredPermissions, ["User.EnableDisableAccount.All", "User.Read.All"]);
    assert.equal(disableAccountAction.revertible, true);
    assert.equal(disableAccountAction.provider, "entra");
    const { type, ...example } = disableAccountAction.example;
    assert.equal(type, "entra:disable_account");
    assert.deepEqual(disableAccountAction.configSchema.parse(example), { user: "{{attributes.entra_id}}" });
  });
});
