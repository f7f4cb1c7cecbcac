/**
 * `vigil anomaly score FILE.csv`: runs a built-in detector over a metric export and prints every
 * point with its score, so a detector can be tried on one's own data. The file is read twice as
 * a stream (once to check every line and count them, once to score), so memory does not grow
 * with its length and a bad line stops the command before anything is printed.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { once } from "node:events";
import { parse, EXIT_OK, UsageError, type Command } from "./common.ts";
import { createDetector, DEFAULT_DETECTOR, DETECTORS, DEFAULT_WARMUP } from "../checks/anomaly_detection/detectors/detector.ts";
import { errorMessage } from "../errors.ts";

/** The options `anomaly score` accepts (its help lists each). */
export const options = {
  detector: { type: "string" },
  min: { type: "string" },
  max: { type: "string" },
  warmup: { type: "string" },
  threshold: { type: "string" },
  likelihood: { type: "boolean" },
} as const;

export const help = `Usage:
  vigil anomaly score FILE.csv [--detector NAME] [--min X --max Y] [--warmup N]
                               [--threshold T] [--likelihood]

Reads a CSV of timestamp,value (a header line first; timestamps in ISO 8601, "YYYY-MM-DD HH:MM:SS"
or Unix seconds, UTC unless they carry an offset) and writes timestamp,value,anomaly_score to
stdout, one line per input line, in [0, 1]. Empty, NaN and Inf values, and timestamps not after
the previous one, are skipped: their score is left empty. A summary goes to stderr.

Detectors (default ${DEFAULT_DETECTOR}):
${[...DETECTORS.values()].map((d) => `  ${d.name.padEnd(12)} ${d.summary}`).join("\n")}

  --min, --max     the known value range (both or neither); otherwise it is learned in the warm-up
  --warmup N       points of warm-up, scored 0 (default 15 % of the file, at most ${DEFAULT_WARMUP})
  --threshold T    add a column "anomaly": 1 where the score is at least T, else 0
  --likelihood     wrap the detector in the anomaly likelihood (Numenta's Gaussian tail over a
                   moving average of raw scores)

A score of 0.6 or more is a good first threshold for ${DEFAULT_DETECTOR} (docs/checks.md).
Exit 0 when the file was scored, 2 for a missing file, a bad line or bad options.`;

export const anomaly: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === "score") return score(rest);
  throw new UsageError('anomaly takes a subcommand: "score"');
};

function numberOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${text}"`);
  return n;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NON_FINITE = /^([+-]?(inf|infinity)|nan)?$/i;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/** Epoch ms of an ISO 8601 / "YYYY-MM-DD HH:MM:SS" / Unix-seconds timestamp; NaN when unreadable. */
export function parseTimestamp(text: string): number {
  if (NUMBER.test(text)) return Number(text) * 1000;
  const m = DATE_TIME.exec(text);
  if (!m) return NaN;
  const [, y, mo, d, h = "0", mi = "0", s = "0", frac = "", zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), frac ? Math.round(Number(frac) * 1000) : 0);
  // Date.UTC rolls over (Feb 30 → Mar 2); a real date survives the round trip.
  const back = new Date(ms);
  if (back.getUTCFullYear() !== Number(y) || back.getUTCMonth() !== Number(mo) - 1 || back.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) return NaN;
  if (!zone || zone.toUpperCase() === "Z") return ms;
  const sign = zone[0] === "-" ? -1 : 1;
  const digits = zone.slice(1).replace(":", "");
  return ms - sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2))) * 60_000;
}

interface Row {
  timestamp: string;
  value: string;
  t: number;
  v: number;
}

function unquote(field: string): string {
  const f = field.trim();
  return f.length >= 2 && f.startsWith('"') && f.endsWith('"') ? f.slice(1, -1) : f;
}

/** One data line, or a message saying what is wrong with it. */
function parseLine(line: string): Row | string {
  const fields = line.split(",");
  if (fields.length !== 2) return `expected 2 fields (timestamp,value), found ${fields.length}`;
  const timestamp = unquote(fields[0]!);
  const value = unquote(fields[1]!);
  const t = parseTimestamp(timestamp);
  if (Number.isNaN(t)) return `unreadable timestamp "${timestamp}"`;
  if (NUMBER.test(value)) return { timestamp, value, t, v: Number(value) };
  if (NON_FINITE.test(value)) return { timestamp, value, t, v: NaN };
  return `unreadable value "${value}"`;
}

