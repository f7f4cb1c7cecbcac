import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { attachedTag, downgradeAction, PLACEHOLDER, PREVIOUS_BOUNDARY_TAG, readOnlyAccessArn } from "../../../src/actions/aws/downgrade.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { attempt, request } from "../../helpers/action-context.ts";
import { TEST_SECRET_ACCESS_KEY } from "../../helpers/fakes/aws.ts";
import { awsSetup, plannedShape, resolved, sentShape, type AwsSetup } from "./setup.ts";

const READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const DENY_WRITES = "arn:aws:iam::123456789012:policy/security/DenyWrites";
const OLD_BOUNDARY = "arn:aws:iam::123456789012:policy/DeveloperBoundary";
const roleSubject = { id: "app", kind: "workload" as const, attributes: { aws_role: "app" } };
const userSubject = { id: "bob", kind: "user" as const, attributes: { aws_user: "bob" } };

describe("aws:downgrade", () => {
  let s: AwsSetup;
  before(async () => {
    s = await awsSetup();
  });
  after(async () => {
    await s.close();
  });
  beforeEach(() => {
    s.fake.roles.clear();
    s.fake.users.clear();
    s.fake.denied.clear();
    s.fake.policies.add(DENY_WRITES).add(OLD_BOUNDARY);
    s.fake.clear();
  });

  const action = (config: Record<string, unknown>, ctx = s.ctx) => downgradeAction.create(downgradeAction.configSchema.parse(config), ctx);
  const role = () => s.fake.roles.get("app")!;
  const user = () => s.fake.users.get("bob")!;

  describe("managed_policy", () => {
    test("apply attaches the policy and records it; revert detaches it and drops the record", async () => {
      s.fake.addRole("app", { attached: [READ_ONLY] });
      const a = action({ policy_arn: DENY_WRITES });
      const out = await a.apply(request({ subject: roleSubject, access: "read_only" }));
      assert.deepEqual(out, { verified: true, detail: { principal: "role", name: "app", mode: "managed_policy", policy_arn: DENY_WRITES, attached: true } });
      assert.deepEqual([...role().attached], [READ_ONLY, DENY_WRITES]);
      assert.equal(role().tags.get(attachedTag(DENY_WRITES)), DENY_WRITES);
      const back = await a.revert!(request({ subject: roleSubject, operation: "revert" }));
      assert.deepEqual(back, { verified: true, detail: { principal: "role", name: "app", mode: "managed_policy", policy_arn: DENY_WRITES, detached: true } });
      assert.deepEqual([...role().attached], [READ_ONLY]);
      assert.equal(role().tags.size, 0);
    });

    test("a policy attached before vigil stays attached on revert", async () => {
      s.fake.addRole("app", { attached: [READ_ONLY] });
      const a = action({});
      const out = await a.apply(request({ subject: roleSubject }));
      assert.equal(out.verified, true);
      assert.equal(out.detail?.attached, false);
      assert.deepEqual(s.fake.actions(), ["ListAttachedRolePolicies", "ListAttachedRolePolicies"]);
      assert.equal(role().tags.size, 0);
      const back = await a.revert!(request({ subject: roleSubject, operation: "revert" }));
      assert.equal(back.detail?.detached, false);
      assert.deepEqual([...role().attached], [READ_ONLY]);
    });

    test("apply twice, revert twice: same end state, no errors", async () => {
      s.fake.addUser("bob");
      const a = action({ principal: "user", policy_arn: DENY_WRITES });
      await a.apply(request({ subject: userSubject }));
      const again = await a.apply(request({ subject: userSubject }));
      assert.equal(again.verified, true);
      assert.deepEqual([...user().attached], [DENY_WRITES]);
      assert.equal(user().tags.get(attachedTag(DENY_WRITES)), DENY_WRITES);
      await a.revert!(request({ subject: userSubject, operation: "revert" }));
      const r2 = await a.revert!(request({ subject: userSubject, operation: "revert" }));
      assert.equal(r2.verified, true);
      assert.deepEqual([...user().attached], []);
    });

    test("the default policy is the partition's ReadOnlyAccess", async () => {
      s.fake.addRole("app");
      await action({}).apply(request({ subject: roleSubject }));
      assert.deepEqual([...role().attached], [READ_ONLY]);
      assert.equal(readOnlyAccessArn("aws-cn"), "arn:aws-cn:iam::aws:policy/ReadOnlyAccess");
    });

    test("429 on attach: retried with the hint, then attached once and recorded", async () => {
      s.fake.addRole("app");
      s.fake.tooManyRequests(2, { action: "AttachRolePolicy" });
      const a = action({ policy_arn: DENY_WRITES });
      const r = await attempt(() => a.apply(request({ subject: roleSubject })));
      assert.equal(r.attempts, 2);
      assert.deepEqual(r.retryAfter, [2000]);
      assert.equal(r.value?.verified, true);
      assert.deepEqual([...role().attached], [DENY_WRITES]);
      await a.revert!(request({ subject: roleSubject, operation: "revert" }));
      assert.deepEqual([...role().attached], []);
    });

    test("the plan is what apply and revert send", async () => {
      s.fake.addRole("app");
      const a = action({ policy_arn: DENY_WRITES });
      for (const operation of ["apply", "revert"] as const) {
        s.fake.clear();
        const req = request({ subject: roleSubject, operation });
        const plan = a.plan(req);
        assert.equal(s.fake.api.requests.length, 0);
        await (operation === "apply" ? a.apply(req) : a.revert!(req));
        assert.deepEqual(plan.map(plannedShape), s.fake.api.handled.map((r) => sentShape(s.fake, r)));
        assert.ok(!JSON.stringify(plan).includes(TEST_SECRET_ACCESS_KEY));
      }
    });

    test("a policy that does not exist is a permanent NoSuchEntity", async () => {
      s.fake.addRole("app");
      const a = action({ policy_arn: "arn:aws:iam::123456789012:policy/Missing" });
      await assert.rejects(a.apply(request({ subject: roleSubject })), (err: unknown) => err instanceof UpstreamError && err.status === 404 && !err.transient);
    });
  });

  describe("permissions_boundary", () => {
    test("no boundary before: apply sets it and records none; revert removes it", async () => {
      s.fake.addRole("app");
      const a = action({ mode: "permissions_boundary" });
      const out = await a.apply(request({ subject: roleSubject }));
      assert.deepEqual(out, { verified: true, detail: { principal: "role", name: "app", mode: "permissions_boundary", policy_arn: READ_ONLY, previous_boundary: "none" } });
      assert.equal(role().boundary, READ_ONLY);
      assert.equal(role().tags.get(PREVIOUS_BOUNDARY_TAG), "none");
      const back = await a.revert!(request({ subject: roleSubject, operation: "revert" }));
      assert.deepEqual(back, { verified: true, detail: { principal: "role", name: "app", mode: "permissions_boundary", restored: true, boundary: "none" } });
      assert.equal(role().boundary, undefined);
      assert.equal(role().tags.size, 0);
    });

    test("a boundary that existed is recorded once (re-apply keeps the original) and restored on revert", async () => {
      s.fake.addUser("bob", { boundary: OLD_BOUNDARY });
      const a = action({ principal: "user", mode: "permissions_boundary" });
      await a.apply(request({ subject: userSubject }));
      const again = await a.apply(request({ subject: userSubject }));
      assert.equal(again.verified, true);
      assert.equal(again.detail?.previous_boundary, OLD_BOUNDARY);
      assert.equal(user().boundary, READ_ONLY);
      assert.equal(user().tags.get(PREVIOUS_BOUNDARY_TAG), OLD_BOUNDARY);
      // From another client, as after a restart.
      const other = s.fresh();
      const back = await action({ principal: "user", mode: "permissions_boundary" }, other.ctx).revert!(request({ subject: userSubject, operation: "revert" }));
      assert.equal(back.verified, true);
      assert.equal(user().boundary, OLD_BOUNDARY);
      assert.equal(user().tags.has(PREVIOUS_BOUNDARY_TAG), false);
      const r2 = await a.revert!(request({ subject: userSubject, operation: "revert" }));
      assert.equal(r2.detail?.restored, false);
      assert.equal(user().boundary, OLD_BOUNDARY);
    });

    test("the plan, placeholders filled in, is what apply and revert send", async () => {
      s.fake.addRole("app", { boundary: OLD_BOUNDARY });
      const a = action({ mode: "permissions_boundary" });
      const plan = a.plan(request({ subject: roleSubject }));
      assert.equal(s.fake.api.requests.length, 0);
      await a.apply(request({ subject: roleSubject }));
      const [get, tags, record, put, verify] = plan;
      assert.deepEqual(
        [plannedShape(get!), plannedShape(tags!), resolved(record!, { [PLACEHOLDER.currentBoundary]: OLD_BOUNDARY }), plannedShape(put!), plannedShape(verify!)],
        s.fake.api.handled.map((r) => sentShape(s.fake, r)),
      );
      s.fake.clear();
      const rplan = a.plan(request({ subject: roleSubject, operation: "revert" }));
      await a.revert!(request({ subject: roleSubject, operation: "revert" }));
      // A boundary was recorded, so the restore is a Put and the Delete (for "none") is skipped.
      const [rtags, restore, , untag, rverify] = rplan;
      assert.deepEqual(
        [plannedShape(rtags!), resolved(restore!, { [PLACEHOLDER.previousBoundary]: OLD_BOUNDARY }), plannedShape(untag!), plannedShape(rverify!)],
        s.fake.api.handled.map((r) => sentShape(s.fake, r)),
      );
    });

    test("403 on PutRolePermissionsBoundary is not retried and the server saw it once", async () => {
      s.fake.addRole("app");
      s.fake.denied.add("iam:PutRolePermissionsBoundary");
      const r = await attempt(() => action({ mode: "permissions_boundary" }).apply(request({ subject: roleSubject })));
      assert.equal(r.attempts, 1);
      assert.ok(r.error instanceof UpstreamError && r.error.status === 403 && !r.error.transient);
      assert.equal(s.fake.api.requests.filter((q) => new URLSearchParams(q.body).get("Action") === "PutRolePermissionsBoundary").length, 1);
    });

    test("a service-linked role refuses it", async () => {
      s.fake.addRole("app", { serviceLinked: true });
      await assert.rejects(action({ mode: "permissions_boundary" }).apply(request({ subject: roleSubject })), /UnmodifiableEntity/);
    });
  });

  describe("config", () => {
    test("defaults: role, managed_policy, the name from aws_role (aws_user for users)", () => {
      assert.deepEqual(downgradeAction.configSchema.parse({}), { principal: "role", mode: "managed_policy" });
      s.fake.addUser("bob");
      const plan = action({ principal: "user" }).plan(request({ subject: userSubject }));
      assert.equal((plan[0]!.body as Record<string, string>).UserName, "bob");
    });

    for (const [what, input] of [
      ["a policy ARN with a comma (cannot be recorded in a tag)", { policy_arn: "arn:aws:iam::123456789012:policy/a,b" }],
      ["a non-policy ARN", { policy_arn: "arn:aws:iam::123456789012:role/x" }],
      ["an unknown mode", { mode: "tag" }],
      ["an unknown key", { type: "aws:downgrade" }],
    ] as const) {
      test(`rejects ${what}`, () => {
        assert.equal(downgradeAction.configSchema.safeParse(input).success, false);
      });
    }
  });
});
