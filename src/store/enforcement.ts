/**
 * Enforcement records: for each (policy, subject, action), what the decision in force wants of the
 * action (the desired state) and what vigil last achieved at the target. They make enforcement
 * level-triggered end to end: a desired state that is not achieved stays on record, and is driven
 * again, until it is achieved or a later decision supersedes it.
 *
 * The transitions are pure functions over one record, shared by every StateStore: a backend keeps
 * each record as one document and applies a transition atomically (a transaction in SQLite, a
 * compare-and-set or script in a key-value store).
 */
import { createHash } from "node:crypto";
import type { AccessLevel } from "../policy/model.ts";

/** One action of one policy for one subject. */
export interface EnforcementKey {
  readonly policy: string;
  readonly subject: string;
  /** The action's configured name. */
  readonly action: string;
}

/** What the current decision wants of one action: written when its job is handed to the queue. */
export interface DesiredEnforcement extends EnforcementKey {
  /** The action's type (`webhook`, `okta:suspend`, …). */
  readonly action_type: string;
  readonly operation: "apply" | "revert";
  /** The access the decision set. */
  readonly access: AccessLevel;
  /** Access enforced before the decision. */
  readonly previous_access: AccessLevel;
  readonly generation: number;
  readonly decided_at: number;
  readonly idempotency_key: string;
}

/**
 * `pending`: handed to the queue. `failed`: the queue gave up on it (attempts used up, or a permanent
 * error); a re-drive is due at `next_retry_at`. `achieved`: the target carries it. `superseded`: a later
 * decision (or a change of configuration, or a break-glass exemption) no longer wants it.
 */
export type EnforcementRecordStatus = "pending" | "failed" | "achieved" | "superseded";

export interface EnforcementRecord extends DesiredEnforcement {
  /** Stable id of the (policy, subject, action), for the API: `enforcementId()`. */
  readonly id: string;
  readonly status: EnforcementRecordStatus;
  /** Queue attempts that failed on this desired state, across its re-drives. */
  readonly attempts: number;
  /** Re-drives started for this desired state. */
  readonly redrives: number;
  /** The last error, scrubbed of secrets. */
  readonly last_error?: string;
  /** When the queue first gave up on this desired state (epoch ms); set while it is unreconciled. */
  readonly first_failed_at?: number;
  /** When the last attempt that failed for good ended (epoch ms). */
  readonly last_attempt_at?: number;
  /** When the next re-drive is due (epoch ms); only while `failed`. */
  readonly next_retry_at?: number;
  /**
   * vigil's apply may be in effect at the target: an apply succeeded, failed after its calls went
   * out, or noted its prior before changing the target, and no revert has been achieved since. A
   * revert is sent only while this holds.
   */
  readonly in_effect: boolean;
  /**
   * While `in_effect`: what the target looked like before vigil's apply changed it, as the action
   * recorded it (`ActionOutcome.prior`, `ActionRequest.recordPrior`). Absent when vigil holds no
   * record of it (an apply from before records were kept).
   */
  readonly prior?: Readonly<Record<string, unknown>>;
}

/** A (policy, subject) whose new decision (`generation`) is being handed to enforcement. */
export interface DecidedGeneration {
  readonly policy: string;
  readonly subject: string;
  readonly generation: number;
}

/** What happened to a record's action; see `applyEnforcementEvent`. */
export type EnforcementEvent =
  /** An apply attempt failed: its calls may have reached the target all the same. */
  | { readonly kind: "attempted" }
  /** The apply noted what the target looked like, and is about to change it. */
  | { readonly kind: "prior"; readonly prior: Readonly<Record<string, unknown>> }
  /** The job of (generation, operation) succeeded. */
  | { readonly kind: "achieved"; readonly generation: number; readonly operation: "apply" | "revert"; readonly prior?: Readonly<Record<string, unknown>> }
  /** The job of (generation, operation) failed for good. */
  | { readonly kind: "failed"; readonly generation: number; readonly operation: "apply" | "revert"; readonly at: number; readonly error: string; readonly attempts: number; readonly next_retry_at: number }
  /** The job of (generation, operation) is no longer wanted. */
  | { readonly kind: "superseded"; readonly generation: number; readonly operation: "apply" | "revert" }
  /** A re-drive of (generation, operation) was handed to the queue. */
  | { readonly kind: "redriven"; readonly generation: number; readonly operation: "apply" | "revert" }
  /** An operator asked for a re-drive now. */
  | { readonly kind: "due"; readonly at: number };

