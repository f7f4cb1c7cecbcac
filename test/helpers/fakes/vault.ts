/**
 * A local Vault server for the PKI revoke and read-certificate endpoints, holding Vault's contract:
 * - `X-Vault-Token` checked against tokens with ACL-policy capabilities per path (`pki/revoke`:
 *   update, `pki/cert/*`: read); anything else → 403 `{"errors":["permission denied"]}`.
 * - The mount exists only in its namespace: when the fake has one, requests without that
 *   `X-Vault-Namespace` find no handler (404), as Vault answers for an unknown mount.
 * - `POST /v1/<mount>/revoke` `{"serial_number": "…"}`: serials are looked up the way Vault stores
 *   them (lower-case, colon- or hyphen-separated hex bytes), so any other form is not found →
 *   400 `certificate with serial … not found or was already revoked`; an already revoked one →
 *   200 with its original revocation_time; an expired one → 200 with a warning and no revocation.
 * - `GET /v1/<mount>/cert/<serial>` → `data.certificate` (PEM of the certificate's bytes) and
 *   `data.revocation_time` (0 until revoked), 404 when unknown.
 * - `sealed` → 503 `{"errors":["Vault is sealed"]}`; rate-limit quotas via `vaultRateLimited()`.
 */
import { createHash } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export interface FakeCertificate {
  readonly serial: string;
  readonly notAfter: number;
  /** The certificate's bytes as `GET cert/<serial>` returns them (PEM-wrapped); not a parseable certificate. */
  readonly der: Buffer;
  revocation_time: number;
}

/** An ACL policy: path (a trailing `*` is a prefix glob) → capabilities. */
export type VaultPolicy = Readonly<Record<string, readonly string[]>>;

const VAULT_SERIAL = /^[0-9a-f]{2}(?::[0-9a-f]{2})*$/;

function envelope(data: unknown, warnings: string[] | null = null): FakeReply {
  return {
    status: 200,
    body: { request_id: "9f2b3c4d-0000-4000-8000-000000000001", lease_id: "", renewable: false, lease_duration: 0, data, wrap_info: null, warnings, auth: null },
  };
}

const errors = (status: number, ...messages: string[]): FakeReply => ({ status, body: { errors: messages } });

export class FakeVault {
  readonly api = new FakeApi();
  readonly tokens = new Map<string, VaultPolicy>();
  readonly certificates = new Map<string, FakeCertificate>();
  readonly mount: string;
  readonly namespace: string | undefined;
  sealed = false;
  /** Vault's clock, in seconds, for revocation_time. */
  now = () => Math.floor(Date.now() / 1000);

