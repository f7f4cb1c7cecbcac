import { z } from "zod";
import type { InventoryFactory } from "../../plugin/inventory.ts";
import type { Subject } from "../../policy/model.ts";
import { GUID_RE } from "../../sources/graph/config.ts";
import type { ServicePrincipal } from "../../sources/identity/model.ts";
import { openIdentitySource } from "../../sources/identity/open.ts";
import { entraConnectionShape } from "../../sources/identity/schema.ts";
import { identityInventoryShape, IdentitySubjects, resolveMapping, signInsOrLast, userSubject } from "../common/identity.ts";

// `type` is the inventory entry's own key, taken off before its config is validated.
const { type: _type, ...connection } = entraConnectionShape;

const configSchema = z
  .object({
    ...connection,
    ...identityInventoryShape,
    /** Only (transitive) members of these groups, by object id. Needs `GroupMember.Read.All`. Default every user. */
    groups: z.array(z.string().regex(GUID_RE, { error: "expected a group's object id, a GUID" })).min(1).optional(),
    /** Only users of these types. Default both. */
    user_types: z.array(z.enum(["Member", "Guest"])).min(1).optional(),
    /** Also list the tenant's service principals as workload subjects (`Application.Read.All`). Default false. */
    service_principals: z.boolean().default(false),
  })
  .strict();

export type EntraInventoryConfig = z.output<typeof configSchema>;

function servicePrincipalSubject(sp: ServicePrincipal): Subject {
  const attributes: Record<string, unknown> = { entra_sp_id: sp.id, account_enabled: sp.enabled };
  if (sp.appId !== undefined) attributes.app_id = sp.appId;
  if (sp.name !== undefined) attributes.display_name = sp.name;
  const labels: Record<string, string> = { source: "entra", account: sp.enabled ? "enabled" : "disabled" };
  if (sp.type !== undefined) labels.sp_type = sp.type.toLowerCase();
  return { id: `entra-sp:${sp.id}`, kind: "workload", identity: sp.appId ?? sp.id, labels, attributes };
}

/** Entra ID users (Graph) as user subjects with their latest sign-in facts; service principals as workloads. */
export const entraInventory: InventoryFactory<EntraInventoryConfig> = {
  type: "entra",
  description: "Microsoft Entra ID users (Graph users with delta sync) with the facts of their latest sign-in; optionally service principals as workloads.",
  configSchema,
  create(config, ctx) {
    const lease = openIdentitySource({ ...config, type: "entra" }, ctx);
    const users = new IdentitySubjects();
    const mapping = resolveMapping(config.attributes, "entra_id");
    const types = config.user_types ? new Set(config.user_types.map((t) => t.toLowerCase())) : undefined;
    let sps: { dir: unknown; version: number; list: Subject[] } | undefined;
    let joined: { a: Subject[]; b: Subject[]; list: Subject[] } | undefined;
    const signIns = signInsOrLast("entra", "Entra sign-in log", config.refresh, ctx.logger);
    return {
      async list(signal) {
        const src = await lease.value;
        // The directory, the group members, the sign-in log and the service principals are read side by side.
        const [dirScan, membersScan, activity, spScan] = await Promise.all([
          src.users().get(config.refresh, signal),
          config.groups ? src.groupMembers(config.groups).get(config.groups_refresh, signal) : undefined,
          config.sign_in_facts ? signIns(src.signIns(), signal) : undefined,
          config.service_principals ? src.servicePrincipals().get(config.refresh, signal) : undefined,
        ]);
        const dir = dirScan.value;
        const members = membersScan?.value;
        const list = users.list(
          dir,
          activity,
          members,
          (u) => (config.include_disabled || u.enabled) && (!types || (u.userType !== undefined && types.has(u.userType.toLowerCase()))),
          (u, s) => {
            const labels: Record<string, string> = { source: "entra", account: u.enabled ? "enabled" : "disabled" };
            if (u.userType !== undefined) labels.user_type = u.userType.toLowerCase();
            return userSubject(u, s, mapping, labels);
          },
        );
        if (!spScan) return list;
        const spDir = spScan.value;
        if (!sps || sps.dir !== spDir || sps.version !== spDir.version) {
          sps = { dir: spDir, version: spDir.version, list: [...spDir.values()].filter((sp) => config.include_disabled || sp.enabled).map(servicePrincipalSubject) };
        }
        if (!joined || joined.a !== list || joined.b !== sps.list) joined = { a: list, b: sps.list, list: [...list, ...sps.list] };
        return joined.list;
      },
      stop: async () => lease.release(),
    };
  },
};
