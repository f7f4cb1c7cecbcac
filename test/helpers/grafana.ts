/** Reads deploy/grafana/vigil.json and the PromQL in it, for the dashboard's tests. */
import { readFileSync } from "node:fs";
import * as N from "../../src/telemetry/names.ts";

export const DASHBOARD_FILE = new URL("../../deploy/grafana/vigil.json", import.meta.url);

export interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
  legendFormat?: string;
  instant?: boolean;
  format?: string;
}
export interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
  panels?: Panel[];
  transformations?: { id: string; options: Record<string, unknown> }[];
}
export interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  definition?: string;
  datasource?: { type?: string; uid?: string };
  includeAll?: boolean;
  multi?: boolean;
  allValue?: string;
}
export interface Dashboard {
  title: string;
  uid: string;
  schemaVersion: number;
  tags: string[];
  id?: number | null;
  templating: { list: Variable[] };
  panels: Panel[];
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as Dashboard;
}

/** Every panel, those nested in collapsed rows included. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** One PromQL expression of the dashboard and where it comes from. */
export interface Query {
  where: string;
  expr: string;
}

/** Panel targets and the query of each query variable (`label_values(<selector>, label)` yields its selector). */
export function dashboardQueries(d: Dashboard): Query[] {
  const out: Query[] = [];
  for (const p of allPanels(d)) for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
  for (const v of d.templating.list) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query.query;
    const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.trim());
    out.push({ where: `variable $${v.name}`, expr: m ? m[1]! : q });
  }
  return out;
}

/** Grafana's own interval variables, with values that suit a Prometheus scraping every second. */
const BUILTINS: Record<string, string> = { __rate_interval: "1m", __interval: "15s", __range: "5m" };

/**
 * The expression as Grafana would send it: dashboard variables (all of them `=~` matchers with
 * "All" as `.+`) become `.+`, built-in intervals a duration. Throws on a variable the dashboard does
 * not define.
 */
export function substitute(expr: string, d: Dashboard): string {
  const defined = new Set(d.templating.list.map((v) => v.name));
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined, c: string | undefined) => {
    const name = a ?? b ?? c ?? "";
    if (name in BUILTINS) return BUILTINS[name]!;
    if (defined.has(name)) return ".+";
    throw new Error(`${whole} in "${expr}" is neither a dashboard variable nor a Grafana built-in`);
  });
}

/** The metric names an expression reads (`vigil_*`, plus Prometheus's own `up`). */
export function metricNames(expr: string): string[] {
  // Label values and strings are not names: drop quoted text first.
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...new Set([...bare.matchAll(/\b(vigil_[a-z0-9_]+|up)\b(?!\s*\()/g)].map((m) => m[1]!))];
}

/** Every name vigil defines in src/telemetry/names.ts, with a histogram's series suffixes. */
export function definedNames(): Set<string> {
  const names = new Set<string>();
  for (const def of [...N.ALL_METRICS, ...N.CERTIFICATE_METRICS, ...N.CLUSTER_METRICS]) {
    names.add(def.name);
    if (def === N.EVALUATION_DURATION || def === N.SIGNAL_TO_ENFORCEMENT) for (const s of ["_bucket", "_sum", "_count"]) names.add(def.name + s);
  }
  return names;
}
