import { pino, type Logger as PinoLogger, type DestinationStream } from "pino";
import { scrub, isSecretKey, MASK } from "../util/redact.ts";

export type Logger = PinoLogger;

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/**
 * Structured JSON logs on stdout (or the given stream). Secret-named keys are masked at any depth and
 * every registered secret value is scrubbed from the final line, so nothing upstream has to remember to.
 */
export function createLogger(options: { level?: LogLevel; stream?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: "vigil" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        log: (obj) => maskKeys(obj, 0) as Record<string, unknown>,
      },
      serializers: { err: (err: unknown) => serializeError(err) },
      hooks: { streamWrite: (line) => scrub(line) },
    },
    options.stream ?? pino.destination({ fd: 1, sync: true }),
  );
}

function maskKeys(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object" || depth > 16) return value;
  if (value instanceof Error) return serializeError(value);
  if (Array.isArray(value)) return value.map((v) => maskKeys(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) && v ? MASK : maskKeys(v, depth + 1);
  return out;
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown; status?: unknown; cause?: unknown };
  return { type: e.name, message: e.message, code: e.code, status: e.status, cause: e.cause instanceof Error ? e.cause.message : undefined };
}

/** A logger that drops everything, for tests and one-shot CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
