/**
 * How vigil reaches a Prometheus-compatible query API (Prometheus, Thanos Query, Mimir or Cortex
 * under their `/prometheus` prefix, VictoriaMetrics): the base URL, credentials, TLS and bounds.
 */
import { z } from "zod";
import { callTimeout } from "../../plugin/schema.ts";

const MIB = 1024 * 1024;
const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"];
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
/** Headers the client sets itself (or that undici refuses): a config may not set them. */
const RESERVED_HEADERS = new Set(["authorization", "content-type", "content-length", "host", "connection", "transfer-encoding", "accept"]);

const secret = () => z.string().min(1, { error: "must not be empty" });

export const prometheusConnectionSchema = z
  .strictObject({
    /**
     * Base URL of the query API, without `/api/v1`: `https://prometheus.example.com`, or
     * `https://mimir.example.com/prometheus`. Required. Plain http is accepted when no credential is
     * configured, or to a loopback address: a credential never crosses a network in clear text.
     */
    url: z.url({ protocol: /^https?$/, error: "expected an http or https URL" }),
    /** Bearer token sent as `Authorization: Bearer …`. Use `${file:…}`. Excludes the other credentials. */
    bearer_token: secret().optional(),
    /** File holding the bearer token, re-read when it changes (a rotated service account token). */
    bearer_token_file: z.string().min(1).optional(),
    /** HTTP basic authentication. */
    basic_auth: z.strictObject({ username: z.string().min(1), password: secret() }).optional(),
    /** Extra request headers, e.g. `X-Scope-OrgID` for a Mimir or Cortex tenant. Values are masked in logs. */
    headers: z
      .record(z.string().regex(HEADER_NAME, { error: "expected an HTTP header name" }), z.string().max(4096))
      .refine((h) => Object.keys(h).every((k) => !RESERVED_HEADERS.has(k.toLowerCase())), { error: "authorization, content-type and the connection headers are set by vigil" })
      .optional(),
    /** TLS: CA bundle to trust instead of the system store, and a client certificate for mutual TLS. Paths relative to the config file. */
    tls: z
      .strictObject({
        ca_file: z.string().min(1).optional(),
        cert_file: z.string().min(1).optional(),
        key_file: z.string().min(1).optional(),
      })
      .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), { error: "give cert_file and key_file together" })
      .optional(),
    /** Deadline of one query. Default `10s`. */
    timeout: callTimeout("10s"),
    /** Largest answer accepted, in bytes; a larger one is refused (range queries are split to fit). Default 32 MiB. */
    max_response_bytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(512 * MIB)
      .default(32 * MIB),
    /** Queries in flight at once. Default 8. */
    max_concurrency: z.number().int().min(1).max(256).default(8),
  })
  .superRefine((c, ctx) => {
    const u = new URL(c.url);
    const credentials = c.bearer_token !== undefined || c.bearer_token_file !== undefined || c.basic_auth !== undefined;
    if ([c.bearer_token, c.bearer_token_file, c.basic_auth].filter((x) => x !== undefined).length > 1) {
      ctx.addIssue({ code: "custom", message: "give one of bearer_token, bearer_token_file and basic_auth" });
    }
    if (u.protocol === "http:" && credentials && !LOOPBACK_HOSTS.includes(u.hostname)) {
      ctx.addIssue({ code: "custom", path: ["url"], message: "plain http carries credentials in clear text: use https, or a loopback address" });
    }
    if (u.search || u.hash || c.url.includes("#")) ctx.addIssue({ code: "custom", path: ["url"], message: "a base URL takes no query or fragment" });
    if (u.username || u.password) ctx.addIssue({ code: "custom", path: ["url"], message: "a base URL takes no user or password; use basic_auth" });
  })
  .transform((c) => ({ ...c, url: c.url.replace(/\/+$/, "") }));

export type PrometheusConnection = z.output<typeof prometheusConnectionSchema>;
