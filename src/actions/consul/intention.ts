/**
 * `consul:intention`: keeps the Consul service-mesh intention source → destination in line with
 * the decided access (a reconciler). It reads the intention, upserts it through
 * `PUT /v1/connect/intentions/exact` (Consul ≥ 1.9), and reads it back to verify.
 *
 * - full_access → `{"Action": "allow"}`
 * - read_only   → L7 `Permissions`: the safe methods allowed, then a catch-all deny, so the
 *                 intention means "read only" under either default intention policy. L7 needs the
 *                 destination's protocol to be http, http2 or grpc (service-defaults); for tcp, tls
 *                 and grpc edges `read_only: auto` writes a deny instead (see docs/actions/consul.md).
 * - deny        → `{"Action": "deny"}`
 *
 * The `Description` marks intentions vigil wrote. One vigil did not write is never loosened unless
 * `take_over` is set: tightening it is vigil's job, relaxing a human's deny is not.
 */
import { z } from "zod";
import { UpstreamError, VigilError } from "../../errors.ts";
import type { AccessLevel } from "../../policy/model.ts";
import type { Action, ActionContext, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { jsonCall } from "../../plugin/api-client.ts";
import { fromSubject, inputError, requireEdge, templateString } from "../common/input.ts";
import type { ConsulClient } from "./client.ts";

/** Methods Consul accepts in `Permissions[].HTTP.Methods`. */
export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"] as const;
/** What read_only still allows by default: the methods HTTP defines as safe. */
export const SAFE_METHODS = ["GET", "HEAD", "OPTIONS"] as const;
/** Every `Description` vigil writes starts with this; it is how vigil knows an intention is its own. */
export const OWNER_MARK = "managed by vigil";
/** Consul's limit on `Description`. */
const MAX_DESCRIPTION = 512;
/** `name`, `namespace/name` or `partition/namespace/name`; no wildcard, no peer. */
const SERVICE_RE = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+){0,2}$/;

export const intentionConfigSchema = z
  .object({
    /**
     * Source service name, a template rendered from the subject (the policy edge's source), e.g.
     * `{{attributes.consul_service}}`. Default: the edge's source subject id.
     */
    source: templateString().optional(),
    /**
     * Destination service name: normally a plain string (`api`); placeholders render from the
     * source subject. Default: the edge's destination subject id.
     */
    destination: templateString().optional(),
    /**
     * How read_only is written. `l7`: safe-method permissions (destination protocol must be http,
     * http2 or grpc); `deny`: an L4 deny; `allow`: an L4 allow (read_only not enforced by the mesh);
     * `auto`: `l7` for http and https edges (and when the edge names no protocol), `deny` for tcp,
     * tls and grpc edges. Default `auto`.
     */
    read_only: z.enum(["auto", "l7", "deny", "allow"]).default("auto"),
    /** HTTP methods read_only still allows (with `l7`). Default `[GET, HEAD, OPTIONS]`. */
    read_only_methods: z
      .array(z.enum(HTTP_METHODS))
      .min(1)
      .refine((m) => new Set(m).size === m.length, { error: "methods must not repeat" })
      .default([...SAFE_METHODS]),
    /** Also loosen intentions vigil did not write (their Description lacks vigil's mark). Default false. */
    take_over: z.boolean().default(false),
  })
  .strict();

/** The validated `consul:intention` entry. */
export type IntentionConfig = z.output<typeof intentionConfigSchema>;

interface HttpMatch {
  readonly PathExact?: string;
  readonly PathPrefix?: string;
  readonly PathRegex?: string;
  readonly Header?: readonly unknown[];
  readonly Methods?: readonly string[];
}

interface Permission {
  readonly Action: string;
  readonly HTTP?: HttpMatch;
}

/** The body of `PUT /v1/connect/intentions/exact`: exactly one of `Action` and `Permissions`. */
export interface IntentionBody {
  readonly SourceType: "consul";
  readonly Description: string;
  readonly Action?: "allow" | "deny";
  readonly Permissions?: readonly Permission[];
}

/** The part of Consul's intention JSON vigil reads. */
interface ConsulIntention {
  readonly Action?: string;
  readonly Permissions?: readonly Permission[] | null;
  readonly Description?: string;
}

type Rule = "allow" | "deny" | "l7";

