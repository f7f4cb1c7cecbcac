/**
 * The receiver's metrics: every SET counted by transmitter and result, and per transmitter the
 * stream's health as gauges read from the receiver's own state at each scrape. Labels are
 * configured names (unknown names in a push URL count as `unknown`) and closed sets.
 */
import type { Meter } from "@opentelemetry/api";
import { ATTR, SSF_LAST_VERIFIED, SSF_SET_RESULTS, SSF_SETS, SSF_STREAM_DEGRADED, SSF_VERIFICATION_OVERDUE, type SsfSetResult } from "../../telemetry/names.ts";

export interface StreamHealthSample {
  readonly transmitter: string;
  readonly degraded: boolean;
  readonly overdue: boolean;
  /** Epoch ms, undefined when never verified. */
  readonly verifiedAt: number | undefined;
}

export interface SsfMetrics {
  set(transmitter: string, result: SsfSetResult): void;
  /** Starts every result series of a transmitter at 0, so the first refusal shows as an increase. */
  declare(transmitter: string): void;
}

export function createSsfMetrics(meter: Meter, health: () => Iterable<StreamHealthSample>): SsfMetrics {
  const sets = meter.createCounter(SSF_SETS.name, { unit: SSF_SETS.unit, description: SSF_SETS.description });
  const gauge = (def: typeof SSF_STREAM_DEGRADED, value: (s: StreamHealthSample) => number) => {
    // A transmitter removed by a reload is observed as 0 from then on: the SDK would otherwise keep exporting its last value.
    const seen = new Set<string>();
    meter.createObservableGauge(def.name, { unit: def.unit, description: def.description }).addCallback((r) => {
      const now = new Set<string>();
      for (const s of health()) {
        now.add(s.transmitter);
        seen.add(s.transmitter);
        r.observe(value(s), { [ATTR.TRANSMITTER]: s.transmitter });
      }
      for (const t of seen) if (!now.has(t)) r.observe(0, { [ATTR.TRANSMITTER]: t });
    });
  };
  gauge(SSF_STREAM_DEGRADED, (s) => (s.degraded ? 1 : 0));
  gauge(SSF_VERIFICATION_OVERDUE, (s) => (s.overdue ? 1 : 0));
  gauge(SSF_LAST_VERIFIED, (s) => (s.verifiedAt === undefined ? 0 : Math.floor(s.verifiedAt / 1000)));
  const declared = new Set<string>();
  return {
    set: (transmitter, result) => sets.add(1, { [ATTR.TRANSMITTER]: transmitter, [ATTR.RESULT]: result }),
    declare(transmitter) {
      if (declared.has(transmitter)) return;
      declared.add(transmitter);
      for (const result of SSF_SET_RESULTS) sets.add(0, { [ATTR.TRANSMITTER]: transmitter, [ATTR.RESULT]: result });
    },
  };
}

export const NOOP_SSF_METRICS: SsfMetrics = { set: () => undefined, declare: () => undefined };