  constructor(options: { mount?: string; namespace?: string } = {}) {
    this.mount = options.mount ?? "pki";
    this.namespace = options.namespace;
    this.api.authenticate = (req) => {
      if (this.sealed) return errors(503, "Vault is sealed");
      const token = req.headers["x-vault-token"];
      if (token === undefined || !this.tokens.has(token)) return errors(403, "permission denied");
      return undefined;
    };
    const mount = this.mount.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    this.api.route("POST", new RegExp(`^/v1/(?<mount>${mount})/revoke$`), (req) => this.#inNamespace(req, "revoke", () => this.#revoke(req)));
    this.api.route("PUT", new RegExp(`^/v1/(?<mount>${mount})/revoke$`), (req) => this.#inNamespace(req, "revoke", () => this.#revoke(req)));
    this.api.route("GET", new RegExp(`^/v1/(?<mount>${mount})/cert/(?<serial>[^/]+)$`), (req) => this.#inNamespace(req, `cert/${req.params["serial"]}`, () => this.#read(req)));
  }

  start(): Promise<string> {
    return this.api.start();
  }

  stop(): Promise<void> {
    return this.api.stop();
  }

  /** Issues a certificate: `serial` in Vault's colon form. */
  issue(serial: string, options: { expired?: boolean } = {}): FakeCertificate {
    const cert = { serial, notAfter: options.expired ? Date.now() - 86_400_000 : Date.now() + 30 * 86_400_000, der: Buffer.from(`fake certificate ${serial}`), revocation_time: 0 };
    this.certificates.set(serial, cert);
    return cert;
  }

  /** Vault's lookup key: lower case, hyphens read as colons. Undefined when that is not a serial Vault could have stored. */
  static storedForm(serial: string): string | undefined {
    const s = serial.toLowerCase().replaceAll("-", ":");
    return VAULT_SERIAL.test(s) ? s : undefined;
  }

  #inNamespace(req: FakeRequest, rest: string, fn: () => FakeReply): FakeReply {
    const ns = (req.headers["x-vault-namespace"] ?? "").replace(/^\/+|\/+$/g, "") || undefined;
    if (ns !== this.namespace) return errors(404, `no handler for route "${this.mount}/${rest}". route entry not found.`);
    return fn();
  }

  #allowed(req: FakeRequest, path: string, capability: string): boolean {
    const policy = this.tokens.get(req.headers["x-vault-token"] ?? "") ?? {};
    return Object.entries(policy).some(([p, caps]) => (p.endsWith("*") ? path.startsWith(p.slice(0, -1)) : p === path) && (caps.includes(capability) || caps.includes("sudo") || caps.includes("root")));
  }

  #revoke(req: FakeRequest): FakeReply {
    if (!this.#allowed(req, `${this.mount}/revoke`, "update")) return errors(403, "permission denied");
    let body: unknown;
    try {
      body = req.body === "" ? {} : JSON.parse(req.body);
    } catch {
      return errors(400, "error parsing JSON");
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) return errors(400, "error parsing JSON");
    const b = body as Record<string, unknown>;
    const haveSerial = b["serial_number"] !== undefined;
    const haveCert = b["certificate"] !== undefined;
    if (!haveSerial && !haveCert) return errors(400, "The serial number or certificate to revoke must be provided.");
    if (haveSerial && haveCert) return errors(400, "Must provide either the certificate or the serial to revoke; not both.");
    if (haveCert) return errors(400, "this fake only revokes by serial_number");
    const serial = b["serial_number"];
    if (typeof serial !== "string") return errors(400, `error converting input ${JSON.stringify(serial)} for field "serial_number": expected a string`);
    if (serial === "") return errors(400, "The serial number must be provided");
    const key = FakeVault.storedForm(serial);
    const cert = key === undefined ? undefined : this.certificates.get(key);
    if (!cert) return errors(400, `certificate with serial ${serial} not found or was already revoked`);
    if (cert.revocation_time > 0) {
      return envelope({ revocation_time: cert.revocation_time, revocation_time_rfc3339: new Date(cert.revocation_time * 1000).toISOString(), state: "revoked" });
    }
    if (cert.notAfter < Date.now() + 2000) {
      return envelope(null, [`certificate with serial ${serial} already expired; refusing to add to CRL`]);
    }
    cert.revocation_time = this.now();
    return envelope({ revocation_time: cert.revocation_time, revocation_time_rfc3339: new Date(cert.revocation_time * 1000).toISOString(), state: "revoked" });
  }

  #read(req: FakeRequest): FakeReply {
    const serial = req.params["serial"] ?? "";
    if (!this.#allowed(req, `${this.mount}/cert/${serial}`, "read")) return errors(403, "permission denied");
    const key = FakeVault.storedForm(decodeURIComponent(serial));
    const cert = key === undefined ? undefined : this.certificates.get(key);
    if (!cert) return errors(404);
    return envelope({
      certificate: `-----BEGIN CERTIFICATE-----\n${cert.der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`,
      issuer_id: "4b1e6cb8-0000-4000-8000-000000000002",
      revocation_time: cert.revocation_time,
      revocation_time_rfc3339: cert.revocation_time > 0 ? new Date(cert.revocation_time * 1000).toISOString() : "",
    });
  }
}

/** The SHA-256 fingerprint (lower-case hex) a certificate check reports for a fake certificate. */
export function fakeFingerprint(cert: FakeCertificate): string {
  return createHash("sha256").update(cert.der).digest("hex");
}

/** Vault's answer when a rate-limit quota is exceeded (with `enable_rate_limit_response_headers`). */
export function vaultRateLimited(path: string, retryAfterSeconds: number): FakeReply {
  return { status: 429, headers: { "Retry-After": String(retryAfterSeconds) }, body: { errors: [`request path "${path}": rate limit quota exceeded`] } };
}