/** Calls `each` for every data line (1-based line numbers); throws a UsageError naming a bad one. */
async function readRows(file: string, each: (row: Row, line: number) => void | Promise<void>): Promise<number> {
  const stream = createReadStream(file, { encoding: "utf8" });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once("open", () => resolve());
    stream.once("error", (err) => reject(new UsageError(`cannot read ${file}: ${errorMessage(err)}`)));
  });
  await opened;
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  let rows = 0;
  try {
    for await (const raw of lines) {
      n++;
      const line = raw.trim();
      if (n === 1) {
        const head = line.split(",");
        const first = unquote(head[0] ?? "");
        if (head.length !== 2 || (!Number.isNaN(parseTimestamp(first)) && first !== "")) throw new UsageError(`${file}:1: the first line must be a header such as "timestamp,value"`);
        continue;
      }
      if (line === "") continue;
      const row = parseLine(line);
      if (typeof row === "string") throw new UsageError(`${file}:${n}: ${row}`);
      rows++;
      await each(row, n);
    }
  } finally {
    lines.close();
    stream.destroy();
  }
  return rows;
}

/** Buffered stdout that waits when the pipe is full, so output never piles up in memory. */
class Output {
  #buf: string[] = [];
  #size = 0;
  async line(text: string): Promise<void> {
    this.#buf.push(text);
    this.#size += text.length;
    if (this.#size >= 64 * 1024) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.#buf.length === 0) return;
    const chunk = this.#buf.join("\n") + "\n";
    this.#buf = [];
    this.#size = 0;
    if (!process.stdout.write(chunk)) await once(process.stdout, "drain");
  }
}

function formatScore(s: number): string {
  return String(Number(s.toFixed(6)));
}

async function score(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, options, true);
  if (positionals.length !== 1) throw new UsageError("score takes one CSV file");
  const file = positionals[0]!;
  const min = numberOption("min", values.min);
  const max = numberOption("max", values.max);
  const warmup = numberOption("warmup", values.warmup);
  const threshold = numberOption("threshold", values.threshold);
  if (warmup !== undefined && !(Number.isInteger(warmup) && warmup >= 0)) throw new UsageError("--warmup must be a whole number of points");
  const name = values.detector ?? DEFAULT_DETECTOR;
  if (!DETECTORS.has(name)) throw new UsageError(`unknown detector "${name}" (built in: ${[...DETECTORS.keys()].join(", ")})`);

  // Pass 1: every line readable, and the length for the default warm-up.
  const length = await readRows(file, () => {});
  let detector;
  try {
    detector = createDetector({
      detector: name,
      ...(min !== undefined ? { min } : {}),
      ...(max !== undefined ? { max } : {}),
      ...(warmup !== undefined ? { warmup } : { expectedLength: length }),
      ...(values.likelihood ? { likelihood: true } : {}),
    });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }

  // Pass 2: score and print.
  const out = new Output();
  await out.line(threshold === undefined ? "timestamp,value,anomaly_score" : "timestamp,value,anomaly_score,anomaly");
  let alarms = 0;
  await readRows(file, async (row) => {
    const s = detector.update(row.t, row.v);
    const cells = `${row.timestamp},${row.value},${s === null ? "" : formatScore(s)}`;
    if (threshold === undefined) return out.line(cells);
    const hit = s !== null && s >= threshold;
    if (hit) alarms++;
    return out.line(`${cells},${s === null ? "" : hit ? 1 : 0}`);
  });
  await out.flush();
  const c = detector.counts;
  process.stderr.write(
    `vigil: ${name}: ${length} points, warm-up ${Math.min(length, detector.toJSON().warmup)}, skipped ${c.nonFinite} non-finite and ${c.outOfOrder} out of order` +
      (threshold === undefined ? "" : `, ${alarms} at or above ${threshold}`) +
      "\n",
  );
  return EXIT_OK;
}
