/**
 * The one outbound HTTP client every plugin shares: keep-alive connection reuse on undici,
 * a whole-request deadline, a response size cap, upstream failures classified as transient or
 * permanent (`UpstreamError`), and a guard for URLs that came from hostile input.
 *
 * It never retries: the durable job queue does, with backoff, honouring `retryAfterMs`.
 */
import dns from "node:dns";
import net from "node:net";
import type { Socket } from "node:net";
import type { Agent } from "undici";
import { UpstreamError, VigilError } from "../errors.ts";
import { isSecretKey, MASK, scrub, scrubAndCut } from "../util/redact.ts";
import { DEFAULT_USER_AGENT } from "../util/version.ts";

/** Default whole-request deadline (connect, headers and body). */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Default response body cap: 1 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
/** How much of an error response's body an error message quotes. */
const ERROR_BODY_CHARS = 512;
/**
 * How much of a body is decoded and masked before it is quoted: masking goes first, so a secret the
 * quote's cut would split is recognised whole. Bounds the work on a large error body.
 */
const QUOTE_WINDOW_BYTES = 64 * 1024;

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Serialised as the body; sets `content-type: application/json` unless a header sets it. */
  json?: unknown;
  /** Deadline for the whole request, body included. Default 10000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Response body cap. Default 1 MiB; a larger 2xx body is a permanent `UpstreamError` and its connection is destroyed. */
  maxResponseBytes?: number;
  /** Which statuses count as success. Default: 2xx. */
  okStatus?: (status: number) => boolean;
  /**
   * Values this request sends that no error or quote may show, besides registered secrets and the
   * values of secret-named headers (`Authorization`, `X-Vault-Token`, …), which are masked always.
   */
  secrets?: readonly string[];
  /**
   * Set when the URL came from hostile input (a certificate, a signal): only http/https, and unless
   * `allowPrivate`, no target that is not globally reachable (loopback, private, link-local, CGNAT,
   * multicast, documentation, the IPv6 special-purpose ranges: see `forbiddenAddress`).
   */
  untrusted?: { allowPrivate: boolean };
}

export interface HttpResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  text(): string;
  /** Parses the body; throws a permanent `UpstreamError` when it is not JSON. */
  json<T = unknown>(): T;
  /**
   * The body for an error message: registered secrets and the credentials this request sent masked
   * first, then cut to `maxChars` with any secret the cut splits masked too (`scrubAndCut`).
   */
  quote(maxChars: number): string;
  /** `text` (say, a message the body carried) masked like `quote`, and cut when `maxChars` is given. */
  mask(text: string, maxChars?: number): string;
}

export interface HttpClient {
  request(req: HttpRequest): Promise<HttpResponse>;
  close(): Promise<void>;
}

export interface HttpClientOptions {
  /** Default `vigil/<version>`; a request's own `user-agent` header wins. */
  userAgent?: string;
  /** Connections per origin. Default 32. */
  connections?: number;
  /**
   * How long an idle connection is kept. Default 10000. A server's `Keep-Alive: timeout=` hint shortens it;
   * longer risks reusing a socket the server already closed (the request then fails as transient).
   */
  keepAliveTimeoutMs?: number;
  /** Extra CA certificates (PEM) trusted for https, replacing the system store. */
  ca?: string | Buffer;
  /** Client certificate chain (PEM) presented to https servers that ask for one (mutual TLS). Needs `key`. */
  cert?: string | Buffer;
  /** Private key (PEM) of `cert`. */
  key?: string | Buffer;
}

/** undici is loaded on the first request: an agent whose actions make no HTTP calls never pays its memory. */
let undici: Promise<typeof import("undici")> | undefined;
const loadUndici = () => (undici ??= import("undici"));

export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  let pools: Promise<{ trusted: Agent; guarded: Agent }> | undefined;
  const getPools = () => (pools ??= loadUndici().then((u) => createPools(u, options)));
  return {
    request: async (req) => {
      const { trusted, guarded } = await getPools();
      return send(req, req.untrusted && !req.untrusted.allowPrivate ? guarded : trusted, userAgent);
    },
    close: async () => {
      if (!pools) return;
      const { trusted, guarded } = await pools;
      await Promise.all([trusted.close(), guarded.close()]);
    },
  };
}

