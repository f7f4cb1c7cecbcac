/**
 * What a CAEP or RISC event means to vigil: which check's result it sets, to which status and for
 * how long, with the event's own words (`reason_admin`, `initiating_entity`, `event_timestamp`, …)
 * kept as evidence. Pure, so the table in docs/signals.md is table-tested.
 *
 * Each result goes to a stream named after the transmitter and the event's group: a device
 * becoming compliant again clears the earlier `not-compliant` of the same transmitter, while a
 * session revocation and a risk level stand side by side (the worst current result counts).
 */
import type { CheckStatus, RiskLevel } from "../../policy/model.ts";
import { scrubAndCut } from "../../util/redact.ts";
import { own } from "../../util/own.ts";
import type { KnownEvent } from "./events.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The check, stream group and lifetime of an event type's results. */
export interface EventRule {
  readonly check: string;
  /** Stream group: results of one group replace each other; different groups stand side by side. */
  readonly group: string;
  readonly ttl_ms: number;
}

/**
 * The built-in table. Events describing a state (compliance, risk, an account) stand for a week
 * unless the transmitter says otherwise sooner; one-off incidents (a revoked session, changed token
 * claims) for an hour, long enough for the re-authentication they call for.
 */
export const EVENT_RULES: Readonly<Partial<Record<KnownEvent, EventRule>>> = {
  "session-revoked": { check: "session_state", group: "session", ttl_ms: HOUR },
  "session-established": { check: "session_state", group: "session", ttl_ms: HOUR },
  "session-presented": { check: "session_state", group: "session", ttl_ms: HOUR },
  "sessions-revoked": { check: "session_state", group: "session", ttl_ms: HOUR },
  "credential-change": { check: "credential_state", group: "credential", ttl_ms: 7 * DAY },
  "account-credential-change-required": { check: "credential_state", group: "credential-change-required", ttl_ms: DAY },
  "token-claims-change": { check: "token_claims", group: "token-claims", ttl_ms: HOUR },
  "assurance-level-change": { check: "assurance_level", group: "assurance", ttl_ms: 7 * DAY },
  "device-compliance-change": { check: "device_compliance", group: "device-compliance", ttl_ms: 7 * DAY },
  "risk-level-change": { check: "user_risk_score", group: "risk", ttl_ms: 7 * DAY },
  "credential-compromise": { check: "user_risk_score", group: "credential-compromise", ttl_ms: 7 * DAY },
  "account-disabled": { check: "account_state", group: "account", ttl_ms: 7 * DAY },
  "account-enabled": { check: "account_state", group: "account", ttl_ms: 7 * DAY },
  "account-purged": { check: "account_state", group: "account", ttl_ms: 7 * DAY },
  "identifier-changed": { check: "account_state", group: "identifier-changed", ttl_ms: DAY },
};

/** The events vigil maps by default, in the order the docs list them; the rest are recorded and ignored. */
export const MAPPED_EVENTS: readonly KnownEvent[] = Object.keys(EVENT_RULES) as KnownEvent[];

/** `transmitters[].overrides.<event>`: another check, status or lifetime for one event type. */
export interface EventOverride {
  readonly check?: string;
  readonly status?: Exclude<CheckStatus, "unknown">;
  readonly risk?: RiskLevel;
  readonly ttl_ms?: number;
}

/** One event turned into a result, before it is bound to subjects. */
export interface MappedEvent {
  readonly check: string;
  readonly status: Exclude<CheckStatus, "unknown">;
  readonly risk: RiskLevel;
  readonly ttl_ms: number;
  /** The stream group (`session`, `credential:x509`, …). */
  readonly group: string;
  /** One line for humans: what happened, who started it, and the transmitter's reason. */
  readonly reason: string;
  readonly evidence: Readonly<Record<string, unknown>>;
}

/** The event payload does not conform to its definition (RFC 8935 `invalid_request`). */
export class EventPayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EventPayloadError";
  }
}

export type MapOutcome = { readonly kind: "mapped"; readonly event: MappedEvent } | { readonly kind: "ignored"; readonly reason: string };

const RISK_BY_STATUS: Readonly<Record<Exclude<CheckStatus, "unknown">, RiskLevel>> = { pass: "low", warn: "medium", fail: "high" };
const INITIATORS = new Set(["admin", "user", "policy", "system"]);
const LANG_RE = /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/;
const MAX_TEXT = 256;
const MAX_LANGUAGES = 8;
const MAX_CLAIMS = 16;

type Payload = Readonly<Record<string, unknown>>;

/**
 * Maps one event. `name` is the CAEP/RISC short name, or undefined for any other event type (which
 * only an override with a check and a status maps). Throws `EventPayloadError` when a member vigil
 * acts on is missing or outside its definition.
 */
