import { scrub, isSecretField, MASK } from "../util/redact.ts";
import { setOwn } from "../util/own.ts";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

/** `json`: one JSON object per line, for log shippers. `text`: one readable line per entry, for people at a terminal. */
export type LogFormat = "json" | "text";

/** Where log lines go: each call is one whole line, newline included. */
export interface LogStream {
  write(line: string): unknown;
}

/** Logs fields and a message (`log.info({ subject }, "denied")`), only a message, or an Error as `err`. */
export interface LogFn {
  (fields: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  /** Entries below this level are dropped; `silent` drops everything. */
  level: LogLevel;
  readonly trace: LogFn;
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  readonly fatal: LogFn;
  /** A logger whose lines also carry `bindings`. */
  child(bindings: object): Logger;
}

const LEVELS: Readonly<Record<LogLevel, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/**
 * Structured logs on stdout (or the given stream), JSON by default or as readable text. Secret-named
 * keys are masked at any depth and every registered secret value is scrubbed from the JSON line, so
 * nothing upstream has to remember to; the text line is made from the scrubbed JSON line.
 *
 * Each line is `{"level","time","service", …bindings, …fields, "msg"}` and is written synchronously
 * (stdout to a file, pipe or terminal is synchronous in Node on Linux), so nothing logged is lost
 * when the process exits. Written here rather than taken from pino: this is all vigil used of it,
 * and pino with its streams cost ~2 MB of an idle agent's memory (BENCHMARKS.md, section 18).
 */
export function createLogger(options: { level?: LogLevel; stream?: LogStream; format?: LogFormat; color?: boolean } = {}): Logger {
  const out = options.stream ?? stdout;
  const write = options.format === "text" ? (line: string) => out.write(formatLogLine(line, options.color ?? false)) : (line: string) => out.write(line);
  return new JsonLogger(options.level ?? "info", '{"service":"vigil"', write);
}

/**
 * process.stdout, looked up on first use (a logger that never writes does not create it). A closed
 * stdout (EPIPE: the reader went away) loses the lines but must not stop the agent.
 */
let stdoutGuarded = false;
const stdout: LogStream = {
  write: (line) => {
    if (!stdoutGuarded) {
      stdoutGuarded = true;
      process.stdout.on("error", () => undefined);
    }
    return process.stdout.write(line);
  },
};

class JsonLogger implements Logger {
  #level: LogLevel;
  #min: number;
  /** The line's fixed part after level and time: `{"service":"vigil"` and the bindings, JSON without the closing brace. */
  readonly #base: string;
  readonly #write: (line: string) => unknown;

  constructor(level: LogLevel, base: string, write: (line: string) => unknown) {
    if (!Object.hasOwn(LEVELS, level)) throw new Error(`unknown log level "${level}"`);
    this.#level = level;
    this.#min = LEVELS[level];
    this.#base = base;
    this.#write = write;
  }

  get level(): LogLevel {
    return this.#level;
  }
  set level(level: LogLevel) {
    if (!Object.hasOwn(LEVELS, level)) throw new Error(`unknown log level "${level}"`);
    this.#level = level;
    this.#min = LEVELS[level];
  }

  readonly trace: LogFn = (a: object | string, msg?: string) => this.#log("trace", a, msg);
  readonly debug: LogFn = (a: object | string, msg?: string) => this.#log("debug", a, msg);
  readonly info: LogFn = (a: object | string, msg?: string) => this.#log("info", a, msg);
  readonly warn: LogFn = (a: object | string, msg?: string) => this.#log("warn", a, msg);
  readonly error: LogFn = (a: object | string, msg?: string) => this.#log("error", a, msg);
  readonly fatal: LogFn = (a: object | string, msg?: string) => this.#log("fatal", a, msg);

  child(bindings: object): Logger {
    const fields = stringifyFields(maskKeys(bindings, 0));
    return new JsonLogger(this.#level, fields ? `${this.#base},${fields}` : this.#base, this.#write);
  }

  #log(level: Exclude<LogLevel, "silent">, a: unknown, msg: string | undefined): void {
    if (LEVELS[level] < this.#min) return;
    let fields = "";
    if (typeof a === "string") msg = a;
    else if (a instanceof Error) {
      fields = stringifyFields({ err: serializeError(a) });
      msg ??= a.message;
    } else if (a !== null && typeof a === "object") fields = stringifyFields(maskKeys(a, 0));
    else if (a !== undefined) msg = String(a);
    const head = `{"level":"${level}","time":"${new Date().toISOString()}",${this.#base.slice(1)}`;
    const line = `${head}${fields ? `,${fields}` : ""}${msg === undefined ? "" : `,"msg":${JSON.stringify(msg)}`}}\n`;
    this.#write(scrub(line));
  }
}

/**
 * Fields (a maskKeys copy, so free of cycles) as JSON without the braces, "" when there are none;
 * a BigInt is written as its digits rather than thrown on.
 */
function stringifyFields(value: unknown): string {
  const json = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "{}";
  return json.length > 2 ? json.slice(1, -1) : "";
}

/** Fields every line has, shown in the line's head instead of as `key=value`. */
const HEAD_FIELDS = new Set(["level", "time", "msg", "service"]);
const LEVEL_COLORS: Readonly<Record<string, string>> = { trace: "90", debug: "36", info: "32", warn: "33", error: "31", fatal: "35" };

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

/** Secret-named keys masked, Errors serialized (an `err` field among them). */
function maskKeys(value: unknown, depth: number, ancestors: object[] = []): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Error) return serializeError(value);
  // A Date is written as its ISO time (its toJSON); copied field by field it would be {}.
  if (value instanceof Date) return value;
  if (ancestors.includes(value)) return "[Circular]";
  // Deeper than any field vigil logs: not walked, so not written either (its keys were not masked).
  if (depth > 16) return Array.isArray(value) ? "[Array]" : "[Object]";
  ancestors.push(value);
  let out: unknown;
  if (Array.isArray(value)) out = value.map((v) => maskKeys(v, depth + 1, ancestors));
  else {
    const copy: Record<string, unknown> = {};
    // setOwn: a field named __proto__ is written (masked), not taken as the copy's prototype.
    for (const [k, v] of Object.entries(value)) setOwn(copy, k, isSecretField(k, v) && v ? MASK : maskKeys(v, depth + 1, ancestors));
    out = copy;
  }
  ancestors.pop();
  return out;
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown; status?: unknown; cause?: unknown };
  return { type: e.name, message: e.message, code: e.code, status: e.status, cause: e.cause instanceof Error ? e.cause.message : undefined };
}

/** A logger that drops everything, for tests and one-shot CLI commands. */
export function silentLogger(): Logger {
  return createLogger({ level: "silent" });
}
