/**
 * `webhook`: POSTs each enforcement decision as signed JSON to an HTTP endpoint the operator runs.
 * The receiver checks `X-Vigil-Signature` (HMAC-SHA256 of the exact body bytes) and de-duplicates on
 * `X-Vigil-Idempotency-Key`, which is the same on every retry of the same decision.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import { DEFAULT_USER_AGENT } from "../../util/version.ts";
import { maskUrl } from "../../net/http.ts";
import { isSecretKey, redact, registerSecret } from "../../util/redact.ts";
import { callTimeout, httpUrl } from "../../plugin/schema.ts";

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the action owns; configuring them would break the signature or the framing. */
const RESERVED_HEADERS = ["content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent", "x-vigil-signature", "x-vigil-idempotency-key"];

export const webhookConfigSchema = z
  .object({
    /** Endpoint the decision is POSTed to: an http or https URL. Required. */
    url: httpUrl(),
    /** HMAC-SHA256 key for `X-Vigil-Signature`, at least 16 characters. Required; use `${file:…}` or `${env:…}`. */
    secret: z.string().min(16, { error: "must be at least 16 characters" }),
    /** Extra request headers (e.g. `Authorization`). Secret-named ones are masked in plans. Default none. */
    headers: z
      .record(
        z.string().regex(HEADER_NAME_RE, { error: "not a valid header name" }).refine((k) => !RESERVED_HEADERS.includes(k.toLowerCase()), { error: "this header is set by vigil" }),
        z.string().refine((v) => !/[\r\n\0]/.test(v), { error: "header values may not contain CR, LF or NUL" }),
      )
      .optional(),
    /** Deadline for the whole call, as a duration (`5s`, `500ms`), at most 5m. Default `10s`. */
    timeout: callTimeout(),
    /** Name shown in plans and the audit log. Default: none (the engine names the entry). */
    name: z.string().min(1).optional(),
  })
  .strict();

/** The webhook action's validated config; `timeout` is in milliseconds. */
export type WebhookConfig = z.output<typeof webhookConfigSchema>;

/**
 * The exact JSON text sent for a request: the same bytes in `plan`, `apply`, every retry and the
 * signature. `action` names the configured entry (`name`, unique in the policy, and `type`), so a
 * receiver can tell apart two webhooks that carry the same decision (two levels reverted at once).
 */
export function webhookBody(req: ActionRequest): string {
  const d = req.decision;
  return JSON.stringify({
    subject: req.subject.id,
    policy: d.policy,
    access: d.access,
    previous_access: req.previous_access,
    generation: d.generation,
    risk: d.risk,
    reasons: d.reasons.map((r) => ({ code: r.code, message: r.message })),
    decided_at: new Date(d.decided_at).toISOString(),
    idempotency_key: req.idempotency_key,
    operation: req.operation,
    ...(req.action ? { action: { name: req.action.name, type: req.action.type } } : {}),
  });
}

/** `sha256=<hex HMAC-SHA256 of body with secret>`, the `X-Vigil-Signature` value. */
export function signBody(body: string | Uint8Array, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** For receivers: true when `header` is the signature of exactly `body`. Compares in constant time. */
export function verifySignature(body: string | Uint8Array, header: string | undefined | null, secret: string): boolean {
  if (typeof header !== "string" || !/^sha256=[0-9a-f]{64}$/i.test(header.trim())) return false;
  const expected = Buffer.from(signBody(body, secret).slice("sha256=".length), "hex");
  const given = Buffer.from(header.trim().slice("sha256=".length), "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function webhookHeaders(config: WebhookConfig, body: string, req: ActionRequest): Record<string, string> {
  return {
    ...config.headers,
    "Content-Type": "application/json",
    "User-Agent": DEFAULT_USER_AGENT,
    "X-Vigil-Signature": signBody(body, config.secret),
    "X-Vigil-Idempotency-Key": req.idempotency_key,
  };
}

export const webhookAction: ActionFactory<WebhookConfig> = {
  type: "webhook",
  description: "POST each enforcement decision as HMAC-signed JSON to an HTTP endpoint (apply and revert).",
  requiredPermissions: ["network egress to the webhook URL"],
  example: { type: "webhook", url: "https://hooks.example.com/vigil", secret: "${file:/run/secrets/vigil-webhook}", headers: { "X-Team": "secops" }, timeout: "5s" },
  configSchema: webhookConfigSchema,
  revertible: true,
  create(config, ctx): Action {
    // The loader registers secrets it expands; doing it here too keeps a programmatic config safe.
    registerSecret(config.secret);
    for (const [k, v] of Object.entries(config.headers ?? {})) if (isSecretKey(k)) registerSecret(v);

    const plan = (req: ActionRequest): PlannedCall[] => {
      const body = webhookBody(req);
      return [
        {
          method: "POST",
          url: maskUrl(config.url),
          // Masks X-Vigil-Signature and secret-named headers by name, and scrubs registered secret values.
          headers: redact(webhookHeaders(config, body, req)),
          body: redact(JSON.parse(body) as unknown),
          summary: `POST ${req.operation} of ${req.decision.access} for ${req.subject.id} (policy ${req.decision.policy}) to ${maskUrl(config.url)}`,
        },
      ];
    };
    const send = async (req: ActionRequest) => {
      const body = webhookBody(req);
      const res = await ctx.http.request({ method: "POST", url: config.url, headers: webhookHeaders(config, body, req), body, timeoutMs: config.timeout, signal: req.signal });
      return { detail: { status: res.status } };
    };
    return { plan, apply: send, revert: send };
  },
};