export function mapEvent(transmitter: string, name: KnownEvent | undefined, uri: string, payload: Payload, override: EventOverride | undefined): MapOutcome {
  const rule = name === undefined ? undefined : EVENT_RULES[name];
  const label = name ?? uri;
  const common = commonEvidence(payload);
  if (!rule || name === undefined) {
    if (override?.check === undefined || override.status === undefined) {
      return { kind: "ignored", reason: name === undefined ? "unknown event type" : "event type vigil does not act on" };
    }
    const status = override.status;
    return {
      kind: "mapped",
      event: {
        check: override.check,
        status,
        risk: override.risk ?? RISK_BY_STATUS[status],
        ttl_ms: override.ttl_ms ?? HOUR,
        group: groupName(name ?? "event"),
        reason: reasonLine(transmitter, label, "", common),
        evidence: { ...common.evidence },
      },
    };
  }
  const judged = judge(name, payload, common.initiator);
  const status = override?.status ?? judged.status;
  return {
    kind: "mapped",
    event: {
      check: override?.check ?? rule.check,
      status,
      risk: override?.risk ?? (override?.status !== undefined ? RISK_BY_STATUS[status] : judged.risk),
      ttl_ms: override?.ttl_ms ?? rule.ttl_ms,
      group: judged.group ?? rule.group,
      reason: reasonLine(transmitter, label, judged.detail, common),
      evidence: { ...common.evidence, ...judged.evidence },
    },
  };
}

interface Judgement {
  readonly status: Exclude<CheckStatus, "unknown">;
  readonly risk: RiskLevel;
  readonly detail: string;
  readonly group?: string;
  readonly evidence: Record<string, unknown>;
}

const verdict = (status: Exclude<CheckStatus, "unknown">, detail: string, evidence: Record<string, unknown> = {}, group?: string): Judgement => ({
  status,
  risk: RISK_BY_STATUS[status],
  detail,
  evidence,
  ...(group === undefined ? {} : { group }),
});

function judge(name: KnownEvent, p: Payload, initiator: string | undefined): Judgement {
  switch (name) {
    case "session-revoked":
      // The owner signing out ends a session normally; anyone else revoking it is a finding.
      return initiator === "user" ? verdict("pass", "(signed out)") : verdict("fail", "");
    case "sessions-revoked":
      return verdict("fail", "");
    case "session-established":
    case "session-presented":
      return verdict("pass", "", pick(p, ["acr", "ext_id"], { amr: stringList(p.amr) }));
    case "credential-change": {
      const credentialType = requiredText(p, "credential_type");
      const changeType = requiredEnum(p, "change_type", ["create", "revoke", "update", "delete"]);
      const evidence = { credential_type: credentialType, change_type: changeType, ...pick(p, ["friendly_name", "x509_issuer", "x509_serial", "fido2_aaguid"]) };
      const detail = `${changeType} ${credentialType}`;
      // One stream per credential type: a new certificate after a revoked one clears it.
      const group = groupName(`credential:${credentialType}`);
      if (changeType === "revoke") return verdict("fail", detail, evidence, group);
      if (changeType === "delete") return initiator === "user" ? verdict("pass", detail, evidence, group) : verdict("warn", detail, evidence, group);
      return verdict("pass", detail, evidence, group);
    }
    case "account-credential-change-required":
      return verdict("warn", "");
    case "token-claims-change": {
      const claims = p.claims;
      if (claims === null || typeof claims !== "object" || Array.isArray(claims)) throw new EventPayloadError("token-claims-change: claims must be an object");
      return verdict("warn", `(${Object.keys(claims).slice(0, MAX_CLAIMS).map(cut).join(", ")})`, { claims: boundedClaims(claims as Payload) });
    }
    case "assurance-level-change": {
      const namespace = requiredText(p, "namespace");
      const current = requiredText(p, "current_level");
      const direction = optionalEnum(p, "change_direction", ["increase", "decrease"]);
      const evidence = { namespace, current_level: current, ...pick(p, ["previous_level"]), ...(direction ? { change_direction: direction } : {}) };
      const detail = `to ${current} (${namespace})`;
      return direction === "decrease" ? verdict("warn", detail, evidence) : verdict("pass", detail, evidence);
    }
    case "device-compliance-change": {
      const current = requiredEnum(p, "current_status", ["compliant", "not-compliant"]);
      const previous = requiredEnum(p, "previous_status", ["compliant", "not-compliant"]);
      const evidence = { current_status: current, previous_status: previous };
      return current === "compliant" ? verdict("pass", "to compliant", evidence) : verdict("fail", "to not-compliant", evidence);
    }
    case "risk-level-change": {
      const level = requiredEnum(p, "current_level", ["LOW", "MEDIUM", "HIGH"], true);
      const evidence = { current_level: level, ...pick(p, ["previous_level", "principal", "risk_reason"]) };
      const detail = `to ${level}`;
      return level === "HIGH" ? verdict("fail", detail, evidence) : level === "MEDIUM" ? verdict("warn", detail, evidence) : verdict("pass", detail, evidence);
    }
    case "credential-compromise": {
      const credentialType = requiredText(p, "credential_type");
      return verdict("fail", credentialType, { credential_type: credentialType });
    }
    case "account-disabled":
      return verdict("fail", textOf(p.reason) ? `(${textOf(p.reason)})` : "", pick(p, ["reason"]));
    case "account-enabled":
      return verdict("pass", "");
    case "account-purged":
      return verdict("fail", "");
    case "identifier-changed":
      // An e-mail or phone number changing hands is a common step of an account takeover.
      return verdict("warn", "");
    default:
      throw new EventPayloadError(`${name}: no mapping`);
  }
}

