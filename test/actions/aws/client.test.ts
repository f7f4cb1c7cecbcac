import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as aws from "../../../src/actions/aws/index.ts";
import { AwsClient, TRANSIENT_CODES } from "../../../src/actions/aws/client.ts";
import { awsProviderSchema, defaultRegion, partitionOf, resolveTarget } from "../../../src/actions/aws/config.ts";
import type { AwsCredentials, CredentialSource } from "../../../src/actions/aws/credentials.ts";
import { principalName } from "../../../src/actions/aws/names.ts";
import { amzDate } from "../../../src/actions/aws/sigv4.ts";
import { members, parseXml, result, text } from "../../../src/actions/aws/xml.ts";
import { UpstreamError, VigilError } from "../../../src/errors.ts";
import { FakeClock } from "../../../src/util/clock.ts";
import { providerContext } from "../../helpers/action-context.ts";
import { canonicalRequest, errorReply, FakeIam, signingKey, sigv4Signature, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY } from "../../helpers/fakes/aws.ts";
import { createHash } from "node:crypto";

const creds = { access_key_id: TEST_ACCESS_KEY_ID, secret_access_key: TEST_SECRET_ACCESS_KEY };

describe("aws provider client against the IAM fake", () => {
  const fake = new FakeIam();
  const contexts: ReturnType<typeof providerContext>[] = [];
  before(async () => {
    await fake.start();
  });
  after(async () => {
    await fake.stop();
    for (const c of contexts) await c.http.close();
  });
  beforeEach(() => {
    fake.roles.clear();
    fake.addRole("app");
    fake.region = "us-east-1";
    fake.clear();
  });

  function client(config: Record<string, unknown> = {}, opts: { clock?: FakeClock; credentials?: CredentialSource } = {}): AwsClient {
    const ctx = providerContext("aws", opts.clock);
    contexts.push(ctx);
    return new AwsClient({ ctx, config: awsProviderSchema.parse({ endpoint: fake.base, credentials: creds, ...config }), ...(opts.credentials ? { credentials: opts.credentials } : {}) });
  }
  const getRole = (c: AwsClient) => c.query(c.call("GetRole", { RoleName: "app" }));

  test("a signed call is accepted and its XML result parsed", async () => {
    const r = await getRole(client());
    assert.equal(r.status, 200);
    assert.equal(text(r.result && (r.result as Record<string, never>).Role, "RoleName"), "app");
    assert.deepEqual(fake.actions(), ["GetRole"]);
  });

  test("a wrong secret is 403 SignatureDoesNotMatch, permanent, and the message holds no secret", async () => {
    const wrong = "wrong-secret-key-for-the-test-0123456789";
    await assert.rejects(getRole(client({ credentials: { ...creds, secret_access_key: wrong } })), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
      assert.equal(err.status, 403);
      assert.match(err.message, /^aws iam GetRole → 403 SignatureDoesNotMatch: The request signature we calculated/);
      assert.equal(err.details.aws_code, "SignatureDoesNotMatch");
      assert.ok(!err.message.includes(wrong) && !JSON.stringify(err.details).includes(wrong));
      return true;
    });
  });

  test("an unknown access key is 403 InvalidClientTokenId", async () => {
    await assert.rejects(getRole(client({ credentials: { ...creds, access_key_id: "AKIAUNKNOWN000000000" } })), /403 InvalidClientTokenId/);
  });

  test("a static session token is sent, signed, and shown masked in plans", async () => {
    fake.credentials.set("ASIATEMPORARY0000001", { secretAccessKey: "temporary-secret-0123456789", sessionToken: "session-token-value-0123456789" });
    const c = client({ credentials: { access_key_id: "ASIATEMPORARY0000001", secret_access_key: "temporary-secret-0123456789", session_token: "session-token-value-0123456789" } });
    const call = c.call("GetRole", { RoleName: "app" });
    const plan = c.describe(call);
    assert.equal(plan.headers["X-Amz-Security-Token"], "[REDACTED]");
    assert.ok(!JSON.stringify(plan).includes("session-token-value-0123456789"));
    await c.query(call);
    assert.equal(fake.api.requests[0]!.headers["x-amz-security-token"], "session-token-value-0123456789");
    assert.match(fake.api.requests[0]!.headers["authorization"]!, /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,/);
  });

  test("a clock more than 5 minutes off is refused as an expired signature", async () => {
    const clock = new FakeClock(Date.now() - 10 * 60_000);
    await assert.rejects(getRole(client({}, { clock })), /403 SignatureDoesNotMatch: Signature expired/);
  });

  test("the credential scope names the partition's IAM region: us-east-1, cn-north-1 for aws-cn", async () => {
    await getRole(client({ region: "eu-central-1" }));
    assert.match(fake.api.requests[0]!.headers["authorization"]!, /\/us-east-1\/iam\/aws4_request/);
    fake.region = "cn-north-1";
    await assert.rejects(getRole(client({ region: "eu-central-1" })), /Credential should be scoped to a valid region/);
    const cn = client({ region: "cn-northwest-1" });
    assert.equal(cn.partition, "aws-cn");
    await getRole(cn);
    fake.region = "eu-west-3";
    await getRole(client({ signing_region: "eu-west-3" }));
  });

  test("400 Throttling, 409 ConcurrentModification and 503 are transient; 429 carries Retry-After", async () => {
    const c = client();
    fake.throttle();
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient && err.status === 400 && err.retryAfterMs === undefined && /Throttling: Rate exceeded/.test(err.message));
    fake.fault(errorReply(409, "ConcurrentModification", "The request was rejected because multiple requests to change this object were submitted simultaneously."));
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient && err.status === 409);
    fake.unavailable();
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient && err.status === 503);
    fake.tooManyRequests(12);
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient && err.retryAfterMs === 12_000);
    assert.ok(TRANSIENT_CODES.has("RequestLimitExceeded"));
  });

  test("a 400 validation error and an unknown action are permanent", async () => {
    const c = client();
    await assert.rejects(c.query(c.call("GetRole", {})), (err: unknown) => err instanceof UpstreamError && !err.transient && /MissingParameter: The request must contain the parameter RoleName/.test(err.message));
    await assert.rejects(c.query(c.call("DeleteEverything", {})), /InvalidAction/);
    await assert.rejects(c.query(c.call("GetRole", { RoleName: "app", Extra: "x" })), /ValidationError/);
  });

  test("NoSuchEntity is a permanent 404 unless the call accepts it", async () => {
    const c = client();
    await assert.rejects(c.query(c.call("GetRole", { RoleName: "ghost" })), (err: unknown) => err instanceof UpstreamError && err.status === 404 && !err.transient);
    const accepted = await c.query(c.call("GetRole", { RoleName: "ghost" }, { accept: [404] }));
    assert.deepEqual(accepted, { status: 404, code: "NoSuchEntity" });
  });

  test("a 502 that is not XML is transient and quotes the body; a 200 that is not the action's XML is permanent", async () => {
    const c = client();
    fake.fault({ status: 502, body: "<html>bad gateway</html>" });
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient && /502 <html>bad gateway/.test(err.message));
    fake.fault({ status: 200, body: "ok" });
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && !err.transient && /has no <GetRoleResponse> XML document/.test(err.message));
  });

  test("the circuit opens after repeated 5xx and then fails fast without reaching IAM", async () => {
    const c = client({ circuit: { failures: 2, open_for: "1m" } });
    fake.unavailable({ count: 2 });
    await assert.rejects(getRole(c));
    await assert.rejects(getRole(c));
    const seen = fake.api.requests.length;
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient && /circuit open/.test(err.message) && (err.retryAfterMs ?? 0) > 0);
    assert.equal(fake.api.requests.length, seen, "the open circuit let a request through");
    assert.equal(c.breaker.state, "open");
  });

  test("ExpiredToken from chain credentials is transient and the next call skips the chain's cache", async () => {
    const refreshes: boolean[] = [];
    const source: CredentialSource = {
      kind: "chain",
      hasSessionToken: false,
      get: async (o): Promise<AwsCredentials> => {
        refreshes.push(o?.refresh ?? false);
        return { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY };
      },
    };
    const c = client({}, { credentials: source });
    fake.fault(errorReply(400, "ExpiredToken", "The security token included in the request is expired"));
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient);
    await getRole(c);
    assert.deepEqual(refreshes, [false, true]);
  });

  test("ExpiredToken with static credentials is permanent: they never renew, so retrying cannot help", async () => {
    fake.credentials.set("ASIASTATICEXPIRED001", { secretAccessKey: "static-expired-secret-0123456789", sessionToken: "static-expired-session-0123456789" });
    const c = client({ credentials: { access_key_id: "ASIASTATICEXPIRED001", secret_access_key: "static-expired-secret-0123456789", session_token: "static-expired-session-0123456789" } });
    fake.fault(errorReply(400, "ExpiredToken", "The security token included in the request is expired"));
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && !err.transient && err.details.aws_code === "ExpiredToken");
    // The request's own signing time is another matter: a retry signs it again.
    fake.fault(errorReply(400, "RequestExpired", "Request has expired."));
    await assert.rejects(getRole(c), (err: unknown) => err instanceof UpstreamError && err.transient);
  });

  test("describe shows the form as an object, X-Amz-Date from the clock, and masks Authorization", () => {
    const clock = new FakeClock("2026-03-04T05:06:07.890Z");
    const c = client({}, { clock });
    const plan = c.describe(c.call("TagUser", { UserName: "bob", "Tags.member.1.Key": "k", "Tags.member.1.Value": "v w" }, { summary: "tag" }));
    assert.deepEqual(plan, {
      method: "POST",
      url: `${fake.base}/`,
      headers: { "Content-Type": "application/x-www-form-urlencoded; charset=utf-8", Host: new URL(fake.base).host, "X-Amz-Date": "20260304T050607Z", Authorization: "[REDACTED]" },
      body: { Action: "TagUser", Version: "2010-05-08", UserName: "bob", "Tags.member.1.Key": "k", "Tags.member.1.Value": "v w" },
      summary: "tag",
    });
  });
});

