import type { Counter, Meter } from "@opentelemetry/api";
import { isTransient, UpstreamError } from "../../errors.ts";
import { ATTR, CHECK_ERRORS } from "../../telemetry/names.ts";

/**
 * `vigil_check_errors_total{check,reason}` for source failures: the run still returns a result per
 * subject (unknown for the subjects the source would have spoken about), so the engine does not count
 * them; this does, once per run and failing source. `reason` is a short closed set.
 */
export class SourceErrorMetrics {
  readonly #errors: Counter;

  constructor(meter: Meter) {
    // The same instrument the engine registers: one series family, whoever counts.
    this.#errors = meter.createCounter(CHECK_ERRORS.name, { description: CHECK_ERRORS.description, unit: CHECK_ERRORS.unit });
  }

  count(check: string, err: unknown): void {
    this.#errors.add(1, { [ATTR.CHECK]: check, [ATTR.REASON]: errorReason(err) });
  }
}

/** `timeout`, `malformed`, `too_large`, `upstream_transient`, `upstream_permanent` or `error`. */
export function errorReason(err: unknown): string {
  if (err instanceof UpstreamError) {
    if ((err.details as { malformed?: boolean }).malformed) return "malformed";
    if (/larger than \d+ bytes/.test(err.message)) return "too_large";
    if (/timed out|did not finish within|gave up waiting/.test(err.message)) return "timeout";
    return err.transient ? "upstream_transient" : "upstream_permanent";
  }
  return isTransient(err) ? "upstream_transient" : "error";
}
