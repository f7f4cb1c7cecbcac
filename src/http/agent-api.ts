import type { PublicDocument } from "../plugin/provider.ts";
import type { AccessLevel, CheckResult, CheckStatus, Decision, RiskLevel, Subject } from "../policy/model.ts";
import type { AuditEntry, AuditQuery } from "../store/contract.ts";
import type { QueueDepth } from "../queue/contract.ts";

/** A result pushed from outside (POST /v1/signals). */
export interface SignalInput {
  readonly subject: string;
  readonly check: string;
  readonly status: CheckStatus;
  readonly risk?: RiskLevel;
  /** How long the result stands, in ms. Default: the check's TTL. */
  readonly ttl_ms?: number;
  readonly reason?: string;
  /** Where it came from (`api`, `alertmanager`, …), for the audit log. */
  readonly source?: string;
  /** Signal stream (e.g. one alert): results of different streams for the same check stand side by side. */
  readonly stream?: string;
  /** What the sender said about it (an SSF event's timestamp, initiator, reasons, `jti`), kept with the result and in the audit line. */
  readonly evidence?: Readonly<Record<string, unknown>>;
}

/** One point pushed to POST /v1/observations. */
export interface ObservationInput {
  readonly subject: string;
  /** A series a check watches from pushed observations: `name`, or `name{…}` for one of several. */
  readonly series: string;
  /** Epoch ms. */
  readonly timestamp: number;
  /** NaN and ±Infinity are accepted and skipped (counted), never fatal. */
  readonly value: number;
  /** Only this check (by its configured name); default every check that watches the series. */
  readonly check?: string;
}

/** What became of a batch of observations. */
export interface ObservationsReceipt {
  /** Points the detectors learned. */
  readonly accepted: number;
  /** Points taken but not learned: NaN or infinite values, re-sent or out-of-order points, series beyond a cap, subjects a series does not watch. */
  readonly skipped: { readonly non_finite: number; readonly out_of_order: number; readonly dropped: number; readonly not_watched: number };
  /** Points refused, by their index in the batch. */
  readonly rejected: readonly { readonly index: number; readonly code: string; readonly message: string }[];
  /** Subjects whose result changed and are being evaluated now. */
  readonly evaluating: readonly string[];
}

export interface SubjectSummary {
  readonly id: string;
  readonly kind: Subject["kind"];
  readonly identity?: string;
  /**
   * Most restrictive access across the policies covering it. A covering policy that has not decided
   * yet counts as `default_security_rule` (deny under `deny_all`), never as full access.
   */
  readonly access: AccessLevel;
  /** `pending` while a covering policy has not evaluated the subject yet; `evaluated` once all have. */
  readonly status: SubjectStatus;
  /** Covering policies that have not decided yet. */
  readonly pending: readonly string[];
  readonly policies: readonly { readonly policy: string; readonly access: AccessLevel; readonly risk: RiskLevel; readonly generation: number; readonly decided_at: string }[];
}

/** Whether every policy covering a subject has decided. */
export type SubjectStatus = "pending" | "evaluated";

export interface SubjectDetail {
  readonly subject: Subject;
  /** As in `SubjectSummary`: an undecided covering policy counts as `default_security_rule`. */
  readonly access: AccessLevel;
  readonly status: SubjectStatus;
  readonly pending: readonly string[];
  readonly decisions: readonly Decision[];
  readonly results: readonly CheckResult[];
}

export interface EnforcementStatus {
  readonly policy: string;
  readonly paused: boolean;
  readonly paused_at?: string;
  readonly recent_actions: number;
  readonly max_actions: number;
  readonly window_ms: number;
}

/** An item of GET /v1/enforcement/failed: an action the queue gave up on that the decision still wants. */
export interface FailedEnforcement {
  /** Stable id of the (policy, subject, action): name it to `POST /v1/enforcement/failed/retry`. */
  readonly id: string;
  readonly policy: string;
  readonly subject: string;
  /** The action's configured name. */
  readonly action: string;
  readonly action_type: string;
  readonly operation: "apply" | "revert";
  /** The access the decision set. */
  readonly access: AccessLevel;
  /** The decision's generation. */
  readonly generation: number;
  /** `failed`: waiting for its next re-drive (`next_retry_at`); `retrying`: a re-drive is in the queue. */
  readonly status: "failed" | "retrying";
  /** Queue attempts that failed, across re-drives. */
  readonly attempts: number;
  /** Re-drives so far. */
  readonly redrives: number;
  /** The last error, secrets scrubbed. */
  readonly last_error: string | null;
  /** ISO 8601 UTC: when its attempts first ran out. */
  readonly first_failed_at: string;
  /** ISO 8601 UTC: when its last attempt failed for good. */
  readonly last_attempt_at: string | null;
  /** ISO 8601 UTC: when the next re-drive is due; null while one is in the queue. */
  readonly next_retry_at: string | null;
}

