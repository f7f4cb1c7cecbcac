/**
 * The agent's HTTP API on node:http: liveness and readiness probes without auth, everything under
 * `/v1/` behind a bearer token. Every request gets exactly one JSON response and one log line; no
 * request can take the process down (handlers are wrapped, bodies are capped, timeouts are set).
 *
 * Errors always have the shape `{error: {code, message}}`, `code` one of the documented
 * `VIGIL_ERR_*` codes with its status from `HTTP_STATUS`, and never carry internal details.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { alertmanagerPayloadSchema, alertsToSignals, type AlertmanagerMapping } from "./alertmanager.ts";
import { AuditStreams, DEFAULT_HEARTBEAT_MS, DEFAULT_MAX_STREAMS, DEFAULT_POLL_MS } from "./audit-stream.ts";
import type { AgentApi, ObservationInput, SignalInput } from "./agent-api.ts";
import type { PushAnswer, PushRequest } from "../signals/ssf/receiver.ts";
import { decisionView, subjectDetailView } from "./views.ts";
import type { AuditQuery } from "../store/contract.ts";
import { ACCESS_LEVELS, CHECK_STATUSES, RISK_LEVELS, SUBJECT_KINDS, type AccessLevel } from "../policy/model.ts";
import { HTTP_STATUS, VigilError, type ApiErrorCode, type ErrorCode } from "../errors.ts";
import { keyPath } from "../util/key-path.ts";
import { parseDuration } from "../util/duration.ts";
import { registerSecret, scrub } from "../util/redact.ts";
import { limitConnections } from "../util/connection-limits.ts";
import type { Logger } from "../telemetry/log.ts";

export interface ApiServerOptions {
  /** `host:port` or `[v6]:port`; port 0 picks a free one. The host is bound exactly as given. */
  listen: string;
  /** Bearer token every `/v1/` request must present. */
  token: string;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  api: AgentApi;
  logger: Logger;
  metrics?: { signal(check: string, outcome: "accepted" | "rejected"): void };
  /** Label mapping for POST /v1/signals/alertmanager; the route answers 404 without it. */
  alertmanager?: AlertmanagerMapping;
  /** The Shared Signals receiver behind POST /v1/signals/ssf/{transmitter}, asked for on each request (a reload may start one); the route answers 404 while there is none. */
  ssf?: () => SsfEndpoint | undefined;
  /** Open connections at most (`agent.api.max_connections`); more are closed when accepted. Default 256. */
  maxConnections?: number;
  /** How long a connection may stay open before sending a request. Default 5000 (the headers timeout). */
  idleTimeoutMs?: number;
  /** `GET /v1/audit/stream`: open streams at most (`agent.api.max_streams`, default 16), and how often an idle one sends a heartbeat (default 15 s) and looks for new entries (default 250 ms). */
  streams?: { maxStreams?: number; heartbeatMs?: number; pollMs?: number };
}

/** What the API needs of the Shared Signals receiver: push answers and its degraded streams for `/readyz`. */
export interface SsfEndpoint {
  push(transmitter: string, req: PushRequest): Promise<PushAnswer>;
  degraded(): readonly string[];
}

/** Default cap on open API connections. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** A request's headers must arrive within this long of its first byte. */
const HEADERS_TIMEOUT_MS = 5_000;
/** How often refusals over the connection cap are logged at most. */
const DROP_LOG_INTERVAL_MS = 60_000;

/** How long stop() waits for in-flight requests before cutting their connections. */
const STOP_GRACE_MS = 5_000;
const MAX_SIGNALS_PER_REQUEST = 100;
const MAX_TTL_MS = 30 * 86_400_000;
const MAX_REASON_CHARS = 1024;
const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
/** Check names that may become a metric label on rejection; anything else is counted as `unknown`. */
const CHECK_LABEL_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** An error raised by the server itself; its code's status comes from `HTTP_STATUS`. `headers` go on the response. */
class HttpError extends VigilError {
  readonly headers: Readonly<Record<string, string>>;
  constructor(code: ApiErrorCode, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.name = "HttpError";
    this.headers = headers;
  }
}

// ---------------------------------------------------------------------------------------------
// Body schemas

const required = (expected: string) => (iss: { input?: unknown }) => (iss.input === undefined ? "required" : `expected ${expected}`);
const nonEmptyString = (max: number) =>
  z
    .string({ error: required("a string") })
    .min(1, { error: "must not be empty" })
    .max(max, { error: `must be at most ${max} characters` });

const ttlSchema = z.string({ error: required('a duration string like "30s", "5m" or "1h"') }).transform((text, ctx) => {
  const ms = parseDuration(text);
  const fail = (message: string) => {
    ctx.issues.push({ code: "custom", message, input: text });
    return z.NEVER;
  };
  if (ms === undefined) return fail('expected a duration like "30s", "5m" or "1h"');
  if (ms <= 0) return fail("must be greater than 0");
  if (ms > MAX_TTL_MS) return fail("must be at most 30d");
  return ms;
});