function createPools(u: typeof import("undici"), options: HttpClientOptions): { trusted: Agent; guarded: Agent } {
  const agentOptions = { connections: options.connections ?? 32, keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000 };
  const tlsOptions = {
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    ...(options.cert === undefined || options.key === undefined ? {} : { cert: options.cert, key: options.key }),
  };
  const trusted = new u.Agent({ ...agentOptions, connect: tlsOptions });
  // Hostile URLs get their own pool, so a connection made for them is always one the guard checked.
  const guardedConnector = u.buildConnector({ ...tlsOptions, lookup: guardedLookup });
  const guarded = new u.Agent({
    ...agentOptions,
    connect: (opts, callback) => {
      guardedConnector(opts, (err, socket) => {
        if (err !== null) return callback(err, null);
        // Defence in depth: whatever path produced the socket, check where it actually landed.
        const forbidden = forbiddenPeer(socket);
        if (forbidden !== undefined) {
          socket.destroy();
          return callback(forbidden, null);
        }
        callback(null, socket);
      });
    },
  });
  return { trusted, guarded };
}

async function send(req: HttpRequest, dispatcher: Agent, userAgent: string): Promise<HttpResponse> {
  const method = req.method.toUpperCase();
  const shownUrl = maskUrl(req.url);
  const where = `${method} ${shownUrl}`;
  if (req.untrusted) checkUntrustedUrl(req.url, req.untrusted.allowPrivate, where);

  const headers: Record<string, string> = { ...req.headers };
  const has = (name: string): boolean => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (!has("user-agent")) headers["user-agent"] = userAgent;
  let body = req.body;
  if (req.json !== undefined) {
    body = JSON.stringify(req.json);
    if (!has("content-type")) headers["content-type"] = "application/json";
  }

  const credentials = sentCredentials(headers, req.secrets);
  const timeoutMs = req.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = AbortSignal.timeout(timeoutMs);
  const signal = req.signal ? AbortSignal.any([req.signal, deadline]) : deadline;
  const limit = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const isOk = req.okStatus ?? ((s: number) => s >= 200 && s < 300);
  const details = { method, url: shownUrl };

  try {
    const res = await (await loadUndici()).request(req.url, { dispatcher, method, headers, body: body ?? null, signal });
    const contentLength = Number(res.headers["content-length"]);
    const { buf, truncated } = Number.isFinite(contentLength) && contentLength > limit ? { buf: Buffer.alloc(0), truncated: true } : await readBody(res.body, limit);
    if (truncated) res.body.destroy(); // an unread remainder makes the connection unusable; undici drops it
    const status = res.statusCode;
    const resHeaders = flattenHeaders(res.headers);
    if (isOk(status)) {
      if (truncated) {
        throw new UpstreamError(false, scrub(`${where} → ${status}: response body larger than ${limit} bytes`), { status, details });
      }
      return response(status, resHeaders, buf, where, credentials);
    }
    const transient = isTransientStatus(status);
    const snippet = quoteBody(buf, ERROR_BODY_CHARS, credentials, truncated);
    throw new UpstreamError(transient, scrub(`${where} → ${status}${snippet ? `: ${snippet}` : ""}`), {
      status,
      retryAfterMs: transient ? parseRetryAfter(resHeaders, Date.now()) : undefined,
      details,
    });
  } catch (err) {
    throw classify(err, where, details, timeoutMs, req.signal, deadline);
  }
}

function classify(err: unknown, where: string, details: Record<string, unknown>, timeoutMs: number, callerSignal: AbortSignal | undefined, deadline: AbortSignal): unknown {
  if (err instanceof VigilError) return err;
  const hostile = findHostile(err);
  if (hostile) return hostile;
  if (callerSignal?.aborted) return new UpstreamError(true, scrub(`${where} aborted`), { cause: callerSignal.reason, details });
  if (deadline.aborted) return new UpstreamError(true, scrub(`${where} timed out after ${timeoutMs} ms`), { cause: err, details });
  const code = (err as { code?: unknown } | null)?.code;
  const text = `${typeof code === "string" ? `${code} ` : ""}${err instanceof Error ? err.message : String(err)}`;
  // A request undici refuses to build (bad header, bad URL) fails the same way every time.
  const permanent = code === "UND_ERR_INVALID_ARG" || code === "ERR_INVALID_URL" || err instanceof TypeError;
  return new UpstreamError(!permanent, scrub(`${where} failed: ${text}`), { cause: err, details });
}

