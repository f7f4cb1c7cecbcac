/**
 * managed_device following the device sources instead of a subject attribute: a device is managed
 * when a management system (Intune, Fleet, Jamf, or the host itself) knows it and says so; a user's
 * devices combine as `all` or `any`; a device no management system knows is not managed. The scans
 * are the ones device_compliance and the device inventories use.
 */
import type { Check } from "../../plugin/check.ts";
import type { CheckRunContext } from "../../plugin/context.ts";
import type { CheckResult, CheckStatus, Reason, Subject } from "../../policy/model.ts";
import { compileSelector, type SelectorSpec } from "../../policy/selector.ts";
import { errorMessage } from "../../errors.ts";
import { scrub } from "../../util/redact.ts";
import { groupDevices, lookupFor, type MatchConfig, type UserMode } from "../../sources/device/match.ts";
import type { DeviceIndex, DeviceRecord } from "../../sources/device/model.ts";
import type { DeviceSource } from "../../sources/device/open.ts";
import type { Lease } from "../../plugin/shared.ts";
import { defaultRefresh, deviceList } from "../common/device.ts";
import type { ManagedSourceConfig } from "./schema.ts";
import { MANAGED_DEVICE_REASONS as R } from "./reasons.ts";

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, unknown: 2, fail: 3 };

/** A device (one or more records of one machine): managed when any source says so. */
function deviceStatus(records: readonly DeviceRecord[]): { status: CheckStatus; reason?: Reason } {
  if (records.some((r) => r.managed === true)) return { status: "pass" };
  const name = records[0]!.name ?? records[0]!.id;
  if (records.some((r) => r.managed === false)) return { status: "fail", reason: { code: R.DEVICE_UNMANAGED, message: `${records.map((r) => r.type).join(", ")} ${name} is not managed` } };
  return { status: "unknown", reason: { code: R.DEVICE_MANAGEMENT_UNKNOWN, message: `${records.map((r) => r.type).join(", ")} ${name} does not say whether it is managed` } };
}

export interface ManagedAnswer {
  readonly name: string;
  readonly records?: readonly DeviceRecord[];
  readonly error?: string;
}

/** Pure: what the sources' records say about whether a subject uses a managed device. */
export function evaluateManaged(subject: Subject, lookupBy: "device" | "user" | "none", answers: readonly ManagedAnswer[], mode: UserMode): { status: CheckStatus; reasons: Reason[]; evidence: Record<string, unknown> } {
  if (subject.kind === "workload") return { status: "pass", reasons: [], evidence: {} };
  if (lookupBy === "none") return { status: "unknown", reasons: [{ code: R.DEVICE_MANAGEMENT_UNKNOWN, message: `${subject.kind} ${subject.id} names no device or user` }], evidence: {} };
  const records = answers.flatMap((a) => a.records ?? []);
  const errors = answers.filter((a) => a.error !== undefined);
  const groups = lookupBy === "device" ? (records.length ? [records] : []) : groupDevices(records);
  const outcomes = groups.map(deviceStatus);
  for (const e of errors) outcomes.push({ status: "unknown", reason: { code: R.DEVICE_MANAGEMENT_UNKNOWN, message: `${e.name}: ${e.error}` } });
  if (groups.length === 0 && errors.length === 0) {
    return { status: "fail", reasons: [{ code: R.DEVICE_UNMANAGED, message: lookupBy === "device" ? `no management system knows device ${subject.id}` : `no management system associates a device with ${subject.kind} ${subject.id}` }], evidence: { devices: [] } };
  }
  const any = lookupBy === "user" && mode === "any";
  // A device lookup is one device (known managed by one source is enough, a source error leaves it open); users combine by mode.
  const status =
    lookupBy === "device"
      ? groups.length && outcomes[0]!.status === "pass"
        ? "pass"
        : outcomes.reduce<CheckStatus>((s, o) => (RANK[o.status] > RANK[s] ? o.status : s), "pass")
      : outcomes.reduce<CheckStatus>((s, o) => (any ? (RANK[o.status] < RANK[s] ? o.status : s) : RANK[o.status] > RANK[s] ? o.status : s), any ? "fail" : "pass");
  const reasons = status === "pass" ? [] : outcomes.filter((o) => o.status === status && o.reason).map((o) => o.reason!).slice(0, 10);
  return { status, reasons, evidence: { devices: records.slice(0, 20).map((r) => ({ source: r.type, id: r.id, ...(r.name ? { name: r.name } : {}), managed: r.managed ?? null })) } };
}

/** `leases`: the sources, opened by the factory in order; the factory releases them. */
export function createManagedDeviceSourcesCheck(config: { sources: readonly ManagedSourceConfig[]; users: UserMode; match: MatchConfig }, leases: readonly Lease<Promise<DeviceSource>>[]): Check {
  const sources = config.sources.map((cfg, i) => ({ cfg, lease: leases[i]!, applies: cfg.applies_to ? compileSelector(cfg.applies_to as SelectorSpec) : () => true }));
  return {
    async run(subjects: readonly Subject[], run: CheckRunContext): Promise<CheckResult[]> {
      const name = run.check ?? "managed_device";
      const refresh = defaultRefresh(run.ttlMs);
      const lists = await Promise.all(
        sources.map((s) =>
          s.lease.value.then((src) => deviceList(src, s.cfg.refresh ?? refresh, run.signal)).then(
            (l): { index: DeviceIndex } => ({ index: l.value.index }),
            (err: unknown): { error: string } => ({ error: scrub(errorMessage(err)) }),
          ),
        ),
      );
      const now = run.clock.now();
      return subjects.map((subject) => {
        const lookup = lookupFor(subject, config.match, config.users);
        const answers: ManagedAnswer[] = [];
        sources.forEach((s, i) => {
          if (!s.applies(subject)) return;
          const l = lists[i]!;
          const label = s.cfg.name ?? s.cfg.type;
          if ("error" in l) answers.push({ name: label, error: l.error });
          else answers.push({ name: label, records: lookup.by === "device" ? l.index.byKeys(lookup.values) : lookup.by === "user" ? l.index.byUsers(lookup.values) : [] });
        });
        const v = evaluateManaged(subject, lookup.by, answers, config.users);
        return { check: name, subject: subject.id, status: v.status, reasons: v.reasons, evidence: v.evidence, observed_at: now, expires_at: now + run.ttlMs, source: "pull" as const };
      });
    },
  };
}
