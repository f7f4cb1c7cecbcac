/**
 * A client of the Prometheus HTTP query API (`/api/v1/query`, `/api/v1/query_range`), for checks
 * that watch metric series. Queries are POSTed form-encoded (no URL length limit, and the PromQL,
 * which may name subjects, stays out of access logs); answers are size-capped and read strictly:
 * an answer whose shape is not the documented one is refused whole (`MalformedResponse`).
 *
 * Failures are `UpstreamError`s: Prometheus's own errors carry its `errorType` and message
 * (`bad_data` and `execution` are permanent: the same query fails the same way; `timeout`,
 * `canceled`, `unavailable` and 5xx are transient). The circuit breaker of `ApiClient` keeps a
 * Prometheus that is down from being asked once per subject per tick.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { UpstreamError, VigilError } from "../../errors.ts";
import { createHttpClient } from "../../net/http.ts";
import { NO_AUTH, staticHeader, type Authenticator } from "../../net/api-call.ts";
import { TokenFile } from "../../net/token-file.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { MASK, registerSecret, scrub } from "../../util/redact.ts";
import { Reader } from "../common/read.ts";
import type { PrometheusConnection } from "./schema.ts";

/** Label set of a series, as Prometheus returns it. */
export type Labels = Readonly<Record<string, string>>;

/** One series of an answer: its labels and its points (epoch ms; values may be NaN or ±Inf). */
export interface PromSeries {
  readonly labels: Labels;
  readonly t: number[];
  readonly v: number[];
}

/** Prometheus's answer statuses that carry its JSON error body. */
const ERROR_STATUSES = [400, 422, 503];
/** Prometheus refuses a range query of more points than this per series. */
export const MAX_POINTS_PER_SERIES = 11_000;

export class PrometheusClient {
  readonly url: string;
  readonly api: ApiClient;
  readonly #config: PrometheusConnection;
  readonly #slots: { free: number; waiting: (() => void)[] };
  /** Requests sent, for tests and benchmarks. */
  calls = 0;

