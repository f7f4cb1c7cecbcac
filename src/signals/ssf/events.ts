/**
 * The event types a Shared Signals receiver meets: the SSF stream events, CAEP 1.0 and RISC 1.0,
 * by the short name the config uses and the URI a SET carries.
 */

export const SSF_EVENT_BASE = "https://schemas.openid.net/secevent/ssf/event-type/";
export const CAEP_EVENT_BASE = "https://schemas.openid.net/secevent/caep/event-type/";
export const RISC_EVENT_BASE = "https://schemas.openid.net/secevent/risc/event-type/";

/** SSF 1.0 §8.1.4: answers a verification request (or arrives unsolicited). */
export const VERIFICATION_EVENT = `${SSF_EVENT_BASE}verification`;
/** SSF 1.0 §8.1.5: the transmitter changed the stream's status on its own. */
export const STREAM_UPDATED_EVENT = `${SSF_EVENT_BASE}stream-updated`;

/** Delivery method URIs (SSF 1.0 §6.1). */
export const PUSH_METHOD = "urn:ietf:rfc:8935";
export const POLL_METHOD = "urn:ietf:rfc:8936";

export const CAEP_EVENTS = [
  "session-revoked",
  "token-claims-change",
  "credential-change",
  "assurance-level-change",
  "device-compliance-change",
  "session-established",
  "session-presented",
  "risk-level-change",
] as const;

export const RISC_EVENTS = [
  "account-credential-change-required",
  "account-purged",
  "account-disabled",
  "account-enabled",
  "identifier-changed",
  "identifier-recycled",
  "credential-compromise",
  "opt-in",
  "opt-out-initiated",
  "opt-out-cancelled",
  "opt-out-effective",
  "recovery-activated",
  "recovery-information-changed",
  "sessions-revoked",
] as const;

export type CaepEvent = (typeof CAEP_EVENTS)[number];
export type RiscEvent = (typeof RISC_EVENTS)[number];
export type KnownEvent = CaepEvent | RiscEvent;

/** Short name → event type URI, for every CAEP and RISC event. */
export const EVENT_URIS: ReadonlyMap<KnownEvent, string> = new Map<KnownEvent, string>([
  ...CAEP_EVENTS.map((e) => [e, `${CAEP_EVENT_BASE}${e}`] as const),
  ...RISC_EVENTS.map((e) => [e, `${RISC_EVENT_BASE}${e}`] as const),
]);

const BY_URI: ReadonlyMap<string, KnownEvent> = new Map([...EVENT_URIS].map(([name, uri]) => [uri, name]));

/** The short name of a CAEP or RISC event type URI; undefined for any other URI. */
export function eventName(uri: string): KnownEvent | undefined {
  return BY_URI.get(uri);
}

/** The URI of a configured event: a short name (`session-revoked`) or a URI as given. */
export function eventUri(nameOrUri: string): string {
  return EVENT_URIS.get(nameOrUri as KnownEvent) ?? nameOrUri;
}

/** A configured event name is either a CAEP/RISC short name or an absolute URI. */
export function isEventReference(value: string): boolean {
  return EVENT_URIS.has(value as KnownEvent) || /^[A-Za-z][A-Za-z0-9+.-]*:\S{1,2000}$/.test(value);
}

/** The CAEP/RISC short name of a configured event (a short name or a URI); undefined for other events. */
export function knownEvent(nameOrUri: string): KnownEvent | undefined {
  return EVENT_URIS.has(nameOrUri as KnownEvent) ? (nameOrUri as KnownEvent) : eventName(nameOrUri);
}
