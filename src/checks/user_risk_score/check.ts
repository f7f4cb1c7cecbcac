/**
 * The running half of user_risk_score: gather what each source knows (shared syncs, one per source
 * and interval, whatever the number of subjects), find each subject's user in it, and judge with
 * the pure `evaluate.ts` and `computed.ts`.
 *
 * A source that cannot be read gives `unknown` for the subjects it applies to (never a silent pass),
 * with a reason that says why (`USER_RISK_NOT_LICENSED`, `USER_RISK_PERMISSION_DENIED` naming the
 * permission, `USER_RISK_SOURCE_UNAVAILABLE`, `USER_RISK_SOURCE_ERROR`); the failure is counted in
 * `vigil_check_errors_total{check,reason}` and logged once per new failure.
 */
import { errorMessage, isTransient, UpstreamError } from "../../errors.ts";
import type { Check } from "../../plugin/check.ts";
import type { CheckRunContext, PluginContext } from "../../plugin/context.ts";
import type { Lease } from "../../plugin/shared.ts";
import { compileTemplate } from "../../plugin/template.ts";
import type { CheckResult, Subject } from "../../policy/model.ts";
import { compileSelector, type SelectorSpec, type SubjectMatcher } from "../../policy/selector.ts";
import type { Directory } from "../../sources/identity/directory.ts";
import type { DetectionSet, RiskSet } from "../../sources/identity/entra.ts";
import { NetworkList } from "../../sources/identity/geo.ts";
import type { ActivityStore, IdentityUser } from "../../sources/identity/model.ts";
import type { OktaRiskSet } from "../../sources/identity/okta.ts";
import type { IdentitySource } from "../../sources/identity/open.ts";
import { scrub } from "../../util/redact.ts";
import { defaultRefresh } from "../common/device.ts";
import { SourceErrorMetrics } from "../common/source-errors.ts";
import { computeScore, type ComputedSourceFacts, type ProviderLevel } from "./computed.ts";
import type { ComputedSourceConfig, EntraRiskSourceConfig, OktaRiskSourceConfig, RiskMatch, RiskSourceConfig, UserRiskScoreConfig } from "./config.ts";
import { combine, computedVerdict, entraVerdict, errorVerdict, oktaVerdict, type Verdict } from "./evaluate.ts";
import { USER_RISK_REASONS as R } from "./reasons.ts";

const TYPE = "user_risk_score";

/** A part of a source's data for one run: its value and when it was read, or why it could not be. */
type Part<T> = { readonly value: T; readonly at: number } | { readonly error: unknown } | undefined;

interface Gathered {
  riskyUsers?: Part<RiskSet>;
  detections?: Part<DetectionSet>;
  riskySps?: Part<RiskSet>;
  oktaRisk?: Part<OktaRiskSet>;
  activity?: Part<ActivityStore>;
  directory?: Part<Directory<IdentityUser>>;
}

interface OpenSource {
  readonly cfg: RiskSourceConfig;
  readonly name: string;
  readonly lease: Lease<Promise<IdentitySource>> | undefined;
  readonly applies: SubjectMatcher;
  /** The last failure logged, so a failure held for many runs is logged once. */
  lastLogged?: unknown;
}

/** The reason code for a source that could not be read. */
export function errorCode(err: unknown): string {
  if (err instanceof UpstreamError) {
    if ((err.details as { licence?: string }).licence !== undefined) return R.USER_RISK_NOT_LICENSED;
    if (err.status === 401 || err.status === 403) return R.USER_RISK_PERMISSION_DENIED;
    if (err.transient) return R.USER_RISK_SOURCE_UNAVAILABLE;
    return R.USER_RISK_SOURCE_ERROR;
  }
  return isTransient(err) ? R.USER_RISK_SOURCE_UNAVAILABLE : R.USER_RISK_SOURCE_ERROR;
}

/** Renders lookup templates, lower-cased, without empties and duplicates. */
function renderer(templates: readonly string[]): (s: Subject) => string[] {
  const fns = templates.map(compileTemplate);
  return (subject) => {
    const out: string[] = [];
    for (const fn of fns) {
      const v = fn(subject)?.trim().toLowerCase();
      if (v && v.length <= 512 && !out.includes(v)) out.push(v);
    }
    return out;
  };
}

function networksOf(cfg: ComputedSourceConfig): (NetworkList & { readonly points: number })[] {
  return cfg.rules.risky_networks.lists.map((l) => Object.assign(new NetworkList(l.name, l.cidrs), { points: l.points }));
}