/** Edge protocols whose traffic the mesh can see as HTTP requests with a meaningful method. */
function methodAware(protocol: string | undefined): boolean {
  return protocol === undefined || /^(https?|http2|h2c?)$/i.test(protocol);
}

/** The intention for the decided access. gRPC sends every call as POST, so a method filter would deny it all. */
export function ruleFor(access: AccessLevel, readOnly: IntentionConfig["read_only"], protocol: string | undefined): Rule {
  if (access === "full_access") return "allow";
  if (access === "deny") return "deny";
  if (readOnly === "auto") return methodAware(protocol) ? "l7" : "deny";
  return readOnly;
}

/** Consul evaluates permissions in order and the first match wins; the final deny makes the intention read-only under a default-allow policy too. */
export function readOnlyPermissions(methods: readonly string[]): Permission[] {
  return [
    { Action: "allow", HTTP: { Methods: [...methods] } },
    { Action: "deny", HTTP: { PathPrefix: "/" } },
  ];
}

export function intentionBody(rule: Rule, req: ActionRequest, methods: readonly string[]): IntentionBody {
  const how = rule === "l7" ? "" : req.decision.access === "read_only" ? ` as ${rule}` : "";
  const Description = `${OWNER_MARK}: ${req.decision.access}${how} (policy ${req.decision.policy})`.slice(0, MAX_DESCRIPTION);
  return rule === "l7"
    ? { SourceType: "consul", Description, Permissions: readOnlyPermissions(methods) }
    : { SourceType: "consul", Description, Action: rule };
}

function canonicalPermissions(perms: readonly Permission[]): string {
  return JSON.stringify(
    perms.map((p) => ({
      Action: p.Action,
      PathExact: p.HTTP?.PathExact ?? "",
      PathPrefix: p.HTTP?.PathPrefix ?? "",
      PathRegex: p.HTTP?.PathRegex ?? "",
      Header: p.HTTP?.Header ?? [],
      Methods: (p.HTTP?.Methods ?? []).map((m) => m.toUpperCase()),
    })),
  );
}

/** True when Consul's intention enforces what `body` asks for (Action, or the same ordered permissions). */
export function intentionMatches(found: ConsulIntention, body: IntentionBody): boolean {
  const perms = Array.isArray(found.Permissions) ? found.Permissions : [];
  if (body.Permissions) return !found.Action && canonicalPermissions(perms) === canonicalPermissions(body.Permissions);
  return found.Action === body.Action && perms.length === 0;
}

function ownedByVigil(found: ConsulIntention): boolean {
  return typeof found.Description === "string" && found.Description.startsWith(OWNER_MARK);
}

/** Writing `body` over someone else's intention is fine when it tightens it: a deny, or anything over a plain allow. */
function keepsOrTightens(found: ConsulIntention, body: IntentionBody): boolean {
  const plainAllow = found.Action === "allow" && !(Array.isArray(found.Permissions) && found.Permissions.length > 0);
  return body.Action === "deny" || plainAllow || intentionMatches(found, body);
}

function serviceName(what: "source" | "destination", value: string): string {
  if (value === "*") throw inputError(`consul:intention: the ${what} service rendered to the wildcard "*"; vigil only writes exact intentions`);
  if (!SERVICE_RE.test(value)) throw inputError(`consul:intention: ${JSON.stringify(value)} is not a Consul service name (letters, digits, _ . -, optionally namespace/ or partition/namespace/ first)`);
  return value;
}

/** Source and destination service names for this request. */
export function intentionNames(config: IntentionConfig, req: ActionRequest): { source: string; destination: string } {
  const edge = config.source === undefined || config.destination === undefined ? requireEdge(req, "consul:intention") : undefined;
  return {
    source: serviceName("source", config.source !== undefined ? fromSubject(config.source, req.subject) : edge!.source),
    destination: serviceName("destination", config.destination !== undefined ? fromSubject(config.destination, req.subject) : edge!.destination),
  };
}

interface Calls {
  readonly source: string;
  readonly destination: string;
  readonly rule: Rule;
  readonly body: IntentionBody;
  readonly read: ApiCall;
  readonly put: ApiCall;
  readonly verify: ApiCall;
}

