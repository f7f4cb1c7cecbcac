/**
 * A local Fleet server enforcing what the Fleet device source relies on:
 * - every `/api/v1/fleet/*` call needs `Authorization: Bearer <API token>` (401 otherwise, in Fleet's
 *   error shape);
 * - `GET /api/v1/fleet/hosts`: `page` (from 0) and `per_page`, `order_key`/`order_direction`,
 *   `policy_id` with `policy_response=passing|failing` (400 when `policy_response` comes without
 *   `policy_id`, or with another value), `device_mapping=true` adding each host's mapped e-mails;
 * - `GET /api/v1/fleet/global/policies`;
 * - 429 with `retry-after` from `throttle()`; hosts, policy results and check-in times as state, so a
 *   test can turn a host noncompliant and back.
 */
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const FLEET_TOKEN = "fleet-api-token-0123456789abcdefghij";

export interface FakeFleetHost {
  id: number;
  hostname: string;
  display_name: string;
  computer_name: string;
  uuid: string;
  hardware_serial: string;
  platform: string;
  os_version: string;
  team_id: number | null;
  team_name: string | null;
  status: string;
  seen_time: string;
  policy_updated_at: string;
  /** E-mails from Fleet's device mapping (IdP, Chrome profiles). */
  emails: string[];
  /** Policy id → response: "pass", "fail", or "" (not run yet). */
  results: Map<number, "pass" | "fail" | "">;
  mdm?: { enrollment_status: string; name: string; server_url: string; encryption_key_available: boolean } | null;
  geolocation?: { country_iso: string; city_name: string } | null;
}

export interface FakeFleetPolicy {
  id: number;
  name: string;
  query: string;
  critical: boolean;
  platform: string;
}

function fleetError(status: number, message: string, reason = message): FakeReply {
  return { status, body: { message, errors: [{ name: "base", reason }] } };
}

export class FakeFleet extends FakeApi {
  token = FLEET_TOKEN;
  readonly hosts: FakeFleetHost[] = [];
  readonly policies: FakeFleetPolicy[] = [
    { id: 1, name: "Full disk encryption enabled", query: "SELECT 1 FROM disk_encryption WHERE encrypted = 1;", critical: true, platform: "darwin,linux,windows" },
    { id: 2, name: "Firewall enabled", query: "SELECT 1 FROM alf WHERE global_state >= 1;", critical: false, platform: "darwin" },
    { id: 3, name: "Screen lock", query: "SELECT 1 FROM screenlock WHERE enabled = 1;", critical: false, platform: "darwin" },
  ];
  now: () => number = Date.now;

