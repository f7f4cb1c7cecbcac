/**
 * Local credential sources of the AWS default chain, each issuing temporary credentials that it
 * registers with a FakeIam so the signature the IAM fake checks is made with them:
 * - the ECS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`, with
 *   `AWS_CONTAINER_AUTHORIZATION_TOKEN` checked),
 * - EC2 IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`): a PUT for a session token first, then the
 *   role name and the role's credentials, each GET refused without the token,
 * - STS `AssumeRoleWithWebIdentity` (Query API, unsigned) checking the web identity token.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { FakeApi, type FakeReply } from "../fake-api.ts";
import { esc, type FakeIam } from "./aws.ts";

export interface IssuedCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: string;
}

/** Fresh temporary credentials, registered with the IAM fake. */
export function issue(iam: FakeIam, prefix = "ASIA"): IssuedCredentials {
  const c: IssuedCredentials = {
    accessKeyId: `${prefix}${randomBytes(8).toString("hex").toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString("base64"),
    sessionToken: `IQoJ${randomBytes(48).toString("base64")}`,
    expiration: new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  iam.credentials.set(c.accessKeyId, { secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken });
  return c;
}

const json = (body: unknown, status = 200): FakeReply => ({ status, body });

/** ECS task role endpoint. */
export class FakeEcsCredentials {
  readonly api = new FakeApi();
  readonly issued: IssuedCredentials[] = [];
  constructor(iam: FakeIam, authorizationToken: string) {
    this.api.authenticate = (req) => (req.headers["authorization"] === authorizationToken ? undefined : json({ message: "unauthorized" }, 401));
    this.api.route("GET", /^\/v2\/credentials\/task$/, () => {
      const c = issue(iam);
      this.issued.push(c);
      return json({ AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, Token: c.sessionToken, Expiration: c.expiration, RoleArn: "arn:aws:iam::123456789012:role/ecs-task" });
    });
  }
}

/** EC2 instance metadata service, IMDSv2 only. */
export class FakeImds {
  readonly api = new FakeApi();
  readonly issued: IssuedCredentials[] = [];
  readonly tokens = new Set<string>();
  readonly role = "vigil-instance-role";
  constructor(iam: FakeIam) {
    this.api.authenticate = (req) => {
      if (req.method === "PUT") return undefined;
      // IMDSv2 only: every read needs a session token from the PUT.
      return this.tokens.has(req.headers["x-aws-ec2-metadata-token"] ?? "") ? undefined : { status: 401, body: "" };
    };
    this.api.route("PUT", /^\/latest\/api\/token$/, (req) => {
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (!(ttl >= 1 && ttl <= 21600)) return { status: 400, body: "" };
      const token = randomBytes(24).toString("base64url");
      this.tokens.add(token);
      return { status: 200, headers: { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) }, body: token };
    });
    this.api.route("GET", /^\/latest\/meta-data\/iam\/security-credentials\/?$/, () => ({ status: 200, body: this.role }));
    this.api.route("GET", /^\/latest\/meta-data\/iam\/security-credentials\/(?<role>[^/]+)$/, (req) => {
      if (req.params.role !== this.role) return { status: 404, body: "" };
      const c = issue(iam);
      this.issued.push(c);
      return {
        status: 200,
        body: JSON.stringify({ Code: "Success", LastUpdated: new Date().toISOString(), Type: "AWS-HMAC", AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, Token: c.sessionToken, Expiration: c.expiration }),
      };
    });
  }
}

/** STS AssumeRoleWithWebIdentity. */
export class FakeSts {
  readonly api = new FakeApi();
  readonly issued: IssuedCredentials[] = [];
  readonly assumed: { roleArn: string; sessionName: string }[] = [];
  constructor(iam: FakeIam, webIdentityToken: string) {
    this.api.route("POST", /^\/$/, (req) => {
      const p = new URLSearchParams(req.body);
      const err = (status: number, code: string, message: string): FakeReply => ({
        status,
        headers: { "content-type": "text/xml" },
        body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${esc(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      });
      if (p.get("Action") !== "AssumeRoleWithWebIdentity" || p.get("Version") !== "2011-06-15") return err(400, "InvalidAction", "Could not find operation");
      const roleArn = p.get("RoleArn");
      const sessionName = p.get("RoleSessionName");
      if (!roleArn || !sessionName) return err(400, "MissingParameter", "RoleArn and RoleSessionName are required");
      if (p.get("WebIdentityToken") !== webIdentityToken) return err(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider");
      const c = issue(iam);
      this.issued.push(c);
      this.assumed.push({ roleArn, sessionName });
      const role = roleArn.slice(roleArn.lastIndexOf("/") + 1);
      return {
        status: 200,
        headers: { "content-type": "text/xml" },
        body:
          `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
          `<SubjectFromWebIdentityToken>system:serviceaccount:vigil:vigil</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience>` +
          `<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/${esc(role)}/${esc(sessionName)}</Arn><AssumedRoleId>AROAEXAMPLE:${esc(sessionName)}</AssumedRoleId></AssumedRoleUser>` +
          `<Credentials><SessionToken>${esc(c.sessionToken)}</SessionToken><SecretAccessKey>${esc(c.secretAccessKey)}</SecretAccessKey><Expiration>${c.expiration}</Expiration><AccessKeyId>${c.accessKeyId}</AccessKeyId></Credentials>` +
          `<Provider>oidc.eks.example.amazonaws.com</Provider></AssumeRoleWithWebIdentityResult>` +
          `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
      };
    });
  }
}