/** The stable id of a (policy, subject, action): the same across decisions and restarts. */
export function enforcementId(policy: string, subject: string, action: string): string {
  return createHash("sha256").update(`${policy}\u0000${subject}\u0000${action}`).digest("hex").slice(0, 24);
}

/** Not achieved after the queue gave up on it, and still wanted: counted and listed as failed work. */
export function isUnreconciled(r: EnforcementRecord): boolean {
  return r.first_failed_at !== undefined && (r.status === "pending" || r.status === "failed");
}

/** Oldest failure first, then by key, so listings are stable. */
export function byFirstFailure(a: EnforcementRecord, b: EnforcementRecord): number {
  return (a.first_failed_at ?? 0) - (b.first_failed_at ?? 0) || a.policy.localeCompare(b.policy) || a.subject.localeCompare(b.subject) || a.action.localeCompare(b.action);
}

/**
 * Records a new desired state. What vigil achieved at the target (`in_effect`, `prior`) is kept; the
 * failure history of the previous desired state is not. A revert with no record at all comes from a
 * history vigil did not record (an earlier version): its apply may be in effect, so it counts as such
 * and is reverted as before.
 */
export function desire(existing: EnforcementRecord | undefined, d: DesiredEnforcement): EnforcementRecord {
  const inEffect = existing ? existing.in_effect : d.operation === "revert";
  return {
    id: enforcementId(d.policy, d.subject, d.action),
    policy: d.policy,
    subject: d.subject,
    action: d.action,
    action_type: d.action_type,
    operation: d.operation,
    access: d.access,
    previous_access: d.previous_access,
    generation: d.generation,
    decided_at: d.decided_at,
    idempotency_key: d.idempotency_key,
    status: "pending",
    attempts: 0,
    redrives: 0,
    in_effect: inEffect,
    ...(inEffect && existing?.prior ? { prior: existing.prior } : {}),
  };
}

/** A record of an older decision that is not achieved gives way to `generation`; undefined when nothing changes. */
export function supersede(r: EnforcementRecord, generation: number): EnforcementRecord | undefined {
  if (r.generation >= generation || (r.status !== "pending" && r.status !== "failed")) return undefined;
  return { ...withoutFailure(r), status: "superseded" };
}

/** The record after `e`; undefined when `e` changes nothing. */
export function applyEnforcementEvent(r: EnforcementRecord, e: EnforcementEvent): EnforcementRecord | undefined {
  const current = (x: { generation: number; operation: string }) => r.generation === x.generation && r.operation === x.operation;
  switch (e.kind) {
    case "attempted":
      // Tracked from here on: an empty prior says "recorded, nothing noted", unlike an unknown history.
      return r.in_effect ? undefined : { ...r, in_effect: true, prior: {} };
    case "prior":
      return { ...r, in_effect: true, prior: { ...(r.in_effect ? (r.prior ?? {}) : {}), ...e.prior } };
    case "achieved": {
      const effect: Partial<EnforcementRecord> =
        e.operation === "apply" ? { in_effect: true, prior: e.prior ?? r.prior ?? {} } : { in_effect: false };
      const base = e.operation === "revert" ? withoutPrior(r) : r;
      return current(e) ? { ...withoutFailure(base), ...effect, status: "achieved" } : { ...base, ...effect };
    }
    case "failed":
      if (!current(e) || r.status !== "pending") return undefined;
      return {
        ...r,
        status: "failed",
        attempts: r.attempts + e.attempts,
        last_error: e.error,
        first_failed_at: r.first_failed_at ?? e.at,
        last_attempt_at: e.at,
        next_retry_at: e.next_retry_at,
      };
    case "superseded":
      return current(e) && (r.status === "pending" || r.status === "failed") ? { ...withoutFailure(r), status: "superseded" } : undefined;
    case "redriven":
      if (!current(e) || r.status !== "failed") return undefined;
      return { ...withoutRetry(r), status: "pending", redrives: r.redrives + 1 };
    case "due":
      return r.status === "failed" && (r.next_retry_at === undefined || r.next_retry_at > e.at) ? { ...r, next_retry_at: e.at } : undefined;
  }
}

function withoutRetry(r: EnforcementRecord): EnforcementRecord {
  const { next_retry_at: _n, ...rest } = r;
  return rest;
}

function withoutPrior(r: EnforcementRecord): EnforcementRecord {
  const { prior: _p, ...rest } = r;
  return rest;
}

function withoutFailure(r: EnforcementRecord): EnforcementRecord {
  const { next_retry_at: _n, first_failed_at: _f, last_error: _e, last_attempt_at: _l, ...rest } = r;
  return rest;
}
