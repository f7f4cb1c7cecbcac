/**
 * The CAEP 1.0 event object of a SET, per event type and operation. `apply` reports the change the
 * decision made; `revert` reports the way back for the events that have one.
 */
import type { ActionRequest } from "../../plugin/action.ts";
import type { SubjectKind } from "../../policy/model.ts";
import type { CaepEventName, TransmitConfig } from "./transmit-config.ts";

export const CAEP_EVENT_TYPE_BASE = "https://schemas.openid.net/secevent/caep/event-type/";

/** The event type URI, the single key of the SET's `events` claim. */
export function eventTypeUri(event: CaepEventName): string {
  return `${CAEP_EVENT_TYPE_BASE}${event}`;
}

/**
 * Events with a natural way back, sent again reversed on revert: compliance restored, risk lowered,
 * assurance raised. A revoked session or a revoked credential stays revoked, so those have none.
 */
export const REVERSIBLE_EVENTS: ReadonlySet<CaepEventName> = new Set<CaepEventName>(["device-compliance-change", "risk-level-change", "assurance-level-change"]);

const PRINCIPALS: Readonly<Record<SubjectKind, string>> = {
  user: "USER",
  // SSF counts robotic principals among users; there is no separate workload principal.
  workload: "USER",
  device: "DEVICE",
  session: "SESSION",
};

type Localized = string | Readonly<Record<string, string>>;

function localized(value: Localized): Record<string, string> {
  return typeof value === "string" ? { en: value } : { ...value };
}

/** The default `reason_admin`: the decision's reason codes, which are stable and free of personal data. */
export function defaultReasonAdmin(req: ActionRequest): string {
  const codes = req.decision.reasons.map((r) => r.code);
  return codes.length > 0 ? `vigil policy ${req.decision.policy}: ${codes.join(", ")}` : `vigil policy ${req.decision.policy}: access ${req.decision.access}`;
}

/** The event object (the value under the event type URI). */
export function eventClaims(config: TransmitConfig, req: ActionRequest): Record<string, unknown> {
  const reverse = req.operation === "revert";
  const optional = {
    event_timestamp: Math.floor(req.decision.decided_at / 1000),
    initiating_entity: "policy",
    reason_admin: localized(config.reason_admin ?? defaultReasonAdmin(req)),
    ...(config.reason_user === undefined ? {} : { reason_user: localized(config.reason_user) }),
  };
  switch (config.event) {
    case "session-revoked":
      return optional;
    case "credential-change":
      return { credential_type: config.credential_type, change_type: config.change_type, ...optional };
    case "assurance-level-change": {
      const opposite = config.change_direction === "decrease" ? "increase" : "decrease";
      return {
        namespace: config.namespace,
        current_level: reverse ? config.previous_level : config.current_level,
        previous_level: reverse ? config.current_level : config.previous_level,
        change_direction: reverse ? opposite : config.change_direction,
        ...optional,
      };
    }
    case "device-compliance-change":
      return { current_status: reverse ? "compliant" : "not-compliant", previous_status: reverse ? "not-compliant" : "compliant", ...optional };
    case "risk-level-change": {
      // The request carries only the new decision's risk; without `previous_level` the receiver
      // treats the previous level as unknown (CAEP 1.0 §3.8.1), which is the truth here.
      const reason = req.decision.reasons[0]?.code;
      return {
        principal: config.principal ?? PRINCIPALS[req.subject.kind],
        current_level: req.decision.risk.toUpperCase(),
        ...(reason ? { risk_reason: reason } : {}),
        ...optional,
      };
    }
  }
}
