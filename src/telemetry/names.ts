/**
 * Every metric vigil exports, in one place: name, unit, description, attribute keys and the
 * values an attribute can take where that set is closed.
 *
 * Instrument names are the final Prometheus names (counters already end in `_total`, durations in
 * `_seconds`), so dashboards and the alert rules in `deploy/prometheus/vigil-alerts.yml` read the
 * same series whether Prometheus scrapes `/metrics` or receives them through OTLP. The Prometheus
 * exporter only appends `_total` to monotonic sums that lack it and never appends unit suffixes;
 * `test/telemetry/metrics.test.ts` scrapes the endpoint to keep it that way.
 *
 * Units follow UCUM as OpenTelemetry asks: `s` for seconds, `{thing}` annotations for counts,
 * `1` for dimensionless 0/1 gauges.
 *
 * Attribute values come from configuration (policy and check names) or from the closed sets
 * below, never from subjects, so label cardinality stays bounded by the size of the config.
 */

/** Instrumentation scope name for the meter and the tracer. */
export const SCOPE_NAME = "vigil";

/** One metric's definition. */
export interface MetricDefinition {
  /** Name as it appears in the Prometheus exposition. */
  readonly name: string;
  /** UCUM unit. */
  readonly unit: string;
  /** Becomes the `# HELP` text. */
  readonly description: string;
}

/** Attribute (label) keys. */
export const ATTR = {
  /** Policy name from the configuration. */
  POLICY: "policy",
  /** Check name from the configuration. */
  CHECK: "check",
  /** Check result status: one of `CHECK_STATUSES` in `src/policy/model.ts` (pass, warn, fail, unknown). */
  STATUS: "status",
  /** Short, bounded reason for a check error (e.g. `timeout`, `upstream_transient`, `upstream_permanent`). */
  REASON: "reason",
  /** Access level: full_access, read_only or deny. */
  ACCESS: "access",
  /** Action type from the configuration (e.g. `webhook`). */
  TYPE: "type",
  /** Outcome of an action, signal or reload; see the `*_OUTCOMES` lists. */
  OUTCOME: "outcome",
  /** Queue name. */
  QUEUE: "queue",
  /** Job state within a queue; see `QUEUE_STATES`. */
  STATE: "state",
  /** vigil's version (package.json). */
  VERSION: "version",
  /** Node.js version running vigil (`process.version`). */
  NODE: "node",
  /** Provider entry name from the configuration (`providers.<name>`). */
  PROVIDER: "provider",
  /** An `inventories[]` entry: its index and type, e.g. `0:file`. */
  INVENTORY: "inventory",
  /** Action name from the configuration (an `enforcement.<level>[]` entry's `name`). */
  ACTION: "action",
  /** Where anomaly_detection points came from: `prometheus` or `push`. */
  SOURCE: "source",
  /** SSF transmitter name from the configuration (`signals.ssf.transmitters[].name`), or `unknown`. */
  TRANSMITTER: "transmitter",
  /** What became of a received SET; see `SSF_SET_RESULTS`. */
  RESULT: "result",
} as const;

/** Values of `outcome` on `vigil_audit_checkpoints_total`. */
export const CHECKPOINT_OUTCOMES = ["success", "failure"] as const;
export type CheckpointOutcomeLabel = (typeof CHECKPOINT_OUTCOMES)[number];

/** Values of `outcome` on `vigil_actions_total`. */
export const ACTION_OUTCOMES = ["success", "failed", "retried", "dry_run", "superseded", "skipped"] as const;
export type ActionOutcomeLabel = (typeof ACTION_OUTCOMES)[number];

/** Values of `outcome` on `vigil_signals_total`. */
export const SIGNAL_OUTCOMES = ["accepted", "rejected"] as const;
export type SignalOutcomeLabel = (typeof SIGNAL_OUTCOMES)[number];

/** Values of `outcome` on `vigil_config_reloads_total`. */
export const RELOAD_OUTCOMES = ["success", "failure"] as const;
export type ReloadOutcomeLabel = (typeof RELOAD_OUTCOMES)[number];

