/**
 * A local IAM Query API. It verifies AWS Signature Version 4 itself (canonical request, string to
 * sign and signing key derived here from the AWS SigV4 documentation, with node:crypto only), checks
 * the clock skew, `Action`/`Version` and each action's parameters, keeps roles, users, inline and
 * attached policies, access keys, tags and permissions boundaries, and answers with IAM's XML shapes
 * and error codes. Faults: 400 Throttling, 429 with Retry-After, 503, 403 AccessDenied per action.
 */
import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const ACCOUNT = "123456789012";
export const IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/";

/** Credentials the fake knows. Temporary ones carry a session token that must come along. */
export interface FakeCredential {
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export const TEST_ACCESS_KEY_ID = "AKIAVIGILTEST0000001";
export const TEST_SECRET_ACCESS_KEY = "vigil/Test+Secret0123456789abcdefGHIJKLMN";

// ---------------------------------------------------------------------------------------------
// SigV4, from the documentation (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html)

/** RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ as %XX with upper-case hex. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

const hex = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");
const hmac = (key: string | Buffer, data: string): Buffer => createHmac("sha256", key).update(data, "utf8").digest();

export interface SigV4Input {
  readonly method: string;
  /** Path as sent (already URI-encoded once). */
  readonly path: string;
  /** Raw query string without `?`. */
  readonly query: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly signedHeaders: readonly string[];
  readonly payload: string | Buffer;
  /** `YYYYMMDDTHHMMSSZ`. */
  readonly amzDate: string;
  readonly region: string;
  readonly service: string;
  readonly secretAccessKey: string;
}

