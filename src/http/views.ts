/**
 * How the API writes the model: every instant as ISO 8601 UTC (`2026-11-24T10:02:11.204Z`). The model
 * keeps epoch milliseconds (the decision rules compute with them, the store indexes them); the wire
 * states times one way on every route, so a client never has to guess which form a field is in.
 */
import type { CheckResult, Decision } from "../policy/model.ts";
import type { SubjectDetail } from "./agent-api.ts";

/** An epoch-ms instant as ISO 8601 UTC. */
export function isoInstant(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * `value` with every finite number under a key ending in `_at` written as ISO 8601 UTC: the times a
 * decision's evidence carries (each check's `observed_at` and `expires_at`) and any a plugin's
 * evidence names that way. vigil writes instants as epoch milliseconds throughout its model.
 */
export function isoInstants(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== "object" || depth > 16) return value;
  if (Array.isArray(value)) return value.map((v) => isoInstants(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = k.endsWith("_at") && typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= MAX_DATE_MS ? isoInstant(v) : isoInstants(v, depth + 1);
  }
  return out;
}

/** The largest epoch-ms value a Date holds (±100,000,000 days). */
const MAX_DATE_MS = 8.64e15;

/** A decision as the API sends it: `decided_at` (and the instants in its evidence) in ISO 8601 UTC. */
export type DecisionView = Omit<Decision, "decided_at"> & { readonly decided_at: string };

/** A check result as the API sends it: `observed_at`, `expires_at` and `next_run_at` in ISO 8601 UTC. */
export type CheckResultView = Omit<CheckResult, "observed_at" | "expires_at" | "next_run_at"> & {
  readonly observed_at: string;
  readonly expires_at: string;
  readonly next_run_at?: string;
};

/** `GET /v1/subjects/{id}` as sent. */
export type SubjectDetailView = Omit<SubjectDetail, "decisions" | "results"> & {
  readonly decisions: readonly DecisionView[];
  readonly results: readonly CheckResultView[];
};

export function decisionView(d: Decision): DecisionView {
  return { ...d, decided_at: isoInstant(d.decided_at), evidence: isoInstants(d.evidence) as Decision["evidence"] };
}

export function resultView(r: CheckResult): CheckResultView {
  const { next_run_at, ...rest } = r;
  return {
    ...rest,
    ...(rest.evidence === undefined ? {} : { evidence: isoInstants(rest.evidence) as CheckResult["evidence"] }),
    observed_at: isoInstant(r.observed_at),
    expires_at: isoInstant(r.expires_at),
    ...(next_run_at === undefined ? {} : { next_run_at: isoInstant(next_run_at) }),
  };
}

export function subjectDetailView(d: SubjectDetail): SubjectDetailView {
  return { ...d, decisions: d.decisions.map(decisionView), results: d.results.map(resultView) };
}
