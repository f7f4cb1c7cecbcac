/**
 * user_risk_score: how much the identity providers (and vigil itself, from sign-in facts) believe
 * a user is compromised — Microsoft Entra ID Protection (risky users, their detections, risky
 * service principals for workloads), Okta Identity Threat Protection (`user.risk.detect` and users'
 * risk objects), and an explainable computed score. The stricter word wins; provider verdicts are
 * never re-scored.
 *
 * gather (`src/sources/identity/`: shared, incremental syncs) → match subjects to users → evaluate
 * (`evaluate.ts`, `computed.ts`: pure). Without `sources` the check stays push-only.
 */
import type { Check, CheckFactory } from "../../plugin/check.ts";
import type { PluginContext } from "../../plugin/context.ts";
import type { Lease } from "../../plugin/shared.ts";
import { openIdentitySource, type IdentitySource } from "../../sources/identity/open.ts";
import { userRiskScoreConfigSchema, type UserRiskScoreConfig } from "./config.ts";
import { USER_RISK_DOCS, USER_RISK_REASONS } from "./reasons.ts";

export { USER_RISK_REASONS } from "./reasons.ts";
export { userRiskScoreConfigSchema, type UserRiskScoreConfig } from "./config.ts";

export const userRiskScoreCheck: CheckFactory<UserRiskScoreConfig> = {
  type: "user_risk_score",
  description: "User risk from Entra ID Protection, Okta Identity Threat Protection and a computed score of sign-in facts; push-only without sources.",
  configSchema: userRiskScoreConfigSchema,
  reasons: Object.values(USER_RISK_REASONS).map((code) => ({ code, doc: USER_RISK_DOCS[code] })),
  pulls: (config) => config.sources !== undefined,
  create(config: UserRiskScoreConfig, ctx: PluginContext): Check {
    // The sources are opened (and shared) as the check is created, so a reload that keeps a
    // source's settings hands its syncs to the new check; the running half loads alongside.
    const leases = new Map<number, Lease<Promise<IdentitySource>>>();
    (config.sources ?? []).forEach((cfg, i) => {
      if (cfg.type !== "computed") leases.set(i, openIdentitySource(cfg, ctx));
    });
    const impl = import("./check.ts").then((m) => m.createUserRiskCheck(config, ctx, leases));
    impl.catch(() => undefined);
    return {
      run: async (subjects, run) => (await impl).run(subjects, run),
      stop: async () => {
        for (const l of leases.values()) l.release();
      },
    };
  },
};
