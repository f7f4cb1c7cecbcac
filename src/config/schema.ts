/**
 * The configuration schema. Keys are snake_case and mirror the seed's Terraform module
 * (`default_security_rule`, `communication_policies`, `identity_perimeter`); `agent`, `inventories`,
 * `checks`, `enforcement`, `decision`, `exempt` and `plugins` are vigil's own.
 *
 * Plugin sections (`checks.<name>`, `enforcement.<level>[]`, `inventories[]`) are checked here for
 * their common keys only; each plugin's own schema validates the rest (see load.ts).
 */
import { z } from "zod";
import { ACCESS_LEVELS } from "../policy/model.ts";
import { boundedDuration, duration, subjectKind, timerDuration } from "../plugin/schema.ts";
import { ssfSchema } from "../signals/ssf/config.ts";
import { AUTHORIZATION_MECHANISMS } from "../util/redact.ts";

const listen = z
  .string()
  .refine((s) => /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(":") + 1)) <= 65535, {
    message: 'expected "host:port" with a port 0-65535, e.g. "127.0.0.1:7070"',
  });

export const accessLevel = z.enum(ACCESS_LEVELS);
const onUnknown = z.enum(["deny", "hold", "ignore"]);

/** Matches subjects; every given field must match. `identity` and `id` accept `*` wildcards. */
export const selectorSchema = z
  .object({
    id: z.union([z.string(), z.array(z.string())]).optional(),
    kind: z.union([subjectKind, z.array(subjectKind)]).optional(),
    identity: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type Selector = z.infer<typeof selectorSchema>;

const riskBasedAccess = z
  .object({
    low_risk: accessLevel.default("full_access"),
    medium_risk: accessLevel.default("read_only"),
    high_risk: accessLevel.default("deny"),
  })
  .strict();

/** How results become decisions; every policy inherits these and may override them. */
const decisionSchema = z
  .object({
    /** Consecutive bad evaluations before access goes down. Default 1. */
    confirm: z.number().int().min(1).max(100).default(1),
    /** Consecutive good evaluations before access comes back up. Default 1. */
    restore_after: z.number().int().min(1).max(100).default(1),
    /** Minimum time at a lower level before access may come back up (in addition to restore_after). Default 0s. */
    cooldown: duration().prefault("0s"),
    /** What an `unknown` result means when the check does not say. Default `hold`. */
    on_unknown: onUnknown.default("hold"),
    /** How long `hold` keeps the last known result. Default 10m. */
    hold_grace: duration().prefault("10m"),
    /** `highest` (default): subject risk is the highest result risk. `weighted`: a weighted score with thresholds. */
    scoring: z
      .object({
        mode: z.enum(["highest", "weighted"]).default("highest"),
        /** Weight per check name (default 1). */
        weights: z.record(z.string(), z.number().min(0)).default({}),
        /** Score (0..100) at or above which risk is medium / high. */
        thresholds: z.object({ medium: z.number().min(0).max(100).default(40), high: z.number().min(0).max(100).default(70) }).strict().prefault({}),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const decisionOverride = z
  .object({
    confirm: z.number().int().min(1).max(100).optional(),
    restore_after: z.number().int().min(1).max(100).optional(),
    cooldown: duration().optional(),
    on_unknown: onUnknown.optional(),
    hold_grace: duration().optional(),
  })
  .strict();

/** An action entry: its `type` picks the plugin, whose schema validates the other keys. */
export const actionEntrySchema = z
  .object({
    type: z.string().min(1),
    /** Name used in idempotency keys and the audit log. Default `<level>[<index>]:<type>`. */
    name: z.string().regex(/^[A-Za-z0-9_.:-]+$/).optional(),
    /** Record the plan instead of sending. Default: the policy's, then the agent's. */
    dry_run: z.boolean().optional(),
    /** Which `providers.<name>` entry the action uses. Default: the entry named after the action's provider type (`okta` for `okta:suspend`). */
    provider: z.string().regex(/^[A-Za-z0-9_.-]+$/).optional(),
  })
  .passthrough();

/** A provider entry: its `type` (default: the entry's name) picks the plugin, whose schema validates the other keys. */
export const providerEntrySchema = z.object({ type: z.string().min(1).optional() }).passthrough();

const actionList = z.array(actionEntrySchema).default([]);

const enforcementLevels = {
  /** Run when access returns to full access (in addition to reverting the lower levels' actions). */
  full_access: actionList,
  read_only: actionList,
  deny: actionList,
};

const limitsSchema = z
  .object({
    /** Enforcement actions allowed per policy per window before enforcement pauses. Default 20. */
    max_actions: z.number().int().min(1).default(20),
    window: duration().prefault("10m"),
    /** Resume by itself when the window has room again (true), or only on an operator call (false). Default true. */
    auto_resume: z.boolean().default(true),
  })
  .strict();

const retrySchema = z
  .object({
    /** Attempts per action, including the first. Default 8. */
    attempts: z.number().int().min(1).max(100).default(8),
    /** First retry delay; doubles each time, with jitter. Default 1s. */
    delay: timerDuration().prefault("1s"),
    /** Longest retry delay. Default 5m. Both are at most 24d20h31m23s647ms (a timer waits for them). */
    max_delay: timerDuration().prefault("5m"),
  })
  .strict();

const DAY_MS = 86_400_000;

/**
 * Re-driving an action whose queue attempts ran out (or that failed permanently): it stays
 * unreconciled and is sent again, as a fresh set of `retry` attempts, for as long as the decision
 * stands.
 */
const redriveSchema = z
  .object({
    /** Wait before the first re-drive, 1s to 24h; doubles with each further one (with jitter). Default 1m. */
    delay: boundedDuration({ min: 1_000, max: DAY_MS, fallback: "1m", message: 'expected a duration from 1s to 24h, like "1m"' }),
    /** Longest wait between two re-drives, 1s to 24h. Default 1h. */
    max_delay: boundedDuration({ min: 1_000, max: DAY_MS, fallback: "1h", message: 'expected a duration from 1s to 24h, like "1h"' }),
  })
  .strict()
  .refine((r) => r.max_delay >= r.delay, { error: "max_delay must not be shorter than delay", path: ["max_delay"] });

export const enforcementSchema = z
  .object({
    ...enforcementLevels,
    limits: limitsSchema.prefault({}),
    retry: retrySchema.prefault({}),
    /**
     * A subject that leaves every inventory: `keep` (default) leaves the access last enforced on it in
     * place; `restore` brings it back to full access through the normal enforcement path (the reverts
     * of the levels it was at). Either way an audit entry records it and its state and results are pruned.
     */
    removed_subjects: z.enum(["keep", "restore"]).default("keep"),
    redrive: redriveSchema.prefault({}),
  })
  .strict();

const policyEnforcement = z.object({ ...enforcementLevels, limits: limitsSchema.optional() }).strict();

/** Either a duration (`5m`) or a 5- or 6-field cron expression (`*\/5 * * * *`). */
const interval = z.string().min(1);

const verificationSchema = z
  .object({
    interval: interval.default("5m"),
    /** Checks to run: each a plugin, a seed check, or declared under `checks:` (see docs/configuration.md). Default none. */
    checks: z.array(z.string().min(1)).default([]),
  })
  .strict();

export const communicationPolicySchema = z
  .object({
    /** Unique policy name. Default `<source>-to-<destination>`. */
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, _ . - only").optional(),
    /** The calling subject: an id or identity from the inventory. Its access is what this policy decides. */
    source: z.string().min(1),
    destination: z.string().min(1),
    protocol: z.enum(["https", "http", "grpc", "tcp", "tls"]).default("https"),
    port: z.number().int().min(1).max(65535),
    authentication: z.enum(["mutual_tls", "tls", "none"]).default("mutual_tls"),
    authorization: z.enum(AUTHORIZATION_MECHANISMS).default("none"),
    continuous_verification: verificationSchema.prefault({}),
    risk_based_access: riskBasedAccess.optional(),
    decision: decisionOverride.optional(),
    exempt: z.array(selectorSchema).default([]),
    dry_run: z.boolean().optional(),
    enforcement: policyEnforcement.optional(),
  })
  .strict();

export const identityPerimeterSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/).default("identity-perimeter"),
    /** Which subjects the perimeter covers. Default: users, devices and sessions. */
    applies_to: selectorSchema.default({ kind: ["user", "device", "session"] }),
    require_managed_device: z.boolean().default(true),
    require_mfa: z.boolean().default(true),
    require_location_check: z.boolean().default(true),
    /** ISO 3166-1 alpha-2 codes the location check accepts; empty = any known location. */
    allowed_locations: z.array(z.string().regex(/^[A-Z]{2}$/, "expected an ISO 3166-1 alpha-2 code like DE")).default([]),
    session_duration: duration().prefault("1h"),
    risk_based_access: riskBasedAccess.prefault({}),
    continuous_verification: verificationSchema.prefault({}),
    decision: decisionOverride.optional(),
    exempt: z.array(selectorSchema).default([]),
    dry_run: z.boolean().optional(),
    enforcement: policyEnforcement.optional(),
  })
  .strict();

/** Keys every `checks.<name>` entry accepts; the rest belongs to the plugin. */
export const checkCommonSchema = z
  .object({
    /**
     * Plugin type, or `push` for a check whose results arrive as signals only. Default: the entry's
     * name, which must then be a plugin or one of the seed's push-only checks.
     */
    type: z.string().optional(),
    on_unknown: onUnknown.optional(),
    hold_grace: duration().optional(),
    /** How long a result stands. Default: the policy interval × 2, at least 1m. */
    ttl: duration().optional(),
    /** Time limit for one run. Default 30s; at most 24d20h31m23s647ms (the longest a timer can wait). */
    timeout: timerDuration().prefault("30s"),
  })
  .passthrough();

export const inventoryEntrySchema = z.object({ type: z.string().min(1) }).passthrough();

/** The audit log's key and where its checkpoints go. */
const auditSchema = z
  .object({
    /**
     * Key of the audit chain's HMAC-SHA256, at least 32 characters. Keep it outside `data_dir`:
     * `key: "${file:/etc/vigil/audit.key}"` or `"${env:VIGIL_AUDIT_KEY}"`. `vigil audit verify` reads
     * it from the same config. Default: a key generated into `$XDG_CONFIG_HOME/vigil/audit.key`
     * (`~/.config/vigil/audit.key`), mode 0600, with a warning at start.
     */
    key: z.string().min(32, "the audit key must be at least 32 characters").optional(),
    /** Ships a signed checkpoint of the chain head off the host, so a rewrite of the whole host is still detected. Default: none. */
    checkpoint: z
      .object({
        /** Syslog receiver over UDP (RFC 5424), "host:port". */
        syslog: listen.optional(),
        /** HTTP(S) endpoint that receives each checkpoint as a JSON POST. */
        url: z.url({ protocol: /^https?$/ }).optional(),
        /** How often the head is checkpointed (only when it moved). Default 1m. */
        interval: duration().prefault("1m"),
      })
      .strict()
      .refine((c) => c.syslog !== undefined || c.url !== undefined, { message: "name a syslog receiver, a url, or both" })
      .optional(),
  })
  .strict()
  .prefault({});

/** Bounds on what the state database keeps. */
const storeSchema = z
  .object({
    /** Pushed result streams kept per (subject, check); the oldest beyond this are dropped (`vigil_result_streams_dropped_total`). Default 64. */
    max_streams_per_check: z.number().int().min(1).max(10_000).default(64),
    /** How long an expired check result is kept (for `hold` and `GET /v1/subjects/…`) before it is pruned. Default 7d. */
    keep_expired: duration().prefault("7d"),
    /** Size the write-ahead log is cut back to after a checkpoint. Default 64 MiB. */
    wal_size_limit: z.number().int().min(1024 * 1024).default(64 * 1024 * 1024),
  })
  .strict()
  .prefault({});

/**
 * The Redis every replica of a cluster shares: `url`, or `host` and `port`. Credentials come from
 * `username`/`password` (`${env:…}`, `${file:…}`), never from the URL, so they cannot reach a log.
 */
const redisSchema = z
  .object({
    /** `redis://host:6379/0`, or `rediss://…` for TLS. No `user:password@`: use `username` and `password`. */
    url: z
      .string()
      .regex(/^rediss?:\/\/[^/?#]+(\/\d{1,2})?\/?$/, { error: "expected redis://host:port[/db] or rediss://host:port[/db]" })
      .refine((s) => !/^rediss?:\/\/[^/]*@/.test(s), { error: "a Redis URL may not carry user:password@; set agent.cluster.redis.username and password (from ${env:…} or ${file:…})" })
      .optional(),
    /** Redis host name or address (instead of `url`). */
    host: z.string().min(1).optional(),
    /** Default 6379. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Database number. Default 0 (or the URL's). */
    db: z.number().int().min(0).max(255).optional(),
    /** ACL user (Redis 6+). Default none (the `default` user). */
    username: z.string().min(1).optional(),
    /** Password of the user. Default none. */
    password: z.string().min(1).optional(),
    /**
     * TLS: `true` (system CAs), or `{ca, server_name, cert, key}` with PEM text (`${file:…}`).
     * Default: only with a `rediss://` URL.
     */
    tls: z
      .union([
        z.boolean(),
        z
          .object({
            /** CA certificate(s), PEM. Default: the system's. */
            ca: z.string().min(1).optional(),
            /** Name to verify the server's certificate against. Default: the host. */
            server_name: z.string().min(1).optional(),
            /** Client certificate, PEM, for mutual TLS. */
            cert: z.string().min(1).optional(),
            /** Client key, PEM. */
            key: z.string().min(1).optional(),
          })
          .strict(),
      ])
      .optional(),
    /** How long connecting (and each reconnect) may take. Default 10s. */
    connect_timeout: boundedDuration({ min: 100, max: 5 * 60_000, fallback: "10s", message: 'expected a duration from 100ms to 5m, like "10s"' }),
    /**
     * How long one Redis command may take before it fails (the API then answers 503); a socket silent
     * for three times this long is dropped and reconnected, which catches a master that vanished
     * without closing its connections. Default 10s.
     */
    command_timeout: boundedDuration({ min: 100, max: 5 * 60_000, fallback: "10s", message: 'expected a duration from 100ms to 5m, like "10s"' }),
  })
  .strict()
  .superRefine((r, ctx) => {
    if ((r.url === undefined) === (r.host === undefined)) ctx.addIssue({ code: "custom", path: [], message: "give either url or host (with port), not both and not neither" });
    if (r.url !== undefined && (r.port !== undefined || r.db !== undefined)) ctx.addIssue({ code: "custom", path: [r.port !== undefined ? "port" : "db"], message: "put the port and db in the url, or use host instead of url" });
    if (typeof r.tls === "object" && (r.tls.cert === undefined) !== (r.tls.key === undefined)) ctx.addIssue({ code: "custom", path: ["tls"], message: "a client certificate needs its key, and a key its certificate" });
  });

/** How the replicas of a cluster share work through Redis (`agent.mode: cluster`). */
const clusterSchema = z
  .object({
    /** The shared Redis. Required in cluster mode. */
    redis: redisSchema.optional(),
    /** Prefix of every key vigil writes. Replicas of one cluster share it; two clusters on one Redis need different ones. Default `vigil`. */
    prefix: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - only, at most 64").default("vigil"),
    /**
     * Cluster-wide caps on jobs running at once, per queue (each replica still runs at most
     * `agent.concurrency`): protects a backend from replicas × concurrency. Default: no cap.
     */
    concurrency: z
      .object({
        evaluations: z.number().int().min(1).max(100_000).optional(),
        actions: z.number().int().min(1).max(100_000).optional(),
      })
      .strict()
      .prefault({}),
    /**
     * How long a replica's claim on a job or a subject holds without renewal (renewed every third of
     * it): a killed replica's work runs elsewhere about this long after. Default 30s.
     */
    lock_duration: boundedDuration({ min: 1_000, max: 10 * 60_000, fallback: "30s", message: 'expected a duration from 1s to 10m, like "30s"' }),
    /**
     * The leader's lease (scheduling, housekeeping), renewed every third of it: a new leader takes
     * over within about this long of the old one dying, at once when it stops cleanly. Default 15s.
     */
    lease: boundedDuration({ min: 1_000, max: 5 * 60_000, fallback: "15s", message: 'expected a duration from 1s to 5m, like "15s"' }),
    /** Completed jobs kept per queue (they de-duplicate re-enqueued ids), at most one day each. Default 100000. */
    keep_completed: z.number().int().min(100).max(10_000_000).default(100_000),
    /** Failed jobs kept per queue for inspection, at most 30 days each (each is in the audit log). Default 10000. */
    keep_failed: z.number().int().min(100).max(10_000_000).default(10_000),
  })
  .strict()
  .prefault({});

export const agentSchema = z
  .object({
    /** `embedded` (default): one process, state on local disk. `cluster`: replicas sharing work and state through Redis (`cluster`). */
    mode: z.enum(["embedded", "cluster"]).default("embedded"),
    /** State, queue and audit log live here. A relative path resolves against the config file's directory, like every path in the file. Default `./var` (next to the config file). */
    data_dir: z.string().min(1).default("./var"),
    dry_run: z.boolean().default(false),
    log_level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
    /** `json` (one object per line), `text` (readable lines) or `auto`: text when the log goes to a terminal, else JSON. Default auto. Takes effect at start. */
    log_format: z.enum(["json", "text", "auto"]).default("auto"),
    api: z
      .object({
        listen: listen.default("127.0.0.1:7070"),
        /** Bearer token for /v1. When unset, one is generated into `<data_dir>/api-token` (mode 0600). */
        token: z.string().min(16, "the API token must be at least 16 characters").optional(),
        /** Largest accepted request body. Default 64 KiB. */
        max_body_bytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(65536),
        /** Open connections at most; more are closed as soon as they are accepted. Default 256. */
        max_connections: z.number().int().min(1).max(65535).default(256),
        /** Open `GET /v1/audit/stream` event streams at most; more are refused with 429. Default 16. */
        max_streams: z.number().int().min(1).max(1024).default(16),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** Prometheus endpoint; `false` disables it. Default 127.0.0.1:9464. */
        listen: z.union([listen, z.literal(false)]).default("127.0.0.1:9464"),
        otlp: z.object({ endpoint: z.url(), headers: z.record(z.string(), z.string()).default({}), interval: timerDuration().prefault("60s") }).strict().optional(),
      })
      .strict()
      .prefault({}),
    concurrency: z
      .object({
        evaluations: z.number().int().min(1).max(256).default(4),
        actions: z.number().int().min(1).max(1024).default(16),
      })
      .strict()
      .prefault({}),
    /** How long SIGTERM waits for in-flight work. Default 8s; at most 24d20h31m23s647ms. */
    shutdown_timeout: timerDuration().prefault("8s"),
    audit: auditSchema,
    store: storeSchema,
    /** Cluster mode's shared Redis and how replicas share work; read only when `mode` is `cluster`. */
    cluster: clusterSchema,
  })
  .strict();

/** Signal receivers besides POST /v1/signals. */
const signalsSchema = z
  .object({
    /** Alertmanager webhook receiver at POST /v1/signals/alertmanager (bearer token as the API). */
    alertmanager: z
      .object({
        subject_label: z.string().min(1).default("vigil_subject"),
        check_label: z.string().min(1).default("vigil_check"),
        default_check: z.string().regex(/^[a-z][a-z0-9_]*$/).default("anomaly_detection"),
        severity_label: z.string().min(1).default("severity"),
        /** Status of a firing alert by severity; other severities fail. */
        severities: z.record(z.string(), z.enum(["warn", "fail"])).default({ info: "warn", warning: "warn", critical: "fail" }),
        /** How long a firing or resolved result stands; keep it above Alertmanager's repeat_interval. Default 24h. */
        ttl: duration().prefault("24h"),
      })
      .strict()
      .prefault({}),
    /** OpenID Shared Signals receiver: CAEP and RISC events from SSF transmitters (docs/signals.md). */
    ssf: ssfSchema,
  })
  .strict()
  .prefault({});

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    agent: agentSchema.prefault({}),
    /** What a subject no policy covers gets. `deny_all` (default) → deny. */
    default_security_rule: z.enum(["deny_all", "allow_all"]).default("deny_all"),
    decision: decisionSchema.prefault({}),
    inventories: z.array(inventoryEntrySchema).default([]),
    /** Modules exporting extra check, action or inventory factories. Paths resolve against the config file. */
    plugins: z.array(z.object({ module: z.string().min(1) }).strict()).default([]),
    checks: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, "check names are snake_case"), checkCommonSchema).default({}),
    communication_policies: z.array(communicationPolicySchema).default([]),
    identity_perimeter: identityPerimeterSchema.optional(),
    /** Break-glass: matching subjects are evaluated and recorded, never enforced on. */
    exempt: z.array(selectorSchema).default([]),
    /** Connections and credentials of the systems actions enforce through (`providers.<name>`), shared by all their actions. */
    providers: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, "letters, digits, _ . - only"), providerEntrySchema).default({}),
    enforcement: enforcementSchema.prefault({}),
    signals: signalsSchema,
  })
  .strict()
  .superRefine((cfg, ctx) => {
    if (cfg.agent.mode !== "cluster") return;
    // Refused rather than run as embedded: every replica would enforce on its own.
    if (!cfg.agent.cluster.redis) ctx.addIssue({ code: "custom", path: ["agent", "cluster", "redis"], message: "agent.mode is cluster: set agent.cluster.redis (url, or host and port) to the Redis the replicas share" });
    // Generated per host, these would differ between replicas: one chain, one key; one API, one token.
    if (cfg.agent.audit.key === undefined) ctx.addIssue({ code: "custom", path: ["agent", "audit", "key"], message: "agent.mode is cluster: every replica keys the one shared audit chain, so set agent.audit.key (the same on each, e.g. ${file:/etc/vigil/audit.key})" });
    if (cfg.agent.api.token === undefined) ctx.addIssue({ code: "custom", path: ["agent", "api", "token"], message: "agent.mode is cluster: clients reach any replica with one token, so set agent.api.token (the same on each)" });
    // The receiver's streams and seen jtis live in one process's database: replicas would each manage
    // the stream and miss each other's duplicates.
    if (cfg.signals.ssf.transmitters.length > 0) ctx.addIssue({ code: "custom", path: ["signals", "ssf", "transmitters"], message: "agent.mode is cluster: the Shared Signals receiver runs in embedded mode only (it keeps its streams and seen jtis in the local database); receive SSF on an embedded vigil" });
  });

export type VigilConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type CommunicationPolicyConfig = z.output<typeof communicationPolicySchema>;
export type IdentityPerimeterConfig = z.output<typeof identityPerimeterSchema>;
export type DecisionConfig = z.output<typeof decisionSchema>;
export type EnforcementConfig = z.output<typeof enforcementSchema>;
export type ActionEntry = z.output<typeof actionEntrySchema>;
export type CheckEntry = z.output<typeof checkCommonSchema>;
export type ProviderEntry = z.output<typeof providerEntrySchema>;
