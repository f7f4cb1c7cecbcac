/**
 * The computed risk score: an explainable sum of points from facts vigil already has about a user's
 * sign-ins, each rule contributing at most once per source (its strongest instance), each
 * contribution decaying with the age of its event (the points halve every `half_life`), the sum
 * mapped to low/medium/high by thresholds. Pure: `now` comes in, so every rule is table-tested.
 *
 * Rules (docs/checks.md has the defaults): impossible travel between consecutive located sign-ins
 * (great-circle distance over time above `speed_kmh`, never for sign-ins closer than
 * `min_distance_km`), repeated MFA failures within a window, a new country, a sign-in from a listed
 * network, a recent password reset, and the providers' own levels as points (not decayed: a
 * provider's current level is current).
 */
import type { RiskLevel } from "../../policy/model.ts";
import { distanceKm, type NetworkList } from "../../sources/identity/geo.ts";
import type { SignIn, UserActivity } from "../../sources/identity/model.ts";
import type { ComputedRules } from "./config.ts";
import { USER_RISK_REASONS as R } from "./reasons.ts";

export type RuleName = "impossible_travel" | "mfa_failures" | "new_country" | "risky_networks" | "recent_reset" | "provider";

const CODES: Readonly<Record<RuleName, string>> = {
  impossible_travel: R.USER_IMPOSSIBLE_TRAVEL,
  mfa_failures: R.USER_MFA_FAILURES,
  new_country: R.USER_NEW_COUNTRY,
  risky_networks: R.USER_RISKY_NETWORK,
  recent_reset: R.USER_RECENTLY_RESET,
  provider: R.USER_PROVIDER_RISK,
};

/** A provider's own level, as its verdict gave it. */
export type ProviderLevel = "none" | "low" | "medium" | "high";

/** What one feeding source knows of the user. */
export interface ComputedSourceFacts {
  readonly name: string;
  readonly activity: UserActivity | undefined;
  readonly passwordChangedAt: number | undefined;
  /** The provider's verdict level for the user, when it gave one. */
  readonly level: ProviderLevel | undefined;
}

/** One rule's part in the score. */
export interface Contribution {
  readonly rule: RuleName;
  readonly code: string;
  /** The source whose facts it stands on. */
  readonly source: string;
  /** Points at full strength. */
  readonly points: number;
  /** Points after decay: what the score adds. */
  readonly weight: number;
  /** The event's time, epoch ms (undefined for provider levels, which do not decay). */
  readonly at: number | undefined;
  readonly message: string;
}

export interface ComputedScore {
  readonly score: number;
  readonly level: RiskLevel;
  /** The thresholds the level was read against. */
  readonly thresholds?: Thresholds;
  /** Strongest first. */
  readonly contributions: readonly Contribution[];
}

export interface Thresholds {
  readonly medium: number;
  readonly high: number;
}

/** Contributions decayed below this are left out (and add nothing). */
const NEGLIGIBLE = 0.5;

const round1 = (n: number) => Math.round(n * 10) / 10;

/** `points` halved every `halfLife` since `at`. */
export function decayed(points: number, halfLife: number, at: number, now: number): number {
  const age = Math.max(0, now - at);
  return points * 2 ** (-age / halfLife);
}

