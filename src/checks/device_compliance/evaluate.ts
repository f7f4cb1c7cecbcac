/**
 * The pure half of device_compliance: what one source's record says about one device
 * (`evaluateRecord`), and what the devices a subject stands for say about the subject
 * (`evaluateSubject`). No I/O, no clock: `now` comes in, so every state can be table-tested.
 *
 * Order of badness when results are combined: fail > unknown > warn > pass. A device seen by several
 * sources is as bad as the worst of them; a user's devices combine as the worst (`all`) or the best
 * (`any`) of them. Stale data is never a pass, and every verdict carries the data's age.
 */
import type { CheckStatus, Reason } from "../../policy/model.ts";
import type { DeviceRecord, FleetPosture, HostPosture, IntunePosture, JamfPosture, ZtaPosture } from "../../sources/device/model.ts";
import { compareVersions } from "../../sources/device/model.ts";
import type { FleetPolicyResults } from "../../sources/device/fleet.ts";
import type { IntuneSettings } from "../../sources/device/intune.ts";
import { groupDevices, type Lookup, type UserMode } from "../../sources/device/match.ts";
import { DEVICE_REASONS as R } from "../../sources/device/reasons.ts";
import type { CrowdStrikeSourceConfig, DeviceSourceConfig, FleetSourceConfig, IntuneSourceConfig, JamfSourceConfig } from "./config.ts";
import { DEFAULT_MAX_AGE } from "./config.ts";

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, unknown: 2, fail: 3 };
/** For `any`: the best device wins, and a device known to comply beats one not known at all. */
const BEST: Record<CheckStatus, number> = { pass: 0, warn: 1, unknown: 2, fail: 3 };

export function worse(a: CheckStatus, b: CheckStatus): CheckStatus {
  return RANK[a] >= RANK[b] ? a : b;
}

/** One finding about a device. */
interface Finding {
  readonly status: CheckStatus;
  readonly code: string;
  readonly message: string;
}

/** The verdict on one device from one source's record. */
export interface DeviceVerdict {
  readonly status: CheckStatus;
  readonly reasons: readonly Reason[];
  /** What the verdict stands on, for evidence. */
  readonly evidence: Readonly<Record<string, unknown>>;
  /** The next instant the verdict changes by itself (a warning point, a grace deadline, staleness). */
  readonly next_run_at?: number;
  /** The instant the data becomes stale: a passing result must not stand beyond it. */
  readonly stale_at?: number;
  /** Age of the data in ms (undefined when the source never heard from the device). */
  readonly age_ms?: number;
}

/** What else a source's scan knew that judging one of its records needs. */
export interface SourceFacts {
  readonly intune?: IntuneSettings;
  readonly fleet?: FleetPolicyResults;
}

export interface EvaluateOptions {
  readonly now: number;
  readonly onStale: "fail" | "unknown";
}

export function sourceName(cfg: DeviceSourceConfig): string {
  return cfg.name ?? cfg.type;
}

/** The device as it reads in messages: `intune LAPTOP-7 (5c2a…)`. */
function label(cfg: DeviceSourceConfig, r: DeviceRecord): string {
  return `${sourceName(cfg)} ${r.name ?? r.id}${r.name && r.name !== r.id ? ` (${r.id})` : ""}`;
}

function minVersion(mins: Readonly<Record<string, string>>, r: DeviceRecord, push: (f: Finding) => void): void {
  if (!r.platform) return;
  const min = Object.entries(mins).find(([k]) => k.toLowerCase() === r.platform)?.[1];
  if (min === undefined) return;
  if (r.osVersion === undefined) push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: `reports no OS version (at least ${min} required)` });
  else if (compareVersions(r.osVersion, min) < 0) push({ status: "fail", code: R.DEVICE_OS_OUTDATED, message: `runs ${r.platform} ${r.osVersion}, older than ${min}` });
}

