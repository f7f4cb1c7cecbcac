import type { Meter } from "@opentelemetry/api";
import { CERT_CHECK_ERRORS, CERT_EXPIRY, CERT_NOT_AFTER, CERT_REVOKED } from "../../telemetry/names.ts";

interface Observed {
  serial: string;
  notAfterMs: number;
  revoked: number;
  seenAt: number;
}

/**
 * Per-certificate gauges so an alert can fire before an outage. Labelled by subject and serial,
 * one series per subject: a subject that has not been checked for a while (it left the inventory
 * or its policy) is dropped, so the set never outgrows the inventory.
 */
export class CertificateMetrics {
  readonly #current = new Map<string, Observed>();
  readonly #errors;

  constructor(meter: Meter) {
    this.#errors = meter.createCounter(CERT_CHECK_ERRORS.name, { description: CERT_CHECK_ERRORS.description, unit: CERT_CHECK_ERRORS.unit });
    const gauge = (def: typeof CERT_EXPIRY, value: (o: Observed, nowS: number) => number) =>
      meter.createObservableGauge(def.name, { description: def.description, unit: def.unit }).addCallback((r) => {
        const nowS = Date.now() / 1000;
        for (const [subject, o] of this.#current) r.observe(value(o, nowS), { subject, serial: o.serial });
      });
    gauge(CERT_NOT_AFTER, (o) => Math.floor(o.notAfterMs / 1000));
    gauge(CERT_EXPIRY, (o, nowS) => Math.floor(o.notAfterMs / 1000 - nowS));
    gauge(CERT_REVOKED, (o) => o.revoked);
  }

  observe(subject: string, serial: string, notAfterMs: number, now: number, revocation: string): void {
    this.#current.set(subject, { serial, notAfterMs, revoked: revocation === "revoked" ? 1 : revocation === "good" ? 0 : -1, seenAt: now });
  }

  /** The subject has no certificate to report (source gone): no stale series. */
  forget(subject: string): void {
    this.#current.delete(subject);
  }

  error(reason: string): void {
    this.#errors.add(1, { reason });
  }

  /**
   * Drops subjects not checked since `before`. Runs are per policy and batch, so a run's own
   * subjects are not the whole set; age is what tells a subject that is gone.
   */
  prune(before: number): void {
    for (const [s, o] of this.#current) if (o.seenAt < before) this.#current.delete(s);
  }
}
