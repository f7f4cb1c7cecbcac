/**
 * `checks.user_risk_score`: where risk comes from (Entra ID Protection, Okta Identity Threat
 * Protection, and a score vigil computes from sign-in facts), how subjects name their users, and
 * the computed score's rules. Without `sources` the check stays push-only: its results arrive as
 * signals, as before the plugin existed.
 */
import { z } from "zod";
import { boundedDuration, duration } from "../../plugin/schema.ts";
import { templateProblem } from "../../plugin/template.ts";
import { parseCidr } from "../../sources/identity/geo.ts";
import { entraConnectionShape, oktaConnectionShape } from "../../sources/identity/schema.ts";
import { selectorSchema } from "../common/device.ts";

const DAY = 86_400_000;
const HOUR = 3_600_000;

const template = z.string().superRefine((s, ctx) => {
  const problem = templateProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const sourceName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: "expected a short name (letters, digits, _ . -)" });

/** Keys every source entry takes besides its connection. */
const sourceCommonShape = {
  /** Names the source in reasons and evidence; unique within the check. Default its type. */
  name: sourceName.optional(),
  /** A sync younger than this is reused. Default: the interval of the policies using the check (at least 30s). */
  refresh: duration()
    .refine((ms) => ms >= 1_000, { error: 'expected a duration of at least 1s, like "5m"' })
    .optional(),
  /** Subjects the source speaks about (`{id, kind, identity, labels}`). Default every subject. */
  applies_to: selectorSchema.optional(),
};

const entraSource = z
  .object({
    ...entraConnectionShape,
    ...sourceCommonShape,
    /** Read Identity Protection's risky users (`IdentityRiskyUser.Read.All`, Entra ID P2). Default true. */
    risky_users: z.boolean().default(true),
    /** Give each risky user's latest detections as reasons (`IdentityRiskEvent.Read.All`). Default true. */
    detections: z.boolean().default(true),
    /** How far back the first read of detections goes. Default `30d` (at most `90d`). */
    detections_lookback: boundedDuration({ min: HOUR, max: 90 * DAY, fallback: "30d", message: 'expected a duration between 1h and 90d, like "30d"' }),
    /** Detections shown per user, newest first. Default 5. */
    max_detections: z.number().int().min(1).max(20).default(5),
    /** Judge workload subjects by `riskyServicePrincipals` (`IdentityRiskyServicePrincipal.Read.All`, Workload ID Premium). Default false. */
    service_principals: z.boolean().default(false),
  })
  .strict();

const oktaSource = z
  .object({
    ...oktaConnectionShape,
    ...sourceCommonShape,
    /** Read Identity Threat Protection's risk (`user.risk.detect` events). Default true. */
    risk: z.boolean().default(true),
    /** How far back the first read of `user.risk.detect` events goes (the System Log keeps 90 days). Default `30d`. */
    risk_lookback: boundedDuration({ min: HOUR, max: 90 * DAY, fallback: "30d", message: 'expected a duration between 1h and 90d, like "30d"' }),
    /** Risk objects (`GET /api/v1/users/{id}/risk`, `okta.userRisk.read`) read per tick for users whose risk just changed; 0 reads the events only. Default 20. */
    user_lookups: z.number().int().min(0).max(1000).default(20),
  })
  .strict()
  .superRefine((c, ctx) => {
    const auth = c.auth;
    if (auth.type !== "oauth") return;
    const need = ["okta.logs.read", ...(c.risk && c.user_lookups > 0 ? ["okta.userRisk.read"] : [])];
    const missing = need.filter((s) => !auth.scopes.includes(s));
    if (missing.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["auth", "scopes"],
        message: `add ${missing.join(" and ")} to auth.scopes (the service app must be granted ${missing.length === 1 ? "it" : "them"})${missing.includes("okta.userRisk.read") ? ", or set user_lookups: 0 to read risk from the System Log only" : ""}`,
      });
    }
  });

/** One rule of the computed score: its points (0 turns it off) and how fast they decay. */
const rule = (points: number, halfLife: string) => ({
  /** Points the rule adds at full strength; 0 turns it off. */
  points: z.number().min(0).max(1000).default(points),
  /** The points halve every this long after the event. */
  half_life: boundedDuration({ min: 60_000, max: 365 * DAY, fallback: halfLife, message: 'expected a duration between 1m and 365d, like "24h"' }),
});

const networkList = z
  .object({
    /** Names the list in reasons. Required. */
    name: sourceName,
    /** CIDR blocks (`203.0.113.0/24`, `2001:db8::/32`) or addresses. Required. */
    cidrs: z
      .array(
        z.string().refine((s) => parseCidr(s) !== undefined, { error: "expected a CIDR block like 203.0.113.0/24 or an IP address" }),
      )
      .min(1)
      .max(100_000),
    /** Points a sign-in from the list adds. Default 40. */
    points: z.number().min(0).max(1000).default(40),
  })
  .strict();

