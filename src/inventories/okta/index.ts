import { z } from "zod";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import { openIdentitySource } from "../../sources/identity/open.ts";
import { oktaConnectionShape } from "../../sources/identity/schema.ts";
import { identityInventoryShape, IdentitySubjects, resolveMapping, signInsOrLast, userSubject } from "../common/identity.ts";

// `type` is the inventory entry's own key, taken off before its config is validated.
const { type: _type, ...connection } = oktaConnectionShape;

const OKTA_ID = /^[A-Za-z0-9]{1,64}$/;
const STATUSES = ["STAGED", "PROVISIONED", "ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED", "SUSPENDED", "DEPROVISIONED"] as const;

const configSchema = z
  .object({
    ...connection,
    ...identityInventoryShape,
    /** Only users this Okta search expression matches (`profile.department eq "Engineering"`). Default every user. */
    search: z.string().min(1).max(2048).refine((s) => !/[\r\n\0]/.test(s), { error: "must not contain line breaks" }).optional(),
    /** Only members of these groups, by id. Needs `okta.groups.read`. Default every user. */
    groups: z.array(z.string().regex(OKTA_ID, { error: "expected an Okta group id like 00g1abcdEFGH2ijk3l4" })).min(1).optional(),
    /** Only users in these statuses. Default all (with `include_disabled`). */
    statuses: z.array(z.enum(STATUSES)).min(1).optional(),
  })
  .strict();

export type OktaInventoryConfig = z.output<typeof configSchema>;

/** Okta users as user subjects with the facts of their latest sign-in from the System Log. */
export const oktaInventory: InventoryFactory<OktaInventoryConfig> = {
  type: "okta",
  description: "Okta users (incremental by lastUpdated) with the facts of their latest sign-in from the System Log.",
  configSchema,
  create(config, ctx) {
    const lease = openIdentitySource({ ...config, type: "okta" }, ctx);
    const users = new IdentitySubjects();
    const mapping = resolveMapping(config.attributes, "okta_id");
    const statuses = config.statuses ? new Set<string>(config.statuses) : undefined;
    const signIns = signInsOrLast("okta", "Okta System Log", config.refresh, ctx.logger);
    return {
      async list(signal) {
        const src = await lease.value;
        // The directory, the group members and the System Log are read side by side.
        const [dirScan, membersScan, activity] = await Promise.all([
          src.users(config.search).get(config.refresh, signal),
          config.groups ? src.groupMembers(config.groups).get(config.groups_refresh, signal) : undefined,
          config.sign_in_facts ? signIns(src.signIns(), signal) : undefined,
        ]);
        const dir = dirScan.value;
        const members = membersScan?.value;
        return users.list(
          dir,
          activity,
          members,
          (u) => (config.include_disabled || u.enabled) && (!statuses || statuses.has(u.status)),
          (u, s) => userSubject(u, s, mapping, { source: "okta", account: u.enabled ? "enabled" : "disabled", status: u.status.toLowerCase() }),
        );
      },
      stop: async () => lease.release(),
    };
  },
};
