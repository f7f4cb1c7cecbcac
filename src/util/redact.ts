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
    out[k] = isSecretKey(k) && v !== undefined && v !== null && v !== "" ? MASK : redactValue(v, depth + 1);
  }
  return out;
}