function intune(p: IntunePosture, cfg: IntuneSourceConfig, r: DeviceRecord, facts: SourceFacts, now: number, push: (f: Finding) => void): number | undefined {
  let next: number | undefined;
  switch (p.compliance) {
    case "compliant":
      if (cfg.no_policy_check && facts.intune?.secureByDefault !== true) {
        push({
          status: "unknown",
          code: R.DEVICE_NO_COMPLIANCE_POLICY,
          message:
            facts.intune?.secureByDefault === false
              ? 'is reported compliant, but the tenant marks devices without a compliance policy as compliant; set "Mark devices with no compliance policy assigned as" to Not compliant (or no_policy_check: false if every device has a policy)'
              : "is reported compliant, but the tenant's no-policy setting could not be read",
        });
      }
      break;
    case "noncompliant":
      push({ status: "fail", code: R.DEVICE_NONCOMPLIANT, message: "is noncompliant in Intune" });
      break;
    case "inGracePeriod":
      if (p.graceUntil === undefined) push({ status: "warn", code: R.DEVICE_GRACE_PERIOD, message: "is in its compliance grace period (Intune gives no deadline)" });
      else if (p.graceUntil > now) {
        push({ status: "warn", code: R.DEVICE_GRACE_PERIOD, message: `is in its compliance grace period until ${new Date(p.graceUntil).toISOString()}` });
        next = p.graceUntil;
      } else push({ status: "fail", code: R.DEVICE_NONCOMPLIANT, message: `is noncompliant: its grace period ended ${new Date(p.graceUntil).toISOString()}` });
      break;
    default:
      push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: `has compliance state ${JSON.stringify(p.compliance)} in Intune` });
  }
  if (r.managed === false) push({ status: "fail", code: R.DEVICE_UNMANAGED, message: `is only known through ${p.agent ?? "its management agent"}, not managed` });
  if (cfg.require_encryption) {
    if (p.encrypted === false) push({ status: "fail", code: R.DEVICE_UNENCRYPTED, message: "is not encrypted" });
    else if (p.encrypted === undefined) push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "reports no encryption state" });
  }
  if (cfg.block_jailbroken && p.jailBroken?.toLowerCase() === "true") push({ status: "fail", code: R.DEVICE_JAILBROKEN, message: "is jailbroken or rooted" });
  if (p.threat !== undefined && cfg.threat_states.some((t) => t.toLowerCase() === p.threat!.toLowerCase())) push({ status: "fail", code: R.DEVICE_THREAT_REPORTED, message: `has partner-reported threat state ${p.threat}` });
  minVersion(cfg.min_os_version, r, push);
  return next;
}

function fleet(p: FleetPosture, cfg: FleetSourceConfig, r: DeviceRecord, facts: SourceFacts, push: (f: Finding) => void): void {
  if (cfg.policies === "all") {
    if (p.failingPolicies === undefined) push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "reports no failing-policies count" });
    else if (p.failingPolicies > 0) push({ status: "fail", code: R.DEVICE_NONCOMPLIANT, message: `fails ${p.failingPolicies} Fleet polic${p.failingPolicies === 1 ? "y" : "ies"}` });
  } else {
    const results = facts.fleet;
    if (!results) push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "has no policy results" });
    else {
      const codes = new Map<number, string>(cfg.policies === "critical" ? [] : cfg.policies.map((ref) => (typeof ref === "number" ? [ref, R.DEVICE_NONCOMPLIANT] : [ref.id, ref.code])));
      for (const [id, hosts] of results.failing) {
        if (!hosts.has(p.hostId)) continue;
        const policy = results.policies.get(id);
        push({ status: "fail", code: codes.get(id) ?? R.DEVICE_NONCOMPLIANT, message: `fails Fleet policy ${JSON.stringify(policy?.name ?? `policy ${id}`)} (#${id}${policy?.critical ? ", critical" : ""})` });
      }
    }
  }
  minVersion(cfg.min_os_version, r, push);
}

function jamf(p: JamfPosture, cfg: JamfSourceConfig, r: DeviceRecord, o: EvaluateOptions, push: (f: Finding) => void): void {
  const now = o.now;
  if (cfg.require_managed && p.managed !== true) push(p.managed === false ? { status: "fail", code: R.DEVICE_UNMANAGED, message: "is not managed by Jamf Pro" } : { status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "reports no management state" });
  if (cfg.require_supervised && p.supervised !== true) push(p.supervised === false ? { status: "fail", code: R.DEVICE_NOT_SUPERVISED, message: "is not supervised" } : { status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "reports no supervision state" });
  if (cfg.require_filevault) {
    if (p.fileVault === "ENCRYPTED") {
      // encrypted
    } else if (p.fileVault === undefined || p.fileVault === "UNKNOWN") push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "reports no FileVault state" });
    else push({ status: "fail", code: R.DEVICE_UNENCRYPTED, message: `has FileVault state ${p.fileVault} on its boot volume` });
  }
  if (cfg.require_firewall && p.firewall !== true) push(p.firewall === false ? { status: "fail", code: R.DEVICE_FIREWALL_OFF, message: "has its firewall off" } : { status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "reports no firewall state" });
  if (p.reportAt === undefined) push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: "has never sent a full inventory" });
  else if (now - p.reportAt > cfg.inventory_max_age) push({ status: o.onStale === "fail" ? "fail" : "unknown", code: R.DEVICE_STALE, message: `last sent a full inventory ${new Date(p.reportAt).toISOString()}, more than ${Math.round(cfg.inventory_max_age / 86_400_000)} day(s) ago` });
  minVersion(cfg.min_os_version, r, push);
}