describe("aws provider config", () => {
  test("an empty entry validates with the documented defaults", () => {
    const c = awsProviderSchema.parse({});
    assert.equal(c.timeout, 10_000);
    assert.deepEqual(c.circuit, { failures: 5, open_for: 30_000, max_open_for: 300_000 });
    assert.equal(c.credentials, undefined);
  });

  test("region defaults to AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1", () => {
    assert.equal(defaultRegion({ AWS_REGION: "eu-west-1", AWS_DEFAULT_REGION: "us-west-2" }), "eu-west-1");
    assert.equal(defaultRegion({ AWS_DEFAULT_REGION: "us-west-2" }), "us-west-2");
    assert.equal(defaultRegion({}), "us-east-1");
  });

  const targets: [string, Record<string, unknown>, { partition: string; endpoint: string; signingRegion: string }][] = [
    ["commercial", { region: "eu-central-1" }, { partition: "aws", endpoint: "https://iam.amazonaws.com", signingRegion: "us-east-1" }],
    ["China", { region: "cn-north-1" }, { partition: "aws-cn", endpoint: "https://iam.cn-north-1.amazonaws.com.cn", signingRegion: "cn-north-1" }],
    ["GovCloud", { region: "us-gov-east-1" }, { partition: "aws-us-gov", endpoint: "https://iam.us-gov.amazonaws.com", signingRegion: "us-gov-west-1" }],
    ["an explicit endpoint and signing region", { region: "eu-central-1", endpoint: "https://iam.example.internal", signing_region: "eu-central-1" }, { partition: "aws", endpoint: "https://iam.example.internal", signingRegion: "eu-central-1" }],
  ];
  for (const [what, input, want] of targets) {
    test(`resolves ${what}`, () => {
      const t = resolveTarget(awsProviderSchema.parse(input), {});
      assert.deepEqual({ partition: t.partition.id, endpoint: t.endpoint, signingRegion: t.signingRegion }, want);
    });
  }
  test("partitionOf", () => assert.equal(partitionOf("us-gov-west-1").id, "aws-us-gov"));

  for (const [what, input] of [
    ["an unknown key", { regions: "x" }],
    ["a bad region", { region: "Frankfurt" }],
    ["a non-http endpoint", { endpoint: "ftp://iam" }],
    ["a malformed access key id", { credentials: { access_key_id: "nope", secret_access_key: "x" } }],
    ["credentials without a secret", { credentials: { access_key_id: TEST_ACCESS_KEY_ID } }],
    ["a bad timeout", { timeout: "10 seconds" }],
  ] as const) {
    test(`rejects ${what}`, () => assert.equal(awsProviderSchema.safeParse(input).success, false));
  }
});