/** `leases`: by source index, for the entra and okta sources (opened by the factory, which releases them). */
export function createUserRiskCheck(config: UserRiskScoreConfig, ctx: PluginContext, leases: ReadonlyMap<number, Lease<Promise<IdentitySource>>>): Check {
  const metrics = new SourceErrorMetrics(ctx.meter);
  const sources: OpenSource[] = (config.sources ?? []).map((cfg, i) => ({
    cfg,
    name: cfg.name ?? cfg.type,
    lease: leases.get(i),
    applies: cfg.applies_to ? compileSelector(cfg.applies_to as SelectorSpec) : () => true,
  }));
  const computed = sources.filter((s): s is OpenSource & { cfg: ComputedSourceConfig } => s.cfg.type === "computed");
  const feeders = (c: ComputedSourceConfig) => sources.filter((s) => s.cfg.type !== "computed" && (c.from === undefined || c.from.includes(s.name)));
  const networks = new Map(computed.map((c) => [c, networksOf(c.cfg)]));
  const match: RiskMatch = config.match;
  const userKeys = renderer(match.user);
  const workloadKeys = renderer(match.workload);

  const fail = (s: OpenSource, name: string, error: unknown) => {
    metrics.count(name, error);
    if (s.lastLogged !== error) {
      s.lastLogged = error;
      ctx.logger.warn({ check: name, source: s.name, transient: isTransient(error) }, `identity source ${s.name} cannot be read: ${scrub(errorMessage(error))}`);
    }
  };

  async function part<T>(s: OpenSource, name: string, get: () => Promise<{ value: T; at: number }>): Promise<Part<T>> {
    try {
      const r = await get();
      return { value: r.value, at: r.at };
    } catch (error) {
      fail(s, name, error);
      return { error };
    }
  }

  /** What each source must read this run, given the subjects it applies to. */
  async function gather(subjects: readonly Subject[], run: CheckRunContext, name: string): Promise<Map<OpenSource, Gathered>> {
    const refresh = defaultRefresh(run.ttlMs);
    const users = (s: OpenSource) => subjects.some((x) => (x.kind === "user" || x.kind === "session") && s.applies(x));
    const workloads = (s: OpenSource) => subjects.some((x) => x.kind === "workload" && s.applies(x));
    const out = new Map<OpenSource, Gathered>();
    await Promise.all(
      sources.map(async (s) => {
        if (s.cfg.type === "computed" || !s.lease) return;
        const cfg = s.cfg;
        const every = cfg.refresh ?? refresh;
        const src = await s.lease.value;
        const feeds = computed.filter((c) => feeders(c.cfg).includes(s) && users(c));
        const g: Gathered = {};
        const jobs: Promise<void>[] = [];
        if (src.type === "entra" && cfg.type === "entra") {
          if (cfg.risky_users && users(s)) {
            jobs.push(part(s, name, () => src.riskyUsers().get(every, run.signal)).then((p) => void (g.riskyUsers = p)));
            if (cfg.detections) jobs.push(part(s, name, () => src.detections(cfg.detections_lookback, cfg.max_detections).get(every, run.signal)).then((p) => void (g.detections = p)));
          }
          if (cfg.service_principals && workloads(s)) jobs.push(part(s, name, () => src.riskyServicePrincipals().get(every, run.signal)).then((p) => void (g.riskySps = p)));
          if (feeds.length > 0) {
            // The directory matches subjects that name their users by login, and holds password changes.
            jobs.push(part(s, name, () => src.signIns().get(every, run.signal)).then((p) => void (g.activity = p)));
            jobs.push(part(s, name, () => src.users().get(every, run.signal)).then((p) => void (g.directory = p)));
          }
        } else if (src.type === "okta" && cfg.type === "okta") {
          if (cfg.risk && users(s)) jobs.push(part(s, name, () => src.risk(cfg.risk_lookback, cfg.user_lookups).get(every, run.signal)).then((p) => void (g.oktaRisk = p)));
          if (feeds.length > 0) {
            jobs.push(part(s, name, () => src.signIns().get(every, run.signal)).then((p) => void (g.activity = p)));
            jobs.push(part(s, name, () => src.users().get(every, run.signal)).then((p) => void (g.directory = p)));
          }
        }
        await Promise.all(jobs);
        out.set(s, g);
      }),
    );
    return out;
  }

  /** An entra or okta source's verdict on a user subject, or undefined when it gives none. */
  function providerVerdict(s: OpenSource, g: Gathered, keys: readonly string[], now: number): Verdict | undefined {
    const cfg = s.cfg;
    if (cfg.type === "entra") {
      const p = g.riskyUsers;
      if (p === undefined) return undefined;
      if ((p !== undefined && "error" in p)) return errorVerdict(s.name, "entra", errorCode(p.error), scrub(errorMessage(p.error)));
      const d = g.detections;
      if ((d !== undefined && "error" in d)) return errorVerdict(s.name, "entra", errorCode(d.error), scrub(errorMessage(d.error)));
      const risk = p.value.find(keys);
      return entraVerdict(s.name, risk, risk && d ? d.value.of(risk.id) : [], "user", p.at, now);
    }
    if (cfg.type === "okta") {
      const p = g.oktaRisk;
      if (p === undefined) return undefined;
      if ((p !== undefined && "error" in p)) return errorVerdict(s.name, "okta", errorCode(p.error), scrub(errorMessage(p.error)));
      return oktaVerdict(s.name, p.value.find(keys), p.at, now);
    }
    return undefined;
  }

  function computedFor(c: OpenSource & { cfg: ComputedSourceConfig }, gathered: Map<OpenSource, Gathered>, byName: Map<string, Verdict>, keys: readonly string[], now: number): Verdict {
    const facts: ComputedSourceFacts[] = [];
    let oldest: number | undefined;
    for (const f of feeders(c.cfg)) {
      const g = gathered.get(f) ?? {};
      const a = g.activity;
      if ((a !== undefined && "error" in a)) return errorVerdict(c.name, "computed", errorCode(a.error), `sign-ins from ${f.name}: ${scrub(errorMessage(a.error))}`);
      const d = g.directory;
      if ((d !== undefined && "error" in d)) return errorVerdict(c.name, "computed", errorCode(d.error), `users of ${f.name}: ${scrub(errorMessage(d.error))}`);
      const v = byName.get(f.name);
      const level = v && v.level !== "unknown" ? (v.level as ProviderLevel) : undefined;
      if (a !== undefined) oldest = oldest === undefined ? a.at : Math.min(oldest, a.at);
      const user = d?.value.find(keys);
      facts.push({ name: f.name, activity: a?.value.find(user ? [user.id, ...keys] : keys), passwordChangedAt: user?.passwordChangedAt, level });
    }
    const score = computeScore(facts, c.cfg.rules, c.cfg.thresholds, networks.get(c) ?? [], now);
    return computedVerdict(c.name, score, oldest === undefined ? undefined : Math.max(0, now - oldest));
  }

  function judge(subject: Subject, gathered: Map<OpenSource, Gathered>, now: number): ReturnType<typeof combine> | undefined {
    if (subject.kind === "device") return undefined;
    const verdicts: Verdict[] = [];
    if (subject.kind === "workload") {
      const keys = workloadKeys(subject);
      for (const s of sources) {
        if (s.cfg.type !== "entra" || !s.applies(subject)) continue;
        const p = gathered.get(s)?.riskySps;
        if (p === undefined) continue;
        if (keys.length === 0) return { status: "unknown", reasons: [{ code: R.USER_NOT_FOUND, message: `workload ${subject.id} names no service principal (match.workload)` }], evidence: {} };
        verdicts.push((p !== undefined && "error" in p) ? errorVerdict(s.name, "entra", errorCode(p.error), scrub(errorMessage(p.error))) : entraVerdict(s.name, p.value.find(keys), [], "workload", p.at, now));
      }
      return verdicts.length ? combine(verdicts, undefined) : undefined;
    }
    const keys = userKeys(subject);
    const applicable = sources.some((s) => s.applies(subject) && (s.cfg.type === "computed" || gathered.get(s)?.riskyUsers !== undefined || gathered.get(s)?.oktaRisk !== undefined));
    if (!applicable) return undefined;
    if (keys.length === 0) return { status: "unknown", reasons: [{ code: R.USER_NOT_FOUND, message: `${subject.kind} ${subject.id} names no user (match.user: no id, login or e-mail)` }], evidence: {} };
    const byName = new Map<string, Verdict>();
    for (const s of sources) {
      if (s.cfg.type === "computed") continue;
      const g = gathered.get(s);
      if (!g) continue;
      const v = providerVerdict(s, g, keys, now);
      if (v) byName.set(s.name, v);
      if (v && s.applies(subject)) verdicts.push(v);
    }
    for (const c of computed) if (c.applies(subject)) verdicts.push(computedFor(c, gathered, byName, keys, now));
    if (verdicts.length === 0) return undefined;
    const enabled = subject.attributes.account_enabled;
    return combine(verdicts, typeof enabled === "boolean" ? enabled : undefined);
  }

  return {
    async run(subjects: readonly Subject[], run: CheckRunContext): Promise<CheckResult[]> {
      const name = run.check ?? TYPE;
      const gathered = await gather(subjects, run, name);
      const now = run.clock.now();
      return subjects.map((subject): CheckResult => {
        const v = judge(subject, gathered, now) ?? { status: "pass", risk: "low", reasons: [], evidence: { applicable: false } };
        return {
          check: name,
          subject: subject.id,
          status: v.status,
          ...(v.risk !== undefined ? { risk: v.risk } : {}),
          reasons: v.reasons,
          evidence: v.evidence,
          observed_at: now,
          expires_at: now + run.ttlMs,
          source: "pull",
        };
      });
    },
  };
}

export type { EntraRiskSourceConfig, OktaRiskSourceConfig };
