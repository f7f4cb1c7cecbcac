/**
 * The running half of device_compliance: gather each source's current scan (shared with the
 * inventories and other checks that read the same source, so a tick costs one scan, not one call per
 * subject), find each subject's devices in it, and judge them with the pure `evaluate.ts`.
 *
 * A source that cannot be read gives `unknown` for the subjects it applies to (never a silent pass);
 * the run's other sources and subjects are unaffected, and the failure is counted in
 * `vigil_check_errors_total{check,reason}` and logged once per new failure.
 */
import type { Check } from "../../plugin/check.ts";
import type { CheckRunContext, PluginContext } from "../../plugin/context.ts";
import type { Lease } from "../../plugin/shared.ts";
import type { CheckResult, Subject } from "../../policy/model.ts";
import { compileSelector, type SelectorSpec, type SubjectMatcher } from "../../policy/selector.ts";
import { errorMessage, isTransient } from "../../errors.ts";
import { scrub } from "../../util/redact.ts";
import { AID_RE } from "../../sources/device/crowdstrike.ts";
import { lookupFor, type Lookup } from "../../sources/device/match.ts";
import { DeviceIndex, type DeviceRecord } from "../../sources/device/model.ts";
import type { DeviceSource } from "../../sources/device/open.ts";
import type { DeviceComplianceConfig, DeviceSourceConfig } from "./config.ts";
import { evaluateSubject, sourceName, type SourceAnswer, type SourceFacts } from "./evaluate.ts";
import { SourceErrorMetrics } from "../common/source-errors.ts";
import { defaultRefresh, deviceList } from "../common/device.ts";

const TYPE = "device_compliance";

interface OpenSource {
  readonly cfg: DeviceSourceConfig;
  readonly lease: Lease<Promise<DeviceSource>>;
  readonly applies: SubjectMatcher;
  /** The last failure logged, so a failure held for many runs is logged once. */
  lastLogged?: unknown;
}

/** One source's data for a run: an index to look devices up in, or why there is none. */
type Gathered =
  | { readonly index: DeviceIndex; readonly facts: SourceFacts; readonly scannedAt: number }
  | { readonly error: unknown };

/** `leases`: the check's sources, opened by the factory in `config.sources` order; the factory releases them. */
export function createDeviceComplianceCheck(config: DeviceComplianceConfig, ctx: PluginContext, leases: readonly Lease<Promise<DeviceSource>>[]): Check {
  const metrics = new SourceErrorMetrics(ctx.meter);
  const sources: OpenSource[] = (config.sources ?? []).map((cfg, i) => ({
    cfg,
    lease: leases[i]!,
    applies: cfg.applies_to ? compileSelector(cfg.applies_to as SelectorSpec) : () => true,
  }));

  async function gather(s: OpenSource, lookups: ReadonlyMap<Subject, Lookup>, run: CheckRunContext, refresh: number): Promise<Gathered> {
    const src = await s.lease.value;
    const cfg = s.cfg;
    switch (src.type) {
      case "intune": {
        const devices = await src.devices.get(refresh, run.signal);
        const settings = cfg.type === "intune" && cfg.no_policy_check ? (await src.settings.get(refresh, run.signal)).value : undefined;
        return { index: devices.value.index, facts: settings ? { intune: settings } : {}, scannedAt: devices.at };
      }
      case "fleet": {
        const hosts = await src.hosts.get(refresh, run.signal);
        const policies = cfg.type === "fleet" && cfg.policies !== "all" ? (await src.policyResults(cfg.policies === "critical" ? "critical" : cfg.policies.map((p) => (typeof p === "number" ? p : p.id))).get(refresh, run.signal)).value : undefined;
        return { index: hosts.value.index, facts: policies ? { fleet: policies } : {}, scannedAt: hosts.at };
      }
      case "jamf":
      case "host": {
        const list = await deviceList(src, refresh, run.signal);
        return { index: list.value.index, facts: {}, scannedAt: list.at };
      }
      case "crowdstrike": {
        // ZTA is asked per agent id: the ids this run's subjects name, batched.
        const aids: string[] = [];
        for (const [subject, lookup] of lookups) if (lookup.by === "device" && s.applies(subject)) aids.push(...lookup.values.filter((v) => AID_RE.test(v)));
        const { records, at } = await src.lookup(aids, refresh, run.signal, Date.now() + run.timeoutMs);
        return { index: new DeviceIndex([...records.values()].filter((r): r is DeviceRecord => r !== null)), facts: {}, scannedAt: at };
      }
    }
  }

  return {
    async run(subjects: readonly Subject[], run: CheckRunContext): Promise<CheckResult[]> {
      const name = run.check ?? TYPE;
      const refresh = defaultRefresh(run.ttlMs);
      const lookups = new Map(subjects.map((s) => [s, lookupFor(s, config.match, config.users)] as const));
      const gathered = await Promise.all(
        sources.map((s) =>
          gather(s, lookups, run, s.cfg.refresh ?? refresh).catch((error: unknown): Gathered => {
            metrics.count(name, error);
            if (s.lastLogged !== error) {
              s.lastLogged = error;
              ctx.logger.warn({ check: name, source: sourceName(s.cfg), transient: isTransient(error) }, `device source ${sourceName(s.cfg)} cannot be read: ${scrub(errorMessage(error))}`);
            }
            return { error };
          }),
        ),
      );
      const now = run.clock.now();
      const results: CheckResult[] = [];
      for (const subject of subjects) {
        const lookup = lookups.get(subject)!;
        const answers: SourceAnswer[] = [];
        sources.forEach((s, i) => {
          if (!s.applies(subject)) return;
          const g = gathered[i]!;
          if ("error" in g) {
            answers.push({ cfg: s.cfg, error: { transient: isTransient(g.error), message: scrub(errorMessage(g.error)) } });
            return;
          }
          const records = lookup.by === "device" ? g.index.byKeys(lookup.values) : lookup.by === "user" ? g.index.byUsers(lookup.values) : [];
          answers.push({ cfg: s.cfg, records, facts: g.facts, scannedAt: g.scannedAt });
        });
        const v = evaluateSubject(lookup, answers, config.users, { now, onStale: config.on_stale });
        const expires = Math.min(now + run.ttlMs, v.valid_until !== undefined && v.valid_until > now ? v.valid_until : Infinity);
        // A change the next scheduled run will see anyway needs no re-check of its own: asking for one
        // per device would queue a job per device (a hundred thousand) instead of one per hundred.
        const recheck = v.next_run_at !== undefined && v.next_run_at - now < run.ttlMs / 2 ? v.next_run_at : undefined;
        results.push({
          check: name,
          subject: subject.id,
          status: v.status,
          reasons: v.reasons,
          evidence: v.evidence,
          observed_at: now,
          expires_at: expires,
          ...(recheck !== undefined ? { next_run_at: recheck } : {}),
          source: "pull",
        });
      }
      return results;
    },
  };
}
