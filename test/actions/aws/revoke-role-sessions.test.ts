import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { REVOKE_POLICY_NAME, revokePolicyDocument, revokeRoleSessionsAction } from "../../../src/actions/aws/revoke-role-sessions.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { errorReply, TEST_SECRET_ACCESS_KEY } from "../../helpers/fakes/aws.ts";
import { awsSetup, plannedShape, sentShape, type AwsSetup } from "./setup.ts";

const subject = { id: "ci-deployer", kind: "workload" as const, attributes: { aws_role: "ci-deployer" } };
const EXPECTED_DOCUMENT =
  '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-11-24T10:00:00.000Z"}}}]}';

describe("aws:revoke_role_sessions", () => {
  let s: AwsSetup;
  before(async () => {
    s = await awsSetup();
  });
  after(async () => {
    await s.close();
  });
  beforeEach(() => {
    s.fake.roles.clear();
    s.fake.denied.clear();
    s.fake.addRole("ci-deployer");
    s.fake.clear();
  });

  const action = () => revokeRoleSessionsAction.create(revokeRoleSessionsAction.configSchema.parse({}), s.ctx);

  test("the policy document is the console's, with the decision's instant", () => {
    assert.equal(revokePolicyDocument(Date.parse("2026-11-24T10:00:00Z")), EXPECTED_DOCUMENT);
  });

  test("apply puts AWSRevokeOlderSessions with decided_at and verifies it by reading it back", async () => {
    const outcome = await action().apply(request({ subject }));
    assert.equal(outcome.verified, true);
    assert.deepEqual(outcome.detail, { role: "ci-deployer", policy: REVOKE_POLICY_NAME, token_issued_before: "2026-11-24T10:00:00.000Z" });
    assert.equal(s.fake.roles.get("ci-deployer")!.inline.get(REVOKE_POLICY_NAME), EXPECTED_DOCUMENT);
    assert.deepEqual(s.fake.actions(), ["PutRolePolicy", "GetRolePolicy"]);
  });

  test("apply twice (a retry) sends the same document and ends in the same state", async () => {
    const a = action();
    await a.apply(request({ subject }));
    const second = await a.apply(request({ subject }));
    assert.equal(second.verified, true);
    const puts = s.fake.calls.filter((c) => c.action === "PutRolePolicy");
    assert.equal(puts.length, 2);
    assert.equal(puts[0]!.params.PolicyDocument, puts[1]!.params.PolicyDocument);
    assert.equal(s.fake.roles.get("ci-deployer")!.inline.size, 1);
  });

  test("revert deletes the policy, verifies it is gone, and a second revert is fine", async () => {
    const a = action();
    await a.apply(request({ subject }));
    const r1 = await a.revert!(request({ subject, operation: "revert" }));
    assert.deepEqual(r1, { verified: true, detail: { role: "ci-deployer", policy: REVOKE_POLICY_NAME, deleted: true } });
    assert.equal(s.fake.roles.get("ci-deployer")!.inline.has(REVOKE_POLICY_NAME), false);
    const r2 = await a.revert!(request({ subject, operation: "revert" }));
    assert.deepEqual(r2, { verified: true, detail: { role: "ci-deployer", policy: REVOKE_POLICY_NAME, deleted: false } });
  });

  test("the plan is exactly what apply and revert send, and planning sends nothing", async () => {
    const a = action();
    for (const operation of ["apply", "revert"] as const) {
      s.fake.clear();
      const req = request({ subject, operation });
      const plan = a.plan(req);
      assert.equal(s.fake.api.requests.length, 0, "plan() made a request");
      await (operation === "apply" ? a.apply(req) : a.revert!(req));
      assert.deepEqual(plan.map(plannedShape), s.fake.api.handled.map((r) => sentShape(s.fake, r)));
    }
  });

  test("plans mask the signature, show X-Amz-Date, and hold no secret", async () => {
    const a = action();
    const req = request({ subject });
    const plan = a.plan(req);
    await a.apply(req);
    const sentAuth = s.fake.api.requests[0]!.headers["authorization"]!;
    const json = JSON.stringify(plan);
    assert.equal(plan[0]!.headers.Authorization, "[REDACTED]");
    assert.match(plan[0]!.headers["X-Amz-Date"]!, /^\d{8}T\d{6}Z$/);
    assert.equal(plan[0]!.headers["X-Amz-Security-Token"], undefined, "static credentials without a session token send none");
    assert.ok(!json.includes(TEST_SECRET_ACCESS_KEY), "the secret key is in the plan");
    assert.ok(!json.includes(sentAuth.slice(sentAuth.indexOf("Signature="))), "the signature is in the plan");
    assert.equal(plan[0]!.summary, "deny IAM role ci-deployer to sessions issued before 2026-11-24T10:00:00.000Z");
  });

  test("a role ARN or an assumed-role session ARN names the role", async () => {
    const a = revokeRoleSessionsAction.create(revokeRoleSessionsAction.configSchema.parse({ role: "{{attributes.arn}}" }), s.ctx);
    for (const arn of ["arn:aws:iam::123456789012:role/team/ci-deployer", "arn:aws:sts::123456789012:assumed-role/ci-deployer/build-42"]) {
      const out = await a.apply(request({ subject: { id: "x", attributes: { arn } } }));
      assert.equal(out.verified, true);
    }
  });

  test("429 is retried with the server's hint and then succeeds", async () => {
    s.fake.tooManyRequests(7, { action: "PutRolePolicy" });
    const a = action();
    const r = await attempt(() => a.apply(request({ subject })));
    assert.equal(r.attempts, 2);
    assert.deepEqual(r.retryAfter, [7000]);
    assert.equal(r.value?.verified, true);
    assert.equal(s.fake.roles.get("ci-deployer")!.inline.get(REVOKE_POLICY_NAME), EXPECTED_DOCUMENT);
  });

  test("IAM's 400 Throttling and 503 ServiceUnavailable are transient", async () => {
    s.fake.throttle({ action: "PutRolePolicy" }).unavailable({ action: "GetRolePolicy" });
    const r = await attempt(() => action().apply(request({ subject })));
    assert.equal(r.attempts, 3);
    assert.equal(r.value?.verified, true);
    assert.deepEqual(r.retryAfter, [undefined, undefined]);
  });

  test("403 AccessDenied is not retried: one attempt, one request", async () => {
    s.fake.denied.add("iam:PutRolePolicy");
    const r = await attempt(() => action().apply(request({ subject })));
    assert.equal(r.attempts, 1);
    assert.ok(r.error instanceof UpstreamError);
    assert.equal(r.error.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.equal(r.error.status, 403);
    assert.match(r.error.message, /AccessDenied: User: .* is not authorized to perform: iam:PutRolePolicy/);
    assert.equal(s.fake.api.requests.length, 1);
  });

  test("a service-linked role refuses it (UnmodifiableEntity, permanent)", async () => {
    s.fake.addRole("AWSServiceRoleForECS", { serviceLinked: true });
    const a = revokeRoleSessionsAction.create(revokeRoleSessionsAction.configSchema.parse({ role: "AWSServiceRoleForECS" }), s.ctx);
    await assert.rejects(a.apply(request({ subject })), (err: unknown) => err instanceof UpstreamError && !err.transient && /UnmodifiableEntity/.test(err.message));
  });

  test("an unknown role is a permanent 404 NoSuchEntity", async () => {
    const a = revokeRoleSessionsAction.create(revokeRoleSessionsAction.configSchema.parse({ role: "nope" }), s.ctx);
    await assert.rejects(a.apply(request({ subject })), (err: unknown) => err instanceof UpstreamError && err.status === 404 && !err.transient && /NoSuchEntity: The role with name nope cannot be found/.test(err.message));
  });

  test("verified is false when the read-back does not show the policy yet (eventual consistency)", async () => {
    s.fake.fault(errorReply(404, "NoSuchEntity", "The role policy with name AWSRevokeOlderSessions cannot be found."), { action: "GetRolePolicy" });
    const out = await action().apply(request({ subject }));
    assert.equal(out.verified, false);
  });

  test("a subject without the role attribute is an input error and sends nothing", async () => {
    await assert.rejects(action().apply(request({ subject: { id: "y", attributes: {} } })), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT");
    assert.throws(() => action().plan(request({ subject: { id: "y", attributes: { aws_role: "arn:aws:iam::123456789012:user/bob" } } })), /is an IAM user, not a role/);
    assert.equal(s.fake.api.requests.length, 0);
  });
});