/** Answer of POST /v1/enforcement/failed/retry. */
export interface RetryEnforcementResult {
  /** Ids re-driven now. */
  readonly retried: readonly string[];
  /** Ids already being re-driven (left to finish). */
  readonly in_progress: readonly string[];
  /** Named ids with nothing unreconciled: achieved, superseded or unknown. */
  readonly not_failed: readonly string[];
}

/** Subjects by access: each counted once, under `pending` while a covering policy has not decided it yet. */
export interface AccessCounts {
  readonly total: number;
  readonly full_access: number;
  readonly read_only: number;
  readonly deny: number;
  readonly pending: number;
}

/** A policy in GET /v1/status. */
export interface PolicyStatus {
  readonly name: string;
  /** The subjects it covers, by the access it decided for each (`pending`: not decided yet). */
  readonly subjects: AccessCounts;
  /** Its enforcement is paused by the blast-radius guard (`POST /v1/enforcement/resume` lifts it). */
  readonly paused: boolean;
}

/** GET /v1/status: where the agent is and whether it has work in hand. */
export interface AgentStatus {
  /** As `/readyz`: start-up finished and no stop has begun. */
  readonly ready: boolean;
  /** As `/readyz`: why the agent is not ready; empty when it is. */
  readonly reasons: readonly string[];
  /** vigil's version (package.json). */
  readonly version: string;
  /** `agent.mode` the agent started with (a changed mode takes effect at the next restart). */
  readonly mode: "embedded" | "cluster";
  /** `agent.dry_run`: actions are planned and recorded, never sent. */
  readonly dry_run: boolean;
  /** Every policy in force, in config order. */
  readonly policies: readonly PolicyStatus[];
  /** Every known subject by its most restrictive access across the policies covering it (as `GET /v1/subjects`). */
  readonly subjects: AccessCounts;
  /** Names of the policies whose enforcement is paused. */
  readonly paused: readonly string[];
  /** Enforcement that ran out of attempts and is not in effect yet (`GET /v1/enforcement/failed`). */
  readonly unreconciled: { readonly total: number; /** ISO 8601 UTC: when the oldest of them first failed; null when there is none. */ readonly oldest_failed_at: string | null };
  /** Jobs of every kind: `waiting` are due now, `delayed` wait for a later run time, `failed` are kept as dead letters. */
  readonly queue: QueueDepth;
  /**
   * Nothing ready or running: start-up enforcement has run and no job is active or due. Jobs delayed
   * into the future (scheduled evaluations spread over an interval, rechecks, retries waiting out
   * their backoff) do not count, so an idle agent becomes busy again when one comes due.
   */
  readonly idle: boolean;
}

/** What the HTTP API asks of the running agent. Errors are VigilErrors with stable codes. */
export interface AgentApi {
  /** Liveness: the process is up and its loop turns. */
  health(): { ok: boolean };
  /** Readiness: store, queue and inventories are loaded. */
  ready(): { ready: boolean; reasons: readonly string[] };
  listSubjects(query: { policy?: string; access?: AccessLevel; kind?: string; limit: number; offset: number }): Promise<{ subjects: SubjectSummary[]; total: number }>;
  /** undefined when no inventory knows the id. */
  getSubject(id: string): Promise<SubjectDetail | undefined>;
  /** Re-runs every policy covering the subject now; undefined when unknown. */
  evaluate(id: string): Promise<Decision[] | undefined>;
  /** Durably records the result and schedules an immediate evaluation; throws VIGIL_ERR_UNKNOWN_SUBJECT or VIGIL_ERR_BAD_REQUEST. */
  acceptSignal(signal: SignalInput): Promise<{ id: string; policies: readonly string[] }>;
  /** Feeds pushed points to the checks that watch their series; a subject whose result they change is evaluated at once. */
  acceptObservations?(batch: readonly ObservationInput[]): Promise<ObservationsReceipt>;
  readAudit(query: AuditQuery): Promise<AuditEntry[]>;
  /** Version, mode, queue depth and whether any work is ready or running; throws VIGIL_ERR_SHUTDOWN before start. */
  status(): Promise<AgentStatus>;
  enforcement(): EnforcementStatus[];
  /** Operator resume of a paused blast-radius guard; all policies when none given. Throws VIGIL_ERR_BAD_REQUEST for an unknown policy. */
  resumeEnforcement(policy?: string): Promise<{ resumed: readonly string[] }>;
  /** Enforcement the queue gave up on and vigil keeps re-driving, oldest failure first. */
  failedEnforcement(query: { policy?: string; limit: number; offset: number }): Promise<{ items: FailedEnforcement[]; total: number }>;
  /** Re-drives failed enforcement now: the named ids, or every one (of `policy`, when given). Throws VIGIL_ERR_BAD_REQUEST for an unknown policy. */
  retryEnforcement(request: { ids: readonly string[] } | { all: true; policy?: string }): Promise<RetryEnforcementResult>;
  /** A document a provider publishes without authentication (`/.well-known/jwks.json`, `/.well-known/ssf-configuration`). */
  publicDocument?(path: string): PublicDocument | undefined;
}