describe("aws folder exports", () => {
  test("index exports the provider and three actions whose examples validate", () => {
    assert.equal(aws.provider?.type, "aws");
    assert.equal(aws.provider?.configSchema.safeParse(aws.provider.example).success, true);
    assert.deepEqual(aws.actions.map((a) => a.type), ["aws:revoke_role_sessions", "aws:deactivate_access_keys", "aws:downgrade"]);
    for (const a of aws.actions) {
      const { type, ...rest } = a.example;
      assert.equal(type, a.type);
      assert.equal(a.configSchema.safeParse(rest).success, true, a.type);
      assert.equal(a.provider, "aws");
      assert.equal(a.revertible, true);
      assert.ok(a.requiredPermissions.length > 0 && a.requiredPermissions.every((p) => /^iam:[A-Z][A-Za-z]+$/.test(p)), a.type);
    }
  });

  test("an action without an aws provider fails with a clear error", () => {
    const a = aws.actions[0]!;
    assert.throws(() => a.create(a.configSchema.parse({}), { ...providerContext("x") }), /needs an aws provider/);
    assert.throws(() => a.create(a.configSchema.parse({}), { ...providerContext("x") }), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_CONFIG_INVALID", "a misconfiguration, never retried");
  });
});

describe("aws helpers", () => {
  const names: [string, "role" | "user", string, string | RegExp][] = [
    ["a bare name", "role", "app", "app"],
    ["a role ARN with a path", "role", "arn:aws:iam::123456789012:role/team/a/app", "app"],
    ["a GovCloud user ARN", "user", "arn:aws-us-gov:iam::123456789012:user/bob", "bob"],
    ["an assumed-role session", "role", "arn:aws:sts::123456789012:assumed-role/app/i-0abc", "app"],
    ["a user ARN where a role is wanted", "role", "arn:aws:iam::123456789012:user/bob", /is an IAM user, not a role/],
    ["a session where a user is wanted", "user", "arn:aws:sts::123456789012:assumed-role/app/s", /role session, not a user/],
    ["another service's ARN", "role", "arn:aws:s3:::bucket", /not an IAM role ARN/],
    ["a name with a space", "user", "bob smith", /not a valid IAM user name/],
    ["a name too long", "role", "r".repeat(65), /not a valid IAM role name/],
  ];
  for (const [what, kind, input, want] of names) {
    test(`principalName: ${what}`, () => {
      if (typeof want === "string") assert.equal(principalName(kind, input, "t"), want);
      else assert.throws(() => principalName(kind, input, "t"), (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_ACTION_INPUT" && want.test(err.message));
    });
  }

  test("the fake's own SigV4 verifier reproduces AWS's published IAM ListUsers example", () => {
    const input = {
      method: "GET",
      path: "/",
      query: "Action=ListUsers&Version=2010-05-08",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8", host: "iam.amazonaws.com", "x-amz-date": "20150830T123600Z" },
      signedHeaders: ["content-type", "host", "x-amz-date"],
      payload: "",
      amzDate: "20150830T123600Z",
      region: "us-east-1",
      service: "iam",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };
    assert.equal(createHash("sha256").update(canonicalRequest(input)).digest("hex"), "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
    assert.equal(signingKey(input.secretAccessKey, "20150830", "us-east-1", "iam").toString("hex"), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
    assert.equal(sigv4Signature(input), "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  });

  test("amzDate", () => assert.equal(amzDate(Date.parse("2015-08-30T12:36:00.123Z")), "20150830T123600Z"));

  test("XML lists with one, two and no members", async () => {
    const one = await parseXml("<ListUserTagsResponse><ListUserTagsResult><Tags><member><Key>a</Key><Value>1</Value></member></Tags></ListUserTagsResult></ListUserTagsResponse>");
    assert.deepEqual(members(result(one, "ListUserTags"), "Tags").map((m) => text(m, "Value")), ["1"]);
    const two = await parseXml("<R><Tags><member><Key>a</Key></member><member><Key>007</Key></member></Tags></R>");
    assert.deepEqual(members(two?.R, "Tags").map((m) => text(m, "Key")), ["a", "007"]);
    const none = await parseXml("<R><Tags/></R>");
    assert.deepEqual(members(none?.R, "Tags"), []);
    assert.equal(await parseXml("not xml"), undefined);
  });
});
