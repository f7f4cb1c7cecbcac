import type { AccessLevel, CheckResult, Decision, DecisionState } from "../policy/model.ts";
import type { Lifecycle } from "../util/lifecycle.ts";
import type { DecidedGeneration, DesiredEnforcement, EnforcementEvent, EnforcementKey, EnforcementRecord } from "./enforcement.ts";

export type { DecidedGeneration, DesiredEnforcement, EnforcementEvent, EnforcementKey, EnforcementRecord, EnforcementRecordStatus } from "./enforcement.ts";
import type { KeyValueStore } from "../plugin/state.ts";

/** What the state store keeps about a (policy, subject) pair. */
export interface StoredState extends DecisionState {
  /** Generation whose actions have been handed to the action queue (0 = none yet). */
  readonly enforced_generation: number;
  /** Access level that enforcement last carried out (starts at `full_access`). */
  readonly enforced_access: AccessLevel;
}

/** One line of the audit log, before chaining. */
export interface AuditEvent {
  /** `decision`, `action`, `action_planned`, `action_failed`, `enforcement_paused`, `enforcement_resumed`,
   * `signal`, `config_reloaded`, `job_failed`, … */
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A chained audit line as written: the event plus `seq`, `ts`, `prev` and `hash`. */
export interface AuditEntry extends AuditEvent {
  readonly seq: number;
  readonly ts: string;
  readonly prev: string;
  readonly hash: string;
}

export interface AuditQuery {
  /** Only entries with seq greater than this. */
  readonly after?: number;
  readonly subject?: string;
  readonly type?: string;
  /** At most this many, oldest first: with `after`, the first ones after the cursor; without, the newest. Default 100. */
  readonly limit?: number;
}

/**
 * Current decisions, latest check results and the audit log; and, as a `KeyValueStore`, what plugins
 * learn and must keep across restarts (anomaly detector state), removed with its subject.
 */
export interface StateStore extends Lifecycle, KeyValueStore {
  getState(policy: string, subject: string): Promise<StoredState | undefined>;
  getStates(policy: string, subjects: readonly string[]): Promise<Map<string, StoredState>>;
  listStates(filter?: { policy?: string; subject?: string }): Promise<StoredState[]>;
  /** Writes states in one atomic step. */
  putStates(states: readonly StoredState[]): Promise<void>;
  /** States whose latest generation has not been handed to enforcement. */
  unenforced(): Promise<StoredState[]>;
  /**
   * States whose access differs from the access enforcement last carried out (`enforced_access`),
   * for reconciling after start and reload; ordered like `listStates`.
   */
  unsettled(): Promise<StoredState[]>;
  markEnforced(policy: string, subject: string, generation: number, access: AccessLevel): Promise<void>;
  /** Subjects per policy and access level, for the `vigil_subjects` gauge. */
  countByAccess(): Promise<Record<string, Record<string, number>>>;
  /** Keeps the newest result per (subject, check, source). */
  putResults(results: readonly CheckResult[]): Promise<void>;
  /** Newest results for these subjects and checks, both sources, expired ones included. */
  getResults(subjects: readonly string[], checks: readonly string[]): Promise<CheckResult[]>;
  /** Removes up to `limit` results that expired before `before`; returns how many. */
  pruneResults(before: number, limit?: number): Promise<number>;
  /**
   * Removes up to `limit` enforcement records that are settled (neither pending nor failed) and whose
   * (policy, subject) has no state any more (the subject left every inventory and was forgotten);
   * returns how many. Pending and failed records stay, so a restore's reverts keep what they need.
   */
  pruneEnforcement(limit?: number): Promise<number>;
  /** Subjects that have a stored state under any policy. */
  stateSubjects(): Promise<string[]>;
  /** Removes every state, result and plugin value of these subjects (they left every inventory). */
  forgetSubjects(subjects: readonly string[]): Promise<void>;
  /** Small JSON documents the engine keeps across restarts (the blast-radius guard's state). */
  getMeta(key: string): Promise<unknown>;
  putMeta(key: string, value: unknown): Promise<void>;
  /**
   * Reads a document, and writes what `change` makes of it, in one atomic step (also against other
   * processes sharing the store); returns what `change` returned. `change` may run more than once
   * when another writer got there first, so it must not have side effects.
   */
  updateMeta<R>(key: string, change: (current: unknown) => { value: unknown; result: R }): Promise<R>;
  /**
   * Records what new decisions want of their actions, in one atomic step: first every record of each
   * `decided` (policy, subject) that belongs to an older generation and is not achieved is superseded
   * (`supersede` in enforcement.ts), then each desired state replaces its record's (`desire`).
   */
  desireEnforcement(desired: readonly DesiredEnforcement[], decided: readonly DecidedGeneration[]): Promise<void>;
  /** The enforcement records of one (policy, subject), one per action ever handed to the queue for real. */
  getEnforcement(policy: string, subject: string): Promise<EnforcementRecord[]>;
  /** The unreconciled records (`isUnreconciled`), optionally of one policy, oldest failure first; or the records with these ids. */
  listEnforcement(filter: { readonly unreconciled: true; readonly policy?: string } | { readonly ids: readonly string[] }): Promise<EnforcementRecord[]>;
  /** Applies one event to a record atomically (`applyEnforcementEvent`); a missing record stays missing. */
  updateEnforcement(key: EnforcementKey, event: EnforcementEvent): Promise<void>;
  /** Appends events to the hash-chained audit log; returns the chained entries. */
  appendAudit(events: readonly AuditEvent[]): Promise<AuditEntry[]>;
  /**
   * Records what one evaluation found and decided: its results, its audit events, then its states,
   * in that order, so a decision never stands without its audit line. The embedded store writes all
   * three in one transaction; the others in three steps (`recordInSteps`).
   */
  recordEvaluation(batch: EvaluationRecord): Promise<void>;
  readAudit(query?: AuditQuery): Promise<AuditEntry[]>;
}

/** What `recordEvaluation` writes. */
export interface EvaluationRecord {
  readonly results: readonly CheckResult[];
  readonly audit: readonly AuditEvent[];
  readonly states: readonly StoredState[];
}

/** Whether a state's access differs from the access enforcement last carried out (`StateStore.unsettled`). */
export function isUnsettled(s: StoredState): boolean {
  return s.decision.access !== s.enforced_access;
}

/** `recordEvaluation` as three writes in order, for stores without one transaction over all three. */
export async function recordInSteps(store: Pick<StateStore, "putResults" | "appendAudit" | "putStates">, batch: EvaluationRecord): Promise<void> {
  await store.putResults(batch.results);
  if (batch.audit.length > 0) await store.appendAudit(batch.audit);
  await store.putStates(batch.states);
}