interface Common {
  readonly initiator: string | undefined;
  readonly evidence: Record<string, unknown>;
  readonly reasonAdmin: string | undefined;
}

/** The optional CAEP members every event may carry (CAEP 1.0 §2). */
function commonEvidence(p: Payload): Common {
  const evidence: Record<string, unknown> = {};
  const ts = p.event_timestamp;
  if (typeof ts === "number" && Number.isFinite(ts) && ts >= 0 && ts < 1e11) evidence.event_timestamp = new Date(Math.floor(ts) * 1000).toISOString();
  const initiator = typeof p.initiating_entity === "string" && INITIATORS.has(p.initiating_entity) ? p.initiating_entity : undefined;
  if (initiator) evidence.initiating_entity = initiator;
  const admin = localized(p.reason_admin);
  const user = localized(p.reason_user);
  if (admin) evidence.reason_admin = admin;
  if (user) evidence.reason_user = user;
  return { initiator, evidence, reasonAdmin: admin ? (own(admin, "en") ?? Object.values(admin)[0]) : undefined };
}

function reasonLine(transmitter: string, label: string, detail: string, common: Common): string {
  const by = common.initiator ? ` by ${common.initiator}` : "";
  const why = common.reasonAdmin ? `: ${common.reasonAdmin}` : "";
  return scrubAndCut(`${transmitter}: ${label}${detail ? ` ${detail}` : ""}${by}${why}`, 1024);
}

/**
 * CAEP's localizable messages are `{lang: text}` objects; older transmitters (and the SSF draft's
 * examples) send a plain string, taken as English. Bounded in languages and length.
 */
function localized(value: unknown): Record<string, string> | undefined {
  if (typeof value === "string") return value.trim() === "" ? undefined : { en: cut(value, 512) };
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [lang, text] of Object.entries(value as Payload).slice(0, MAX_LANGUAGES)) {
    if (LANG_RE.test(lang) && typeof text === "string" && text.trim() !== "") out[lang] = cut(text, 512);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function cut(text: string, max = MAX_TEXT): string {
  return scrubAndCut(text, max);
}

function textOf(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? cut(value) : undefined;
}

function requiredText(p: Payload, key: string): string {
  const value = p[key];
  if (typeof value !== "string" || value.trim() === "") throw new EventPayloadError(`${key} must be a non-empty string`);
  return cut(value, 128);
}

function requiredEnum<T extends string>(p: Payload, key: string, allowed: readonly T[], upper = false): T {
  const raw = p[key];
  const value = typeof raw === "string" && upper ? raw.toUpperCase() : raw;
  if (typeof value !== "string" || !allowed.includes(value as T)) throw new EventPayloadError(`${key} must be one of ${allowed.join(", ")}`);
  return value as T;
}

function optionalEnum<T extends string>(p: Payload, key: string, allowed: readonly T[]): T | undefined {
  if (p[key] === undefined) return undefined;
  return requiredEnum(p, key, allowed);
}

/** The string members among `keys`, bounded. */
function pick(p: Payload, keys: readonly string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = p[k];
    if (typeof v === "string" && v !== "") out[k] = cut(v);
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out;
}

function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const items = value.filter((v): v is string => typeof v === "string").slice(0, 16).map((v) => cut(v, 64));
  return items.length > 0 ? items : undefined;
}

/** Token claims as evidence: scalar values only, bounded in count and length. */
function boundedClaims(claims: Payload): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims).slice(0, MAX_CLAIMS)) {
    const key = cut(k, 128);
    if (typeof v === "string") out[key] = cut(v);
    else if (typeof v === "number" || typeof v === "boolean" || v === null) out[key] = v;
    else out[key] = "[structured]";
  }
  return out;
}

/** A stream group from transmitter-chosen text: bounded and limited to safe characters. */
export function groupName(text: string): string {
  const safe = text.toLowerCase().replace(/[^a-z0-9_.:-]+/g, "_").slice(0, 64);
  return safe === "" ? "event" : safe;
}
