/** HashiCorp Consul: the `consul` provider and its service-mesh intention action. */
import type { ActionFactory } from "../../plugin/action.ts";
import type { ProviderFactory } from "../../plugin/provider.ts";
import { consulProvider } from "./client.ts";
import { intentionAction } from "./intention.ts";

export { ConsulClient, consulProvider, consulProviderSchema, type ConsulProviderConfig } from "./client.ts";
export { intentionAction, intentionConfigSchema, OWNER_MARK, type IntentionConfig } from "./intention.ts";

export const provider: ProviderFactory<any, any> | undefined = consulProvider;
export const actions: readonly ActionFactory<any>[] = [intentionAction];
