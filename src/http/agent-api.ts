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

export interface SubjectSummary {
  readonly id: string;
  readonly kind: Subject["kind"];
  readonly identity?: string;
  /** Most restrictive access across the policies covering it. */
  readonly access: AccessLevel;
  readonly policies: readonly { readonly policy: string; readonly access: AccessLevel; readonly risk: RiskLevel; readonly generation: number; readonly decided_at: string }[];
}

export interface SubjectDetail {
  readonly subject: Subject;
  readonly access: AccessLevel;
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
  readAudit(query: AuditQuery): Promise<AuditEntry[]>;
  /** Version, mode, queue depth and whether any work is ready or running; throws VIGIL_ERR_SHUTDOWN before start. */
  status(): Promise<AgentStatus>;
  enforcement(): EnforcementStatus[];
  /** Operator resume of a paused blast-radius guard; all policies when none given. Throws VIGIL_ERR_BAD_REQUEST for an unknown policy. */
  resumeEnforcement(policy?: string): Promise<{ resumed: readonly string[] }>;
  /** A document a provider publishes without authentication (`/.well-known/jwks.json`, `/.well-known/ssf-configuration`). */
  publicDocument?(path: string): PublicDocument | undefined;
}
