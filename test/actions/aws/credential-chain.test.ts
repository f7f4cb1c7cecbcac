/**
 * The default credential chain, end to end: each case runs chain-child.ts in a child process with an
 * environment made for one credential source (so the SDK reads nothing of this machine's), the
 * source is a local fake that issues temporary credentials, and the IAM fake only accepts requests
 * signed with exactly those credentials and their session token. Each case has its own fakes, so
 * the cases run side by side.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FakeApi } from "../../helpers/fake-api.ts";
import { FakeIam } from "../../helpers/fakes/aws.ts";
import { FakeEcsCredentials, FakeImds, FakeSts, issue } from "../../helpers/fakes/aws-metadata.ts";

const run = promisify(execFile);
const CHILD = new URL("./chain-child.ts", import.meta.url).pathname;
const ECS_TOKEN = "ecs-authorization-token-for-tests";
const WEB_IDENTITY = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dmlnaWw6dmlnaWwifQ.c2lnbmF0dXJl";
const dir = mkdtempSync(join(tmpdir(), "vigil-aws-chain-"));

interface Outcome {
  verified?: boolean;
  error?: string;
  code?: string;
  plan_has_token_header?: boolean;
}

const servers: { stop(): Promise<void> }[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function started<T extends { start(): Promise<string>; stop(): Promise<void> }>(server: T): Promise<T> {
  await server.start();
  servers.push(server);
  return server;
}

async function iamFake(): Promise<FakeIam> {
  const iam = await started(new FakeIam());
  iam.addRole("app");
  return iam;
}

/** Runs the child with only these variables (plus PATH), the shared config files pointed at nothing, IMDS off unless given. */
async function child(iam: FakeIam, env: Record<string, string>): Promise<Outcome[]> {
  const { stdout } = await run(process.execPath, [CHILD], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: dir,
      AWS_CONFIG_FILE: join(dir, "no-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "no-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
      VIGIL_TEST_IAM_ENDPOINT: iam.base,
      ...env,
    },
    timeout: 20_000,
  });
  return JSON.parse(stdout) as Outcome[];
}

function assertSignedWith(iam: FakeIam, outcomes: Outcome[], accessKeyId: string): void {
  assert.deepEqual(outcomes.slice(0, 2).map((o) => o.verified), [true, true], JSON.stringify(outcomes));
  assert.deepEqual(iam.actions(), ["PutRolePolicy", "GetRolePolicy", "PutRolePolicy", "GetRolePolicy"]);
  assert.equal(iam.api.requests.length, 4, "a request was refused");
  assert.ok(iam.calls.every((c) => c.accessKeyId === accessKeyId), "every IAM call is signed with the chain's credentials");
}