const signalSchema = z.strictObject(
  {
    subject: nonEmptyString(2048),
    check: nonEmptyString(256),
    status: z.enum(CHECK_STATUSES, { error: required(`one of ${CHECK_STATUSES.join("|")}`) }),
    risk: z.enum(RISK_LEVELS, { error: required(`one of ${RISK_LEVELS.join("|")}`) }).optional(),
    ttl: ttlSchema.optional(),
    reason: z
      .string({ error: required("a string") })
      .max(MAX_REASON_CHARS, { error: `must be at most ${MAX_REASON_CHARS} characters` })
      .optional(),
    /** Optional stream name: results of different streams for one check stand side by side. */
    stream: z
      .string({ error: required("a string") })
      .regex(/^[A-Za-z0-9_.:/-]{1,128}$/, { error: "must be 1-128 characters of letters, digits and _ . : / -" })
      .optional(),
  },
  { error: (iss) => (iss.code === "invalid_type" ? "expected an object" : undefined) },
);

const signalBatchSchema = z
  .array(signalSchema)
  .min(1, { error: "expected at least 1 signal" })
  .max(MAX_SIGNALS_PER_REQUEST, { error: `expected at most ${MAX_SIGNALS_PER_REQUEST} signals` });

const resumeSchema = z.strictObject(
  { policy: nonEmptyString(256).optional() },
  { error: (iss) => (iss.code === "invalid_type" ? "expected an object" : undefined) },
);

/** Most ids one retry request may name. */
const MAX_RETRY_IDS = 1000;

/** `{"ids": [...]}` or `{"all": true}` (optionally with `"policy"`): naming both, or neither, is refused. */
const retrySchema = z
  .strictObject(
    {
      ids: z
        .array(nonEmptyString(64), { error: required("an array of ids") })
        .min(1, { error: "expected at least 1 id" })
        .max(MAX_RETRY_IDS, { error: `expected at most ${MAX_RETRY_IDS} ids` })
        .optional(),
      all: z.literal(true, { error: "expected true" }).optional(),
      policy: nonEmptyString(256).optional(),
    },
    { error: (iss) => (iss.code === "invalid_type" ? "expected an object" : undefined) },
  )
  .refine((b) => (b.ids === undefined) !== (b.all === undefined), { error: 'name the items to retry with "ids", or retry every one with "all": true' })
  .refine((b) => b.policy === undefined || b.all === true, { error: '"policy" narrows "all": true; with "ids" it is not used', path: ["policy"] });


// POST /v1/observations ----------------------------------------------------------------------

/** Observations one request may carry; more is refused with 413 (split the batch). */
export const MAX_OBSERVATIONS_PER_REQUEST = 1000;
/** An observation this far in the future is refused: it would make a series skip every point until then. */
const MAX_FUTURE_MS = 5 * 60_000;

const observationSchema = z.strictObject(
  {
    subject: nonEmptyString(2048),
    series: z
      .string({ error: required("a string") })
      .regex(/^[A-Za-z_][A-Za-z0-9_:.-]{0,63}(\{[^\u0000-\u001f]{0,256}\})?$/, { error: "expected a series name, optionally with {labels} (name: letters, digits, _ : . -)" }),
    /** Unix seconds (fractions allowed) or an RFC 3339 date and time. */
    timestamp: z.union([z.number({ error: required("Unix seconds or an RFC 3339 string") }), z.string()]).transform((t, ctx) => {
      const ms = typeof t === "number" ? Math.round(t * 1000) : /^\d{4}-\d{2}-\d{2}T/.test(t) ? Date.parse(t) : NaN;
      if (!Number.isFinite(ms) || ms < 0) {
        ctx.issues.push({ code: "custom", message: "expected Unix seconds or an RFC 3339 date and time", input: t });
        return z.NEVER;
      }
      return ms;
    }),
    /** A number; `null`, "NaN", "+Inf" and "-Inf" (Prometheus's spellings) are taken and skipped. */
    value: z.union([z.number(), z.null(), z.enum(["NaN", "+Inf", "-Inf", "Inf"])], { error: required('a number, null, "NaN", "+Inf" or "-Inf"') }).transform((v) =>
      v === null || v === "NaN" ? NaN : v === "-Inf" ? -Infinity : typeof v === "string" ? Infinity : v,
    ),
    check: nonEmptyString(256).optional(),
  },
  { error: (iss) => (iss.code === "invalid_type" ? "expected an object" : undefined) },
);

const observationBatchSchema = z.array(observationSchema).min(1, { error: "expected at least 1 observation" });

/** One message naming every problem by its field path, e.g. `status: expected one of pass|warn|fail|unknown`. */
export function formatZodError(error: z.ZodError): string {
  const problems: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) problems.push(`${keyPath([...issue.path, key])}: unknown key`);
    } else {
      problems.push(`${keyPath(issue.path) || "(root)"}: ${issue.message}`);
    }
  }
  return problems.join("; ");
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new HttpError("VIGIL_ERR_BAD_REQUEST", formatZodError(result.error));
  return result.data;
}

