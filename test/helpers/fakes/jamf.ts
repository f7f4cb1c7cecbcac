/**
 * A local Jamf Pro enforcing what the Jamf device source relies on:
 * - `POST /api/oauth/token`: form-encoded `grant_type=client_credentials`, `client_id`,
 *   `client_secret` of the registered API client (401 `invalid_client` otherwise); tokens of
 *   `tokenLifetimeS` (599 s, as Jamf issues) that expire on the server's clock;
 * - `GET /api/v1/computers-inventory`: a bearer token this server issued and not expired (401),
 *   `section` values Jamf knows (400 otherwise), `page` from 0, `page-size` 1–2000, `sort`;
 *   sections not asked for come back null;
 * - any request to a FileVault recovery-key endpoint is recorded in `forbidden` and refused.
 */
import { randomBytes } from "node:crypto";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export const JAMF_CLIENT_ID = "6b4f1f4c-jamf-client-0001";
export const JAMF_CLIENT_SECRET = "jamf-client-secret-0123456789abcdefgh";

const SECTIONS = ["GENERAL", "DISK_ENCRYPTION", "PURCHASING", "APPLICATIONS", "STORAGE", "USER_AND_LOCATION", "CONFIGURATION_PROFILES", "PRINTERS", "SERVICES", "HARDWARE", "LOCAL_USER_ACCOUNTS", "CERTIFICATES", "ATTACHMENTS", "PLUGINS", "PACKAGE_RECEIPTS", "FONTS", "SECURITY", "OPERATING_SYSTEM", "LICENSED_SOFTWARE", "IBEACONS", "SOFTWARE_UPDATES", "EXTENSION_ATTRIBUTES", "CONTENT_CACHING", "GROUP_MEMBERSHIPS"];
const SECTION_KEYS: Record<string, string> = { GENERAL: "general", DISK_ENCRYPTION: "diskEncryption", HARDWARE: "hardware", OPERATING_SYSTEM: "operatingSystem", USER_AND_LOCATION: "userAndLocation", SECURITY: "security", GROUP_MEMBERSHIPS: "groupMemberships" };

export interface FakeComputer {
  id: string;
  udid: string;
  general: Record<string, unknown>;
  diskEncryption: Record<string, unknown>;
  hardware: Record<string, unknown>;
  operatingSystem: Record<string, unknown>;
  userAndLocation: Record<string, unknown>;
  security: Record<string, unknown>;
  groupMemberships: Record<string, unknown>[];
}

function jamfError(status: number, code: string, description: string, field: string | null = null): FakeReply {
  return { status, body: { httpStatus: status, errors: [{ code, field, description, id: "0" }] } };
}

export class FakeJamf extends FakeApi {
  clientId = JAMF_CLIENT_ID;
  clientSecret = JAMF_CLIENT_SECRET;
  tokenLifetimeS = 599;
  now: () => number = Date.now;
  readonly computers: FakeComputer[] = [];
  /** Requests to recovery-key endpoints: a test fails if any arrives. */
  readonly forbidden: FakeRequest[] = [];
  tokenRequests = 0;
  /** When set, every token is revoked right after this many inventory pages have been answered (a token expiring mid-scan). */
  revokeAfterPages: number | undefined;
  #pagesServed = 0;
  readonly #tokens = new Map<string, number>();

