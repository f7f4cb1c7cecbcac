/**
 * Every problem at once: when the schema refuses a config, the checks of the later phase (plugin
 * configs, check names, intervals, policy names, …) still run, on a copy in which each refused value
 * is taken out (a key with a default falls back to it) or, where a value must stay, replaced by one
 * of the kind the schema wants. What those checks then find at a changed key (or inside or around
 * it) is an effect of the change, not a problem of the file, and is dropped; everything else they
 * find is a problem of the file and is reported with the schema's.
 *
 * Bounded: a few rounds, and no salvage when a value cannot be stood in for safely (an array element
 * of a kind that has no neutral value): then only the schema's problems are reported.
 */
import type { z } from "zod";

type Path = readonly PropertyKey[];

/** How many times the copy is re-parsed at most. */
const MAX_ROUNDS = 6;

export interface Salvaged<T> {
  /** The parsed copy. */
  readonly data: T;
  /** Paths changed in the copy: the later phase's findings at, under or above them are dropped. */
  readonly touched: readonly Path[];
  /** Problems the schema found only once others were out of the way (checks that run on a valid object). */
  readonly later: readonly z.core.$ZodIssue[];
}

export function salvage<T>(schema: z.ZodType<T>, tree: unknown, first: readonly z.core.$ZodIssue[]): Salvaged<T> | undefined {
  const copy = structuredClone(tree) as unknown;
  const touched: Path[] = [];
  const removed = new Set<string>();
  const later: z.core.$ZodIssue[] = [];
  let issues = first;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    for (const issue of issues) {
      if (round > 0 && !touched.some((t) => related(t, issue.path))) later.push(issue);
      if (!repair(copy, issue, removed, touched)) return undefined;
    }
    const r = schema.safeParse(copy);
    if (r.success) return { data: r.data, touched, later };
    issues = r.error.issues;
  }
  return undefined;
}

/** Takes the value at the issue's path out of `root`, or stands in for it; false when it cannot. */
function repair(root: unknown, issue: z.core.$ZodIssue, removed: Set<string>, touched: Path[]): boolean {
  if (issue.code === "unrecognized_keys") {
    const holder = at(root, issue.path);
    if (!isRecord(holder)) return false;
    for (const key of issue.keys) {
      delete holder[key];
      touched.push([...issue.path, key]);
    }
    return true;
  }
  const path = issue.path;
  if (path.length === 0) return false;
  const parent = at(root, path.slice(0, -1));
  const key = path.at(-1)!;
  touched.push(path);
  const id = JSON.stringify(path.map(String));
  // A key of a mapping is taken out first: most keys have a default the schema then fills in.
  if (isRecord(parent) && !Array.isArray(parent) && !removed.has(id)) {
    removed.add(id);
    delete parent[String(key)];
    return true;
  }
  const value = standIn(issue);
  if (value === undefined || parent === null || typeof parent !== "object") return false;
  (parent as Record<PropertyKey, unknown>)[key as string] = value;
  return true;
}

/** A value of the kind the issue asks for, or undefined when there is no neutral one. */
function standIn(issue: z.core.$ZodIssue): unknown {
  switch (issue.code) {
    case "invalid_value":
      return issue.values[0];
    case "invalid_type":
      return neutral(issue.expected);
    case "too_small":
      if (issue.origin === "number") return issue.inclusive === false ? Number(issue.minimum) + 1 : Number(issue.minimum);
      if (issue.origin === "string") return "x".repeat(Math.max(1, Number(issue.minimum)));
      return undefined;
    case "too_big":
      if (issue.origin === "number") return issue.inclusive === false ? Number(issue.maximum) - 1 : Number(issue.maximum);
      return undefined;
    case "invalid_union": {
      const options = (issue as { options?: unknown[] }).options;
      if (Array.isArray(options) && options.length > 0) return options[0];
      for (const branch of issue.errors) {
        const v = branch[0] ? standIn(branch[0]) : undefined;
        if (v !== undefined) return v;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

function neutral(expected: string): unknown {
  switch (expected) {
    case "string":
      return "x";
    case "number":
    case "int":
      return 1;
    case "boolean":
      return false;
    case "array":
      return [];
    case "object":
    case "record":
      return {};
    default:
      return undefined;
  }
}

/** One path is the other, or lies inside it. */
export function related(a: Path, b: Path): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (String(a[i]) !== String(b[i])) return false;
  return true;
}

function at(root: unknown, path: Path): unknown {
  let node = root;
  for (const k of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[k as string];
  }
  return node;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object";
}