function toSignalInput(s: z.infer<typeof signalSchema>): SignalInput {
  return {
    subject: s.subject,
    check: s.check,
    status: s.status,
    ...(s.risk !== undefined ? { risk: s.risk } : {}),
    ...(s.ttl !== undefined ? { ttl_ms: s.ttl } : {}),
    ...(s.reason !== undefined ? { reason: s.reason } : {}),
    ...(s.stream !== undefined ? { stream: `api:${s.stream}` } : {}),
    source: "api",
  };
}

// ---------------------------------------------------------------------------------------------
// Query strings

class Query {
  private readonly params: URLSearchParams;
  private readonly seen = new Set<string>();
  constructor(search: string) {
    this.params = new URLSearchParams(search);
  }
  /** A parameter's value; empty counts as absent; repeating a parameter is an error. */
  string(name: string): string | undefined {
    this.seen.add(name);
    const values = this.params.getAll(name);
    if (values.length > 1) throw new HttpError("VIGIL_ERR_BAD_REQUEST", `${name}: must be given at most once`);
    const value = values[0];
    return value === undefined || value === "" ? undefined : value;
  }
  int(name: string, min: number, max: number): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new HttpError("VIGIL_ERR_BAD_REQUEST", `${name}: expected an integer from ${min} to ${max}`);
    return n;
  }
  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(text)) throw new HttpError("VIGIL_ERR_BAD_REQUEST", `${name}: expected one of ${allowed.join("|")}`);
    return text as T;
  }
  /** Rejects parameters the route does not know (typos would otherwise silently widen a query). */
  done(): void {
    for (const name of this.params.keys()) {
      if (!this.seen.has(name)) throw new HttpError("VIGIL_ERR_BAD_REQUEST", `${name}: unknown query parameter`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Routing

interface Ctx {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Decoded path parameter (`{id}`), when the route has one. */
  readonly param: string;
  readonly query: Query;
  /** Reads and parses the JSON body; undefined when the request has none. */
  body(): Promise<unknown>;
  /** Reads the body as bytes, whatever its type, up to `maxBytes`; `too_large` (unread) past it. */
  rawBody(maxBytes: number): Promise<Buffer | "too_large">;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** Sent as is instead of `body` as JSON (with its own content type in `headers`). */
  raw?: string;
}

type Handler = (ctx: Ctx) => Promise<Reply> | Reply;

interface Route {
  /** Route template, used in logs instead of the raw path. */
  readonly template: string;
  readonly auth: boolean;
  readonly methods: Readonly<Record<string, Handler>>;
}

function listenParts(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new VigilError("VIGIL_ERR_USAGE", `listen address "${listen}" is not "host:port" (e.g. "127.0.0.1:7070" or "[::1]:7070")`);
  return { host: (m[1] ?? m[2])!, port };
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && Number(length) > 0);
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const [type, ...params] = value.split(";").map((s) => s.trim().toLowerCase());
  if (type !== "application/json") return false;
  for (const p of params) {
    const [k, v] = p.split("=").map((s) => s.trim());
    if (k === "charset" && v !== "utf-8" && v !== "utf8" && v !== '"utf-8"') return false;
  }
  return true;
}

function statusLevel(status: number): "debug" | "info" | "error" {
  return status >= 500 ? "error" : status >= 400 ? "info" : "debug";
}

export class ApiServer {
  private readonly opts: ApiServerOptions;
  private readonly host: string;
  private readonly port: number;
  private readonly tokenDigest: Buffer;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly exact = new Map<string, Route>();
  private readonly prefixed: { prefix: string; route: Route }[] = [];
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private readonly streams: AuditStreams;

  constructor(opts: ApiServerOptions) {
    if (typeof opts.token !== "string" || opts.token.length === 0) throw new VigilError("VIGIL_ERR_USAGE", "the API server needs a non-empty bearer token");
    if (!Number.isSafeInteger(opts.maxBodyBytes) || opts.maxBodyBytes < 1) throw new VigilError("VIGIL_ERR_USAGE", "maxBodyBytes must be a positive integer");
    const { host, port } = listenParts(opts.listen);
    this.opts = opts;
    this.host = host;
    this.port = port;
    registerSecret(opts.token);
    this.tokenDigest = digest(opts.token);
    this.server = createServer({
      requestTimeout: 10_000,
      headersTimeout: HEADERS_TIMEOUT_MS,
      keepAliveTimeout: 5_000,
      // Timeouts are only enforced on this tick; the default (30 s) would stretch them far past their values.
      connectionsCheckingInterval: 1_000,
    });
    this.server.keepAliveTimeout = 5_000;
    let dropped = 0;
    let droppedLogged = -Infinity;
    limitConnections(this.server, {
      idleTimeoutMs: opts.idleTimeoutMs ?? HEADERS_TIMEOUT_MS,
      maxConnections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      onDrop: () => {
        // A flood of connections must not become a flood of log lines.
        dropped++;
        const now = performance.now();
        if (now - droppedLogged < DROP_LOG_INTERVAL_MS) return;
        droppedLogged = now;
        this.opts.logger.warn({ dropped, max_connections: this.server.maxConnections }, "api server at its connection cap; refusing new connections");
        dropped = 0;
      },
    });
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server.on("request", (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    this.streams = new AuditStreams(
      (q) => opts.api.readAudit(q),
      {
        maxStreams: opts.streams?.maxStreams ?? DEFAULT_MAX_STREAMS,
        heartbeatMs: opts.streams?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
        pollMs: opts.streams?.pollMs ?? DEFAULT_POLL_MS,
      },
      opts.logger,
    );
    this.defineRoutes();
  }

  /** Binds the listen address. Rejects with the bind error (e.g. EADDRINUSE). */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new VigilError("VIGIL_ERR_SHUTDOWN", "the API server has been stopped"));
    this.starting ??= new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once("error", onError);
      this.server.listen({ host: this.host, port: this.port, exclusive: true }, () => {
        this.server.off("error", onError);
        this.server.on("error", (err) => this.opts.logger.error({ err }, "api server error"));
        this.opts.logger.info({ address: this.address }, "api server listening");
        resolve();
      });
    });
    return this.starting;
  }

  /** Stops accepting, closes idle keep-alive sockets, waits up to 5 s for in-flight requests, then cuts the rest. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  get address(): { host: string; port: number } {
    const addr = this.server.address();
    if (addr === null || typeof addr === "string") throw new VigilError("VIGIL_ERR_USAGE", "the API server is not listening");
    return { host: (addr as AddressInfo).address, port: (addr as AddressInfo).port };
  }

  private async shutdown(): Promise<void> {
    // Event streams never finish on their own: end them first, or the drain below waits them out.
    this.streams.closeAll();
    if (!this.server.listening) {
      // Never started, or start() failed: nothing to wait for. Wait for a pending start to settle first.
      await this.starting?.catch(() => undefined);
      if (!this.server.listening) return;
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => (this.drained = resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS))),
      ]);
      clearTimeout(timer);
      if (this.inFlight > 0) this.opts.logger.warn({ in_flight: this.inFlight }, "api server stopped with requests still in flight");
    }
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.opts.logger.info("api server stopped");
  }

  // -------------------------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    this.inFlight++;
    let template = "unmatched";
    let logErr: unknown;
    let bodyPending = hasBody(req);
    req.on("error", () => undefined); // aborted uploads surface through body(); never as an uncaught error
    res.on("error", () => undefined);
    res.on("close", () => {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
      const status = res.writableFinished ? res.statusCode : 499;
      const fields = { method: req.method, route: template, status, ms: Math.round((performance.now() - started) * 10) / 10, ...(logErr !== undefined ? { err: logErr } : {}) };
      this.opts.logger[statusLevel(status)](fields, "http request");
    });

    const send = (reply: Reply) => {
      if (res.headersSent || res.destroyed) return;
      const payload = reply.raw ?? JSON.stringify(reply.body);
      res.statusCode = reply.status;
      res.setHeader("content-type", "application/json; charset=utf-8");
      res.setHeader("cache-control", "no-store");
      res.setHeader("x-content-type-options", "nosniff");
      for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
      // An unread body is never drained (it could be endless): the connection closes instead.
      if (bodyPending || this.stopping) res.setHeader("connection", "close");
      res.end(req.method === "HEAD" ? undefined : payload);
    };

    const fail = (err: unknown) => {
      const mapped = errorResponse(err);
      if (mapped.status >= 500) logErr = err;
      send({ status: mapped.status, body: { error: { code: mapped.code, message: mapped.message } }, headers: mapped.headers });
    };

    const run = async () => {
      const rawUrl = req.url ?? "/";
      let target = rawUrl;
      if (!rawUrl.startsWith("/")) {
        // absolute-form (`GET http://host/path`): keep only the path and query
        try {
          const u = new URL(rawUrl);
          target = u.pathname + u.search;
        } catch {
          throw new HttpError("VIGIL_ERR_BAD_REQUEST", "malformed request target");
        }
      }
      const q = target.indexOf("?");
      const path = q === -1 ? target : target.slice(0, q);
      const search = q === -1 ? "" : target.slice(q + 1);

      const match = this.match(path);
      if (match?.route.auth ?? path.startsWith("/v1/")) this.authenticate(req);
      if (!match) throw new HttpError("VIGIL_ERR_NOT_FOUND", "no such route");
      template = match.route.template;
      const method = req.method === "HEAD" && Object.hasOwn(match.route.methods, "GET") ? "GET" : (req.method ?? "");
      const handler = Object.hasOwn(match.route.methods, method) ? match.route.methods[method] : undefined;
      if (!handler) {
        const allow = Object.keys(match.route.methods);
        if (allow.includes("GET")) allow.push("HEAD");
        throw new HttpError("VIGIL_ERR_METHOD_NOT_ALLOWED", `${req.method} is not allowed here`, { allow: allow.join(", ") });
      }
      let param = "";
      if (match.raw !== undefined) {
        try {
          param = decodeURIComponent(match.raw);
        } catch {
          throw new HttpError("VIGIL_ERR_BAD_REQUEST", "the path holds malformed percent-encoding");
        }
        if (param === "") throw new HttpError("VIGIL_ERR_NOT_FOUND", "no such route");
      }
      const ctx: Ctx = {
        req,
        res,
        param,
        query: new Query(search),
        body: async () => {
          const value = await this.readBody(req);
          bodyPending = false;
          return value;
        },
        rawBody: async (maxBytes) => {
          const bytes = hasBody(req) ? await this.readBytes(req, maxBytes) : Buffer.alloc(0);
          if (bytes !== "too_large") bodyPending = false;
          return bytes;
        },
      };
      send(await handler(ctx));
    };

    run().catch(fail).catch((err: unknown) => {
      // Only reached when building the error response itself failed.
      logErr = err;
      res.destroy();
    });
  }

  private match(path: string): { route: Route; raw?: string } | undefined {
    const exact = this.exact.get(path);
    if (exact) return { route: exact };
    for (const { prefix, route } of this.prefixed) {
      if (path.startsWith(prefix)) return { route, raw: path.slice(prefix.length) };
    }
    return undefined;
  }

  private authenticate(req: IncomingMessage): void {
    const unauthorized = (message: string) => new HttpError("VIGIL_ERR_UNAUTHORIZED", message);
    const header = req.headers.authorization;
    if (header === undefined) throw unauthorized("a bearer token is required");
    const m = /^Bearer[ \t]+(.+?)[ \t]*$/i.exec(header);
    if (!m) throw unauthorized("a bearer token is required");
    // Digests make the comparison independent of the presented token's length.
    if (!timingSafeEqual(digest(m[1]!), this.tokenDigest)) throw unauthorized("the bearer token is not valid");
  }

  /** Reads a JSON body with a hard byte cap. Returns undefined when there is none. */
  private async readBody(req: IncomingMessage): Promise<unknown> {
    const max = this.opts.maxBodyBytes;
    if (!hasBody(req)) return undefined;
    if (!isJsonContentType(req.headers["content-type"])) throw new HttpError("VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE", "the body must be application/json");
    const bytes = await this.readBytes(req, max);
    if (bytes === "too_large") throw new HttpError("VIGIL_ERR_PAYLOAD_TOO_LARGE", `the body exceeds ${max} bytes`);
    return parseJson(bytes);
  }

  /** Reads the body's bytes up to `max`; `too_large` as soon as it (or its declared length) holds more, leaving the rest unread. */
  private readBytes(req: IncomingMessage, max: number): Promise<Buffer | "too_large"> {
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > max) return Promise.resolve("too_large");
    return new Promise<Buffer | "too_large">((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        req.off("data", onData);
        req.off("end", onEnd);
        req.off("close", onClose);
        fn();
      };
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > max) {
          finish(() => {
            req.pause();
            resolve("too_large");
          });
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = () => finish(() => resolve(Buffer.concat(chunks, size)));
      const onClose = () => finish(() => reject(new HttpError("VIGIL_ERR_BAD_REQUEST", "the request was aborted before its body was complete")));
      req.on("data", onData);
      req.on("end", onEnd);
      req.on("close", onClose);
    });
  }

  // -------------------------------------------------------------------------------------------

  private defineRoutes(): void {
    const api = this.opts.api;
    const exact = (template: string, auth: boolean, methods: Record<string, Handler>) => this.exact.set(template, { template, auth, methods });
    const prefixed = (prefix: string, methods: Record<string, Handler>) =>
      this.prefixed.push({ prefix, route: { template: `${prefix}{id}`, auth: true, methods } });

    exact("/healthz", false, {
      GET: () => {
        const ok = api.health().ok === true;
        return { status: ok ? 200 : 503, body: { ok } };
      },
    });
    exact("/readyz", false, {
      GET: () => {
        const r = api.ready();
        if (!r.ready) return { status: 503, body: { ready: false, reasons: r.reasons.map((s) => scrub(String(s))) } };
        // Degraded signal streams are detail for the operator, never a reason to take the agent out of service.
        const degraded = this.opts.ssf?.()?.degraded() ?? [];
        return { status: 200, body: degraded.length > 0 ? { ready: true, degraded: degraded.map((s) => scrub(String(s))) } : { ready: true } };
      },
    });

    // Documents providers publish for their peers (a CAEP transmitter's JWKS and SSF metadata): public by design.
    this.prefixed.push({
      prefix: "/.well-known/",
      route: {
        template: "/.well-known/{document}",
        auth: false,
        methods: {
          GET: ({ param, query }) => {
            query.done();
            const doc = api.publicDocument?.(`/.well-known/${param}`);
            if (!doc) throw new HttpError("VIGIL_ERR_NOT_FOUND", `no document at /.well-known/${param}`);
            return { status: 200, body: undefined, raw: doc.body(), headers: { "content-type": doc.contentType, "cache-control": "public, max-age=300" } };
          },
        },
      },
    });

    exact("/v1/subjects", true, {
      GET: async ({ query }) => {
        const filter = {
          policy: query.string("policy"),
          access: query.oneOf<AccessLevel>("access", ACCESS_LEVELS),
          kind: query.oneOf("kind", SUBJECT_KINDS),
          limit: query.int("limit", 1, MAX_LIMIT) ?? DEFAULT_LIMIT,
          offset: query.int("offset", 0, Number.MAX_SAFE_INTEGER) ?? 0,
        };
        query.done();
        const { subjects, total } = await api.listSubjects(dropUndefined(filter));
        return { status: 200, body: { subjects, total } };
      },
    });
    prefixed("/v1/subjects/", {
      GET: async ({ param, query }) => {
        query.done();
        const detail = await api.getSubject(param);
        if (!detail) throw new HttpError("VIGIL_ERR_UNKNOWN_SUBJECT", `unknown subject: ${param}`);
        return { status: 200, body: subjectDetailView(detail) };
      },
    });
    prefixed("/v1/evaluate/", {
      POST: async ({ param, query, body }) => {
        query.done();
        await body(); // accepted and ignored, but still capped and type-checked
        const decisions = await api.evaluate(param);
        if (!decisions) throw new HttpError("VIGIL_ERR_UNKNOWN_SUBJECT", `unknown subject: ${param}`);
        return { status: 200, body: { decisions: decisions.map(decisionView) } };
      },
    });
    exact("/v1/signals/alertmanager", true, {
      POST: (ctx) => this.alertmanager(ctx),
    });
    // RFC 8935 push: the transmitter authenticates with the stream's own Authorization header, not the API token.
    this.prefixed.push({ prefix: "/v1/signals/ssf/", route: { template: "/v1/signals/ssf/{transmitter}", auth: false, methods: { POST: (ctx) => this.ssfPush(ctx) } } });
    exact("/v1/signals", true, {
      POST: (ctx) => this.signals(ctx),
    });
    exact("/v1/observations", true, {
      POST: (ctx) => this.observations(ctx),
    });
    exact("/v1/audit", true, {
      GET: async ({ query }) => {
        const q: AuditQuery = dropUndefined({
          after: query.int("after", 0, Number.MAX_SAFE_INTEGER),
          subject: query.string("subject"),
          type: query.string("type"),
          limit: query.int("limit", 1, MAX_LIMIT) ?? DEFAULT_LIMIT,
        });
        query.done();
        const entries = await api.readAudit(q);
        return { status: 200, body: { entries } };
      },
    });
    exact("/v1/enforcement", true, {
      GET: ({ query }) => {
        query.done();
        return { status: 200, body: { policies: api.enforcement() } };
      },
    });
    exact("/v1/enforcement/resume", true, {
      POST: async ({ query, body }) => {
        query.done();
        const raw = await body();
        const { policy } = raw === undefined ? {} : parseWith(resumeSchema, raw);
        const { resumed } = await api.resumeEnforcement(policy);
        return { status: 200, body: { resumed } };
      },
    });

    exact("/v1/enforcement/failed", true, {
      GET: async ({ query }) => {
        const q = dropUndefined({
          policy: query.string("policy"),
          limit: query.int("limit", 1, MAX_LIMIT) ?? DEFAULT_LIMIT,
          offset: query.int("offset", 0, Number.MAX_SAFE_INTEGER) ?? 0,
        });
        query.done();
        const { items, total } = await api.failedEnforcement(q);
        return { status: 200, body: { items, total } };
      },
    });
    exact("/v1/enforcement/failed/retry", true, {
      POST: async ({ query, body }) => {
        query.done();
        const raw = await body();
        if (raw === undefined) throw new HttpError("VIGIL_ERR_BAD_REQUEST", 'a JSON body is required: {"ids": [...]} or {"all": true}');
        const b = parseWith(retrySchema, raw);
        const result = await api.retryEnforcement(b.ids ? { ids: b.ids } : { all: true, ...(b.policy === undefined ? {} : { policy: b.policy }) });
        return { status: 200, body: result };
      },
    });

    exact("/v1/audit/stream", true, {
      GET: (ctx) => this.auditStream(ctx),
    });

    // Version, queue depth and whether any work is ready or running: an operator (or a test) can
    // wait for the agent to be done with what a signal set off instead of guessing how long it takes.
    exact("/v1/status", true, {
      GET: async ({ query }) => {
        query.done();
        return { status: 200, body: await api.status() };
      },
    });
  }

  /**
   * `GET /v1/audit/stream?after=&subject=&type=`: audit entries as server-sent events (`audit-stream.ts`).
   * A `Last-Event-ID` header (a reconnecting client) takes precedence over `after`.
   */
  private async auditStream({ req, res, query }: Ctx): Promise<Reply> {
    const after = query.int("after", 0, Number.MAX_SAFE_INTEGER);
    const subject = query.string("subject");
    const type = query.string("type");
    query.done();
    const header = String(req.headers["last-event-id"] ?? "").trim();
    let resume: number | undefined;
    if (header !== "") {
      resume = /^\d{1,16}$/.test(header) ? Number(header) : NaN;
      if (!Number.isSafeInteger(resume)) throw new HttpError("VIGIL_ERR_BAD_REQUEST", "Last-Event-ID: expected the seq of an audit entry");
    }
    try {
      await this.streams.serve(res, dropUndefined({ after: resume ?? after, subject, type }), req.method === "HEAD");
    } catch (err) {
      if (err instanceof VigilError && err.code === "VIGIL_ERR_TOO_MANY_STREAMS") throw new HttpError("VIGIL_ERR_TOO_MANY_STREAMS", err.message, { "retry-after": "5" });
      throw err;
    }
    // The response is complete (or the client went away); nothing is left to send.
    return { status: 200, body: undefined };
  }

  /**
   * Alertmanager's webhook. Answers 200 once every alert is handled, including alerts that name
   * no subject or an unknown one (reported in the body, logged): Alertmanager retries non-2xx
   * answers, and retrying cannot fix those. Only a failure to record a signal answers 5xx.
   */
  private async alertmanager({ query, body }: Ctx): Promise<Reply> {
    const mapping = this.opts.alertmanager;
    if (!mapping) throw new HttpError("VIGIL_ERR_NOT_FOUND", "the Alertmanager receiver is not configured");
    query.done();
    const raw = await body();
    if (raw === undefined) throw new HttpError("VIGIL_ERR_BAD_REQUEST", "a JSON body is required");
    const { signals, skipped } = alertsToSignals(parseWith(alertmanagerPayloadSchema, raw), mapping);
    const rejected: { subject: string; check: string; reason: string }[] = [];
    let accepted = 0;
    for (const signal of signals) {
      try {
        await this.opts.api.acceptSignal(signal);
        accepted++;
        this.opts.metrics?.signal(signal.check, "accepted");
      } catch (err) {
        const mapped = errorResponse(err);
        if (mapped.status >= 500) throw err;
        this.opts.metrics?.signal("unknown", "rejected");
        rejected.push({ subject: signal.subject, check: signal.check, reason: mapped.message });
      }
    }
    if (skipped.length + rejected.length > 0) this.opts.logger.warn({ skipped, rejected }, "alertmanager: some alerts were not turned into signals");
    return { status: 200, body: { accepted, rejected, skipped } };
  }

  /**
   * Pushed points for anomaly_detection's series. 202 with what became of each: accepted, skipped
   * (a NaN, a re-sent point, …) or rejected (an unknown subject or series) — one bad point does not
   * refuse the batch. A batch over `MAX_OBSERVATIONS_PER_REQUEST` is refused whole with 413.
   */
  private async observations({ query, body }: Ctx): Promise<Reply> {
    query.done();
    const accept = this.opts.api.acceptObservations?.bind(this.opts.api);
    if (!accept) throw new HttpError("VIGIL_ERR_NOT_FOUND", "this agent takes no observations");
    const raw = await body();
    if (raw === undefined) throw new HttpError("VIGIL_ERR_BAD_REQUEST", "a JSON body is required");
    if (!Array.isArray(raw)) throw new HttpError("VIGIL_ERR_BAD_REQUEST", "expected a JSON array of observations");
    if (raw.length > MAX_OBSERVATIONS_PER_REQUEST) {
      throw new HttpError("VIGIL_ERR_PAYLOAD_TOO_LARGE", `${raw.length} observations in one request; at most ${MAX_OBSERVATIONS_PER_REQUEST} (split the batch)`);
    }
    const batch: ObservationInput[] = parseWith(observationBatchSchema, raw).map((o) => ({
      subject: o.subject,
      series: o.series,
      timestamp: o.timestamp,
      value: o.value,
      ...(o.check !== undefined ? { check: o.check } : {}),
    }));
    const latest = Date.now() + MAX_FUTURE_MS;
    const future = batch.findIndex((o) => o.timestamp > latest);
    if (future >= 0) throw new HttpError("VIGIL_ERR_BAD_REQUEST", `[${future}].timestamp: more than 5 minutes in the future (check the sender's clock, and that it sends seconds, not milliseconds)`);
    const receipt = await accept(batch);
    return { status: 202, body: receipt };
  }

  /**
   * A pushed Security Event Token (RFC 8935): 202 once its signals are durable (and for a repeat of
   * one already accepted), 400 `{err, description}` with the RFC 8935 code when it is refused, 503
   * with Retry-After when vigil cannot judge it yet. Query parameters are ignored.
   */
  private async ssfPush({ req, param, rawBody }: Ctx): Promise<Reply> {
    const ssf = this.opts.ssf?.();
    if (!ssf) throw new HttpError("VIGIL_ERR_NOT_FOUND", "the Shared Signals receiver is not configured");
    const answer = await ssf.push(param, { authorization: req.headers.authorization, contentType: req.headers["content-type"], readBody: rawBody });
    if (answer.status === 202) return { status: 202, body: undefined, raw: "" };
    if (answer.status === 400) return { status: 400, body: { err: answer.err, description: scrub(answer.description) } };
    return { status: 503, body: { description: scrub(answer.description) }, headers: { "retry-after": String(answer.retryAfterSeconds) } };
  }

  private async signals({ query, body }: Ctx): Promise<Reply> {
    const metrics = this.opts.metrics;
    const count = (check: unknown, outcome: "accepted" | "rejected") => {
      try {
        // Only accepted signals name a configured check; a rejected one may name anything, so it
        // is counted under "unknown" to keep the label's values bounded by the config.
        metrics?.signal(outcome === "accepted" && typeof check === "string" && CHECK_LABEL_RE.test(check) ? check : "unknown", outcome);
      } catch {
        // metrics never fail a request
      }
    };
    let raw: unknown;
    try {
      query.done();
      raw = await body();
      if (raw === undefined) throw new HttpError("VIGIL_ERR_BAD_REQUEST", "a JSON body is required");
    } catch (err) {
      count("unknown", "rejected");
      throw err;
    }
    const checkOf = (v: unknown) => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as { check?: unknown }).check : undefined);

    if (!Array.isArray(raw)) {
      let signal: SignalInput;
      try {
        signal = toSignalInput(parseWith(signalSchema, raw));
      } catch (err) {
        count(checkOf(raw), "rejected");
        throw err;
      }
      try {
        const { id, policies } = await this.opts.api.acceptSignal(signal);
        count(signal.check, "accepted");
        return { status: 202, body: { accepted: true, id, policies } };
      } catch (err) {
        count(signal.check, "rejected");
        throw err;
      }
    }

    let signals: SignalInput[];
    try {
      signals = parseWith(signalBatchSchema, raw).map(toSignalInput);
    } catch (err) {
      if (raw.length === 0 || raw.length > MAX_SIGNALS_PER_REQUEST) count("unknown", "rejected");
      else for (const item of raw) count(checkOf(item), "rejected");
      throw err;
    }
    // Each signal stands on its own: one unknown subject does not hold back the others.
    const results: unknown[] = [];
    let accepted = 0;
    for (const [i, signal] of signals.entries()) {
      try {
        const { id, policies } = await this.opts.api.acceptSignal(signal);
        count(signal.check, "accepted");
        results.push({ accepted: true, id, policies });
        accepted++;
      } catch (err) {
        count(signal.check, "rejected");
        const mapped = errorResponse(err);
        if (mapped.status >= 500) this.opts.logger.error({ err, check: signal.check }, "signal in batch failed");
        if (mapped.code === "VIGIL_ERR_UNAVAILABLE") {
          // The shared state is out of reach: the rest would fail alike. With nothing accepted the
          // sender gets a plain 503 to retry; otherwise each entry says whether it was taken.
          if (accepted === 0) throw err;
          for (const rest of signals.slice(i)) {
            if (rest !== signal) count(rest.check, "rejected");
            results.push({ accepted: false, error: { code: mapped.code, message: mapped.message } });
          }
          break;
        }
        results.push({ accepted: false, error: { code: mapped.code, message: mapped.message } });
      }
    }
    return { status: 202, body: results };
  }
}

