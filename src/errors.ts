/**
 * Every error vigil raises on purpose, with a stable `code`. Callers match on `code`, never on
 * the message. `docs/errors.md` documents each code and its HTTP status; a test keeps the two in step.
 */

export const ERROR_CODES = {
  VIGIL_ERR_CONFIG_INVALID: "The configuration failed validation; every problem is listed with its key path. Also raised by a provider or action that finds its configuration unusable while it is built, and for a generated API token file vigil will not use.",
  VIGIL_ERR_CONFIG_READ: "The configuration file, or a ${file:…} reference in it, could not be read.",
  VIGIL_ERR_USAGE: "A command was called with missing or invalid arguments.",
  VIGIL_ERR_PLUGIN: "A plugin module could not be loaded or does not export a valid factory.",
  VIGIL_ERR_UNKNOWN_SUBJECT: "No inventory knows the subject named in the request.",
  VIGIL_ERR_BAD_REQUEST: "An API or signal request body is malformed.",
  VIGIL_ERR_UPSTREAM_TRANSIENT: "An upstream call failed in a way worth retrying (timeout, reset, 429, 5xx).",
  VIGIL_ERR_UPSTREAM_PERMANENT: "An upstream call failed in a way retrying cannot fix (400, 401, 403, 404, …).",
  VIGIL_ERR_ACTION_INPUT: "An action cannot be carried out for this subject: a value it needs (an attribute, an identity, the policy edge) is missing or invalid.",
  VIGIL_ERR_HOSTILE_URL: "A URL taken from untrusted input points at a forbidden target or breaks a size or time cap.",
  VIGIL_ERR_AUDIT_CORRUPT: "The audit log's hash chain is broken: a line was changed, removed or reordered.",
  VIGIL_ERR_STORE: "The local state or queue database could not be opened or written.",
  VIGIL_ERR_INVENTORY: "An inventory could not be listed: a config reload naming it is refused (the running config stays), and `vigil check` fails.",
  VIGIL_ERR_DATA_DIR_LOCKED: "Another vigil process holds agent.data_dir (its pid is named); only one agent may use a data directory at a time.",
  VIGIL_ERR_SHUTDOWN: "The operation was cut short because the agent is stopping (or a reload retired the runtime an action ran on).",
  VIGIL_ERR_UNAVAILABLE: "Cluster mode: the shared Redis cannot be reached (or the agent is still waiting for it at start); nothing was accepted or changed.",
  VIGIL_ERR_UNAUTHORIZED: "An API request under /v1/ came without a bearer token or with a wrong one.",
  VIGIL_ERR_NOT_FOUND: "No API route or published document answers at the requested path.",
  VIGIL_ERR_METHOD_NOT_ALLOWED: "The API route exists but does not take the request's method.",
  VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE: "An API request body is not application/json (UTF-8).",
  VIGIL_ERR_PAYLOAD_TOO_LARGE: "An API request body is larger than agent.api.max_body_bytes, or holds more observations than one request takes.",
  VIGIL_ERR_TOO_MANY_STREAMS: "An event stream was refused because agent.api.max_streams streams are already open.",
  VIGIL_ERR_INTERNAL: "The API hit an unexpected failure; the response says nothing more, the agent's log has the cause.",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one HTTP status the API answers each code with; `null` for codes the API never returns (an
 * error with such a code, or without a code, reaching the API answers 500 `VIGIL_ERR_INTERNAL`).
 * Every code must be listed, so a new code needs a decision here.
 */
export const HTTP_STATUS = {
  VIGIL_ERR_CONFIG_INVALID: null,
  VIGIL_ERR_CONFIG_READ: null,
  VIGIL_ERR_USAGE: null,
  VIGIL_ERR_PLUGIN: null,
  VIGIL_ERR_UNKNOWN_SUBJECT: 404,
  VIGIL_ERR_BAD_REQUEST: 400,
  VIGIL_ERR_UPSTREAM_TRANSIENT: null,
  VIGIL_ERR_UPSTREAM_PERMANENT: null,
  VIGIL_ERR_ACTION_INPUT: null,
  VIGIL_ERR_HOSTILE_URL: null,
  VIGIL_ERR_AUDIT_CORRUPT: null,
  VIGIL_ERR_STORE: null,
  VIGIL_ERR_DATA_DIR_LOCKED: null,
  VIGIL_ERR_INVENTORY: null,
  VIGIL_ERR_SHUTDOWN: 503,
  VIGIL_ERR_UNAVAILABLE: 503,
  VIGIL_ERR_UNAUTHORIZED: 401,
  VIGIL_ERR_NOT_FOUND: 404,
  VIGIL_ERR_METHOD_NOT_ALLOWED: 405,
  VIGIL_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  VIGIL_ERR_PAYLOAD_TOO_LARGE: 413,
  VIGIL_ERR_TOO_MANY_STREAMS: 429,
  VIGIL_ERR_INTERNAL: 500,
} as const satisfies Record<ErrorCode, number | null>;

/** The codes an API error body can carry. */
export type ApiErrorCode = { [K in ErrorCode]: (typeof HTTP_STATUS)[K] extends number ? K : never }[ErrorCode];

/**
 * The codes of failures worth retrying: an upstream that may recover, a local database that was
 * busy or full, work cut short by a stop (it runs again after the restart), a shared Redis that
 * could not be reached. Anything else, including
 * an error without a vigil code, is permanent: a misconfiguration or a bug fails the same way on
 * every attempt, so it ends the job at once instead of using up its attempts.
 */
export const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(["VIGIL_ERR_UPSTREAM_TRANSIENT", "VIGIL_ERR_STORE", "VIGIL_ERR_SHUTDOWN", "VIGIL_ERR_UNAVAILABLE"]);

export class VigilError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VigilError";
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** One problem found while validating a configuration. */
export interface ConfigIssue {
  /** Dotted key path, e.g. `checks.certificate_validity.warn_before`. */
  readonly path: string;
  readonly message: string;
  /** 1-based line in the YAML source, when known. */
  readonly line?: number;
}

export class ConfigError extends VigilError {
  readonly issues: readonly ConfigIssue[];
  readonly file: string;
  constructor(file: string, issues: readonly ConfigIssue[]) {
    super("VIGIL_ERR_CONFIG_INVALID", `${file}: ${issues.length} problem${issues.length === 1 ? "" : "s"}\n` + issues.map(formatIssue).join("\n"), {
      details: { file, issues },
    });
    this.name = "ConfigError";
    this.issues = issues;
    this.file = file;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `  ${issue.path || "(root)"}${issue.line ? ` (line ${issue.line})` : ""}: ${issue.message}`;
}

/** An upstream failure. `retryAfterMs` carries a server's Retry-After (or rate-limit reset) hint. */
export class UpstreamError extends VigilError {
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(transient: boolean, message: string, options: { status?: number; retryAfterMs?: number; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(transient ? "VIGIL_ERR_UPSTREAM_TRANSIENT" : "VIGIL_ERR_UPSTREAM_PERMANENT", message, options);
    this.name = "UpstreamError";
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
  get transient(): boolean {
    return this.code === "VIGIL_ERR_UPSTREAM_TRANSIENT";
  }
}

/** True when retrying the failed operation could succeed (see `TRANSIENT_CODES`). Errors without a vigil code are permanent. */
export function isTransient(err: unknown): boolean {
  return err instanceof VigilError && TRANSIENT_CODES.has(err.code);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The code an error carries: a VigilError's, or a string `code` (Node's `ENOENT`, a driver's); undefined when none. */
export function errorCodeOf(err: unknown): string | undefined {
  if (err instanceof VigilError) return err.code;
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** How long the upstream asked to be left alone (`retryAfterMs`, from a 429's or 503's Retry-After), in ms; 0 when it did not say. */
export function retryAfterOf(err: unknown): number {
  const value = (err as { retryAfterMs?: unknown } | null | undefined)?.retryAfterMs;
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}