/** Values of `state` on `vigil_queue_jobs`. */
export const QUEUE_STATES = ["waiting", "delayed", "active", "failed"] as const;
export type QueueStateLabel = (typeof QUEUE_STATES)[number];

/**
 * Bucket boundaries (seconds) for `vigil_evaluation_duration_seconds`. One evaluation runs every
 * check of a policy for one subject, usually against remote APIs: milliseconds to a minute.
 */
export const EVALUATION_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Bucket boundaries (seconds) for `vigil_signal_to_enforcement_seconds`, 1 ms to 60 s. Dense below
 * 10 ms because the goal is sub-10 ms from an accepted signal to the enforcing action being queued;
 * the tail reaches 60 s so retried or backlogged enforcements still land in a finite bucket.
 */
export const SIGNAL_TO_ENFORCEMENT_BUCKETS: readonly number[] = [
  0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Counter: subjects evaluated (one per subject per evaluation). Attributes: `policy`. */
export const EVALUATIONS: MetricDefinition = {
  name: "vigil_evaluations_total",
  unit: "{evaluation}",
  description: "Subjects evaluated against a policy, by policy.",
};

/** Histogram: wall time of one evaluation (one subject, or one batch of subjects), in seconds. Attributes: `policy`. */
export const EVALUATION_DURATION: MetricDefinition = {
  name: "vigil_evaluation_duration_seconds",
  unit: "s",
  description: "Time taken by one evaluation against a policy (a subject or a batch of subjects), in seconds.",
};

/** Counter: check results. Attributes: `check`, `status`. */
export const CHECK_RESULTS: MetricDefinition = {
  name: "vigil_check_results_total",
  unit: "{result}",
  description: "Check results, by check and status (pass, warn, fail, unknown).",
};

/** Counter: checks that could not produce a result. Attributes: `check`, `reason`. */
export const CHECK_ERRORS: MetricDefinition = {
  name: "vigil_check_errors_total",
  unit: "{error}",
  description: "Checks that failed to run, by check and reason.",
};

/** Counter: decisions whose access level changed. Attributes: `policy`, `access` (the new level). */
export const DECISION_CHANGES: MetricDefinition = {
  name: "vigil_decision_changes_total",
  unit: "{change}",
  description: "Access decision changes, by policy and new access level.",
};

/** Counter: enforcement actions. Attributes: `type`, `outcome` (one of `ACTION_OUTCOMES`). */
export const ACTIONS: MetricDefinition = {
  name: "vigil_actions_total",
  unit: "{action}",
  description: "Enforcement actions, by action type and outcome (success, failed, retried, dry_run, superseded, skipped).",
};

/** Counter: pushed signals. Attributes: `check`, `outcome` (one of `SIGNAL_OUTCOMES`). */
export const SIGNALS: MetricDefinition = {
  name: "vigil_signals_total",
  unit: "{signal}",
  description: "Signals received, by check and outcome (accepted, rejected).",
};

/** Histogram: accepted signal to enforcing action, in seconds. No attributes. */
export const SIGNAL_TO_ENFORCEMENT: MetricDefinition = {
  name: "vigil_signal_to_enforcement_seconds",
  unit: "s",
  description: "Time from an accepted signal to the resulting enforcement action, in seconds.",
};

/** Counter: times enforcement of a policy was paused. Attributes: `policy`. */
export const ENFORCEMENT_PAUSED_EVENTS: MetricDefinition = {
  name: "vigil_enforcement_paused_total",
  unit: "{pause}",
  description: "Times enforcement was paused, by policy.",
};

/** Observable gauge: jobs per queue and state. Attributes: `queue`, `state` (one of `QUEUE_STATES`). */
export const QUEUE_JOBS: MetricDefinition = {
  name: "vigil_queue_jobs",
  unit: "{job}",
  description: "Jobs in each queue, by queue and state (waiting, delayed, active, failed).",
};

/** Observable gauge: known subjects per policy and current access level. Attributes: `policy`, `access`. */
export const SUBJECTS: MetricDefinition = {
  name: "vigil_subjects",
  unit: "{subject}",
  description: "Subjects under each policy, by current access level.",
};

/** Observable gauge: 1 while enforcement of a policy is paused, else 0. Attributes: `policy`. */
export const ENFORCEMENT_PAUSED: MetricDefinition = {
  name: "vigil_enforcement_paused",
  unit: "1",
  description: "1 while enforcement of the policy is paused, 0 otherwise.",
};

/** Observable gauge: 1 while a provider's circuit breaker keeps calls away from its API, else 0. Attributes: `provider`. */
export const PROVIDER_CIRCUIT_OPEN: MetricDefinition = {
  name: "vigil_provider_circuit_open",
  unit: "1",
  description: "1 while the provider's circuit breaker is open (its API failed repeatedly and is left alone), 0 otherwise.",
};

/**
 * Observable gauge: enforcement the queue gave up on (attempts used up, or a permanent error) that is
 * still wanted and not achieved; vigil keeps re-driving it. Attributes: `policy`, `action`.
 */
export const ENFORCEMENT_UNRECONCILED: MetricDefinition = {
  name: "vigil_enforcement_unreconciled",
  unit: "{action}",
  description: "Decided enforcement actions whose attempts ran out and that are not in effect yet (vigil keeps re-driving them), by policy and action.",
};

/** Observable gauge: how long the oldest unreconciled enforcement has been failing, in seconds (0 when none). No attributes. */
export const ENFORCEMENT_UNRECONCILED_OLDEST: MetricDefinition = {
  name: "vigil_enforcement_unreconciled_oldest_seconds",
  unit: "s",
  description: "Seconds since the oldest unreconciled enforcement action first ran out of attempts; 0 when none is unreconciled.",
};

/** Counter: configuration reloads. Attributes: `outcome` (one of `RELOAD_OUTCOMES`). */
export const CONFIG_RELOADS: MetricDefinition = {
  name: "vigil_config_reloads_total",
  unit: "{reload}",
  description: "Configuration reloads, by outcome (success, failure).",
};

/** Observable gauge, always 1: build information. Attributes: `version`, `node`. */
export const BUILD_INFO: MetricDefinition = {
  name: "vigil_build_info",
  unit: "1",
  description: "Always 1; labels carry the vigil and Node.js versions.",
};

/** Gauge: a certificate's notAfter as a Unix timestamp. Attributes: `subject`, `serial` (bounded by the inventory). */
export const CERT_NOT_AFTER: MetricDefinition = {
  name: "vigil_certificate_not_after_timestamp_seconds",
  unit: "s",
  description: "The notAfter of each subject's certificate, as a Unix timestamp, by subject and serial.",
};

/** Gauge: seconds until a certificate expires (negative once expired). Attributes: `subject`, `serial`. */
export const CERT_EXPIRY: MetricDefinition = {
  name: "vigil_certificate_expiry_seconds",
  unit: "s",
  description: "Seconds until each subject's certificate expires (negative once expired), by subject and serial.",
};

/** Gauge: 1 revoked, 0 good, -1 unknown or not checked. Attributes: `subject`, `serial`. */
export const CERT_REVOKED: MetricDefinition = {
  name: "vigil_certificate_revoked",
  unit: "1",
  description: "Revocation status of each subject's certificate: 1 revoked, 0 good, -1 unknown or not checked.",
};

/** Counter: certificate checks that did not pass, by reason code. */
export const CERT_CHECK_ERRORS: MetricDefinition = {
  name: "vigil_certificate_check_errors_total",
  unit: "{check}",
  description: "certificate_validity results that were fail or unknown, by reason code.",
};

/** Counter: pushed result streams dropped because a (subject, check) had more than `agent.store.max_streams_per_check`. Attributes: `check`. */
export const RESULT_STREAMS_DROPPED: MetricDefinition = {
  name: "vigil_result_streams_dropped_total",
  unit: "{result}",
  description: "Pushed result streams dropped (oldest first) because one subject and check had more than agent.store.max_streams_per_check, by check.",
};

/** Counter: check results pruned after expiring longer ago than `agent.store.keep_expired`. No attributes. */
export const RESULTS_PRUNED: MetricDefinition = {
  name: "vigil_results_pruned_total",
  unit: "{result}",
  description: "Stored check results removed because they expired longer ago than agent.store.keep_expired.",
};

/** Counter: inventory listings that failed (the last good list stood in). Attributes: `inventory`. */
export const INVENTORY_ERRORS: MetricDefinition = {
  name: "vigil_inventory_errors_total",
  unit: "{error}",
  description: "Inventory listings that failed, by inventory; the inventory's last good subject list stays in use.",
};

/** Observable gauge: 1 while an inventory has never loaded or its last listing failed, else 0. Attributes: `inventory`. */
export const INVENTORY_STALE: MetricDefinition = {
  name: "vigil_inventory_stale",
  unit: "1",
  description: "1 while the inventory has never loaded or its last listing failed (its last good list is in use), 0 otherwise.",
};

/** Counter: audit head checkpoints shipped to the external sink. Attributes: `outcome` (one of `CHECKPOINT_OUTCOMES`). */
export const AUDIT_CHECKPOINTS: MetricDefinition = {
  name: "vigil_audit_checkpoints_total",
  unit: "{checkpoint}",
  description: "Signed audit head checkpoints sent to agent.audit.checkpoint, by outcome (success, failure).",
};

/**
 * Values of `result` on `vigil_ssf_sets_total`: what was done with a valid SET, or the RFC 8935 error
 * code it was refused with (`unavailable`: the transmitter's keys could not be fetched, answered 503).
 */
export const SSF_SET_RESULTS = [
  "accepted",
  "unmatched",
  "ignored",
  "discarded",
  "duplicate",
  "verification",
  "stream_updated",
  "unavailable",
  "invalid_request",
  "invalid_key",
  "invalid_issuer",
  "invalid_audience",
  "authentication_failed",
  "access_denied",
  "invalid_state",
] as const;
export type SsfSetResult = (typeof SSF_SET_RESULTS)[number];

/** Counter: Security Event Tokens received by push or poll. Attributes: `transmitter`, `result` (one of `SSF_SET_RESULTS`). */
export const SSF_SETS: MetricDefinition = {
  name: "vigil_ssf_sets_total",
  unit: "{set}",
  description: "Security Event Tokens received from SSF transmitters, by transmitter and result (accepted, unmatched, ignored, discarded, duplicate, verification, stream_updated, unavailable, or the RFC 8935 error code it was refused with).",
};

/** Observable gauge: 1 while a transmitter's stream is degraded (no metadata or keys, no stream, paused or disabled, verification overdue, polls failing). Attributes: `transmitter`. */
export const SSF_STREAM_DEGRADED: MetricDefinition = {
  name: "vigil_ssf_stream_degraded",
  unit: "1",
  description: "1 while the SSF stream from the transmitter is degraded (metadata or keys unavailable, no stream, paused or disabled, verification overdue, polls failing), 0 otherwise.",
};

/** Observable gauge: 1 while a requested verification event is overdue. Attributes: `transmitter`. */
export const SSF_VERIFICATION_OVERDUE: MetricDefinition = {
  name: "vigil_ssf_verification_overdue",
  unit: "1",
  description: "1 while a verification event vigil requested from the transmitter has not arrived within verification.timeout, 0 otherwise.",
};

/** Observable gauge: when the stream last delivered a verification event, as a Unix timestamp (0 never). Attributes: `transmitter`. */
export const SSF_LAST_VERIFIED: MetricDefinition = {
  name: "vigil_ssf_last_verified_timestamp_seconds",
  unit: "s",
  description: "When the SSF stream from the transmitter last delivered a verification event, as a Unix timestamp (0: never).",
};

/** Metrics the SSF receiver registers when `signals.ssf.transmitters` is configured. */
export const SSF_METRICS: readonly MetricDefinition[] = [SSF_SETS, SSF_STREAM_DEGRADED, SSF_VERIFICATION_OVERDUE, SSF_LAST_VERIFIED];

/** Observable gauge (cluster mode): 1 while this replica's connections to Redis are up. */
export const CLUSTER_REDIS_UP: MetricDefinition = {
  name: "vigil_cluster_redis_up",
  unit: "1",
  description: "Cluster mode: 1 while this replica is connected to the shared Redis, 0 while it is not (it is then not ready and answers signals with 503).",
};

/** Observable gauge (cluster mode): 1 on the replica that holds the leader lease. */
export const CLUSTER_LEADER: MetricDefinition = {
  name: "vigil_cluster_leader",
  unit: "1",
  description: "Cluster mode: 1 on the replica that holds the leader lease (schedules, sweeps), 0 on the others.",
};

/** Observable gauge (cluster mode): jobs this replica is running now. Attributes: `queue`. */
export const QUEUE_JOBS_RUNNING: MetricDefinition = {
  name: "vigil_queue_jobs_running",
  unit: "{job}",
  description: "Cluster mode: jobs this replica is running now, by queue (vigil_queue_jobs counts the whole cluster's).",
};

/** Every metric above, for documentation and tests. */
export const ALL_METRICS: readonly MetricDefinition[] = [
  EVALUATIONS,
  EVALUATION_DURATION,
  CHECK_RESULTS,
  CHECK_ERRORS,
  DECISION_CHANGES,
  ACTIONS,
  SIGNALS,
  SIGNAL_TO_ENFORCEMENT,
  ENFORCEMENT_PAUSED_EVENTS,
  QUEUE_JOBS,
  SUBJECTS,
  ENFORCEMENT_PAUSED,
  PROVIDER_CIRCUIT_OPEN,
  ENFORCEMENT_UNRECONCILED,
  ENFORCEMENT_UNRECONCILED_OLDEST,
  CONFIG_RELOADS,
  BUILD_INFO,
  RESULT_STREAMS_DROPPED,
  RESULTS_PRUNED,
  INVENTORY_ERRORS,
  INVENTORY_STALE,
  AUDIT_CHECKPOINTS,
];

/** Values of `reason` on `vigil_anomaly_points_skipped_total`. */
export const ANOMALY_SKIP_REASONS = ["non_finite", "out_of_order", "missing", "series_cap"] as const;

/** Counter: points fed to the anomaly detectors. Attributes: `check`, `source` (`prometheus`, `push`). */
export const ANOMALY_POINTS: MetricDefinition = {
  name: "vigil_anomaly_points_total",
  unit: "{point}",
  description: "Points scored by the anomaly_detection detectors, by check and source (prometheus, push).",
};

/** Counter: points not scored. Attributes: `check`, `reason` (one of `ANOMALY_SKIP_REASONS`). */
export const ANOMALY_POINTS_SKIPPED: MetricDefinition = {
  name: "vigil_anomaly_points_skipped_total",
  unit: "{point}",
  description:
    "Points anomaly_detection skipped, by check and reason (non_finite: NaN or infinite; out_of_order: not after the series' last point, e.g. re-sent; missing: a series without its point at a step; series_cap: a series beyond max_series_per_subject or max_series).",
};

/** Observable gauge: series whose detectors are in memory. Attributes: `check`. */
export const ANOMALY_SERIES: MetricDefinition = {
  name: "vigil_anomaly_series",
  unit: "{series}",
  description: "Series anomaly_detection holds a detector for in memory, by check.",
};

/** Counter: bytes of detector state written to the state store. Attributes: `check`. */
export const ANOMALY_STATE_WRITTEN: MetricDefinition = {
  name: "vigil_anomaly_state_written_bytes_total",
  unit: "By",
  description: "Bytes of learned detector state anomaly_detection wrote to the state store, by check.",
};

/** Metrics the anomaly_detection check registers when it watches series. */
export const ANOMALY_METRICS: readonly MetricDefinition[] = [ANOMALY_POINTS, ANOMALY_POINTS_SKIPPED, ANOMALY_SERIES, ANOMALY_STATE_WRITTEN];
/** Metrics only cluster mode reports. */
export const CLUSTER_METRICS: readonly MetricDefinition[] = [CLUSTER_REDIS_UP, CLUSTER_LEADER, QUEUE_JOBS_RUNNING];

/** Metrics the certificate_validity check registers when it is configured. */
export const CERTIFICATE_METRICS: readonly MetricDefinition[] = [CERT_NOT_AFTER, CERT_EXPIRY, CERT_REVOKED, CERT_CHECK_ERRORS];
