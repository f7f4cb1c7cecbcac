/**
 * Outbound calls to a provider's API before and after authentication: the `ApiCall` an action or
 * source builds, and the `Authenticator` that adds credentials to it (SigV4, SSWS, OAuth bearer,
 * X-Vault-Token …) and shows them masked in plans.
 */
import { UpstreamError } from "../errors.ts";
import { MASK } from "../util/redact.ts";

/** One HTTP call to a provider's API, before authentication. */
export interface ApiCall {
  readonly method: string;
  /** Absolute URL. */
  readonly url: string;
  /** Headers other than authentication (content type, accept, precondition headers). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The exact body bytes; plans show JSON bodies parsed. */
  readonly body?: string;
  /**
   * Statuses besides 2xx that mean the wanted state already holds, e.g. 404 for a DELETE of
   * something already gone. They are returned, not thrown.
   */
  readonly accept?: readonly number[];
  /** One line for humans, shown in plans. */
  readonly summary?: string;
  /** Response cap; default the HTTP client's (1 MiB). */
  readonly maxResponseBytes?: number;
}

/** Adds authentication to calls. */
export interface Authenticator {
  /** Headers that authenticate this exact call (may fetch or reuse a cached token). */
  headers(call: ApiCall, signal?: AbortSignal): Promise<Record<string, string>>;
  /** The names of the headers `headers()` adds, with how a plan shows each value (normally masked). */
  planned(call: ApiCall): Record<string, string>;
  /** Drops a cached credential after a 401, so the next call fetches a fresh one. */
  invalidate?(): void;
}

export const NO_AUTH: Authenticator = { headers: async () => ({}), planned: () => ({}) };

/** `Bearer <token>` from a fixed secret. */
export function staticHeader(name: string, value: string, shown = MASK): Authenticator {
  return { headers: async () => ({ [name]: value }), planned: () => ({ [name]: shown }) };
}

/**
 * An error message quotes up to 512 characters of the answer, and an API (or a proxy in front of it) may
 * echo the request's credentials back. Short-lived tokens are not registered as global secrets (the list
 * would grow with every refresh), so the values this call sent are masked here, with and without their
 * scheme (`Bearer …`, `SSWS …`).
 */
export function withoutCredentials(err: unknown, auth: Readonly<Record<string, string>>): unknown {
  if (!(err instanceof UpstreamError)) return err;
  const values = Object.values(auth)
    .flatMap((v) => [v, v.replace(/^[A-Za-z][\w.+-]*\s+/, "")])
    .filter((v) => v.length >= 8)
    .sort((a, b) => b.length - a.length);
  let message = err.message;
  for (const v of values) message = message.split(v).join(MASK);
  if (message === err.message) return err;
  return new UpstreamError(err.transient, message, {
    ...(err.status === undefined ? {} : { status: err.status }),
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    ...(err.cause === undefined ? {} : { cause: err.cause }),
    details: { ...err.details },
  });
}

/** One call an action would make, exactly, with secrets masked. */
export interface PlannedCall {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: unknown;
  /** One line for humans. */
  readonly summary?: string;
  /** A signed token body shown decoded for humans (a CAEP SET's header and claims); `body` shows the token with its signature masked. */
  readonly set?: unknown;
}
