/**
 * Kubernetes answers failures with a `Status` object (`reason`, `message`, `details.causes`). The
 * shared HTTP client quotes only the first bytes of an error body, so the client reads permanent
 * 4xx answers itself and turns them into errors that carry the reason and every cause.
 */
import { UpstreamError } from "../../errors.ts";
import { maskUrl, type HttpResponse } from "../../net/http.ts";
import { scrub } from "../../util/redact.ts";
import type { ApiCall } from "../../net/api-call.ts";

/** `metav1.Status` as the API server sends it. */
export interface KubeStatus {
  readonly kind?: string;
  readonly apiVersion?: string;
  readonly status?: "Success" | "Failure";
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    readonly uid?: string;
    readonly causes?: readonly { readonly reason?: string; readonly message?: string; readonly field?: string }[];
    readonly retryAfterSeconds?: number;
  };
}

/**
 * Statuses the client reads itself instead of letting the HTTP client throw. 401 stays with the
 * HTTP client (the provider reloads its token and tries once more); 408, 425, 429 and 5xx stay too
 * (transient, with the Retry-After hint).
 */
export const STATUS_READ = [400, 403, 404, 405, 406, 409, 410, 412, 413, 415, 422] as const;

const MAX_MESSAGE = 2000;

/** The Status in a response body, or undefined when the body is something else. */
export function parseStatus(res: Pick<HttpResponse, "text">): KubeStatus | undefined {
  try {
    const doc = JSON.parse(res.text()) as unknown;
    return doc !== null && typeof doc === "object" && (doc as { kind?: unknown }).kind === "Status" ? (doc as KubeStatus) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The error for a failed call. Permanent, except 409 `Conflict` (a delete precondition or an
 * optimistic-concurrency clash): the object changed under us, and reading it again decides anew.
 */
export function statusError(call: ApiCall, res: HttpResponse): UpstreamError {
  const st = parseStatus(res);
  const where = `${call.method.toUpperCase()} ${maskUrl(call.url)}`;
  const causes = (st?.details?.causes ?? []).map((c) => ({ ...(c.field ? { field: c.field } : {}), ...(c.reason ? { reason: c.reason } : {}), message: c.message ?? "" }));
  const base = st?.message ?? res.quote(300).replace(/\s+/g, " ").trim();
  const extra = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).filter((t) => t !== "" && !base.includes(t));
  const reason = st?.reason ? ` ${st.reason}` : "";
  let message = `${where} → ${res.status}${reason}${base ? `: ${base}` : ""}${extra.length ? ` [${extra.join("; ")}]` : ""}`;
  if (res.status === 404 && !st?.details?.name) message += " (the API server does not serve this resource: is its CRD installed?)";
  // Masked before it is cut, so a credential the cut would split is still recognised whole.
  message = res.mask(message);
  if (message.length > MAX_MESSAGE) message = `${res.mask(message, MAX_MESSAGE - 1)}…`;
  const transient = res.status === 409 && (st?.reason === "Conflict" || st?.reason === undefined);
  return new UpstreamError(transient, scrub(message), {
    status: res.status,
    details: { method: call.method.toUpperCase(), url: maskUrl(call.url), ...(st?.reason ? { reason: st.reason } : {}), ...(causes.length ? { causes } : {}) },
  });
}
