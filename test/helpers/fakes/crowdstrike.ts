/**
 * A local CrowdStrike Falcon API enforcing what the ZTA source relies on:
 * - `POST /oauth2/token`: form-encoded `client_id` and `client_secret` (401 otherwise); 201 with a
 *   bearer token of `expires_in` 1799 s, as Falcon issues;
 * - `GET /zero-trust-assessment/entities/assessments/v1?ids=…&ids=…`: a valid bearer (401), the
 *   "Zero Trust Assessment: Read" scope (403), 1 to 1000 ids (400 otherwise); found assessments in
 *   `resources`, a 404 entry in `errors` for each unknown id, status 404 when none is known;
 * - 429 with `X-RateLimit-RetryAfter` (epoch seconds) from `throttle()`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const CS_CLIENT_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
export const CS_CLIENT_SECRET = "crowdstrike-secret-0123456789ABCDEFGHIJ";

export interface FakeAssessment {
  aid: string;
  cid: string;
  event_platform: string;
  modified_time: string;
  product_type_desc: string;
  sensor_file_status: string;
  system_serial_number: string;
  assessment: { overall: number; os: number; sensor_config: number; version: string };
  assessment_items: { os_signals: Record<string, string>[]; sensor_signals: Record<string, string>[] };
}

export function aidOf(n: number): string {
  return n.toString(16).padStart(32, "0");
}

export class FakeCrowdStrike extends FakeApi {
  clientId = CS_CLIENT_ID;
  clientSecret = CS_CLIENT_SECRET;
  scopes = new Set(["zero-trust-assessment:read"]);
  readonly assessments = new Map<string, FakeAssessment>();
  readonly #tokens = new Map<string, number>();
  tokenRequests = 0;

  constructor() {
    super();
    this.authenticate = (req) => {
      if (!req.path.startsWith("/zero-trust-assessment/")) return undefined;
      const m = /^Bearer (\S+)$/.exec(req.headers["authorization"] ?? "");
      const exp = m ? this.#tokens.get(m[1]!) : undefined;
      if (exp === undefined || Date.now() >= exp) return this.#error(401, "access denied, invalid bearer token");
      if (!this.scopes.has("zero-trust-assessment:read")) return this.#error(403, "access denied, authorization failed");
      return undefined;
    };
    this.route("POST", /^\/oauth2\/token$/, (req) => this.#token(req));
    this.route("GET", /^\/zero-trust-assessment\/entities\/assessments\/v1$/, (req) => this.#assessments(req));
  }

  /** Adds an assessment for agent `n`; `over` replaces fields (scores in `assessment`). */
  add(n: number, over: Partial<FakeAssessment> = {}): FakeAssessment {
    const a: FakeAssessment = {
      aid: aidOf(n),
      cid: "c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6",
      event_platform: "Win",
      modified_time: new Date(Date.now() - 3_600_000).toISOString(),
      product_type_desc: "Workstation",
      sensor_file_status: "not deployed",
      system_serial_number: `CSSERIAL${n.toString().padStart(4, "0")}`,
      assessment: { overall: 82, os: 75, sensor_config: 90, version: "3.6.1" },
      assessment_items: {
        os_signals: [{ signal_id: "firewall_enabled", signal_name: "Firewall", group_name: "OS", criteria: "Firewall: Enabled", meets_criteria: "yes" }],
        sensor_signals: [{ signal_id: "sensor_rfm", signal_name: "Reduced functionality mode", group_name: "Sensor", criteria: "RFM: off", meets_criteria: "yes" }],
      },
      ...over,
    };
    this.assessments.set(a.aid, a);
    return a;
  }

  /** The next `count` calls get 429 with an X-RateLimit-RetryAfter `seconds` from now. */
  throttle(seconds = 1, count = 1): this {
    const reply = (): FakeReply => ({ status: 429, headers: { "X-RateLimit-RetryAfter": String(Math.ceil(Date.now() / 1000) + seconds), "X-RateLimit-Remaining": "0" }, body: { meta: this.#meta(), errors: [{ code: 429, message: "API rate limit exceeded." }] } });
    return this.fail({ path: /^\/zero-trust-assessment\// }, ...Array.from({ length: count }, reply));
  }

  /** Forgets every token issued (a rotated API client, an expired token). */
  revokeTokens(): void {
    this.#tokens.clear();
  }

  assessmentRequests(): FakeRequest[] {
    return this.handled.filter((r) => r.path.startsWith("/zero-trust-assessment/"));
  }

  #meta() {
    return { query_time: 0.004, powered_by: "zero-trust-assessment", trace_id: randomUUID() };
  }

  #error(status: number, message: string): FakeReply {
    return { status, body: { meta: this.#meta(), errors: [{ code: status, message }] } };
  }

  #token(req: FakeRequest): FakeReply {
    this.tokenRequests++;
    const form = new URLSearchParams(req.body);
    if (form.get("client_id") !== this.clientId || form.get("client_secret") !== this.clientSecret) return this.#error(401, "access denied, invalid client");
    const token = randomBytes(32).toString("base64url");
    this.#tokens.set(token, Date.now() + 1799_000);
    return { status: 201, body: { access_token: token, token_type: "bearer", expires_in: 1799 } };
  }

  #assessments(req: FakeRequest): FakeReply {
    const ids = req.query.getAll("ids");
    if (ids.length === 0) return this.#error(400, "ids is required");
    if (ids.length > 1000) return this.#error(400, "Number of agent IDs exceeds the limit of 1000.");
    const resources = ids.map((id) => this.assessments.get(id.toLowerCase())).filter((a): a is FakeAssessment => a !== undefined);
    const errors = ids.filter((id) => !this.assessments.has(id.toLowerCase())).map((id) => ({ code: 404, message: `No assessment found for aid ${id}` }));
    return { status: resources.length === 0 ? 404 : 200, body: { meta: this.#meta(), resources, errors } };
  }
}