function findHostile(err: unknown): VigilError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; depth++) {
    if (e instanceof VigilError && e.code === "VIGIL_ERR_HOSTILE_URL") return e;
    if (e instanceof AggregateError) {
      const inner = e.errors.map(findHostile).find((x) => x !== undefined);
      if (inner) return inner;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** 408, 425, 429 and 5xx are worth retrying; other failures are not. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

async function readBody(body: AsyncIterable<Buffer>, limit: number): Promise<{ buf: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size));
      return { buf: Buffer.concat(chunks), truncated: true };
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { buf: Buffer.concat(chunks), truncated: false };
}

/**
 * The values a request's credentials take: secret-named headers, whole and without their scheme
 * (`SSWS x`, `Bearer x`, `Basic x` → also `x`), and the caller's own. An upstream that echoes the
 * request must not get them quoted; an OAuth access token, say, is not a registered secret.
 */
function sentCredentials(headers: Record<string, string>, extra: readonly string[] = []): string[] {
  const out = new Set<string>(extra);
  for (const [k, v] of Object.entries(headers)) {
    if (!isSecretKey(k)) continue;
    out.add(v);
    out.add(v.replace(/^[A-Za-z][\w.+-]*\s+/, ""));
  }
  return [...out];
}

function quoteBody(body: Buffer, maxChars: number, credentials: readonly string[], truncated = false): string {
  const text = body.toString("utf8", 0, Math.min(body.length, QUOTE_WINDOW_BYTES));
  return scrubAndCut(text, maxChars, { extra: credentials, truncated: truncated || body.length > QUOTE_WINDOW_BYTES });
}

