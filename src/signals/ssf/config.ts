/**
 * `signals.ssf`: the Shared Signals transmitters vigil receives CAEP and RISC events from, how it
 * authenticates to their stream management APIs, how events arrive (push or poll), and how their
 * subjects map onto vigil's.
 */
import { z } from "zod";
import { boundedDuration, callTimeout, duration } from "../../plugin/schema.ts";
import { MAX_TIMER_MS } from "../../util/duration.ts";
import { CHECK_STATUSES, RISK_LEVELS } from "../../policy/model.ts";
import { isEventReference, knownEvent } from "./events.ts";
import { EVENT_RULES, MAPPED_EVENTS } from "./mapping.ts";
import { KNOWN_FORMATS } from "./subject.ts";

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;
/** JWS algorithms a SET may be signed with. `none` and the HMAC family never: a receiver holds no shared secret. */
export const SET_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;
export type SetAlgorithm = (typeof SET_ALGORITHMS)[number];

/** An https URL (plain http only to a loopback address, for local relays and tests), without credentials or fragment. */
const url = (what: string) =>
  z.string().superRefine((s, ctx) => {
    const u = URL.parse(s);
    if (u === null || !/^https?:$/.test(u.protocol)) {
      ctx.addIssue({ code: "custom", message: `expected an https URL for ${what}` });
      return;
    }
    if (u.protocol === "http:" && !LOOPBACK_HOSTS.test(u.hostname)) ctx.addIssue({ code: "custom", message: "plain http is only allowed to a loopback address; use https" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", message: "a URL may not carry user:password@" });
    if (u.hash || s.includes("#")) ctx.addIssue({ code: "custom", message: "a URL may not have a fragment" });
  });

/**
 * The schema of one transmitter, built on first use: a config without transmitters (the default)
 * never parses one, and building it took ~8 ms of every start (BENCHMARKS.md section 19).
 */
function buildTransmitterSchemas() {
  const headerValue = z
    .string()
    .min(16, { error: "at least 16 characters: it is the only proof a push comes from the transmitter" })
    .max(4096)
    .refine((v) => !/[\r\n\0]/.test(v), { error: "header values may not contain CR, LF or NUL" });

  const oauthSchema = z
    .object({
      /** Token endpoint of the transmitter's authorization server. Required. */
      token_url: url("the token endpoint"),
      /** Client ID vigil is registered with. Required. */
      client_id: z.string().min(1).max(512),
      /** Client secret (`client_secret_basic` or `client_secret_post`). Use `${file:…}`. Secret. */
      client_secret: z.string().min(1).optional(),
      /** PEM private key for `private_key_jwt` instead of a secret. Use `${file:…}`. Secret. */
      private_key: z.string().min(1).optional(),
      /** `kid` of that key as registered with the authorization server. Default none. */
      key_id: z.string().min(1).max(256).optional(),
      /** How the client authenticates. Default `client_secret_basic` with a secret, `private_key_jwt` with a key. */
      method: z.enum(["client_secret_basic", "client_secret_post", "private_key_jwt"]).optional(),
      /** Scopes requested. Default `ssf.manage ssf.read` (the CAEP interoperability profile's scopes). */
      scope: z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/, { error: "space-separated scope names" }).default("ssf.manage ssf.read"),
    })
    .strict()
    .superRefine((o, ctx) => {
      if ((o.client_secret === undefined) === (o.private_key === undefined)) ctx.addIssue({ code: "custom", message: "give exactly one of client_secret and private_key" });
      if (o.method === "private_key_jwt" && o.private_key === undefined) ctx.addIssue({ code: "custom", path: ["method"], message: "private_key_jwt needs private_key" });
      if (o.method !== undefined && o.method !== "private_key_jwt" && o.client_secret === undefined) ctx.addIssue({ code: "custom", path: ["method"], message: `${o.method} needs client_secret` });
    });

  const authSchema = z
    .object({
      /** A fixed access token, sent as `Authorization: Bearer <token>`. Use `${file:…}` or `${env:…}`. Secret. */
      bearer_token: z.string().min(1).refine((v) => !/[\r\n\0\s]/.test(v), { error: "a bearer token has no whitespace" }).optional(),
      /** OAuth 2.0 client credentials: a short-lived token fetched and refreshed as needed. */
      oauth: oauthSchema.optional(),
    })
    .strict()
    .refine((a) => (a.bearer_token === undefined) !== (a.oauth === undefined), { error: "give exactly one of bearer_token and oauth" });

  /** Which vigil subject a subject identifier of the event names. */
  const subjectRuleSchema = z
    .object({
      /** Identifier format the rule reads: email, iss_sub, opaque, account, phone_number, did, uri, jwt_id, saml_assertion_id. Required. */
      format: z.enum(KNOWN_FORMATS.filter((f) => f !== "aliases" && f !== "ip-addresses") as [string, ...string[]]),
      /**
       * Subject field the identifier's value must equal: `id`, `identity`, `attributes.<name>` or
       * `labels.<name>`. Default per format: email → `attributes.email`, account → `attributes.email`
       * (the value after `acct:`), phone_number → `attributes.phone_number`, did → `attributes.did`,
       * uri → `identity`, every other format → `id`.
       */
      match: z
        .string()
        .regex(/^(id|identity|(attributes|labels)\.[A-Za-z0-9_.-]{1,128})$/, { error: "expected id, identity, attributes.<name> or labels.<name>" })
        .optional(),
      /** Complex subject members the rule applies to (user, device, session, …). Default every member; a simple subject always. */
      members: z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).min(1).optional(),
      /** iss_sub and jwt_id only: the identifier's `iss` must equal this. Default any issuer. */
      iss: z.string().min(1).optional(),
    })
    .strict()
    .superRefine((r, ctx) => {
      if (r.iss !== undefined && r.format !== "iss_sub" && r.format !== "jwt_id") ctx.addIssue({ code: "custom", path: ["iss"], message: "only iss_sub and jwt_id rules take iss" });
    });

  const overrideSchema = z
    .object({
      /** The check whose result the event sets. Default from the event table (docs/signals.md). */
      check: z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "check names are snake_case" }).optional(),
      /** Status of every such event's result, instead of the one the table works out. */
      status: z.enum(CHECK_STATUSES.filter((s) => s !== "unknown") as ["pass", "warn", "fail"]).optional(),
      /** Risk of the result. Default from the status (pass → low, warn → medium, fail → high). */
      risk: z.enum(RISK_LEVELS).optional(),
      /** How long the result stands. Default from the event table. */
      ttl: duration().optional(),
    })
    .strict();

  const verificationSchema = z
    .object({
      /** How often vigil asks the transmitter for a verification event (never more often than the stream's min_verification_interval). Default `1h`, at least `1m`. */
      interval: boundedDuration({ min: 60_000, max: MAX_TIMER_MS, fallback: "1h" }),
      /** How long a requested verification event may take before the stream counts as overdue (metric, audit, readiness detail). Default `5m`. */
      timeout: boundedDuration({ min: 1_000, max: MAX_TIMER_MS, fallback: "5m" }),
    })
    .strict()
    .prefault({});

  const transmitterSchema = z
    .object({
      /** Name in the push URL (`/v1/signals/ssf/<name>`), metrics and the audit log. Required; letters, digits, `_ . -`. */
      name: z.string().regex(NAME_RE, { error: "letters, digits, _ . - only (at most 64)" }),
      /** The transmitter's issuer: equal to its metadata's `issuer` and every SET's `iss`. Required; https (http only to loopback). */
      issuer: url("the issuer").refine((s) => !s.includes("?"), { error: "an issuer has no query" }),
      /** Where the SSF metadata is read. Default the issuer with `/.well-known/ssf-configuration` inserted before its path (SSF 1.0 §7.2). */
      metadata_url: url("the metadata").optional(),
      /** The JWKS, instead of the metadata's `jwks_uri` (a transmitter without SSF metadata, such as a peer vigil behind a relay). */
      jwks_uri: url("the JWKS").optional(),
      /**
       * URLs the transmitter's documents name (`jwks_uri`, stream endpoints, the poll URL) may point at
       * private, loopback or link-local addresses and use plain http. Default false: they are hostile
       * input and only public https targets are fetched.
       */
      internal: z.boolean().default(false),
      /** Create or adopt the stream through the transmitter's management API (create → 201, or 409 → read and update). Default true; false for a stream set up by hand. */
      manage: z.boolean().default(true),
      /** How vigil authenticates to the management API and the poll endpoint. Required when `manage` or `delivery: poll`. */
      auth: authSchema.optional(),
      /** `push` (RFC 8935, the transmitter POSTs to vigil) or `poll` (RFC 8936, vigil fetches). Default `push`. */
      delivery: z.enum(["push", "poll"]).default("push"),
      push: z
        .object({
          /** URL the transmitter pushes to. Default `<signals.ssf.public_url>/v1/signals/ssf/<name>`. */
          endpoint_url: url("the push endpoint").optional(),
          /** With `manage: false` only: the Authorization header value the transmitter sends. With `manage: true` vigil generates one per stream. Secret. */
          authorization: headerValue.optional(),
        })
        .strict()
        .prefault({}),
      poll: z
        .object({
          /** With `manage: false` only: the transmitter's poll URL. With `manage: true` the stream's `endpoint_url`. */
          endpoint_url: url("the poll endpoint").optional(),
          /** Most SETs asked for per poll (`maxEvents`). Default 100, at most 1000. */
          max_events: z.number().int().min(1).max(1000).default(100),
          /** How long one long poll may be held open. Default `60s`. */
          timeout: boundedDuration({ min: 1_000, max: 10 * 60_000, fallback: "60s" }),
        })
        .strict()
        .prefault({}),
      /** Event types requested (`events_requested`): CAEP/RISC short names or URIs. Default every event vigil maps. */
      events: z
        .array(z.string().refine(isEventReference, { error: "expected a CAEP or RISC event name (session-revoked, account-disabled, …) or an event type URI" }))
        .min(1)
        .default([...MAPPED_EVENTS]),
      /** `description` of the stream. Default `vigil`. */
      description: z.string().min(1).max(256).default("vigil"),
      /** `aud` values vigil accepts. Default the stream's `aud`; for `manage: false`, the push endpoint's origin. */
      audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
      /** JWS algorithms accepted. Default RS256, PS256, ES256 and EdDSA (the CAEP interoperability profile uses RS256). */
      algorithms: z.array(z.enum(SET_ALGORITHMS)).min(1).default(["RS256", "PS256", "ES256", "EdDSA"]),
      /** Tolerated clock difference for `iat`. Default `5m`, at most `1h`. */
      clock_skew: boundedDuration({ max: 3_600_000, fallback: "5m" }),
      /** Oldest `iat` accepted; vigil remembers every `jti` this long, so a replay is always recognised. Default `7d`. */
      max_set_age: boundedDuration({ min: 60_000, max: 90 * 86_400_000, fallback: "7d" }),
      /** Largest SET accepted, in bytes. Default 32768. */
      max_set_bytes: z.number().int().min(1024).max(1024 * 1024).default(32_768),
      /** How subject identifiers name vigil subjects, tried in order. Default one rule per format (see `match`). */
      subjects: z.array(subjectRuleSchema).min(1).optional(),
      /** Per event type (short name or URI): another check, status, risk or lifetime. Events vigil does not map need `check` and `status`. */
      overrides: z.record(z.string(), overrideSchema).default({}),
      verification: verificationSchema,
      /** Deadline per management call. Default `10s`. */
      timeout: callTimeout(),
    })
    .strict()
    .superRefine((t, ctx) => {
      const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: "custom", path, message });
      if ((t.manage || t.delivery === "poll") && t.auth === undefined) issue(["auth"], `required with ${t.manage ? "manage: true" : "delivery: poll"}`);
      if (t.manage && t.push.authorization !== undefined) issue(["push", "authorization"], "vigil generates the push authorization of a managed stream; set it only with manage: false");
      if (!t.manage && t.delivery === "push" && t.push.authorization === undefined) issue(["push", "authorization"], "required with manage: false: the value the transmitter sends as Authorization");
      if (t.manage && t.poll.endpoint_url !== undefined) issue(["poll", "endpoint_url"], "a managed stream's poll URL comes from the transmitter; set it only with manage: false");
      if (!t.manage && t.delivery === "poll" && t.poll.endpoint_url === undefined) issue(["poll", "endpoint_url"], "required with manage: false and delivery: poll");
      for (const [key, o] of Object.entries(t.overrides)) {
        if (!isEventReference(key)) issue(["overrides", key], "expected a CAEP or RISC event name or an event type URI");
        const name = knownEvent(key);
        const mapped = name !== undefined && EVENT_RULES[name] !== undefined;
        if (!mapped && (o.check === undefined || o.status === undefined)) issue(["overrides", key], "vigil does not map this event on its own: give check and status");
      }
    });
    return { transmitterSchema, subjectRuleSchema };
}