  constructor() {
    super();
    this.authenticate = (req) => {
      if (!req.path.startsWith("/api/v1/fleet/")) return undefined;
      if (req.headers["authorization"] !== `Bearer ${this.token}`) return fleetError(401, "Authentication required", "Authorization header required");
      return undefined;
    };
    this.route("GET", /^\/api\/v1\/fleet\/hosts$/, (req) => this.#hosts(req));
    this.route("GET", /^\/api\/v1\/fleet\/global\/policies$/, () => ({ status: 200, body: { policies: this.policies.map((p) => this.#policy(p)) } }));
  }

  /** Adds a host passing every policy, checked in a minute ago; `over` changes any field. */
  addHost(over: Partial<FakeFleetHost> = {}): FakeFleetHost {
    const id = this.hosts.length + 1;
    const t = new Date(this.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, "Z");
    const host: FakeFleetHost = {
      id,
      hostname: `host-${id}.example.com`,
      display_name: `host-${id}`,
      computer_name: `host-${id}`,
      uuid: `392547dc-0000-0000-a87a-${id.toString(16).padStart(12, "0")}`,
      hardware_serial: `C02FLEET${id.toString().padStart(4, "0")}`,
      platform: "darwin",
      os_version: "macOS 14.4.1",
      team_id: 1,
      team_name: "Workstations",
      status: "online",
      seen_time: t,
      policy_updated_at: t,
      emails: [],
      results: new Map(this.policies.map((p) => [p.id, "pass" as const])),
      mdm: { enrollment_status: "On (automatic)", name: "Fleet", server_url: "https://fleet.example.com/mdm/apple/mdm", encryption_key_available: true },
      ...over,
    };
    this.hosts.push(host);
    return host;
  }

  /** Sets a host's response to a policy and marks its results as just updated. */
  setResult(hostId: number, policyId: number, response: "pass" | "fail" | ""): void {
    const h = this.hosts.find((x) => x.id === hostId)!;
    h.results.set(policyId, response);
    h.policy_updated_at = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  /** The next `count` calls get 429 with `retry-after: seconds`. */
  throttle(seconds = 1, count = 1): this {
    return this.fail({ path: /^\/api\/v1\/fleet\// }, ...Array.from({ length: count }, () => ({ status: 429, headers: { "retry-after": String(seconds) }, body: { message: "Too many requests", errors: [{ name: "base", reason: "rate limit exceeded" }] } })));
  }

  #policy(p: FakeFleetPolicy): Record<string, unknown> {
    const failing = this.hosts.filter((h) => h.results.get(p.id) === "fail").length;
    return { ...p, description: p.name, author_id: 1, author_name: "Admin", author_email: "admin@example.com", team_id: null, resolution: "", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z", passing_host_count: this.hosts.length - failing, failing_host_count: failing, host_count_updated_at: null };
  }

  #hosts(req: FakeRequest): FakeReply {
    const q = req.query;
    const page = Number(q.get("page") ?? 0);
    const per = Number(q.get("per_page") ?? 100);
    if (!Number.isInteger(page) || page < 0 || !Number.isInteger(per) || per < 1) return fleetError(400, "Bad request", "invalid page or per_page");
    const policyId = q.get("policy_id");
    const response = q.get("policy_response");
    if (response !== null && policyId === null) return fleetError(400, "Bad request", "Missing policy_id parameter");
    if (response !== null && response !== "passing" && response !== "failing") return fleetError(400, "Bad request", "policy_response must be passing or failing");
    let hosts = [...this.hosts];
    if (policyId !== null) {
      const id = Number(policyId);
      if (response !== null) hosts = hosts.filter((h) => h.results.get(id) === (response === "failing" ? "fail" : "pass"));
    }
    if (q.get("order_key") === "id") hosts.sort((a, b) => (q.get("order_direction") === "desc" ? b.id - a.id : a.id - b.id));
    const mapping = q.get("device_mapping") === "true";
    return { status: 200, body: { hosts: hosts.slice(page * per, page * per + per).map((h) => this.#host(h, mapping)) } };
  }

  #host(h: FakeFleetHost, mapping: boolean): Record<string, unknown> {
    const failing = [...h.results.values()].filter((r) => r === "fail").length;
    return {
      created_at: "2026-01-05T05:09:44Z",
      updated_at: h.seen_time,
      id: h.id,
      detail_updated_at: h.seen_time,
      label_updated_at: h.seen_time,
      policy_updated_at: h.policy_updated_at,
      last_enrolled_at: "2026-01-05T05:09:44Z",
      seen_time: h.seen_time,
      refetch_requested: false,
      hostname: h.hostname,
      uuid: h.uuid,
      platform: h.platform,
      osquery_version: "5.11.0",
      os_version: h.os_version,
      build: "23E224",
      platform_like: h.platform,
      code_name: "",
      uptime: 8305000000000,
      memory: 17179869184,
      cpu_type: "arm64e",
      cpu_brand: "Apple M2",
      hardware_vendor: "Apple Inc.",
      hardware_model: "MacBookPro18,3",
      hardware_serial: h.hardware_serial,
      computer_name: h.computer_name,
      display_name: h.display_name,
      public_ip: "203.0.113.7",
      primary_ip: "10.0.0.7",
      primary_mac: "a0:b1:c2:d3:e4:f5",
      distributed_interval: 10,
      config_tls_refresh: 10,
      logger_tls_period: 10,
      status: h.status,
      display_text: h.hostname,
      team_id: h.team_id,
      team_name: h.team_name,
      gigs_disk_space_available: 174.98,
      percent_disk_space_available: 71,
      issues: { failing_policies_count: failing, total_issues_count: failing },
      mdm: h.mdm ?? null,
      ...(h.geolocation ? { geolocation: h.geolocation } : {}),
      ...(mapping ? { device_mapping: h.emails.length ? h.emails.map((email) => ({ email, source: "identity_provider" })) : null } : {}),
    };
  }
}
