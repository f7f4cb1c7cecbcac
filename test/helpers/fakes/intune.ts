/**
 * Microsoft Intune on a local Microsoft Graph (the identity platform and token checks of FakeEntra),
 * enforcing what the Intune device source relies on:
 * - `GET /v1.0/deviceManagement/managedDevices`: a bearer token this server issued, not expired, with
 *   `DeviceManagementManagedDevices.Read.All` (or ReadWrite) — else 401 / 403 as Graph answers;
 *   `$select` of managedDevice properties only (400 for an unknown one, as Graph does), `$top` 1–1000
 *   (400 above), pages linked by an opaque `$skiptoken` in `@odata.nextLink`; without `$select`
 *   every property is returned.
 * - `GET /v1.0/deviceManagement` with `$select=settings`: `DeviceManagementConfiguration.Read.All`.
 * - `GET /v1.0/groups/{id}/transitiveMembers/microsoft.graph.device`: `GroupMember.Read.All` and
 *   `Device.Read.All` (or Directory.Read.All); `$top` up to 999.
 * - Every state value of `complianceState`, `jailBroken` and `partnerReportedThreatState` can be set.
 * Faults (429 with or without Retry-After, 503, malformed pages) come from `throttle()`, `unavailable()`
 * and `fail()`.
 */
import { randomUUID } from "node:crypto";
import { FakeEntra, graphError, type FakeEntraOptions } from "./entra.ts";
import type { FakeReply, FakeRequest } from "../fake-api.ts";

export const INTUNE_PERMISSIONS = ["DeviceManagementManagedDevices.Read.All", "DeviceManagementConfiguration.Read.All", "GroupMember.Read.All", "Device.Read.All"];

/** A managedDevice as Graph v1.0 returns it (the properties the fake serves). */
export interface FakeManagedDevice {
  id: string;
  userId: string;
  deviceName: string;
  managedDeviceOwnerType: string;
  enrolledDateTime: string;
  lastSyncDateTime: string;
  operatingSystem: string;
  complianceState: string;
  jailBroken: string;
  managementAgent: string;
  osVersion: string;
  easActivated: boolean;
  easDeviceId: string;
  azureADRegistered: boolean;
  deviceEnrollmentType: string;
  emailAddress: string;
  azureADDeviceId: string;
  deviceRegistrationState: string;
  deviceCategoryDisplayName: string;
  isSupervised: boolean;
  isEncrypted: boolean;
  userPrincipalName: string;
  model: string;
  manufacturer: string;
  imei: string;
  complianceGracePeriodExpirationDateTime: string;
  serialNumber: string;
  phoneNumber: string;
  androidSecurityPatchLevel: string;
  userDisplayName: string;
  wiFiMacAddress: string;
  subscriberCarrier: string;
  meid: string;
  totalStorageSpaceInBytes: number;
  freeStorageSpaceInBytes: number;
  managedDeviceName: string;
  partnerReportedThreatState: string;
}

/** Graph's "never": what it reports for a grace period that does not apply. */
export const GRAPH_NEVER = "9999-12-31T23:59:59Z";

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");