function human(ms: number): string {
  const m = Math.round(ms / 60_000);
  if (m < 120) return `${m} min`;
  const h = ms / 3_600_000;
  if (h < 48) return `${round1(h)} h`;
  return `${round1(h / 24)} d`;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

function place(s: SignIn): string {
  const where = [s.city, s.country].filter((x) => x !== undefined).join(", ");
  return where !== "" ? where : `${round1(s.lat!)},${round1(s.lon!)}`;
}

/** The strongest candidate of a rule, or undefined. */
function strongest(cands: readonly Contribution[]): Contribution | undefined {
  let best: Contribution | undefined;
  for (const c of cands) if (c.weight >= NEGLIGIBLE && (!best || c.weight > best.weight)) best = c;
  return best;
}

function contribution(rule: RuleName, source: string, points: number, halfLife: number | undefined, at: number | undefined, now: number, message: string): Contribution {
  const weight = halfLife === undefined || at === undefined ? points : decayed(points, halfLife, at, now);
  const decay = halfLife !== undefined && at !== undefined && weight < points ? ` (${points} points, ${round1(weight)} after ${human(now - at)}; half-life ${human(halfLife)})` : ` (${points} points)`;
  return { rule, code: CODES[rule], source, points, weight: round1(weight), at, message: `${source}: ${message}${decay}` };
}

/** Impossible travel: consecutive located sign-ins faster apart than `speed_kmh`, and at least `min_distance_km`. */
export function travel(source: string, recent: readonly SignIn[], rules: ComputedRules["impossible_travel"], now: number): Contribution | undefined {
  if (rules.points <= 0) return undefined;
  const located = recent.filter((s) => s.lat !== undefined && s.lon !== undefined);
  const cands: Contribution[] = [];
  for (let i = 1; i < located.length; i++) {
    const a = located[i - 1]!;
    const b = located[i]!;
    const km = distanceKm(a.lat!, a.lon!, b.lat!, b.lon!);
    if (km < rules.min_distance_km) continue;
    const hours = (b.at - a.at) / 3_600_000;
    const speed = hours > 0 ? km / hours : Number.POSITIVE_INFINITY;
    if (speed <= rules.speed_kmh) continue;
    const shown = Number.isFinite(speed) ? `${Math.round(speed)} km/h` : "at the same instant";
    cands.push(
      contribution("impossible_travel", source, rules.points, rules.half_life, b.at, now, `impossible travel: ${Math.round(km)} km from ${place(a)} (${iso(a.at)}) to ${place(b)} (${iso(b.at)}) in ${human(b.at - a.at)} — ${shown}, faster than ${rules.speed_kmh} km/h`),
    );
  }
  return strongest(cands);
}

/** At least `count` MFA failures within `window`. */
export function mfaFailures(source: string, failures: readonly number[], rules: ComputedRules["mfa_failures"], now: number): Contribution | undefined {
  if (rules.points <= 0) return undefined;
  const cands: Contribution[] = [];
  let lo = 0;
  for (let hi = 0; hi < failures.length; hi++) {
    const t = failures[hi]!;
    while (failures[lo]! <= t - rules.window) lo++;
    const n = hi - lo + 1;
    if (n >= rules.count) cands.push(contribution("mfa_failures", source, rules.points, rules.half_life, t, now, `${n} failed second-factor attempts within ${human(rules.window)} (the last at ${iso(t)})`));
  }
  return strongest(cands);
}

/** A country first seen after at least `min_history` sign-ins. */
export function newCountry(source: string, activity: UserActivity, rules: ComputedRules["new_country"], now: number): Contribution | undefined {
  if (rules.points <= 0) return undefined;
  const others = (code: string) => activity.countries.filter((c) => c.code !== code).map((c) => c.code);
  const cands = activity.countries
    .filter((c) => c.prior >= rules.min_history)
    .map((c) => {
      const before = others(c.code);
      return contribution("new_country", source, rules.points, rules.half_life, c.first, now, `first sign-in from ${c.code} at ${iso(c.first)}, after ${c.prior} sign-in(s)${before.length ? ` from ${before.join(", ")}` : ""}`);
    });
  return strongest(cands);
}

/** A recent sign-in from a listed network (each list its own points). */
export function riskyNetwork(source: string, recent: readonly SignIn[], rules: ComputedRules["risky_networks"], networks: readonly (NetworkList & { readonly points: number })[], now: number): Contribution | undefined {
  const cands: Contribution[] = [];
  for (const s of recent) {
    for (const n of networks) {
      if (n.points > 0 && n.has(s.ip)) cands.push(contribution("risky_networks", source, n.points, rules.half_life, s.at, now, `sign-in from ${s.ip} (risky network ${n.name}) at ${iso(s.at)}`));
    }
  }
  return strongest(cands);
}

/** The password changed or was reset. */
export function recentReset(source: string, at: number | undefined, rules: ComputedRules["recent_reset"], now: number): Contribution | undefined {
  if (rules.points <= 0 || at === undefined || at > now + 60_000) return undefined;
  return strongest([contribution("recent_reset", source, rules.points, rules.half_life, at, now, `password changed or reset at ${iso(at)}`)]);
}

/** The provider's own level as points. */
export function providerLevel(source: string, level: ProviderLevel | undefined, rules: ComputedRules["provider"], now: number): Contribution | undefined {
  if (level === undefined || level === "none") return undefined;
  const points = rules[level];
  if (points <= 0) return undefined;
  return strongest([contribution("provider", source, points, undefined, undefined, now, `the provider rates the user ${level}`)]);
}

/** The score, its level and every contribution. */
export function computeScore(facts: readonly ComputedSourceFacts[], rules: ComputedRules, thresholds: Thresholds, networks: readonly (NetworkList & { readonly points: number })[], now: number): ComputedScore {
  const out: Contribution[] = [];
  const add = (c: Contribution | undefined) => {
    if (c) out.push(c);
  };
  for (const f of facts) {
    const a = f.activity;
    if (a) {
      add(travel(f.name, a.recent, rules.impossible_travel, now));
      add(mfaFailures(f.name, a.mfaFailures, rules.mfa_failures, now));
      add(newCountry(f.name, a, rules.new_country, now));
      add(riskyNetwork(f.name, a.recent, rules.risky_networks, networks, now));
    }
    add(recentReset(f.name, f.passwordChangedAt, rules.recent_reset, now));
    add(providerLevel(f.name, f.level, rules.provider, now));
  }
  out.sort((x, y) => y.weight - x.weight);
  const score = round1(out.reduce((s, c) => s + c.weight, 0));
  const level: RiskLevel = score >= thresholds.high ? "high" : score >= thresholds.medium ? "medium" : "low";
  return { score, level, thresholds, contributions: out };
}