let built: ReturnType<typeof buildTransmitterSchemas> | undefined;
const schemas = () => (built ??= buildTransmitterSchemas());
export const transmitterSchema = z.lazy(() => schemas().transmitterSchema);
export type SubjectRule = z.output<ReturnType<typeof buildTransmitterSchemas>["subjectRuleSchema"]>;

export const ssfSchema = z
  .object({
    /** Base URL transmitters reach this agent's API at, e.g. `https://vigil.example.com`; push endpoints are `<public_url>/v1/signals/ssf/<name>`. */
    public_url: url("the public URL").optional(),
    /** Transmitters to receive from. Default none. */
    transmitters: z.array(transmitterSchema).default([]),
    /** Most `jti`s remembered across all transmitters; past it the oldest go and SETs that old are refused. Default 1000000. */
    max_remembered: z.number().int().min(1000).max(100_000_000).default(1_000_000),
  })
  .strict()
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.transmitters.forEach((t, i) => {
      if (names.has(t.name)) ctx.addIssue({ code: "custom", path: ["transmitters", i, "name"], message: `transmitter "${t.name}" is named twice` });
      names.add(t.name);
      if (t.manage && t.delivery === "push" && t.push.endpoint_url === undefined && s.public_url === undefined) {
        ctx.addIssue({ code: "custom", path: ["transmitters", i, "push", "endpoint_url"], message: "a managed push stream needs the URL to push to: set signals.ssf.public_url or this" });
      }
      if (!t.manage && t.delivery === "push" && t.audience === undefined && t.push.endpoint_url === undefined && s.public_url === undefined) {
        ctx.addIssue({ code: "custom", path: ["transmitters", i, "audience"], message: "with manage: false, give audience (or a push URL whose origin is the audience)" });
      }
    });
  })
  .prefault({});

export type SsfConfig = z.output<typeof ssfSchema>;
export type TransmitterConfig = SsfConfig["transmitters"][number];

/** The push endpoint of a transmitter's stream. */
export function pushEndpoint(config: SsfConfig, t: TransmitterConfig): string | undefined {
  if (t.push.endpoint_url !== undefined) return t.push.endpoint_url;
  if (config.public_url === undefined) return undefined;
  return `${config.public_url.replace(/\/+$/, "")}/v1/signals/ssf/${encodeURIComponent(t.name)}`;
}

/** SSF 1.0 §7.2: `/.well-known/ssf-configuration` goes between the issuer's host and its path (a trailing `/` dropped). */
export function metadataUrl(t: Pick<TransmitterConfig, "issuer" | "metadata_url">): string {
  if (t.metadata_url !== undefined) return t.metadata_url;
  const u = new URL(t.issuer);
  const path = u.pathname.replace(/\/+$/, "");
  return `${u.origin}/.well-known/ssf-configuration${path}`;
}
