/** HashiCorp Consul: the `consul` provider and its service-mesh intention action. */
import { consulProvider } from "./client.ts";
import { intentionAction } from "./intention.ts";

export { ConsulClient, consulProvider, consulProviderSchema, type ConsulProviderConfig } from "./client.ts";
export { intentionAction, intentionConfigSchema, OWNER_MARK, type IntentionConfig } from "./intention.ts";

export const provider = consulProvider;
export const actions = [intentionAction] as const;
