/**
 * How the commands that talk to the agent print: aligned tables for people, JSON or YAML for
 * programs (`-o`), times as ISO 8601 UTC and durations as `10h15m`. Pure functions, so the output is
 * the same wherever it is printed and can be tested without an agent.
 */
import { stringify } from "yaml";
import { formatDuration } from "../util/duration.ts";
import { UsageError } from "./args.ts";

/** `-o`: what a command prints. */
export type OutputFormat = "table" | "json" | "yaml";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "json", "yaml"];

/** The `-o` value; undefined means the table. */
export function outputFormat(value: string | undefined): OutputFormat {
  if (value === undefined) return "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) throw new UsageError(`-o must be one of ${OUTPUT_FORMATS.join(", ")}, not "${value}"`);
  return value as OutputFormat;
}

/**
 * Columns padded to their widest cell, two spaces apart, headers in capitals (the last column is not
 * padded, so no line ends in spaces). Cells are made single-line: a newline in a reason would
 * otherwise break the table.
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const clean = (cell: string) => cell.replace(/\s*[\r\n]+\s*/g, " ");
  const all = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => clean(r[i] ?? "")))];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => width(r[i]!))));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell + " ".repeat(widths[i]! - width(cell)))).join("  ").trimEnd()).join("\n");
}

/** `key  value` lines with the keys aligned; entries whose value is undefined are left out. */
export function fields(entries: readonly (readonly [string, string | undefined])[]): string {
  const shown = entries.filter((e): e is readonly [string, string] => e[1] !== undefined);
  const w = Math.max(0, ...shown.map(([k]) => width(k)));
  return shown.map(([k, v]) => `${k}:${" ".repeat(w - width(k) + 2)}${v}`.trimEnd()).join("\n");
}

/** Display width: code points, so `→` and accented names count as one column. */
function width(s: string): number {
  return [...s].length;
}

/**
 * A time as ISO 8601 UTC to the second (`2026-11-24T10:02:11Z`), from epoch milliseconds or an ISO
 * string; `-` for none. Unreadable input is shown as it is rather than as a wrong time.
 */
export function isoTime(value: number | string | null | undefined): string {
  if (value === null || value === undefined || value === "") return "-";
  const ms = typeof value === "number" ? value : Date.parse(value);
  if (!Number.isFinite(ms)) return String(value);
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** A duration for people: at most two units (`10h15m`, `3d4h`, `45s`). */
export function duration(ms: number): string {
  return formatDuration(ms, { units: 2 });
}

/** How long ago (`5m ago`) or how far ahead (`in 2h10m`) a time is; `-` for none. */
export function relative(value: number | string | null | undefined, now: number): string {
  if (value === null || value === undefined || value === "") return "-";
  const ms = typeof value === "number" ? value : Date.parse(value);
  if (!Number.isFinite(ms)) return String(value);
  const d = now - ms;
  if (Math.abs(d) < 1_000) return "just now";
  return d > 0 ? `${duration(d)} ago` : `in ${duration(-d)}`;
}

/**
 * The value with every number under a key ending in `_at` written as an ISO 8601 UTC time: machine
 * output states times one way, whatever form a part of the API sends them in.
 */
export function isoTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(isoTimes);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k.endsWith("_at") && typeof v === "number" && Number.isFinite(v) ? new Date(v).toISOString() : isoTimes(v);
  }
  return out;
}

/** The value as `-o json` (indented) or `-o yaml` print it. */
export function serialize(format: "json" | "yaml", value: unknown): string {
  const data = isoTimes(value);
  return format === "json" ? JSON.stringify(data, null, 2) : stringify(data).trimEnd();
}

/** One value of a stream: a JSON line, or a YAML document. */
export function serializeItem(format: "json" | "yaml", value: unknown): string {
  const data = isoTimes(value);
  return format === "json" ? JSON.stringify(data) : `---\n${stringify(data).trimEnd()}`;
}

/** A list for a table cell: `a, b`, or `-` when empty. */
export function list(items: readonly string[]): string {
  return items.length === 0 ? "-" : items.join(", ");
}

/** A JSON value on one line, cut to `max` characters. */
export function compact(value: unknown, max = 120): string {
  const text = typeof value === "string" ? value : JSON.stringify(value) ?? "";
  return [...text].length > max ? [...text].slice(0, max - 1).join("") + "…" : text;
}
