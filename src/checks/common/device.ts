/**
 * What the checks that read device sources share (device_compliance, and managed_device when it
 * follows the sources): the keys every source entry takes besides its connection, the selector
 * `applies_to` is written in, and reading a source's current device list.
 */
import { z } from "zod";
import { SUBJECT_KINDS } from "../../policy/model.ts";
import { duration } from "../../plugin/schema.ts";
import type { DeviceSet } from "../../sources/device/model.ts";
import type { DeviceSource } from "../../sources/device/open.ts";
import type { ScanResult } from "../../sources/common/scan.ts";

export const selectorSchema = z
  .object({
    id: z.union([z.string(), z.array(z.string())]).optional(),
    kind: z.union([z.enum(SUBJECT_KINDS), z.array(z.enum(SUBJECT_KINDS))]).optional(),
    identity: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** Keys every source entry of a check takes besides its connection. */
export const sourceCommonShape = {
  /** Names the source in results and evidence; unique within the check. Default its type. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "expected a short name (letters, digits, _ . -)" })
    .optional(),
  /** A scan younger than this is reused instead of asking the source again. Default: the interval of the policies using the check (at least 30s). */
  refresh: duration()
    .refine((ms) => ms >= 1_000, { error: 'expected a duration of at least 1s, like "5m"' })
    .optional(),
  /** Subjects the source speaks about (`{id, kind, identity, labels}`, ids and identities take `*`). Default every subject. */
  applies_to: selectorSchema.optional(),
  /** A subject's device must be known to this source (else not found), even when another source knows it. Default false. */
  required: z.boolean().default(false),
};

/** Source names unique within one check: two sources of one type need names. */
export function uniqueSourceNames(sources: readonly { name?: string | undefined; type: string }[] | undefined, ctx: z.RefinementCtx): void {
  const seen = new Map<string, number>();
  sources?.forEach((s, i) => {
    const name = s.name ?? s.type;
    const first = seen.get(name);
    if (first !== undefined) ctx.addIssue({ code: "custom", path: ["sources", i, "name"], message: `source name "${name}" is already used by sources[${first}]; give each source of one type a name` });
    else seen.set(name, i);
  });
}

/** The run's default refresh: once per interval of the policies using the check (the result ttl is twice that). */
export function defaultRefresh(ttlMs: number): number {
  return Math.max(30_000, Math.round(ttlMs / 2));
}

/** The current device list of a source that lists all its devices (not CrowdStrike, which is asked per device). */
export function deviceList(src: DeviceSource, refresh: number, signal: AbortSignal): Promise<ScanResult<DeviceSet>> {
  switch (src.type) {
    case "intune":
      return src.devices.get(refresh, signal);
    case "fleet":
      return src.hosts.get(refresh, signal);
    case "jamf":
      return src.computers.get(refresh, signal);
    case "host":
      return src.scan.get(refresh, signal);
    case "crowdstrike":
      throw new TypeError("CrowdStrike ZTA is asked per device, not listed");
  }
}
