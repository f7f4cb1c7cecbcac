import { pino, type Logger as PinoLogger, type DestinationStream } from "pino";
import { scrub, isSecretField, MASK } from "../util/redact.ts";

export type Logger = PinoLogger;

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** `json`: one JSON object per line, for log shippers. `text`: one readable line per entry, for people at a terminal. */
export type LogFormat = "json" | "text";

/**
 * Structured logs on stdout (or the given stream), JSON by default or as readable text. Secret-named
 * keys are masked at any depth and every registered secret value is scrubbed from the JSON line, so
 * nothing upstream has to remember to; the text line is made from the scrubbed JSON line.
 */
export function createLogger(options: { level?: LogLevel; stream?: DestinationStream; format?: LogFormat; color?: boolean } = {}): Logger {
  const destination = options.stream ?? pino.destination({ fd: 1, sync: true });
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
    options.format === "text" ? textDestination(destination, options.color ?? false) : destination,
  );
}

/** Fields every line has, shown in the line's head instead of as `key=value`. */
const HEAD_FIELDS = new Set(["level", "time", "msg", "service"]);
const LEVEL_COLORS: Readonly<Record<string, string>> = { trace: "90", debug: "36", info: "32", warn: "33", error: "31", fatal: "35" };

/** Turns pino's JSON lines into text lines on their way to `out`. */
function textDestination(out: DestinationStream, color: boolean): DestinationStream {
  return { write: (line: string) => out.write(formatLogLine(line, color)) };
}

/**
 * One JSON log line as text: `time LEVEL message key=value …`, values that are not plain words
 * quoted as JSON, nested objects as compact JSON. A line that is not JSON passes through unchanged.
 */
export function formatLogLine(line: string, color = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) return line;
  const level = String(entry["level"] ?? "info");
  const label = level.toUpperCase().padEnd(5);
  const parts = [String(entry["time"] ?? ""), color && LEVEL_COLORS[level] ? `\x1b[${LEVEL_COLORS[level]}m${label}\x1b[0m` : label, escapeControls(String(entry["msg"] ?? ""))];
  for (const [k, v] of Object.entries(entry)) {
    if (HEAD_FIELDS.has(k) || v === undefined) continue;
    parts.push(`${escapeControls(k)}=${typeof v === "string" && /^[^\s"=\p{Cc}]+$/u.test(v) ? v : escapeControls(JSON.stringify(v))}`);
  }
  return parts.filter((p) => p !== "").join(" ") + "\n";
}

/**
 * Control characters written as JSON escapes: a message quoting a subject id or a signal's reason
 * must not move the cursor or recolour the operator's terminal.
 */
function escapeControls(text: string): string {
  return text.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function maskKeys(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object" || depth > 16) return value;
  if (value instanceof Error) return serializeError(value);
  if (Array.isArray(value)) return value.map((v) => maskKeys(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretField(k, v) && v ? MASK : maskKeys(v, depth + 1);
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