export const rulesSchema = z
  .object({
    /** Consecutive sign-ins whose great-circle distance over the time between them exceeds `speed_kmh`. */
    impossible_travel: z
      .object({
        ...rule(60, "24h"),
        /** Fastest plausible travel. Default 900 km/h (an airliner's cruising speed). */
        speed_kmh: z.number().min(1).max(100_000).default(900),
        /** Sign-ins closer than this never count (GeoIP places one address tens of km apart at times). Default 100 km. */
        min_distance_km: z.number().min(0).max(20_000).default(100),
      })
      .strict()
      .prefault({}),
    /** At least `count` failed second-factor attempts within `window`. */
    mfa_failures: z
      .object({
        ...rule(30, "6h"),
        /** Failures that count. Default 5. */
        count: z.number().int().min(1).max(64).default(5),
        /** Within this long. Default `1h`. */
        window: boundedDuration({ min: 60_000, max: 7 * DAY, fallback: "1h", message: 'expected a duration between 1m and 7d, like "1h"' }),
      })
      .strict()
      .prefault({}),
    /** A sign-in from a country the user had not signed in from (after at least `min_history` sign-ins). */
    new_country: z
      .object({
        ...rule(20, "3d"),
        /** Sign-ins vigil must have seen before a country can be new. Default 3. */
        min_history: z.number().int().min(1).max(100).default(3),
      })
      .strict()
      .prefault({}),
    /** A sign-in from a listed network; each list has its own points. */
    risky_networks: z
      .object({
        /** The points halve every this long after the sign-in. Default `24h`. */
        half_life: boundedDuration({ min: 60_000, max: 365 * DAY, fallback: "24h", message: 'expected a duration between 1m and 365d, like "24h"' }),
        lists: z.array(networkList).max(64).default([]),
      })
      .strict()
      .prefault({}),
    /** The account's password changed or was reset (Entra `lastPasswordChangeDateTime`, Okta `passwordChanged`). */
    recent_reset: z.object(rule(15, "24h")).strict().prefault({}),
    /** The providers' own levels as points (never decayed: the provider's current level is current). */
    provider: z
      .object({
        low: z.number().min(0).max(1000).default(10),
        medium: z.number().min(0).max(1000).default(40),
        high: z.number().min(0).max(1000).default(70),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type ComputedRules = z.output<typeof rulesSchema>;

const computedSource = z
  .object({
    type: z.literal("computed"),
    ...sourceCommonShape,
    /** The `entra`/`okta` sources of this check whose sign-ins and levels feed the score. Default all of them. */
    from: z.array(sourceName).min(1).optional(),
    /** Score → level: at least `high` is high, at least `medium` is medium. Default 40 and 70. */
    thresholds: z
      .object({
        medium: z.number().min(0).max(1000).default(40),
        high: z.number().min(0).max(1000).default(70),
      })
      .strict()
      .prefault({})
      .refine((t) => t.high > t.medium, { error: "thresholds.high must be above thresholds.medium" }),
    rules: rulesSchema.prefault({}),
  })
  .strict();

export const riskSourceSchema = z.discriminatedUnion("type", [entraSource, oktaSource, computedSource]);

export type RiskSourceConfig = z.output<typeof riskSourceSchema>;
export type EntraRiskSourceConfig = z.output<typeof entraSource>;
export type OktaRiskSourceConfig = z.output<typeof oktaSource>;
export type ComputedSourceConfig = z.output<typeof computedSource>;

/** Defaults of `match:`. */
export const DEFAULT_RISK_MATCH = {
  user: ["{{attributes.entra_id}}", "{{attributes.okta_id}}", "{{identity}}", "{{attributes.user_principal_name}}", "{{attributes.email}}"],
  workload: ["{{attributes.entra_sp_id}}", "{{attributes.app_id}}", "{{identity}}"],
} as const;

export const riskMatchSchema = z
  .object({
    /** Values of a user (or session) subject looked up among the providers' user ids, logins and e-mails. Default the attributes entra_id, okta_id, the identity, user_principal_name, email. */
    user: z.array(template).min(1).default([...DEFAULT_RISK_MATCH.user]),
    /** Values of a workload subject looked up among service principals' ids and app ids. Default entra_sp_id, app_id, the identity. */
    workload: z.array(template).min(1).default([...DEFAULT_RISK_MATCH.workload]),
  })
  .strict();

export type RiskMatch = z.output<typeof riskMatchSchema>;

export const userRiskScoreConfigSchema = z
  .object({
    /** Where risk comes from. Without it the check is push-only (results arrive as signals). */
    sources: z.array(riskSourceSchema).min(1).optional(),
    /** How subjects name their users. */
    match: riskMatchSchema.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const names = new Map<string, number>();
    c.sources?.forEach((s, i) => {
      const name = s.name ?? s.type;
      const first = names.get(name);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["sources", i, "name"], message: `source name "${name}" is already used by sources[${first}]; give each source of one type a name` });
      else names.set(name, i);
    });
    c.sources?.forEach((s, i) => {
      if (s.type !== "computed") return;
      const feeders = c.sources!.filter((x) => x.type !== "computed").map((x) => x.name ?? x.type);
      if (feeders.length === 0) ctx.addIssue({ code: "custom", path: ["sources", i], message: "a computed source needs an entra or okta source in this check to read sign-ins from" });
      for (const [j, from] of (s.from ?? []).entries()) {
        if (!feeders.includes(from)) ctx.addIssue({ code: "custom", path: ["sources", i, "from", j], message: `no entra or okta source named "${from}" in this check (known: ${feeders.join(", ") || "none"})` });
      }
    });
  });

export type UserRiskScoreConfig = z.output<typeof userRiskScoreConfigSchema>;
