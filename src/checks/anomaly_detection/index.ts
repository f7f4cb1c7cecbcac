/**
 * anomaly_detection: does any of a subject's metric series (request rate, error rate, bytes out,
 * auth failures — whatever the PromQL says, or what is pushed to `POST /v1/observations`) behave
 * unlike what its detector has learned? Streaming detectors (`detectors/`) learn each series online;
 * a point scoring at or above `warn_at`/`fail_at` makes the subject `warn`/`fail` for the ttl.
 *
 * gather (`watcher.ts`, `feed.ts`: Prometheus on a grid of `step`, history on first sight) → learn
 * (`series.ts`: one detector per series, state in the state store) → evaluate (`evaluate.ts`: pure).
 * Without `series` the check is push-only: anomalies arrive as signals (Alertmanager, the API).
 */
import type { Check, CheckFactory } from "../../plugin/check.ts";
import { anomalyConfigSchema, type AnomalyConfig } from "./config.ts";
import { ANOMALY_REASONS } from "./evaluate.ts";

export { anomalyConfigSchema, type AnomalyConfig } from "./config.ts";
export { ANOMALY_REASONS } from "./evaluate.ts";

const REASON_DOCS: Record<(typeof ANOMALY_REASONS)[keyof typeof ANOMALY_REASONS], string> = {
  ANOMALY_DETECTED: "A series scored at or above fail_at within the ttl.",
  ANOMALY_SUSPECTED: "A series scored at or above warn_at (below fail_at) within the ttl.",
  ANOMALY_NO_DATA: "No series of the subject has a recent point (no_data: unknown).",
  ANOMALY_SOURCE_UNAVAILABLE: "Prometheus could not be read: down, slow, an error or a malformed answer.",
  ANOMALY_SUBJECT_FIELD_MISSING: "A query or match needs a subject field the subject lacks, or one PromQL cannot hold safely.",
};

export const anomalyDetectionCheck: CheckFactory<AnomalyConfig> = {
  type: "anomaly_detection",
  description: "Streaming anomaly detection on each subject's metric series, from Prometheus or pushed observations; push-only (signals) without series.",
  configSchema: anomalyConfigSchema,
  reasons: Object.values(ANOMALY_REASONS).map((code) => ({ code, doc: REASON_DOCS[code] })),
  pulls: (config) => config.series !== undefined && config.series.length > 0,
  create(config, ctx): Check {
    // The running half (detectors, Prometheus client, state codec) loads only when a config watches series.
    const impl = import("./check.ts").then((m) => m.createAnomalyCheck(config, ctx));
    impl.catch(() => undefined);
    const pushed = new Set((config.series ?? []).filter((s) => s.push).map((s) => s.name));
    return {
      run: async (subjects, run) => (await impl).run(subjects, run),
      takesSeries: (series) => pushed.has(series.includes("{") ? series.slice(0, series.indexOf("{")) : series),
      observe: async (batch, octx) => (await impl).observe(batch, octx),
      stop: async () => (await impl).stop?.(),
    };
  },
};