function response(status: number, headers: Record<string, string>, body: Buffer, where: string, credentials: readonly string[]): HttpResponse {
  return {
    status,
    headers,
    body,
    text: () => body.toString("utf8"),
    quote: (maxChars) => quoteBody(body, maxChars, credentials),
    mask: (text, maxChars) => scrubAndCut(text, maxChars ?? Number.MAX_SAFE_INTEGER, { extra: credentials }),
    json: <T>() => {
      try {
        return JSON.parse(body.toString("utf8")) as T;
      } catch (err) {
        throw new UpstreamError(false, scrub(`${where} → ${status}: response is not JSON`), { status, cause: err });
      }
    },
  };
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

/**
 * A server's wait hint in ms: `Retry-After` (delta seconds or HTTP-date), Okta's
 * `X-Rate-Limit-Reset` (epoch seconds) or CrowdStrike's `X-RateLimit-RetryAfter` (an epoch instant).
 * Undefined when absent or unreadable.
 */
export function parseRetryAfter(headers: Record<string, string>, now: number): number | undefined {
  const get = (name: string): string | undefined => {
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v.trim();
    return undefined;
  };
  const retryAfter = get("retry-after");
  if (retryAfter) {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const at = /[a-z]/i.test(retryAfter) ? Date.parse(retryAfter) : Number.NaN; // an HTTP-date names its day and month
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  const reset = get("x-rate-limit-reset");
  if (reset && /^\d+$/.test(reset)) return Math.max(0, Number(reset) * 1000 - now);
  // CrowdStrike Falcon: the instant to retry at, in epoch seconds (some versions document milliseconds).
  const falcon = get("x-ratelimit-retryafter");
  if (falcon && /^\d+$/.test(falcon)) {
    const n = Number(falcon);
    return Math.max(0, (n > 1e12 ? n : n * 1000) - now);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// URL masking

const SECRET_PARAM_RE = /^(sig|sign|key|code|auth|session|x-amz-(signature|credential|security-token))$|token|secret|passw|signature|credential|api_?key/i;

function looksSecret(key: string, value: string): boolean {
  if (isSecretKey(key) || SECRET_PARAM_RE.test(key)) return true;
  // Long opaque values (keys, signatures, JWTs) are masked whatever their parameter is called.
  return value.length >= 20 && /^[A-Za-z0-9._~+/=-]+$/.test(value) && /\d/.test(value) && /[A-Za-z]/.test(value);
}

/**
 * The URL as errors and logs may show it: userinfo and secret-looking query values masked, fragment
 * dropped. `guess: false` masks only secret-named parameters (and registered secrets): for URLs vigil
 * builds itself, where a long service name or `oauthTokens=true` is not a credential.
 */
export function maskUrl(raw: string, options: { guess?: boolean } = {}): string {
  const guess = options.guess ?? true;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return scrub(raw.replace(/\/\/[^/?#@]*@/, `//${MASK}@`).replace(/[?#].*$/, ""));
  }
  const userinfo = u.username || u.password ? `${MASK}@` : "";
  const secret = (k: string, v: string) => (guess ? looksSecret(k, v) : isSecretKey(k)) && v !== "true" && v !== "false";
  const params = [...u.searchParams].map(([k, v]) => `${encodeURIComponent(k)}=${secret(k, v) ? MASK : encodeURIComponent(v)}`);
  return scrub(`${u.protocol}//${userinfo}${u.host}${u.pathname}${params.length ? `?${params.join("&")}` : ""}`);
}

// ---------------------------------------------------------------------------------------------
// Hostile-URL guard

function hostileError(message: string, details: Record<string, unknown> = {}): VigilError {
  return new VigilError("VIGIL_ERR_HOSTILE_URL", scrub(message), { details });
}

function checkUntrustedUrl(raw: string, allowPrivate: boolean, where: string): void {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw hostileError(`${where}: not a valid URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw hostileError(`${where}: scheme ${u.protocol} is not allowed (http, https only)`);
  if (allowPrivate) return;
  // WHATWG parsing already turned decimal/hex/short IPv4 forms into dotted quads.
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  if (net.isIP(host)) {
    const why = forbiddenAddress(host);
    if (why) throw hostileError(`${where}: ${host} is a ${why} address`, { address: host, range: why });
  }
}

/** A `dns.lookup` replacement for the guarded pool: every resolved address must be public. */
function guardedLookup(hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void): void {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    // Any forbidden answer refuses the host: a mix of public and private answers is a rebinding tell.
    for (const a of addresses) {
      const why = forbiddenAddress(a.address);
      if (why) return callback(hostileError(`${hostname} resolves to ${a.address}, a ${why} address`, { address: a.address, range: why }) as NodeJS.ErrnoException, []);
    }
    const first = addresses[0];
    if (options.all) return callback(null, addresses);
    if (!first) return callback(Object.assign(new Error(`${hostname}: no address`), { code: "ENOTFOUND" }), []);
    callback(null, first.address, first.family);
  });
}

function forbiddenPeer(socket: Socket): VigilError | undefined {
  const address = socket.remoteAddress;
  if (!address) return hostileError("connected socket has no peer address");
  const why = forbiddenAddress(address);
  return why ? hostileError(`connected to ${address}, a ${why} address`, { address, range: why }) : undefined;
}

type Range = readonly [prefix: number, bits: number, name: string];

function v4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

const FORBIDDEN_V4: readonly Range[] = [
  [v4(0, 0, 0, 0), 8, "unspecified"],
  [v4(10, 0, 0, 0), 8, "private"],
  [v4(100, 64, 0, 0), 10, "CGNAT"],
  [v4(127, 0, 0, 0), 8, "loopback"],
  [v4(169, 254, 0, 0), 16, "link-local"],
  [v4(172, 16, 0, 0), 12, "private"],
  [v4(192, 0, 0, 0), 24, "reserved"],
  [v4(192, 0, 2, 0), 24, "documentation"],
  [v4(192, 168, 0, 0), 16, "private"],
  [v4(198, 18, 0, 0), 15, "reserved"],
  [v4(198, 51, 100, 0), 24, "documentation"],
  [v4(203, 0, 113, 0), 24, "documentation"],
  [v4(224, 0, 0, 0), 4, "multicast"],
  [v4(240, 0, 0, 0), 4, "reserved"],
];

function forbiddenV4(addr: number): string | undefined {
  for (const [prefix, bits, name] of FORBIDDEN_V4) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if (((addr & mask) >>> 0) === prefix) return name;
  }
  return undefined;
}

function parseV4(text: string): number | undefined {
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return v4(parts[0]!, parts[1]!, parts[2]!, parts[3]!);
}

/** 8 groups of 16 bits; undefined when not an IPv6 address. */
function parseV6(text: string): number[] | undefined {
  let s = text.replace(/%.*$/, "");
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const n = parseV4(dotted[1]!);
    if (n === undefined) return undefined;
    tail.push(n >>> 16, n & 0xffff);
    s = s.slice(0, -dotted[1]!.length);
    if (s.endsWith(":") && !s.endsWith("::")) s = s.slice(0, -1);
  }
  const hex = (p: string): number[] => (p === "" ? [] : p.split(":").map((g) => parseInt(g, 16)));
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const head = hex(halves[0]!);
  const rest = halves.length === 2 ? hex(halves[1]!) : [];
  const fill = 8 - head.length - rest.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest, ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * Blocks of 2001::/23 ("IETF protocol assignments", not globally reachable as a whole) that the IANA
 * IPv6 Special-Purpose Address Registry marks globally reachable: [prefix groups, prefix length].
 */
const GLOBAL_IN_2001_23: readonly [readonly number[], number][] = [
  [[0x2001, 0x0001, 0, 0, 0, 0, 0, 1], 128], // Port Control Protocol anycast
  [[0x2001, 0x0001, 0, 0, 0, 0, 0, 2], 128], // TURN anycast
  [[0x2001, 0x0001, 0, 0, 0, 0, 0, 3], 128], // DNS-SD service registration protocol anycast
  [[0x2001, 0x0003], 32], // AMT
  [[0x2001, 0x0004, 0x0112], 48], // AS112-v6
  [[0x2001, 0x0020], 28], // ORCHIDv2
  [[0x2001, 0x0030], 28], // drone remote ID protocol entity tags
];

/** True when the first `bits` bits of `g` (8 groups of 16) equal those of `prefix`. */
function inPrefix(g: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i * 16 < bits; i++) {
    const take = Math.min(16, bits - i * 16);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((g[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Why an address may not be reached from hostile input ("loopback", "private", …), or undefined
 * when it is public. IPv4 embedded in IPv6 (mapped, NAT64, 6to4, Teredo) is judged as IPv4; the
 * IPv6 ranges are those of the IANA IPv6 Special-Purpose Address Registry that are not globally
 * reachable, plus the deprecated site-local block.
 */
export function forbiddenAddress(address: string): string | undefined {
  const kind = net.isIP(address.replace(/%.*$/, ""));
  if (kind === 4) return forbiddenV4(parseV4(address)!);
  if (kind !== 6) return "unparseable";
  const g = parseV6(address);
  if (!g) return "unparseable";
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number];
  const embedded = (hi: number, lo: number): number => ((hi << 16) | lo) >>> 0;
  const zeroTo = (n: number): boolean => g.slice(0, n).every((x) => x === 0);
  const within = (prefix: readonly number[], bits: number): boolean => inPrefix(g, prefix, bits);
  if (zeroTo(8)) return "unspecified";
  if (zeroTo(7) && g7 === 1) return "loopback";
  if (zeroTo(5) && g5 === 0xffff) return forbiddenV4(embedded(g6, g7)); // ::ffff:a.b.c.d, IPv4-mapped: how dual-stack sockets show IPv4 peers
  if (zeroTo(4) && g4 === 0xffff && g5 === 0) return "IPv4-translated"; // ::ffff:0:a.b.c.d (RFC 2765): only meaningful behind a translator
  if (zeroTo(6)) return forbiddenV4(embedded(g6, g7)) ?? "reserved"; // ::a.b.c.d (deprecated)
  if (within([0x64, 0xff9b, 0, 0, 0, 0], 96)) return forbiddenV4(embedded(g6, g7)); // NAT64, well-known prefix
  if (within([0x64, 0xff9b, 0x1], 48)) return "NAT64 local-use"; // RFC 8215: a network's own translator
  if (within([0x100, 0, 0, 0], 64)) return "discard-only"; // RFC 6666
  if (within([0x2001, 0], 32)) {
    // Teredo: the server's IPv4 in plain, the client's (its NAT's outside address) with every bit flipped.
    return forbiddenV4(embedded(g6 ^ 0xffff, g7 ^ 0xffff)) ?? forbiddenV4(embedded(g2, g3));
  }
  if (within([0x2001, 0x0002, 0], 48)) return "benchmarking"; // RFC 5180
  if (within([0x2001, 0x0010], 28)) return "ORCHID"; // RFC 4843, deprecated
  if (within([0x2001, 0], 23) && !GLOBAL_IN_2001_23.some(([p, bits]) => within(p, bits))) return "reserved"; // IETF protocol assignments
  if (within([0x2001, 0x0db8], 32) || within([0x3fff], 20)) return "documentation"; // RFC 3849, RFC 9637
  if (g0 === 0x2002) return forbiddenV4(embedded(g1, g2)); // 6to4
  if (g0 === 0x5f00) return "SRv6 SID"; // RFC 9602: segment identifiers, not hosts
  if ((g0 & 0xfe00) === 0xfc00) return "private"; // fc00::/7 unique local
  if ((g0 & 0xffc0) === 0xfe80) return "link-local";
  if ((g0 & 0xffc0) === 0xfec0) return "private"; // deprecated site-local
  if ((g0 & 0xff00) === 0xff00) return "multicast";
  return undefined;
}
