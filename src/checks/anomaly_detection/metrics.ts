/** The metrics of anomaly_detection (names in telemetry/names.ts). Labels: the check's name and closed sets, never subjects or series. */
import type { Counter, Meter, ObservableGauge, ObservableResult } from "@opentelemetry/api";
import { isTransient, UpstreamError } from "../../errors.ts";
import { ANOMALY_POINTS, ANOMALY_POINTS_SKIPPED, ANOMALY_SERIES, ANOMALY_STATE_WRITTEN, ATTR, CHECK_ERRORS, type MetricDefinition } from "../../telemetry/names.ts";
import type { SeriesStats } from "./series.ts";

const counter = (meter: Meter, d: MetricDefinition): Counter => meter.createCounter(d.name, { description: d.description, unit: d.unit });

export class AnomalyMetrics {
  readonly #points: Counter;
  readonly #skipped: Counter;
  readonly #written: Counter;
  readonly #errors: Counter;
  readonly #gauge: ObservableGauge;
  readonly #observe: (r: ObservableResult) => void;

  /** `series()` gives the series held in memory now, for the gauge, by check name. */
  constructor(meter: Meter, series: () => ReadonlyMap<string, number>) {
    this.#points = counter(meter, ANOMALY_POINTS);
    this.#skipped = counter(meter, ANOMALY_POINTS_SKIPPED);
    this.#written = counter(meter, ANOMALY_STATE_WRITTEN);
    // The instrument the engine registers too: one series family whoever counts.
    this.#errors = counter(meter, CHECK_ERRORS);
    this.#gauge = meter.createObservableGauge(ANOMALY_SERIES.name, { description: ANOMALY_SERIES.description, unit: ANOMALY_SERIES.unit });
    this.#observe = (r) => {
      for (const [check, n] of series()) r.observe(n, { [ATTR.CHECK]: check });
    };
    this.#gauge.addCallback(this.#observe);
  }

  add(check: string, source: "prometheus" | "push", s: SeriesStats): void {
    const c = { [ATTR.CHECK]: check };
    if (s.scored > 0) this.#points.add(s.scored, { ...c, [ATTR.SOURCE]: source });
    if (s.nonFinite > 0) this.#skipped.add(s.nonFinite, { ...c, [ATTR.REASON]: "non_finite" });
    if (s.outOfOrder > 0) this.#skipped.add(s.outOfOrder, { ...c, [ATTR.REASON]: "out_of_order" });
    if (s.missing > 0) this.#skipped.add(s.missing, { ...c, [ATTR.REASON]: "missing" });
    if (s.dropped > 0) this.#skipped.add(s.dropped, { ...c, [ATTR.REASON]: "series_cap" });
    if (s.bytesWritten > 0) this.#written.add(s.bytesWritten, c);
  }

  /** A source failure: counted once per run and failing series definition. */
  sourceError(check: string, err: unknown): void {
    this.#errors.add(1, { [ATTR.CHECK]: check, [ATTR.REASON]: errorReason(err) });
  }

  stop(): void {
    this.#gauge.removeCallback(this.#observe);
  }
}

/** `timeout`, `malformed`, `too_large`, `upstream_transient`, `upstream_permanent` or `error`. */
function errorReason(err: unknown): string {
  if (err instanceof UpstreamError) {
    if ((err.details as { malformed?: boolean }).malformed) return "malformed";
    if (/larger than \d+ bytes/.test(err.message)) return "too_large";
    if (/timed out|aborted/.test(err.message)) return "timeout";
    return err.transient ? "upstream_transient" : "upstream_permanent";
  }
  return isTransient(err) ? "upstream_transient" : "error";
}
