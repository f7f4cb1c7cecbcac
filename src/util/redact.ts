/**
 * Secrets never reach logs, errors, metrics, audit entries or plans. Two nets:
 * keys that name secrets are masked wherever they appear, and every secret value the config
 * loaded (from `${env:…}`, `${file:…}` or a secret-named key) is scrubbed from any text.
 */

export const MASK = "[REDACTED]";

const SECRET_KEY_RE =
  /(^|_|-)(token|secret|password|passwd|passphrase|credentials?|authorization|cookie|signature|(api|private|secret|access|hmac|signing|encryption|master|client)_?key|client_?secret)$/i;

/** True when a key (snake, kebab, camel or header case) names a secret. */
export function isSecretKey(key: string): boolean {
  const snake = key.replace(/([a-z0-9])([A-Z])/g, "$1_$2");
  return SECRET_KEY_RE.test(snake) || /^(authorization|proxy-authorization|x-api-key|x-vault-token|cookie|set-cookie)$/i.test(key);
}

/**
 * What a communication policy's `authorization` says: the mechanism the edge uses (`oauth2`, `jwt`,
 * `spiffe`, `none`), not a credential. Under a key named `authorization` these words are shown as
 * they are; anything else there (an HTTP Authorization header's value) is masked.
 */
export const AUTHORIZATION_MECHANISMS = ["oauth2", "jwt", "spiffe", "none"] as const;

/** True when the value under `key` must be masked: a secret-named key, unless it names an authorization mechanism. */
export function isSecretField(key: string, value: unknown): boolean {
  if (!isSecretKey(key)) return false;
  return !(key.toLowerCase() === "authorization" && typeof value === "string" && (AUTHORIZATION_MECHANISMS as readonly string[]).includes(value));
}

const MIN_SCRUB_LENGTH = 4;
const secretValues = new Set<string>();
let scrubRe: RegExp | undefined;

/** Registers a value that must never be printed. Short values are ignored (they would mask noise). */
export function registerSecret(value: string): void {
  if (value.length < MIN_SCRUB_LENGTH || secretValues.has(value)) return;
  secretValues.add(value);
  // Log lines are scrubbed as JSON text, where quotes, backslashes and control characters are escaped.
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) secretValues.add(escaped);
  scrubRe = undefined;
}

/** Replaces every registered secret value inside `text`. */
export function scrub(text: string): string {
  if (secretValues.size === 0) return text;
  scrubRe ??= new RegExp(
    [...secretValues]
      .sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      .join("|"),
    "g",
  );
  return text.replace(scrubRe, MASK);
}

/**
 * `text` with secrets masked, then cut to `max` characters: masking first, so a secret the cut would
 * split is still recognised whole. Masked are the registered secrets and `extra` values (credentials
 * a caller sent without registering them, such as a fresh OAuth access token). When the text is cut
 * (or `truncated` says it already was), a secret's beginning left at its end is masked too: nothing of
 * a secret survives, at the price of sometimes masking a last character that only looked like one.
 * The result is at most `max` characters (when `max` is at least the mask's length).
 */
export function scrubAndCut(text: string, max: number, options: { extra?: readonly string[]; truncated?: boolean } = {}): string {
  const extra = (options.extra ?? []).filter((v) => v.length >= MIN_SCRUB_LENGTH && !secretValues.has(v));
  let masked = scrub(text);
  for (const v of [...extra].sort((a, b) => b.length - a.length)) masked = masked.split(v).join(MASK);
  let cut = options.truncated === true;
  if (masked.length > max) {
    // Never split a surrogate pair: half a character is not text.
    const end = max > 0 && isHighSurrogate(masked.charCodeAt(max - 1)) ? max - 1 : max;
    masked = masked.slice(0, end);
    cut = true;
  }
  if (!cut) return masked;
  const start = partialSecretStart(masked, [...secretValues, ...extra]);
  return start === undefined ? masked : masked.slice(0, Math.max(0, Math.min(start, max - MASK.length))) + MASK;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** Where the longest proper prefix of a secret that ends `text` begins, or undefined. */
function partialSecretStart(text: string, secrets: Iterable<string>): number | undefined {
  let earliest: number | undefined;
  for (const secret of secrets) {
    const first = secret.charCodeAt(0);
    for (let i = Math.max(0, text.length - (secret.length - 1)); i < text.length && (earliest === undefined || i < earliest); i++) {
      if (text.charCodeAt(i) === first && secret.startsWith(text.slice(i))) {
        earliest = i;
        break;
      }
    }
  }
  return earliest;
}

/** Deep copy with secret-named keys masked and registered secret values scrubbed from strings. */
export function redact<T>(value: T): T {
  return redactValue(value, 0) as T;
}

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return scrub(value);
  if (value === null || typeof value !== "object" || depth > 32) return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: scrub(value.message), code: (value as { code?: unknown }).code };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretField(k, v) && v !== undefined && v !== null && v !== "" ? MASK : redactValue(v, depth + 1);
  }
  return out;
}