/** Headers every response with the code carries. */
const CODE_HEADERS: Partial<Record<ApiErrorCode, Readonly<Record<string, string>>>> = {
  VIGIL_ERR_UNAUTHORIZED: { "www-authenticate": 'Bearer realm="vigil"' },
  VIGIL_ERR_SHUTDOWN: { "retry-after": "5" },
  VIGIL_ERR_UNAVAILABLE: { "retry-after": "5" },
};

function isApiCode(code: ErrorCode): code is ApiErrorCode {
  return HTTP_STATUS[code] !== null;
}

/**
 * Maps a handler error onto its response: a code the API answers with keeps it and its status from
 * `HTTP_STATUS`; anything else (another code, no code) is 500 `VIGIL_ERR_INTERNAL` and says nothing
 * about its cause.
 */
export function errorResponse(err: unknown): { status: number; code: ApiErrorCode; message: string; headers: Record<string, string> } {
  if (err instanceof VigilError && isApiCode(err.code) && err.code !== "VIGIL_ERR_INTERNAL") {
    const code = err.code;
    return {
      status: HTTP_STATUS[code],
      code,
      message: code === "VIGIL_ERR_SHUTDOWN" ? "the agent is stopping" : scrub(err.message),
      headers: { ...CODE_HEADERS[code], ...(err instanceof HttpError ? err.headers : {}) },
    };
  }
  return { status: HTTP_STATUS.VIGIL_ERR_INTERNAL, code: "VIGIL_ERR_INTERNAL", message: "internal error", headers: {} };
}

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError("VIGIL_ERR_BAD_REQUEST", "body is not valid JSON: it is not UTF-8");
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError("VIGIL_ERR_BAD_REQUEST", `body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function dropUndefined<T extends Record<string, unknown>>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (v !== undefined) out[k] = v;
  return out as T;
}