/** A realistic managed device, number `i`; `over` replaces any property. */
export function managedDevice(i: number, over: Partial<FakeManagedDevice> = {}, now = Date.now()): FakeManagedDevice {
  const id = `${hex(i, 8)}-aaaa-4bbb-8ccc-${hex(i, 12)}`;
  const user = `user${i}@contoso.example`;
  const windows = i % 3 !== 2;
  return {
    id,
    userId: `${hex(i, 8)}-1111-4222-8333-${hex(i, 12)}`,
    deviceName: windows ? `DESKTOP-${hex(i, 6).toUpperCase()}` : `MacBook-${i}`,
    managedDeviceOwnerType: "company",
    enrolledDateTime: new Date(now - 90 * 86_400_000).toISOString(),
    lastSyncDateTime: new Date(now - 2 * 3_600_000).toISOString(),
    operatingSystem: windows ? "Windows" : "macOS",
    complianceState: "compliant",
    jailBroken: "False",
    managementAgent: "mdm",
    osVersion: windows ? "10.0.22631.3296" : "14.4.1",
    easActivated: false,
    easDeviceId: "",
    azureADRegistered: true,
    deviceEnrollmentType: windows ? "windowsAzureADJoin" : "appleBulkWithUser",
    emailAddress: user,
    azureADDeviceId: `${hex(i, 8)}-dddd-4eee-8fff-${hex(i, 12)}`,
    deviceRegistrationState: "registered",
    deviceCategoryDisplayName: "Unknown Category",
    isSupervised: !windows,
    isEncrypted: true,
    userPrincipalName: user,
    model: windows ? "Latitude 7440" : "MacBookPro18,3",
    manufacturer: windows ? "Dell Inc." : "Apple",
    imei: "",
    complianceGracePeriodExpirationDateTime: GRAPH_NEVER,
    serialNumber: `SN${hex(i, 8).toUpperCase()}`,
    phoneNumber: "",
    androidSecurityPatchLevel: "",
    userDisplayName: `User ${i}`,
    wiFiMacAddress: hex(i, 12),
    subscriberCarrier: "",
    meid: "",
    totalStorageSpaceInBytes: 512_000_000_000,
    freeStorageSpaceInBytes: 200_000_000_000,
    managedDeviceName: `${user}_${windows ? "Windows" : "MacOS"}_${i}`,
    partnerReportedThreatState: "unknown",
    ...over,
  };
}

export interface FakeIntuneOptions extends FakeEntraOptions {
  /** Tenant setting "Mark devices with no compliance policy assigned as": true = Not compliant. Default true. */
  secureByDefault?: boolean;
}

export class FakeIntune extends FakeEntra {
  readonly devices: FakeManagedDevice[] = [];
  settings: { secureByDefault: boolean; deviceComplianceCheckinThresholdDays: number; isScheduledActionEnabled: boolean };
  /** Group object id → Entra device ids (`deviceId`) of its transitive device members. */
  readonly deviceGroups = new Map<string, string[]>();
  readonly #pages = new Map<string, { offset: number; select: string | null; top: number }>();

  constructor(options: FakeIntuneOptions = {}) {
    super({ permissions: INTUNE_PERMISSIONS, ...options });
    this.settings = { secureByDefault: options.secureByDefault ?? true, deviceComplianceCheckinThresholdDays: 30, isScheduledActionEnabled: true };
    this.#intuneRoutes();
  }

  /** Adds `count` realistic devices (numbered from the current size), each adjusted by `over`. */
  addDevices(count: number, over: (i: number) => Partial<FakeManagedDevice> = () => ({})): FakeManagedDevice[] {
    const start = this.devices.length;
    const now = this.now();
    for (let i = start; i < start + count; i++) this.devices.push(managedDevice(i, over(i), now));
    return this.devices.slice(start);
  }

  device(id: string): FakeManagedDevice | undefined {
    return this.devices.find((d) => d.id === id);
  }

  /** Requests for managedDevices pages that reached the route. */
  listRequests(): FakeRequest[] {
    return this.handled.filter((r) => r.path === "/v1.0/deviceManagement/managedDevices");
  }

  /** The next `count` list requests get 429 without a Retry-After header (Graph does this at times). */
  throttleWithoutHint(count = 1): this {
    return this.fail({ path: /\/deviceManagement\/managedDevices$/ }, ...Array.from({ length: count }, () => graphError(429, "TooManyRequests", "Too many requests.")));
  }

