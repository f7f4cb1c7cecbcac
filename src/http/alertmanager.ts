/**
 * Alertmanager as a signal source: its webhook (payload version 4) turned into check results.
 * A firing alert is a `warn` or `fail` (by severity) for the subject its labels name; a resolved
 * alert is a `pass`. Pure, so the mapping is table-tested; the HTTP route lives in server.ts.
 */
import { z } from "zod";
import type { SignalInput } from "./agent-api.ts";
import { own } from "../util/own.ts";
import { scrubAndCut } from "../util/redact.ts";

/** How alert labels map onto signals (`signals.alertmanager` in the config). */
export interface AlertmanagerMapping {
  /** Label holding the subject id. Default `vigil_subject`. */
  readonly subject_label: string;
  /** Label naming the check. Default `vigil_check`; absent → `default_check`. */
  readonly check_label: string;
  /** Check for alerts without `check_label`. Default `anomaly_detection`. */
  readonly default_check: string;
  /** Label holding the severity. Default `severity`. */
  readonly severity_label: string;
  /** Severity → status of a firing alert; other severities are `fail`. Default warning/info → warn, critical → fail. */
  readonly severities: Readonly<Record<string, "warn" | "fail">>;
  /** How long a firing or resolved result stands (ms). Keep it above Alertmanager's repeat_interval. Default 24h. */
  readonly ttl_ms: number;
}

const alertSchema = z.looseObject({
  status: z.enum(["firing", "resolved"]),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).default({}),
  startsAt: z.string().optional(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
});

/** The webhook body; unknown keys are allowed (Alertmanager adds fields over time). */
export const alertmanagerPayloadSchema = z.looseObject({
  version: z.literal("4"),
  status: z.enum(["firing", "resolved"]),
  receiver: z.string().optional(),
  groupKey: z.string().optional(),
  alerts: z.array(alertSchema).max(1000),
});

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;

export interface MappedAlerts {
  readonly signals: SignalInput[];
  /** Alerts that name no subject, with the reason. */
  readonly skipped: { readonly fingerprint?: string; readonly alertname?: string; readonly reason: string }[];
}

export function alertsToSignals(payload: AlertmanagerPayload, m: AlertmanagerMapping): MappedAlerts {
  const signals: SignalInput[] = [];
  const skipped: MappedAlerts["skipped"] = [];
  for (const alert of payload.alerts) {
    // Labels and severities are the sender's: own properties only, so `constructor` is just an unknown name.
    const label = (name: string): string | undefined => own(alert.labels, name);
    const subject = label(m.subject_label);
    const alertname = label("alertname");
    if (!subject) {
      skipped.push({ ...(alert.fingerprint ? { fingerprint: alert.fingerprint } : {}), ...(alertname ? { alertname } : {}), reason: `no ${m.subject_label} label` });
      continue;
    }
    const severity = label(m.severity_label);
    const status = alert.status === "resolved" ? "pass" : (severity !== undefined ? own(m.severities, severity) : undefined) ?? "fail";
    const summary = own(alert.annotations, "summary") ?? own(alert.annotations, "description");
    signals.push({
      subject,
      check: label(m.check_label) ?? m.default_check,
      status,
      ttl_ms: m.ttl_ms,
      reason: scrubAndCut(`alertmanager: ${alertname ?? "alert"} ${alert.status}${severity ? ` (${severity})` : ""}${summary ? `: ${summary}` : ""}`, 1024),
      source: "alertmanager",
      // One stream per alert: another alert resolving for the same subject must not clear this one.
      stream: `alertmanager:${alert.fingerprint ?? alertname ?? "alert"}`,
    });
  }
  return { signals, skipped };
}
