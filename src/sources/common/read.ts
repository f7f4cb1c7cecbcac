/**
 * Strict reading of an API's JSON answer. An answer whose shape is not the documented one (a field
 * of the wrong type, a required field missing, a list that is not a list) is refused whole, with the
 * path of the first bad value: vigil never guesses at a device's posture from a half-understood
 * record. Unknown extra fields are ignored (APIs add fields), and an unknown value of a known
 * enumeration is kept as is (the evaluation treats what it does not know as unknown).
 */
import { UpstreamError } from "../../errors.ts";
import type { HttpResponse } from "../../net/http.ts";
import { scrub } from "../../util/redact.ts";

/** A refused answer: permanent, since the same answer comes back on every try. */
export class MalformedResponse extends UpstreamError {
  constructor(where: string, message: string, cause?: unknown) {
    super(false, scrub(`${where}: malformed response: ${message}`), { ...(cause === undefined ? {} : { cause }), details: { malformed: true } });
    this.name = "MalformedResponse";
  }
}

/** Reads values of one answer; each failure names `where` (the request) and the JSON path. */
export class Reader {
  readonly where: string;
  constructor(where: string) {
    this.where = where;
  }

  fail(path: string, message: string): never {
    throw new MalformedResponse(this.where, `${path}: ${message}`);
  }

  /** The body as JSON; refuses what does not parse (truncated bodies included). */
  json(res: HttpResponse): unknown {
    try {
      return JSON.parse(res.body.toString("utf8"));
    } catch (err) {
      throw new MalformedResponse(this.where, `the body is not JSON (${res.body.length} bytes)`, err);
    }
  }

  object(v: unknown, path: string): Record<string, unknown> {
    if (v === null || typeof v !== "object" || Array.isArray(v)) this.fail(path, `expected an object, got ${kind(v)}`);
    return v as Record<string, unknown>;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, `expected a list, got ${kind(v)}`);
    return v;
  }

  /** A required non-empty string. */
  string(o: Record<string, unknown>, key: string, path: string): string {
    const v = o[key];
    if (typeof v !== "string" || v === "") this.fail(`${path}.${key}`, `expected a non-empty string, got ${kind(v)}`);
    return v;
  }

  /** An optional string: absent, null and "" read as undefined. */
  optString(o: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") this.fail(`${path}.${key}`, `expected a string, got ${kind(v)}`);
    return v;
  }

  optBoolean(o: Record<string, unknown>, key: string, path: string): boolean | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "boolean") this.fail(`${path}.${key}`, `expected true or false, got ${kind(v)}`);
    return v;
  }

  optNumber(o: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(`${path}.${key}`, `expected a number, got ${kind(v)}`);
    return v;
  }

  /** A required identifier: a non-empty string, or an integer (rendered as its decimal string). */
  id(o: Record<string, unknown>, key: string, path: string): string {
    const v = o[key];
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return String(v);
    if (typeof v === "string" && v !== "" && v.length <= 256) return v;
    this.fail(`${path}.${key}`, `expected an id, got ${kind(v)}`);
  }

  /**
   * An optional timestamp (RFC 3339 / ISO 8601) in epoch ms. Absent, null, "" and the year-1 zero
   * values APIs use for "never" read as undefined; anything else that is not a time is refused.
   */
  optTime(o: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = this.optString(o, key, path);
    if (v === undefined) return undefined;
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) this.fail(`${path}.${key}`, `expected a date and time, got ${JSON.stringify(v.slice(0, 40))}`);
    // "0001-01-01T00:00:00Z" and the like: never happened.
    return ms < Date.UTC(1971, 0, 1) ? undefined : ms;
  }
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return v === "" ? "an empty string" : `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "object") return "an object";
  if (v === undefined) return "nothing";
  return `${typeof v} ${String(v)}`;
}