export function canonicalRequest(i: SigV4Input): string {
  // Services other than S3 encode each path segment a second time.
  const uri = i.path === "" ? "/" : i.path.split("/").map(uriEncode).join("/");
  const pairs = i.query === "" ? [] : i.query.split("&").map((p) => {
    const eq = p.indexOf("=");
    const k = decodeURIComponent((eq < 0 ? p : p.slice(0, eq)).replace(/\+/g, " "));
    const v = eq < 0 ? "" : decodeURIComponent(p.slice(eq + 1).replace(/\+/g, " "));
    return [uriEncode(k), uriEncode(v)] as const;
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const query = pairs.map(([k, v]) => `${k}=${v}`).join("&");
  const headers = i.signedHeaders.map((h) => `${h}:${(i.headers[h] ?? "").trim().replace(/\s+/g, " ")}\n`).join("");
  return [i.method.toUpperCase(), uri, query, headers, i.signedHeaders.join(";"), hex(i.payload)].join("\n");
}

export function stringToSign(i: SigV4Input): string {
  const scope = `${i.amzDate.slice(0, 8)}/${i.region}/${i.service}/aws4_request`;
  return ["AWS4-HMAC-SHA256", i.amzDate, scope, hex(canonicalRequest(i))].join("\n");
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
}

export function sigv4Signature(i: SigV4Input): string {
  return createHmac("sha256", signingKey(i.secretAccessKey, i.amzDate.slice(0, 8), i.region, i.service)).update(stringToSign(i), "utf8").digest("hex");
}

// ---------------------------------------------------------------------------------------------
// XML

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

const XML_HEADERS = { "content-type": "text/xml" };

/** An IAM error answer. */
export function errorReply(status: number, code: string, message: string, headers: Record<string, string> = {}): FakeReply {
  const type = status >= 500 ? "Receiver" : "Sender";
  return {
    status,
    headers: { ...XML_HEADERS, ...headers },
    body: `<ErrorResponse xmlns="${IAM_XMLNS}">\n  <Error>\n    <Type>${type}</Type>\n    <Code>${esc(code)}</Code>\n    <Message>${esc(message)}</Message>\n  </Error>\n  <RequestId>${randomUUID()}</RequestId>\n</ErrorResponse>\n`,
  };
}

function okReply(action: string, result?: string): FakeReply {
  const inner = result === undefined ? "" : `\n  <${action}Result>${result}</${action}Result>`;
  return { status: 200, headers: XML_HEADERS, body: `<${action}Response xmlns="${IAM_XMLNS}">${inner}\n  <ResponseMetadata>\n    <RequestId>${randomUUID()}</RequestId>\n  </ResponseMetadata>\n</${action}Response>\n` };
}

const el = (name: string, value: string): string => `<${name}>${esc(value)}</${name}>`;
const list = (name: string, items: readonly string[]): string => (items.length === 0 ? `<${name}/>` : `<${name}>${items.map((i) => `<member>${i}</member>`).join("")}</${name}>`);

// ---------------------------------------------------------------------------------------------
// State

export interface FakeKey {
  id: string;
  status: "Active" | "Inactive";
  created: string;
}

export interface FakePrincipal {
  readonly name: string;
  readonly id: string;
  readonly path: string;
  readonly created: string;
  readonly tags: Map<string, string>;
  readonly attached: Set<string>;
  boundary?: string;
}

export interface FakeRole extends FakePrincipal {
  readonly inline: Map<string, string>;
  readonly serviceLinked: boolean;
}

export interface FakeUser extends FakePrincipal {
  readonly keys: FakeKey[];
}

/** One call the fake accepted (signature and parameters valid), in order. */
export interface IamCall {
  readonly action: string;
  readonly params: Record<string, string>;
  /** The access key id that signed it. */
  readonly accessKeyId: string;
}

const NAME_RE = /^[\w+=,.@-]+$/;
const TAG_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

type Spec = { readonly required: readonly string[]; readonly optional?: readonly string[]; readonly lists?: readonly RegExp[] };
const TAGS = [/^Tags\.member\.\d+\.(Key|Value)$/];
const TAG_KEYS = [/^TagKeys\.member\.\d+$/];
const PAGE = ["Marker", "MaxItems"];

/** The parameters of each action this fake serves, as the IAM API reference lists them. */
export const SPECS: Readonly<Record<string, Spec>> = {
  PutRolePolicy: { required: ["RoleName", "PolicyName", "PolicyDocument"] },
  GetRolePolicy: { required: ["RoleName", "PolicyName"] },
  DeleteRolePolicy: { required: ["RoleName", "PolicyName"] },
  ListAccessKeys: { required: [], optional: ["UserName", ...PAGE] },
  UpdateAccessKey: { required: ["AccessKeyId", "Status"], optional: ["UserName"] },
  ListUserTags: { required: ["UserName"], optional: PAGE },
  ListRoleTags: { required: ["RoleName"], optional: PAGE },
  TagUser: { required: ["UserName"], lists: TAGS },
  TagRole: { required: ["RoleName"], lists: TAGS },
  UntagUser: { required: ["UserName"], lists: TAG_KEYS },
  UntagRole: { required: ["RoleName"], lists: TAG_KEYS },
  ListAttachedRolePolicies: { required: ["RoleName"], optional: ["PathPrefix", ...PAGE] },
  ListAttachedUserPolicies: { required: ["UserName"], optional: ["PathPrefix", ...PAGE] },
  AttachRolePolicy: { required: ["RoleName", "PolicyArn"] },
  AttachUserPolicy: { required: ["UserName", "PolicyArn"] },
  DetachRolePolicy: { required: ["RoleName", "PolicyArn"] },
  DetachUserPolicy: { required: ["UserName", "PolicyArn"] },
  GetRole: { required: ["RoleName"] },
  GetUser: { required: [], optional: ["UserName"] },
  PutRolePermissionsBoundary: { required: ["RoleName", "PermissionsBoundary"] },
  PutUserPermissionsBoundary: { required: ["UserName", "PermissionsBoundary"] },
  DeleteRolePermissionsBoundary: { required: ["RoleName"] },
  DeleteUserPermissionsBoundary: { required: ["UserName"] },
};

class Reply extends Error {
  readonly reply: FakeReply;
  constructor(reply: FakeReply) {
    super("reply");
    this.reply = reply;
  }
}
const fail = (status: number, code: string, message: string): never => {
  throw new Reply(errorReply(status, code, message));
};

const CREATED = "2025-01-15T08:00:00Z";

export class FakeIam {
  readonly api = new FakeApi();
  /** Access key id → secret (and session token for temporary credentials). */
  readonly credentials = new Map<string, FakeCredential>([[TEST_ACCESS_KEY_ID, { secretAccessKey: TEST_SECRET_ACCESS_KEY }]]);
  readonly roles = new Map<string, FakeRole>();
  readonly users = new Map<string, FakeUser>();
  /** Managed policies that exist (AWS managed ones plus any the test adds). */
  readonly policies = new Set<string>(["arn:aws:iam::aws:policy/ReadOnlyAccess", "arn:aws:iam::aws:policy/AWSDenyAll", "arn:aws:iam::aws:policy/AdministratorAccess"]);
  /** Accepted calls, in order. */
  readonly calls: IamCall[] = [];
  /** Region expected in the credential scope. */
  region = "us-east-1";
  /** Largest accepted distance between X-Amz-Date and the fake's clock. AWS allows 5 minutes. */
  maxSkewMs = 5 * 60_000;
  now: () => number = () => Date.now();
  /** Actions (`iam:UpdateAccessKey`) the caller is not allowed: 403 AccessDenied. */
  readonly denied = new Set<string>();
  readonly #faults: { action?: string; reply: FakeReply }[] = [];

  constructor() {
    this.api.authenticate = (req) => this.#authenticate(req);
    this.api.route("POST", /^\/$/, (req) => this.#handle(req));
  }

  start(): Promise<string> {
    return this.api.start();
  }
  stop(): Promise<void> {
    return this.api.stop();
  }
  get base(): string {
    return this.api.base;
  }

  addRole(name: string, opts: { path?: string; serviceLinked?: boolean; boundary?: string; attached?: string[]; tags?: Record<string, string> } = {}): FakeRole {
    const role: FakeRole = {
      name,
      id: `AROA${createHash("sha1").update(name).digest("hex").slice(0, 17).toUpperCase()}`,
      path: opts.path ?? (opts.serviceLinked ? "/aws-service-role/example.amazonaws.com/" : "/"),
      created: CREATED,
      tags: new Map(Object.entries(opts.tags ?? {})),
      attached: new Set(opts.attached ?? []),
      inline: new Map(),
      serviceLinked: opts.serviceLinked ?? false,
      ...(opts.boundary ? { boundary: opts.boundary } : {}),
    };
    this.roles.set(name, role);
    return role;
  }

  addUser(name: string, opts: { keys?: { id: string; status: "Active" | "Inactive" }[]; boundary?: string; attached?: string[]; tags?: Record<string, string> } = {}): FakeUser {
    const user: FakeUser = {
      name,
      id: `AIDA${createHash("sha1").update(name).digest("hex").slice(0, 17).toUpperCase()}`,
      path: "/",
      created: CREATED,
      tags: new Map(Object.entries(opts.tags ?? {})),
      attached: new Set(opts.attached ?? []),
      keys: (opts.keys ?? []).map((k) => ({ ...k, created: CREATED })),
      ...(opts.boundary ? { boundary: opts.boundary } : {}),
    };
    this.users.set(name, user);
    return user;
  }

  /** The next `count` accepted calls (of `action`, or any) get `reply` instead. */
  fault(reply: FakeReply, opts: { action?: string; count?: number } = {}): this {
    for (let i = 0; i < (opts.count ?? 1); i++) this.#faults.push({ ...(opts.action ? { action: opts.action } : {}), reply });
    return this;
  }
  throttle(opts: { action?: string; count?: number } = {}): this {
    return this.fault(errorReply(400, "Throttling", "Rate exceeded"), opts);
  }
  tooManyRequests(retryAfterSeconds: number, opts: { action?: string; count?: number } = {}): this {
    return this.fault(errorReply(429, "TooManyRequestsException", "Too Many Requests", { "retry-after": String(retryAfterSeconds) }), opts);
  }
  unavailable(opts: { action?: string; count?: number } = {}): this {
    return this.fault(errorReply(503, "ServiceUnavailable", "Service is unable to handle request."), opts);
  }

  /** Accepted calls as `Action` names. */
  actions(): string[] {
    return this.calls.map((c) => c.action);
  }

  clear(): void {
    this.calls.length = 0;
    this.api.clear();
  }

  // -------------------------------------------------------------------------------------------

  #authenticate(req: FakeRequest): FakeReply | undefined {
    const auth = req.headers["authorization"];
    if (!auth) return errorReply(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
    const m = /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) return errorReply(400, "IncompleteSignature", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' (AWS4-HMAC-SHA256).");
    const [, akid, day, region, service, signed, signature] = m as unknown as [string, string, string, string, string, string, string];
    const cred = this.credentials.get(akid);
    if (!cred) return errorReply(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
    const token = req.headers["x-amz-security-token"];
    if (cred.sessionToken !== undefined ? token !== cred.sessionToken : token !== undefined) {
      return errorReply(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
    }
    const amz = req.headers["x-amz-date"];
    if (!amz || !/^\d{8}T\d{6}Z$/.test(amz)) return errorReply(400, "IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
    const at = Date.UTC(+amz.slice(0, 4), +amz.slice(4, 6) - 1, +amz.slice(6, 8), +amz.slice(9, 11), +amz.slice(11, 13), +amz.slice(13, 15));
    const now = this.now();
    if (Math.abs(now - at) > this.maxSkewMs) {
      const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
      return errorReply(403, "SignatureDoesNotMatch", `Signature expired: ${amz} is now earlier than ${stamp(now - this.maxSkewMs)} (${stamp(now)} - 5 min.)`);
    }
    if (day !== amz.slice(0, 8)) return errorReply(403, "SignatureDoesNotMatch", `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${day}' != '${amz.slice(0, 8)}'`);
    if (region !== this.region) return errorReply(403, "SignatureDoesNotMatch", `Credential should be scoped to a valid region, not '${region}'.`);
    if (service !== "iam") return errorReply(403, "SignatureDoesNotMatch", `Credential should be scoped to correct service: 'iam'.`);
    const signedHeaders = signed.split(";");
    const sorted = [...signedHeaders].sort();
    if (signedHeaders.join(";") !== sorted.join(";")) return errorReply(403, "SignatureDoesNotMatch", "SignedHeaders must be sorted.");
    for (const h of ["host", "x-amz-date", ...(token !== undefined ? ["x-amz-security-token"] : [])]) {
      if (!signedHeaders.includes(h)) return errorReply(403, "SignatureDoesNotMatch", `'${h}' must be a signed header.`);
    }
    const q = req.url.indexOf("?");
    const expected = sigv4Signature({
      method: req.method,
      path: req.path,
      query: q < 0 ? "" : req.url.slice(q + 1),
      headers: req.headers,
      signedHeaders,
      payload: req.body,
      amzDate: amz,
      region,
      service,
      secretAccessKey: cred.secretAccessKey,
    });
    if (!timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
      return errorReply(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
      );
    }
    return undefined;
  }

  #handle(req: FakeRequest): FakeReply {
    try {
      if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers["content-type"] ?? "")) fail(400, "MissingAction", "Could not find operation: the body must be application/x-www-form-urlencoded");
      const form = new URLSearchParams(req.body);
      const params: Record<string, string> = {};
      for (const [k, v] of form) {
        if (Object.hasOwn(params, k)) fail(400, "MalformedQueryString", `parameter ${k} given twice`);
        params[k] = v;
      }
      const action = params.Action;
      if (!action) fail(400, "MissingAction", "Could not find operation");
      const spec = SPECS[action!];
      if (!spec) fail(400, "InvalidAction", `Could not find operation ${action} for version 2010-05-08`);
      if (params.Version === undefined) fail(400, "MissingParameter", "The request must contain the parameter Version");
      if (params.Version !== "2010-05-08") fail(400, "InvalidParameterValue", `Version ${params.Version} is not supported; use 2010-05-08`);
      for (const p of spec!.required) if (!params[p]) fail(400, "MissingParameter", `The request must contain the parameter ${p}`);
      const known = new Set(["Action", "Version", ...spec!.required, ...(spec!.optional ?? [])]);
      for (const k of Object.keys(params)) {
        if (!known.has(k) && !(spec!.lists ?? []).some((re) => re.test(k))) fail(400, "ValidationError", `1 validation error detected: unexpected parameter '${k}' for ${action}`);
      }
      for (const k of ["RoleName", "UserName"]) {
        if (params[k] !== undefined && (!NAME_RE.test(params[k]!) || params[k]!.length > 128)) fail(400, "ValidationError", `1 validation error detected: Value '${params[k]}' at '${k[0]!.toLowerCase()}${k.slice(1)}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+`);
      }
      if (params.MaxItems !== undefined && !(Number(params.MaxItems) >= 1 && Number(params.MaxItems) <= 1000)) fail(400, "ValidationError", "MaxItems must be between 1 and 1000");
      const akid = /Credential=([^/]+)\//.exec(req.headers["authorization"] ?? "")?.[1] ?? "";
      if (this.denied.has(`iam:${action}`)) {
        fail(403, "AccessDenied", `User: arn:aws:iam::${ACCOUNT}:user/vigil is not authorized to perform: iam:${action} on resource: ${params.RoleName ?? params.UserName ?? "*"} because no identity-based policy allows the iam:${action} action`);
      }
      const i = this.#faults.findIndex((f) => !f.action || f.action === action);
      if (i >= 0) {
        const [f] = this.#faults.splice(i, 1);
        return f!.reply;
      }
      const reply = this.#dispatch(action!, params);
      this.calls.push({ action: action!, params, accessKeyId: akid });
      return reply;
    } catch (err) {
      if (err instanceof Reply) return err.reply;
      throw err;
    }
  }

  #role(name: string): FakeRole {
    const r = this.roles.get(name);
    if (!r) fail(404, "NoSuchEntity", `The role with name ${name} cannot be found.`);
    return r!;
  }

  #user(name: string | undefined): FakeUser {
    if (name === undefined) fail(400, "ValidationError", "this fake needs UserName (the caller is not an IAM user here)");
    const u = this.users.get(name!);
    if (!u) fail(404, "NoSuchEntity", `The user with name ${name} cannot be found.`);
    return u!;
  }

  #principal(kind: "Role" | "User", p: Record<string, string>): FakePrincipal {
    return kind === "Role" ? this.#role(p.RoleName!) : this.#user(p.UserName);
  }

  #policy(arn: string): string {
    if (!/^arn:aws[a-z-]*:iam::(aws|\d{12}):policy\//.test(arn)) fail(400, "InvalidInput", `ARN ${arn} is not valid.`);
    if (!this.policies.has(arn)) fail(404, "NoSuchEntity", `Policy ${arn} does not exist or is not attachable.`);
    return arn;
  }

  #unmodifiable(p: FakePrincipal): void {
    if ((p as FakeRole).serviceLinked) fail(400, "UnmodifiableEntity", `Cannot perform the operation on the protected role '${p.name}' - this role is only modifiable by AWS`);
  }

  #principalXml(kind: "Role" | "User", p: FakePrincipal): string {
    const arn = `arn:aws:iam::${ACCOUNT}:${kind.toLowerCase()}${p.path}${p.name}`;
    const boundary = p.boundary
      ? `<PermissionsBoundary>${el("PermissionsBoundaryType", "PermissionsBoundaryPolicy")}${el("PermissionsBoundaryArn", p.boundary)}</PermissionsBoundary>`
      : "";
    const tags = p.tags.size ? list("Tags", [...p.tags].map(([k, v]) => el("Key", k) + el("Value", v))) : "";
    const extra = kind === "Role" ? el("AssumeRolePolicyDocument", uriEncode(JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }] }))) + el("MaxSessionDuration", "3600") : "";
    return `<${kind}>${el("Path", p.path)}${el(`${kind}Name`, p.name)}${el(`${kind}Id`, p.id)}${el("Arn", arn)}${el("CreateDate", p.created)}${extra}${boundary}${tags}</${kind}>`;
  }

  #tagsXml(tags: Map<string, string>): string {
    return list("Tags", [...tags].map(([k, v]) => el("Key", k) + el("Value", v))) + el("IsTruncated", "false");
  }

  #setTags(p: FakePrincipal, params: Record<string, string>): void {
    if (params["Tags.member.1.Key"] === undefined) fail(400, "MissingParameter", "The request must contain the parameter Tags");
    const next = new Map(p.tags);
    for (let n = 1; params[`Tags.member.${n}.Key`] !== undefined; n++) {
      const key = params[`Tags.member.${n}.Key`]!;
      const value = params[`Tags.member.${n}.Value`];
      if (value === undefined) fail(400, "MissingParameter", `The request must contain the parameter Tags.member.${n}.Value`);
      if (key.length < 1 || key.length > 128 || !TAG_RE.test(key)) fail(400, "InvalidInput", `Tag key ${key} is not valid.`);
      if (key.toLowerCase().startsWith("aws:")) fail(400, "InvalidInput", "Tag keys starting with aws: are reserved.");
      if (value!.length > 256 || !TAG_RE.test(value!)) fail(400, "InvalidInput", `Tag value ${value} is not valid.`);
      next.set(key, value!);
    }
    if (next.size > 50) fail(409, "LimitExceeded", "Cannot exceed quota for TagsPerUser: 50");
    p.tags.clear();
    for (const [k, v] of next) p.tags.set(k, v);
  }

  #dispatch(action: string, p: Record<string, string>): FakeReply {
    const kind = /Role/.test(action) ? "Role" : "User";
    switch (action) {
      case "PutRolePolicy": {
        const role = this.#role(p.RoleName!);
        this.#unmodifiable(role);
        if (!/^[\w+=,.@-]{1,128}$/.test(p.PolicyName!)) fail(400, "ValidationError", "PolicyName is not valid");
        try {
          const doc = JSON.parse(p.PolicyDocument!) as { Version?: unknown; Statement?: unknown };
          if (doc.Version !== "2012-10-17" || doc.Statement === undefined) throw new Error("shape");
        } catch {
          fail(400, "MalformedPolicyDocument", "Syntax errors in policy.");
        }
        role.inline.set(p.PolicyName!, p.PolicyDocument!);
        return okReply(action);
      }
      case "GetRolePolicy": {
        const role = this.#role(p.RoleName!);
        const doc = role.inline.get(p.PolicyName!);
        if (doc === undefined) fail(404, "NoSuchEntity", `The role policy with name ${p.PolicyName} cannot be found.`);
        return okReply(action, el("RoleName", role.name) + el("PolicyName", p.PolicyName!) + el("PolicyDocument", uriEncode(doc!)));
      }
      case "DeleteRolePolicy": {
        const role = this.#role(p.RoleName!);
        this.#unmodifiable(role);
        if (!role.inline.delete(p.PolicyName!)) fail(404, "NoSuchEntity", `The role policy with name ${p.PolicyName} cannot be found.`);
        return okReply(action);
      }
      case "ListAccessKeys": {
        const user = this.#user(p.UserName);
        const items = user.keys.map((k) => el("UserName", user.name) + el("AccessKeyId", k.id) + el("Status", k.status) + el("CreateDate", k.created));
        return okReply(action, list("AccessKeyMetadata", items) + el("IsTruncated", "false"));
      }
      case "UpdateAccessKey": {
        const user = this.#user(p.UserName);
        if (p.Status !== "Active" && p.Status !== "Inactive") fail(400, "ValidationError", `1 validation error detected: Value '${p.Status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]`);
        const key = user.keys.find((k) => k.id === p.AccessKeyId);
        if (!key) fail(404, "NoSuchEntity", `The Access Key with id ${p.AccessKeyId} cannot be found.`);
        key!.status = p.Status as "Active" | "Inactive";
        return okReply(action);
      }
      case "ListUserTags":
      case "ListRoleTags":
        return okReply(action, this.#tagsXml(this.#principal(kind, p).tags));
      case "TagUser":
      case "TagRole":
        this.#setTags(this.#principal(kind, p), p);
        return okReply(action);
      case "UntagUser":
      case "UntagRole": {
        const principal = this.#principal(kind, p);
        const keys = Object.entries(p).filter(([k]) => /^TagKeys\.member\.\d+$/.test(k)).map(([, v]) => v);
        if (keys.length === 0) fail(400, "MissingParameter", "The request must contain the parameter TagKeys");
        for (const k of keys) principal.tags.delete(k);
        return okReply(action);
      }
      case "ListAttachedRolePolicies":
      case "ListAttachedUserPolicies": {
        const principal = this.#principal(kind, p);
        const items = [...principal.attached].map((arn) => el("PolicyName", arn.slice(arn.lastIndexOf("/") + 1)) + el("PolicyArn", arn));
        return okReply(action, list("AttachedPolicies", items) + el("IsTruncated", "false"));
      }
      case "AttachRolePolicy":
      case "AttachUserPolicy": {
        const principal = this.#principal(kind, p);
        this.#unmodifiable(principal);
        const arn = this.#policy(p.PolicyArn!);
        if (!principal.attached.has(arn) && principal.attached.size >= 20) fail(409, "LimitExceeded", "Cannot exceed quota for PoliciesPerRole: 20");
        principal.attached.add(arn);
        return okReply(action);
      }
      case "DetachRolePolicy":
      case "DetachUserPolicy": {
        const principal = this.#principal(kind, p);
        this.#unmodifiable(principal);
        if (!principal.attached.delete(p.PolicyArn!)) fail(404, "NoSuchEntity", `Policy ${p.PolicyArn} was not found.`);
        return okReply(action);
      }
      case "GetRole":
      case "GetUser":
        return okReply(action, this.#principalXml(kind, this.#principal(kind, p)));
      case "PutRolePermissionsBoundary":
      case "PutUserPermissionsBoundary": {
        const principal = this.#principal(kind, p);
        this.#unmodifiable(principal);
        principal.boundary = this.#policy(p.PermissionsBoundary!);
        return okReply(action);
      }
      case "DeleteRolePermissionsBoundary":
      case "DeleteUserPermissionsBoundary": {
        const principal = this.#principal(kind, p);
        this.#unmodifiable(principal);
        if (principal.boundary === undefined) fail(404, "NoSuchEntity", `The ${kind.toLowerCase()} with name ${principal.name} has no permissions boundary.`);
        delete principal.boundary;
        return okReply(action);
      }
    }
    return fail(400, "InvalidAction", `Could not find operation ${action}`);
  }
}

/** The form parameters of a recorded request, as an object (how plans show IAM bodies). */
export function formOf(req: { body: string }): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(req.body));
}