describe("aws credential chain", { concurrency: true }, () => {
  test("environment variables (with a session token)", async () => {
    const iam = await iamFake();
    const c = issue(iam);
    const out = await child(iam, { AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_SESSION_TOKEN: c.sessionToken });
    assertSignedWith(iam, out, c.accessKeyId);
    assert.equal(out[2]?.plan_has_token_header, true, "plans show the (masked) security token header once the chain has answered");
    assert.ok(iam.api.requests.every((r) => r.headers["x-amz-security-token"] === c.sessionToken));
  });

  test("a shared credentials file profile named by the provider's profile key", async () => {
    const iam = await iamFake();
    const c = issue(iam, "AKIA");
    iam.credentials.set(c.accessKeyId, { secretAccessKey: c.secretAccessKey });
    const file = join(dir, "credentials-profile");
    writeFileSync(file, `[default]\naws_access_key_id = AKIAWRONGWRONGWRONG1\naws_secret_access_key = wrong\n\n[vigil]\naws_access_key_id = ${c.accessKeyId}\naws_secret_access_key = ${c.secretAccessKey}\n`);
    const out = await child(iam, { AWS_SHARED_CREDENTIALS_FILE: file, VIGIL_TEST_PROFILE: "vigil" });
    assertSignedWith(iam, out, c.accessKeyId);
    assert.ok(iam.api.requests.every((r) => r.headers["x-amz-security-token"] === undefined));
  });

  test("the ECS task role endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI), fetched once and cached", async () => {
    const iam = await iamFake();
    const ecs = new FakeEcsCredentials(iam, ECS_TOKEN);
    await started(ecs.api);
    const out = await child(iam, { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${ecs.api.base}/v2/credentials/task`, AWS_CONTAINER_AUTHORIZATION_TOKEN: ECS_TOKEN });
    assert.equal(ecs.issued.length, 1, "the chain caches the task role's credentials");
    assertSignedWith(iam, out, ecs.issued[0]!.accessKeyId);
  });

  test("EC2 IMDSv2: the token PUT first, then the role's credentials", async () => {
    const iam = await iamFake();
    const imds = new FakeImds(iam);
    await started(imds.api);
    const out = await child(iam, { AWS_EC2_METADATA_DISABLED: "false", AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.api.base, AWS_EC2_METADATA_V1_DISABLED: "true" });
    assert.equal(imds.issued.length, 1);
    assertSignedWith(iam, out, imds.issued[0]!.accessKeyId);
    const first = imds.api.requests[0]!;
    assert.equal(first.method, "PUT");
    assert.equal(first.path, "/latest/api/token");
    assert.ok(imds.api.handled.filter((r) => r.method === "GET").every((r) => imds.tokens.has(r.headers["x-aws-ec2-metadata-token"] ?? "")));
  });

  test("web identity (EKS IRSA) through the provider's sts_endpoint", async () => {
    const iam = await iamFake();
    const sts = new FakeSts(iam, WEB_IDENTITY);
    await started(sts.api);
    const tokenFile = join(dir, "web-identity-token");
    writeFileSync(tokenFile, WEB_IDENTITY);
    const out = await child(iam, {
      AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
      AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/vigil-irsa",
      AWS_ROLE_SESSION_NAME: "vigil-test",
      VIGIL_TEST_STS_ENDPOINT: sts.api.base,
    });
    assert.equal(sts.issued.length, 1);
    assert.deepEqual(sts.assumed, [{ roleArn: "arn:aws:iam::123456789012:role/vigil-irsa", sessionName: "vigil-test" }]);
    assertSignedWith(iam, out, sts.issued[0]!.accessKeyId);
  });

  test("web identity through AWS_ENDPOINT_URL_STS", async () => {
    const iam = await iamFake();
    const sts = new FakeSts(iam, WEB_IDENTITY);
    await started(sts.api);
    const tokenFile = join(dir, "web-identity-token-2");
    writeFileSync(tokenFile, WEB_IDENTITY);
    const out = await child(iam, { AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/vigil-irsa", AWS_ENDPOINT_URL_STS: sts.api.base });
    assert.equal(sts.issued.length, 1);
    assertSignedWith(iam, out, sts.issued[0]!.accessKeyId);
  });

  test("no credentials anywhere is a transient error that names the chain and sends nothing", async () => {
    const iam = await iamFake();
    const out = await child(iam, {});
    assert.equal(out.length, 1);
    assert.equal(out[0]!.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.match(out[0]!.error ?? "", /no credentials from the default chain/);
    assert.equal(iam.api.requests.length, 0);
  });

  test("a credential source that hangs is cut off by the provider's timeout (transient)", async () => {
    const iam = await iamFake();
    // A container credentials endpoint that never answers.
    const hung = await started(new FakeApi().route("GET", /^\/hang$/, () => new Promise(() => {})));
    const out = await child(iam, { AWS_CONTAINER_CREDENTIALS_FULL_URI: `${hung.base}/hang`, VIGIL_TEST_TIMEOUT: "300ms" });
    assert.equal(out[0]!.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.match(out[0]!.error ?? "", /aborted or timed out/);
    assert.equal(iam.api.requests.length, 0);
  });
});