function buildCalls(client: ConsulClient, config: IntentionConfig, req: ActionRequest): Calls {
  const { source, destination } = intentionNames(config, req);
  const rule = ruleFor(req.decision.access, config.read_only, req.edge?.protocol);
  const body = intentionBody(rule, req, config.read_only_methods);
  const url = client.url("/v1/connect/intentions/exact", { source, destination });
  const pair = `${source} → ${destination}`;
  const shown = rule === "l7" ? `allow ${config.read_only_methods.join(", ")} only` : rule;
  return {
    source,
    destination,
    rule,
    body,
    read: { method: "GET", url, headers: { Accept: "application/json" }, accept: [404], summary: `read the intention ${pair} (404 when there is no intention yet); one vigil did not write is neither loosened nor rewritten when it already says the same, unless take_over is set` },
    put: jsonCall("PUT", url, body, {
      summary: `set the intention ${pair} to ${shown} for ${req.decision.access} (only when there is none, vigil wrote it, take_over is set, or this tightens an intention that does not already say the same)`,
    }),
    verify: { method: "GET", url, headers: { Accept: "application/json" }, accept: [404], summary: `read the intention ${pair} back to verify it (only when the PUT was sent)` },
  };
}

/** A 500 from Consul that means a definite answer, not an outage. */
function consulAnswer(err: unknown, text: RegExp): boolean {
  return err instanceof UpstreamError && err.status === 500 && text.test(err.message);
}

async function readIntention(client: ConsulClient, call: ApiCall, signal: AbortSignal | undefined): Promise<ConsulIntention | undefined> {
  try {
    const res = await client.send(call, signal);
    return res.status === 404 ? undefined : res.json<ConsulIntention>();
  } catch (err) {
    // Consul 1.11 answered a missing intention with 500 "rpc error making call: Intention not found" (hashicorp/consul#12578).
    if (consulAnswer(err, /Intention not found/)) return undefined;
    throw err;
  }
}

export const intentionAction: ActionFactory<IntentionConfig> = {
  type: "consul:intention",
  description:
    "Reconcile the Consul intention source → destination with the decided access: allow (full_access), safe-method L7 permissions (read_only), deny (deny).",
  requiredPermissions: ['service "<destination>" { intentions = "write" }  (ACL intentions:write on the destination service; it includes the intentions:read the verification needs)'],
  example: { type: "consul:intention", source: "{{attributes.consul_service}}", destination: "api", read_only: "auto" },
  configSchema: intentionConfigSchema,
  revertible: false,
  reconciles: true,
  provider: "consul",
  create(config: IntentionConfig, ctx: ActionContext): Action {
    const provider = ctx.provider;
    if (!provider || provider.type !== "consul" || !("url" in provider)) {
      throw new VigilError("VIGIL_ERR_CONFIG_INVALID", "consul:intention needs a consul provider: add providers.consul (or name one with `provider:`)");
    }
    const client = provider as ConsulClient;

    const plan = (req: ActionRequest): PlannedCall[] => {
      const c = buildCalls(client, config, req);
      return [c.read, c.put, c.verify].map((call) => client.describe(call));
    };

    const apply = async (req: ActionRequest): Promise<ActionOutcome> => {
      const c = buildCalls(client, config, req);
      const detail = { source: c.source, destination: c.destination, access: req.decision.access, intention: c.rule === "l7" ? "l7_read_only" : c.rule };
      const before = await readIntention(client, c.read, req.signal);
      if (before && !ownedByVigil(before) && !config.take_over) {
        // Already what this level wants: leave it the operator's. Writing vigil's mark over it would make
        // vigil its owner, and the next full_access would then relax an operator's deny to an allow.
        if (intentionMatches(before, c.body)) return { verified: true, detail: { ...detail, unchanged: "the intention was not written by vigil and already enforces this level; left as it is" } };
        if (!keepsOrTightens(before, c.body)) {
          return { verified: false, detail: { ...detail, skipped: "the intention was not written by vigil and this would loosen it; set take_over: true to let vigil manage it" } };
        }
      }
      try {
        await client.send(c.put, req.signal);
      } catch (err) {
        // Consul reports this as a 500, but retrying cannot help until service-defaults changes.
        if (consulAnswer(err, /incompatible with L7 intentions permissions/)) {
          throw new UpstreamError(false, `${(err as Error).message} (set the destination's protocol to http, http2 or grpc in service-defaults, or read_only: deny)`, { status: 500, cause: err });
        }
        throw err;
      }
      const after = await readIntention(client, c.verify, req.signal);
      return { verified: after !== undefined && intentionMatches(after, c.body), detail };
    };

    return { plan, apply };
  },
};
