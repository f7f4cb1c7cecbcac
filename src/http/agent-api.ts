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

/** GET /v1/status: where the agent is and whether it has work in hand. */
export interface AgentStatus {
  /** As `/readyz`: start-up finished and no stop has begun. */
  readonly ready: boolean;
  /** vigil's version (package.json). */
  readonly version: string;
  /** `agent.mode` the agent started with (a changed mode takes effect at the next restart). */
  readonly mode: "embedded" | "cluster";
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
  /** A document a provider publishes without authentication (`/.well-known/jwks.json`, `/.well-known/ssf-configuration`). */
  publicDocument?(path: string): PublicDocument | undefined;
}