function zta(p: ZtaPosture, cfg: CrowdStrikeSourceConfig, push: (f: Finding) => void): void {
  const scores: [string, number | undefined, number | undefined][] = [
    ["overall", p.overall, cfg.thresholds.overall],
    ["os", p.os, cfg.thresholds.os],
    ["sensor_config", p.sensorConfig, cfg.thresholds.sensor_config],
  ];
  let below = false;
  for (const [name, score, min] of scores) {
    if (min === undefined) continue;
    if (score === undefined) push({ status: "unknown", code: R.DEVICE_COMPLIANCE_UNKNOWN, message: `has no ZTA ${name} score` });
    else if (score < min) {
      below = true;
      push({ status: "fail", code: R.DEVICE_ZTA_BELOW_THRESHOLD, message: `has ZTA ${name} score ${score}, below ${min}` });
    }
  }
  if (!below) return;
  for (const s of p.failing.slice(0, 10)) {
    push({ status: "fail", code: R.DEVICE_ZTA_SIGNAL_FAILED, message: `ZTA ${s.group} signal ${JSON.stringify(s.name)} meets_criteria=${s.meets}${s.criteria ? ` (${s.criteria})` : ""}` });
  }
}

function host(p: HostPosture, push: (f: Finding) => void): void {
  for (const c of p.controls) {
    if (c.status === "failed") push({ status: "fail", code: c.code, message: `${c.control}: ${c.detail}` });
    else if (c.status === "unknown") push({ status: "unknown", code: R.DEVICE_CONTROL_UNKNOWN, message: `${c.control}: ${c.detail}` });
  }
}

/** What one source's record says about one device. */
export function evaluateRecord(r: DeviceRecord, cfg: DeviceSourceConfig, facts: SourceFacts, o: EvaluateOptions): DeviceVerdict {
  const findings: Finding[] = [];
  const push = (f: Finding) => findings.push(f);
  const { now } = o;
  let next: number | undefined;
  const p = r.posture;
  if (p.kind === "intune" && cfg.type === "intune") next = intune(p, cfg, r, facts, now, push);
  else if (p.kind === "fleet" && cfg.type === "fleet") fleet(p, cfg, r, facts, push);
  else if (p.kind === "jamf" && cfg.type === "jamf") jamf(p, cfg, r, o, push);
  else if (p.kind === "crowdstrike" && cfg.type === "crowdstrike") zta(p, cfg, push);
  else if (p.kind === "host" && cfg.type === "host") host(p, push);
  else push({ status: "unknown", code: R.DEVICE_SOURCE_ERROR, message: `record of type ${p.kind} given to source ${cfg.type}` });

  // Freshness: stale data is never a pass, and a warning comes before it.
  const maxAge = cfg.max_age ?? DEFAULT_MAX_AGE[cfg.type];
  const warnAge = Math.min(cfg.warn_age ?? Math.round(maxAge * 0.75), maxAge);
  const staleStatus: CheckStatus = o.onStale === "fail" ? "fail" : "unknown";
  let staleAt: number | undefined;
  let age: number | undefined;
  if (r.observedAt === undefined) push({ status: staleStatus, code: R.DEVICE_STALE, message: "has never reported to the source" });
  else {
    age = Math.max(0, now - r.observedAt);
    staleAt = r.observedAt + maxAge;
    const since = `last reported ${new Date(r.observedAt).toISOString()} (${humanAge(age)} ago`;
    if (age > maxAge) push({ status: staleStatus, code: R.DEVICE_STALE, message: `${since}, more than max_age ${humanAge(maxAge)})` });
    else if (age > warnAge) {
      push({ status: "warn", code: R.DEVICE_STALE_SOON, message: `${since}; stale at ${new Date(staleAt).toISOString()})` });
      next = earliest(next, staleAt + 1);
    } else next = earliest(next, r.observedAt + warnAge + 1);
  }

  const status = findings.reduce<CheckStatus>((s, f) => worse(s, f.status), "pass");
  let reasons: Reason[] = [];
  if (findings.length > 0) {
    const who = label(cfg, r);
    reasons = [...findings].sort((a, b) => RANK[b.status] - RANK[a.status]).map((f) => ({ code: f.code, message: `${who} ${f.message}` }));
  }
  return {
    status,
    reasons,
    evidence: {
      source: sourceName(cfg),
      id: r.id,
      ...(r.name !== undefined ? { name: r.name } : {}),
      status,
      data_age_seconds: age === undefined ? null : Math.round(age / 1000),
      ...postureEvidence(r),
    },
    ...(next !== undefined && next > now ? { next_run_at: next } : {}),
    ...(staleAt !== undefined ? { stale_at: staleAt } : {}),
    ...(age !== undefined ? { age_ms: age } : {}),
  };
}