  constructor(config: PrometheusConnection, ctx: PluginContext) {
    this.url = config.url;
    this.#config = config;
    this.#slots = { free: config.max_concurrency, waiting: [] };
    const fromConfigDir = (path: string) => (isAbsolute(path) ? path : resolve(ctx.configDir, path));
    const tls = config.tls;
    const read = (path: string | undefined, what: string) => {
      if (path === undefined) return undefined;
      try {
        return readFileSync(fromConfigDir(path));
      } catch (err) {
        throw new VigilError("VIGIL_ERR_CONFIG_READ", `prometheus tls.${what} ${path} cannot be read: ${(err as Error).message}`, { cause: err });
      }
    };
    const ca = read(tls?.ca_file, "ca_file");
    const cert = read(tls?.cert_file, "cert_file");
    const key = read(tls?.key_file, "key_file");
    const http = ca || cert ? createHttpClient({ ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}) }) : undefined;
    this.api = new ApiClient({ ctx: { ...ctx, name: `prometheus:${config.url}` }, type: "prometheus", auth: authenticator(config, fromConfigDir), timeoutMs: config.timeout, ...(http ? { http } : {}) });
  }

  /** An instant query at `time` (epoch ms): one point per series. A scalar answer is one series without labels. */
  async query(expr: string, time: number, signal: AbortSignal): Promise<PromSeries[]> {
    return this.#send("query", { query: expr, time: seconds(time) }, signal);
  }

  /** A range query over [start, end] (epoch ms, inclusive) every `step` ms. */
  async queryRange(expr: string, start: number, end: number, step: number, signal: AbortSignal): Promise<PromSeries[]> {
    return this.#send("query_range", { query: expr, start: seconds(start), end: seconds(end), step: seconds(step) }, signal);
  }

  async close(): Promise<void> {
    await this.api.close();
  }

  async #send(path: "query" | "query_range", form: Record<string, string>, signal: AbortSignal): Promise<PromSeries[]> {
    await this.#acquire(signal);
    try {
      const url = `${this.url}/api/v1/${path}`;
      const body = new URLSearchParams({ ...form, timeout: seconds(this.#config.timeout) }).toString();
      this.calls++;
      const res = await this.api.send(
        {
          method: "POST",
          url,
          headers: { ...(this.#config.headers ?? {}), "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
          body,
          accept: ERROR_STATUSES,
          maxResponseBytes: this.#config.max_response_bytes,
        },
        signal,
      );
      const reader = new Reader(`POST ${url}`);
      const answer = reader.object(reader.json(res), "$");
      if (answer.status !== "success") throw prometheusError(res.status, answer, url);
      if (res.status !== 200) reader.fail("$.status", `"success" with HTTP status ${res.status}`);
      return parseData(reader, reader.object(answer.data, "$.data"), path === "query" ? "instant" : "range");
    } finally {
      this.#release();
    }
  }

  async #acquire(signal: AbortSignal): Promise<void> {
    const slots = this.#slots;
    if (slots.free > 0) {
      slots.free--;
      return;
    }
    await new Promise<void>((resolveSlot, reject) => {
      const onAbort = () => {
        const i = slots.waiting.indexOf(grant);
        if (i >= 0) slots.waiting.splice(i, 1);
        reject(new UpstreamError(true, `a query to ${this.url} was still waiting for a free connection when its run ended`));
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        resolveSlot();
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      slots.waiting.push(grant);
    });
  }

  #release(): void {
    const next = this.#slots.waiting.shift();
    if (next) next();
    else this.#slots.free++;
  }
}

function authenticator(config: PrometheusConnection, fromConfigDir: (p: string) => string): Authenticator {
  if (config.bearer_token !== undefined) {
    registerSecret(config.bearer_token);
    return staticHeader("Authorization", `Bearer ${config.bearer_token}`);
  }
  if (config.basic_auth !== undefined) {
    registerSecret(config.basic_auth.password);
    const encoded = Buffer.from(`${config.basic_auth.username}:${config.basic_auth.password}`, "utf8").toString("base64");
    registerSecret(encoded);
    return staticHeader("Authorization", `Basic ${encoded}`);
  }
  if (config.bearer_token_file !== undefined) {
    const file = new TokenFile(fromConfigDir(config.bearer_token_file), { header: "Authorization", label: "prometheus bearer_token_file", recheckMs: 10_000 });
    return {
      headers: async () => ({ Authorization: `Bearer ${await file.token()}` }),
      planned: () => ({ Authorization: MASK }),
      invalidate: () => file.invalidate(),
    };
  }
  return NO_AUTH;
}

/** Prometheus's float seconds, as its API takes them. */
function seconds(ms: number): string {
  return String(ms / 1000);
}

/** Prometheus's error answer as an UpstreamError: transient unless the query itself is at fault. */
function prometheusError(status: number, answer: Record<string, unknown>, url: string): UpstreamError {
  const type = typeof answer.errorType === "string" ? answer.errorType : "unknown";
  const text = typeof answer.error === "string" ? answer.error.slice(0, 512) : "no error message";
  const permanent = type === "bad_data" || type === "execution" || status === 400 || status === 422;
  return new UpstreamError(!permanent, scrub(`POST ${url} → ${status}: Prometheus ${type}: ${text}`), { status, details: { errorType: type } });
}

function parseData(r: Reader, data: Record<string, unknown>, kind: "instant" | "range"): PromSeries[] {
  const type = data.resultType;
  const result = data.result;
  if (type === "scalar") {
    if (kind !== "instant") r.fail("$.data.resultType", "a range query answered a scalar");
    const [t, v] = point(r, result, "$.data.result");
    return [{ labels: {}, t: [t], v: [v] }];
  }
  const list = r.array(result, "$.data.result");
  if (kind === "instant" && type !== "vector") r.fail("$.data.resultType", `expected "vector" or "scalar", got ${JSON.stringify(type)}`);
  if (kind === "range" && type !== "matrix") r.fail("$.data.resultType", `expected "matrix", got ${JSON.stringify(type)}`);
  return list.map((item, i) => {
    const path = `$.data.result[${i}]`;
    const o = r.object(item, path);
    const labels = labelsOf(r, o.metric, `${path}.metric`);
    if (kind === "instant") {
      // A native histogram sample has no plain value: nothing a detector can read.
      if (o.value === undefined && o.histogram !== undefined) return { labels, t: [], v: [] };
      const [t, v] = point(r, o.value, `${path}.value`);
      return { labels, t: [t], v: [v] };
    }
    const values = o.values === undefined && o.histograms !== undefined ? [] : r.array(o.values, `${path}.values`);
    const t: number[] = new Array(values.length);
    const v: number[] = new Array(values.length);
    for (let k = 0; k < values.length; k++) [t[k], v[k]] = point(r, values[k], `${path}.values[${k}]`);
    return { labels, t, v };
  });
}

function labelsOf(r: Reader, raw: unknown, path: string): Labels {
  if (raw === undefined) return {};
  const o = r.object(raw, path);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(o)) {
    if (typeof v !== "string") r.fail(`${path}.${k}`, "expected a string label value");
    out[k] = v;
  }
  return out;
}

/** `[<unix seconds>, "<value>"]` → [epoch ms, number]; "NaN", "+Inf", "-Inf" come through as such. */
function point(r: Reader, raw: unknown, path: string): [number, number] {
  if (!Array.isArray(raw) || raw.length !== 2) r.fail(path, "expected [time, value]");
  const [t, v] = raw as [unknown, unknown];
  if (typeof t !== "number" || !Number.isFinite(t)) r.fail(`${path}[0]`, "expected a Unix time");
  if (typeof v !== "string") r.fail(`${path}[1]`, "expected a value string");
  const n = v === "+Inf" || v === "Inf" ? Infinity : v === "-Inf" ? -Infinity : v === "NaN" ? NaN : Number(v);
  if (Number.isNaN(n) && v !== "NaN") r.fail(`${path}[1]`, `expected a number, got ${JSON.stringify(v.slice(0, 40))}`);
  return [Math.round(t * 1000), n];
}

