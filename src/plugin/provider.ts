/**
 * Providers: the connection, credentials and circuit breaker that the actions of one target system
 * share. `providers.<name>` in the config configures one; every action whose factory names that
 * provider type uses it (an action entry picks another entry of the same type with `provider:`).
 * One client per entry serves all policies, so a token is fetched once and one breaker sees every
 * failure of that API.
 */
import type { z } from "zod";
import type { PluginContext } from "./context.ts";
import type { HttpResponse } from "../net/http.ts";
import type { ApiCall } from "../net/api-call.ts";
import type { PlannedCall } from "../net/api-call.ts";
import type { CircuitBreaker, CircuitListener } from "./circuit.ts";
import { configure, type Configured } from "./configured.ts";

/** A provider's client: authenticates calls, shows them as plans, and guards the API with a breaker. */
export interface ProviderClient {
  /** The `providers.<name>` key. */
  readonly name: string;
  /** The provider type (`aws`, `okta`, …). */
  readonly type: string;
  readonly breaker: CircuitBreaker;
  /** The call as a plan shows it: authentication headers present but masked, registered secrets scrubbed. */
  describe(call: ApiCall): PlannedCall;
  /**
   * Sends the call with authentication, through the breaker. Non-2xx answers not in `accept` throw
   * an `UpstreamError` (transient for 408/425/429/5xx, with the server's Retry-After or
   * X-Rate-Limit-Reset hint; permanent otherwise).
   */
  send(call: ApiCall, signal?: AbortSignal): Promise<HttpResponse>;
  close(): Promise<void>;
}

/** A document the agent serves without authentication for a provider (CAEP: JWKS, SSF discovery). */
export interface PublicDocument {
  readonly contentType: string;
  /** Rendered per request so key rotation shows at once. */
  body(): string;
}

/** Given to a provider when it is created. */
export interface ProviderContext extends PluginContext {
  /** The `providers.<name>` key. */
  readonly name: string;
  /** Told when the provider's circuit changes state (the agent exports it as a metric). */
  readonly onCircuitChange?: CircuitListener;
}

/** A provider plugin: a factory the registry knows by `type`. */
export interface ProviderFactory<C = unknown, P extends ProviderClient = ProviderClient> {
  readonly type: string;
  readonly description: string;
  /** Validates `providers.<name>` without its `type` key. An empty entry must validate when the provider has usable defaults. */
  readonly configSchema: z.ZodType<C>;
  /** A config example, as it would appear under `providers.<name>`. */
  readonly example: Readonly<Record<string, unknown>>;
  // A property, not a method, so C is checked both ways: a factory of one config type is not one of another.
  readonly create: (config: C, ctx: ProviderContext) => P;
  /** Documents served at fixed paths under the agent's API listener (`/.well-known/...`). */
  publicDocuments?(client: P): Readonly<Record<string, PublicDocument>>;
}

/** A created provider: its client and the documents it serves. */
export interface ProviderInstance {
  readonly client: ProviderClient;
  /** Path → document, served without authentication (none when the factory publishes none). */
  readonly publicDocuments: Readonly<Record<string, PublicDocument>>;
}

/** A provider factory with its config and client types hidden, as the registry holds it (see `defineProvider`). */
export interface AnyProviderFactory {
  readonly type: string;
  readonly description: string;
  readonly example: Readonly<Record<string, unknown>>;
  /** Validates `providers.<name>` (without `type`) with the factory's own schema and binds create() to the result. */
  configure(raw: unknown): Configured<ProviderContext, ProviderInstance>;
}

/** Hides a provider factory's config and client types for the registry; its create() still receives only what its schema produced. */
export function defineProvider<C, P extends ProviderClient>(f: ProviderFactory<C, P>): AnyProviderFactory {
  const create = (config: C, ctx: ProviderContext): ProviderInstance => {
    const client = f.create(config, ctx);
    return { client, publicDocuments: f.publicDocuments?.(client) ?? {} };
  };
  return { type: f.type, description: f.description, example: f.example, configure: (raw) => configure(f.configSchema, create, raw) };
}