  constructor() {
    super();
    this.authenticate = (req) => {
      if (/filevault|recovery/i.test(req.path)) {
        this.forbidden.push(req);
        return jamfError(403, "FORBIDDEN", "recovery keys are not for vigil");
      }
      if (!req.path.startsWith("/api/v1/") && !req.path.startsWith("/api/v2/")) return undefined;
      const m = /^Bearer (\S+)$/.exec(req.headers["authorization"] ?? "");
      const exp = m ? this.#tokens.get(m[1]!) : undefined;
      if (exp === undefined || this.now() >= exp) return jamfError(401, "INVALID_TOKEN", "Unauthorized");
      return undefined;
    };
    this.route("POST", /^\/api\/oauth\/token$/, (req) => this.#token(req));
    this.route("GET", /^\/api\/v1\/computers-inventory$/, (req) => this.#inventory(req));
  }

  /** Adds a managed, supervised Mac with FileVault on that checked in ten minutes ago. */
  addComputer(over: { general?: Record<string, unknown>; diskEncryption?: Record<string, unknown>; operatingSystem?: Record<string, unknown>; userAndLocation?: Record<string, unknown>; security?: Record<string, unknown>; groups?: string[]; serial?: string } = {}): FakeComputer {
    const n = this.computers.length + 1;
    const now = this.now();
    const c: FakeComputer = {
      id: String(n),
      udid: `55A1C2D3-0000-4000-8000-${n.toString(16).padStart(12, "0").toUpperCase()}`,
      general: {
        name: `mac-${n}`,
        lastIpAddress: "203.0.113.9",
        platform: "Mac",
        remoteManagement: { managed: true, managementUsername: "jamfadmin" },
        supervised: true,
        mdmCapable: { capable: true, capableUsers: [] },
        reportDate: new Date(now - 2 * 86_400_000).toISOString(),
        lastContactTime: new Date(now - 10 * 60_000).toISOString(),
        lastEnrolledDate: "2025-11-02T10:00:00.000Z",
        enrolledViaAutomatedDeviceEnrollment: true,
        userApprovedMdm: true,
        ...over.general,
      },
      diskEncryption: {
        bootPartitionEncryptionDetails: { partitionName: "Macintosh HD (Boot Partition)", partitionFileVault2State: "ENCRYPTED", partitionFileVault2Percent: 100 },
        individualRecoveryKeyValidityStatus: "VALID",
        institutionalRecoveryKeyPresent: false,
        diskEncryptionConfigurationName: "FileVault",
        fileVault2EnabledUserNames: ["alice"],
        ...over.diskEncryption,
      },
      hardware: { make: "Apple", model: "MacBook Pro (14-inch, 2023)", serialNumber: over.serial ?? `C02JAMF${n.toString().padStart(5, "0")}`, appleSilicon: true },
      operatingSystem: { name: "macOS", version: "14.4.1", build: "23E224", fileVault2Status: "BOOT_ENCRYPTED", ...over.operatingSystem },
      userAndLocation: { username: `user${n}`, realname: `User ${n}`, email: `user${n}@example.com`, ...over.userAndLocation },
      security: { sipStatus: "ENABLED", gatekeeperStatus: "APP_STORE_AND_IDENTIFIED_DEVELOPERS", firewallEnabled: true, ...over.security },
      groupMemberships: (over.groups ?? ["All Managed Clients"]).map((g, i) => ({ groupId: String(i + 1), groupName: g, smartGroup: true })),
    };
    this.computers.push(c);
    return c;
  }

  /** Forgets every token issued. */
  revokeTokens(): void {
    this.#tokens.clear();
  }

  #token(req: FakeRequest): FakeReply {
    this.tokenRequests++;
    if (!(req.headers["content-type"] ?? "").startsWith("application/x-www-form-urlencoded")) return { status: 400, body: { error: "invalid_request" } };
    const form = new URLSearchParams(req.body);
    if (form.get("grant_type") !== "client_credentials") return { status: 400, body: { error: "unsupported_grant_type" } };
    if (form.get("client_id") !== this.clientId || form.get("client_secret") !== this.clientSecret) return { status: 401, body: { error: "invalid_client" } };
    const token = randomBytes(24).toString("base64url");
    this.#tokens.set(token, this.now() + this.tokenLifetimeS * 1000);
    return { status: 200, body: { access_token: token, scope: "api-role:2", token_type: "Bearer", expires_in: this.tokenLifetimeS } };
  }

  #inventory(req: FakeRequest): FakeReply {
    const sections = req.query.getAll("section");
    const bad = sections.find((s) => !SECTIONS.includes(s));
    if (bad) return jamfError(400, "INVALID_FIELD", `Invalid section ${bad}`, "section");
    const page = Number(req.query.get("page") ?? 0);
    const size = Number(req.query.get("page-size") ?? 100);
    if (!Number.isInteger(page) || page < 0) return jamfError(400, "INVALID_FIELD", "page must be 0 or more", "page");
    if (!Number.isInteger(size) || size < 1 || size > 2000) return jamfError(400, "INVALID_FIELD", "page-size must be between 1 and 2000", "page-size");
    const wanted = new Set((sections.length ? sections : ["GENERAL"]).map((s) => SECTION_KEYS[s]).filter(Boolean));
    const all = [...this.computers].sort((a, b) => Number(a.id) - Number(b.id));
    const results = all.slice(page * size, page * size + size).map((c) => {
      const out: Record<string, unknown> = { id: c.id, udid: c.udid };
      for (const key of Object.values(SECTION_KEYS)) out[key] = wanted.has(key) ? c[key as keyof FakeComputer] : key === "groupMemberships" ? [] : null;
      return out;
    });
    if (++this.#pagesServed === this.revokeAfterPages) this.revokeTokens();
    return { status: 200, body: { totalCount: all.length, results } };
  }
}
