import type { ActionFactory } from "./contract.ts";
import type { ProviderFactory } from "./provider.ts";
import { logAction } from "./log/index.ts";
import { webhookAction } from "./webhook/index.ts";
import * as aws from "./aws/index.ts";
import * as okta from "./okta/index.ts";
import * as entra from "./entra/index.ts";
import * as kubernetes from "./kubernetes/index.ts";
import * as istio from "./istio/index.ts";
import * as linkerd from "./linkerd/index.ts";
import * as consul from "./consul/index.ts";
import * as vault from "./vault/index.ts";
import * as caep from "./caep/index.ts";

/** Provider folders: each exports its `provider` (when it has its own) and its `actions`. Add a folder and one entry here. */
const providerModules: readonly { provider?: ProviderFactory<any, any> | undefined; actions: readonly ActionFactory<any>[] }[] = [aws, okta, entra, kubernetes, istio, linkerd, consul, vault, caep];

/** Built-in action plugins. */
export const builtinActions: readonly ActionFactory<never>[] = [logAction, webhookAction, ...providerModules.flatMap((m) => m.actions)] as unknown as readonly ActionFactory<never>[];

/** Built-in providers: the connections and credentials actions share (`providers.<name>`). */
export const builtinProviders: readonly ProviderFactory<never>[] = providerModules.flatMap((m) => (m.provider ? [m.provider] : [])) as unknown as readonly ProviderFactory<never>[];