function postureEvidence(r: DeviceRecord): Record<string, unknown> {
  const p = r.posture;
  switch (p.kind) {
    case "intune":
      return { compliance_state: p.compliance, ...(p.graceUntil !== undefined ? { grace_until: new Date(p.graceUntil).toISOString() } : {}) };
    case "fleet":
      return { failing_policies: p.failingPolicies ?? null, host_status: p.status ?? null };
    case "jamf":
      return { filevault: p.fileVault ?? null, managed: p.managed ?? null };
    case "crowdstrike":
      return { zta: { overall: p.overall ?? null, os: p.os ?? null, sensor_config: p.sensorConfig ?? null } };
    case "host":
      return { controls: Object.fromEntries(p.controls.map((c) => [c.control, c.status])) };
  }
}

/** Scan times repeat for every subject of a run: their text is made once. */
let lastIso: { ms: number; text: string } | undefined;
function iso(ms: number): string {
  if (lastIso?.ms !== ms) lastIso = { ms, text: new Date(ms).toISOString() };
  return lastIso.text;
}

function earliest(a: number | undefined, b: number): number {
  return a === undefined ? b : Math.min(a, b);
}

export function humanAge(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

// ---------------------------------------------------------------------------------------------
// Subjects

/** What one applicable source gave for a subject. */
export type SourceAnswer =
  | { readonly cfg: DeviceSourceConfig; readonly records: readonly DeviceRecord[]; readonly facts: SourceFacts; readonly scannedAt: number }
  | { readonly cfg: DeviceSourceConfig; readonly error: { readonly transient: boolean; readonly message: string } };

export interface SubjectVerdict {
  readonly status: CheckStatus;
  readonly reasons: readonly Reason[];
  readonly evidence: Readonly<Record<string, unknown>>;
  readonly next_run_at?: number;
  /** A passing or warning result must not stand beyond this (the data's staleness). */
  readonly valid_until?: number;
}

/** A device (or a stand-in for one: a source error, a required source that does not know it). */
interface DeviceOutcome {
  readonly status: CheckStatus;
  readonly reasons: readonly Reason[];
  readonly evidence?: Readonly<Record<string, unknown>>[];
  readonly next_run_at?: number;
  readonly stale_at?: number;
  readonly age_ms?: number;
}

const MAX_REASONS = 10;
const MAX_DEVICES_IN_EVIDENCE = 20;

function combineDevice(verdicts: readonly DeviceVerdict[]): DeviceOutcome {
  const status = verdicts.reduce<CheckStatus>((s, v) => worse(s, v.status), "pass");
  return {
    status,
    reasons: verdicts.flatMap((v) => v.reasons),
    evidence: verdicts.map((v) => v.evidence),
    ...minOf(verdicts.map((v) => v.next_run_at), (n) => ({ next_run_at: n })),
    ...minOf(verdicts.map((v) => v.stale_at), (n) => ({ stale_at: n })),
    ...maxOf(verdicts.map((v) => v.age_ms), (n) => ({ age_ms: n })),
  };
}

function minOf<T>(values: readonly (number | undefined)[], wrap: (n: number) => T): T | Record<string, never> {
  const v = values.filter((x): x is number => x !== undefined);
  return v.length ? wrap(Math.min(...v)) : {};
}

function maxOf<T>(values: readonly (number | undefined)[], wrap: (n: number) => T): T | Record<string, never> {
  const v = values.filter((x): x is number => x !== undefined);
  return v.length ? wrap(Math.max(...v)) : {};
}

function sourceError(a: Extract<SourceAnswer, { error: unknown }>): DeviceOutcome {
  const code = a.error.transient ? R.DEVICE_SOURCE_UNAVAILABLE : R.DEVICE_SOURCE_ERROR;
  return { status: "unknown", reasons: [{ code, message: `${sourceName(a.cfg)}: ${a.error.message}` }] };
}

/**
 * What the devices a subject stands for say about it. `answers` holds one entry per source that
 * applies to the subject (its records for this subject, or its error).
 */
export function evaluateSubject(lookup: Lookup, answers: readonly SourceAnswer[], mode: UserMode, o: EvaluateOptions): SubjectVerdict {
  if (lookup.by === "none") return { status: "unknown", reasons: [{ code: R.DEVICE_NOT_FOUND, message: lookup.what }], evidence: { devices: [] } };
  if (answers.length === 0) return { status: "unknown", reasons: [{ code: R.DEVICE_NOT_FOUND, message: `no configured source applies to ${lookup.what}` }], evidence: { devices: [] } };

  const outcomes: DeviceOutcome[] = [];
  const sources: Record<string, unknown> = {};
  const verdictOf = new Map<DeviceRecord, DeviceVerdict>();
  for (const a of answers) {
    if ("error" in a) {
      outcomes.push(sourceError(a));
      sources[sourceName(a.cfg)] = { error: a.error.message };
      continue;
    }
    sources[sourceName(a.cfg)] = { scanned_at: iso(a.scannedAt) };
    for (const r of a.records) {
      verdictOf.set(r, evaluateRecord(r, a.cfg, a.facts, o));
    }
    if (a.cfg.required && a.records.length === 0) {
      outcomes.push({ status: "unknown", reasons: [{ code: R.DEVICE_NOT_FOUND, message: `${sourceName(a.cfg)} (required) does not know ${lookup.what}` }] });
    }
  }
  const records = [...verdictOf.keys()];
  if (lookup.by === "device") {
    if (records.length > 0) outcomes.push(combineDevice(records.map((r) => verdictOf.get(r)!)));
    else if (!outcomes.some((d) => d.status === "unknown")) outcomes.push({ status: "unknown", reasons: [{ code: R.DEVICE_NOT_FOUND, message: `no source knows ${lookup.what}` }] });
  } else {
    for (const group of groupDevices(records)) outcomes.push(combineDevice(group.map((r) => verdictOf.get(r)!)));
    if (records.length === 0 && outcomes.length === 0) outcomes.push({ status: "unknown", reasons: [{ code: R.DEVICE_NOT_FOUND, message: `no source associates a device with ${lookup.what.replace(/^the devices of /, "")}` }] });
  }

  // A device lookup is one device (its records and any source failure together); a user's devices combine by mode.
  const any = lookup.by === "user" && mode === "any";
  const status = outcomes.reduce<CheckStatus>((s, d) => (any ? (BEST[d.status] < BEST[s] ? d.status : s) : worse(s, d.status)), any ? "fail" : "pass");
  const standing = outcomes.filter((d) => d.status === status);
  const reasons = status === "pass" ? [] : standing.flatMap((d) => d.reasons).filter((r, i, all) => all.findIndex((x) => x.code === r.code && x.message === r.message) === i);
  const shown = reasons.slice(0, MAX_REASONS);
  if (reasons.length > MAX_REASONS) shown.push({ code: shown[0]!.code, message: `…and ${reasons.length - MAX_REASONS} more` });
  const devices = outcomes.flatMap((d) => d.evidence ?? []);
  const ages = standing.map((d) => d.age_ms).filter((x): x is number => x !== undefined);
  const next = outcomes.map((d) => d.next_run_at).filter((x): x is number => x !== undefined && x > o.now);
  const staleAts = standing.map((d) => d.stale_at).filter((x): x is number => x !== undefined);
  return {
    status,
    reasons: shown,
    evidence: {
      mode: lookup.by === "user" ? mode : "device",
      devices: devices.slice(0, MAX_DEVICES_IN_EVIDENCE),
      ...(devices.length > MAX_DEVICES_IN_EVIDENCE ? { devices_total: devices.length } : {}),
      data_age_seconds: ages.length ? Math.round(Math.max(...ages) / 1000) : null,
      sources,
    },
    ...(next.length ? { next_run_at: Math.min(...next) } : {}),
    ...((status === "pass" || status === "warn") && staleAts.length ? { valid_until: Math.min(...staleAts) } : {}),
  };
}

export type { DeviceSourceConfig };