  #intuneRoutes(): void {
    const DEVICES: readonly (readonly string[])[] = [["DeviceManagementManagedDevices.Read.All"], ["DeviceManagementManagedDevices.ReadWrite.All"]];
    this.route("GET", /^\/v1\.0\/deviceManagement\/managedDevices$/, (req) => this.requireRoles(req, DEVICES, () => this.#list(req)));
    this.route("GET", /^\/v1\.0\/deviceManagement$/, (req) =>
      this.requireRoles(req, [["DeviceManagementConfiguration.Read.All"], ["DeviceManagementConfiguration.ReadWrite.All"]], () => {
        const select = req.query.get("$select");
        const fields = select === null ? ["id", "subscriptionState", "settings"] : select.split(",").map((s) => s.trim());
        const known: Record<string, unknown> = { id: randomUUID(), subscriptionState: "active", settings: { ...this.settings } };
        const bad = fields.find((f) => !(f in known));
        if (bad) return graphError(400, "BadRequest", `Could not find a property named '${bad}' on type 'microsoft.graph.deviceManagement'.`);
        return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#deviceManagement(${fields.join(",")})`, ...Object.fromEntries(fields.map((f) => [f, known[f]])) } };
      }),
    );
    this.route("GET", /^\/v1\.0\/groups\/(?<group>[^/]+)\/transitiveMembers\/microsoft\.graph\.device$/, (req) =>
      this.requireRoles(req, [["GroupMember.Read.All", "Device.Read.All"], ["Group.Read.All", "Device.Read.All"], ["Directory.Read.All"]], () => {
        const members = this.deviceGroups.get(req.params.group!.toLowerCase());
        if (!members) return graphError(404, "Request_ResourceNotFound", `Resource '${req.params.group}' does not exist or one of its queried reference-property objects are not present.`);
        const top = Number(req.query.get("$top") ?? 100);
        if (!Number.isInteger(top) || top < 1 || top > 999) return graphError(400, "Request_BadRequest", `Invalid page size specified: '${req.query.get("$top")}'. Must be between 1 and 999 inclusive.`);
        const offset = Number(req.query.get("$skiptoken") ?? 0);
        const page = members.slice(offset, offset + top).map((deviceId) => ({ "@odata.type": "#microsoft.graph.device", id: randomUUID(), deviceId }));
        const next = offset + top < members.length ? `${this.graphUrl}/groups/${req.params.group}/transitiveMembers/microsoft.graph.device?$select=${req.query.get("$select") ?? "id"}&$top=${top}&$skiptoken=${offset + top}` : undefined;
        return { status: 200, body: { "@odata.context": `${this.graphUrl}/$metadata#directoryObjects`, value: page, ...(next ? { "@odata.nextLink": next } : {}) } };
      }),
    );
  }

  #list(req: FakeRequest): FakeReply {
    const token = req.query.get("$skiptoken");
    let state: { offset: number; select: string | null; top: number };
    if (token !== null) {
      const known = this.#pages.get(token);
      if (!known) return graphError(400, "BadRequest", "The skip token is invalid or has expired.");
      state = known;
    } else {
      const select = req.query.get("$select");
      if (select !== null) {
        const probe = managedDevice(0);
        const bad = select.split(",").find((f) => !(f.trim() in probe));
        if (bad !== undefined) return graphError(400, "BadRequest", `Could not find a property named '${bad.trim()}' on type 'microsoft.graph.managedDevice'.`);
      }
      const topText = req.query.get("$top");
      const top = topText === null ? 1000 : Number(topText);
      if (!Number.isInteger(top) || top < 1) return graphError(400, "BadRequest", `Invalid value '${topText}' for query option $top.`);
      if (top > 1000) return graphError(400, "BadRequest", "The limit of '1000' for Top query has been exceeded. The value from the incoming request is '" + top + "'.");
      state = { offset: 0, select, top };
    }
    const slice = this.devices.slice(state.offset, state.offset + state.top);
    const fields = state.select?.split(",").map((s) => s.trim());
    const value = slice.map((d) => (fields ? Object.fromEntries(fields.map((f) => [f, d[f as keyof FakeManagedDevice]])) : { "@odata.type": "#microsoft.graph.managedDevice", ...d }));
    const body: Record<string, unknown> = { "@odata.context": `${this.graphUrl}/$metadata#deviceManagement/managedDevices${fields ? `(${fields.join(",")})` : ""}`, value };
    if (state.offset + state.top < this.devices.length) {
      const next = randomUUID().replace(/-/g, "");
      this.#pages.set(next, { offset: state.offset + state.top, select: state.select, top: state.top });
      body["@odata.nextLink"] = `${this.graphUrl}/deviceManagement/managedDevices?${state.select ? `$select=${state.select}&` : ""}$top=${state.top}&$skiptoken=${next}`;
    }
    return { status: 200, body };
  }
}
