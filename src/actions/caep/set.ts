/**
 * Security Event Tokens (RFC 8417) as SSF 1.0 profiles them: `iss`, `jti`, `iat`, `aud`, `txn`,
 * `sub_id` and one event; no `sub`, no `exp`. Every claim is derived from the request, so a retry
 * builds the same token and receivers de-duplicate it by `jti`.
 */
import { createHash } from "node:crypto";
import type { ActionRequest } from "../../plugin/action.ts";
import type { SubjectIdentifier } from "./subject.ts";
import type { SigningAlg } from "./keys.ts";

/** The JWS protected header of a SET. */
export interface SetHeader {
  readonly alg: SigningAlg;
  readonly kid: string;
  readonly typ: "secevent+jwt";
}

export interface SetClaims {
  readonly iss: string;
  readonly jti: string;
  readonly iat: number;
  readonly aud: string | readonly string[];
  readonly txn: string;
  readonly sub_id: SubjectIdentifier;
  readonly events: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** A UUID-shaped (version 8, RFC 9562) digest of `parts`: stable, and accepted wherever a UUID jti is expected. */
export function hashUuid(...parts: readonly string[]): string {
  const b = createHash("sha256").update(parts.join("\n")).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `jti`: one per issuer, receiver and job (the idempotency key), the same on every retry. */
export function setJti(issuer: string, receiver: string, idempotencyKey: string): string {
  return hashUuid("vigil caep jti", issuer, receiver, idempotencyKey);
}

/**
 * `txn`: the decision that caused the SET. SSF 1.0 lets SETs of one underlying cause share it, so every
 * receiver, every event type and both apply and revert triggered by one decision carry the same value.
 */
export function setTxn(req: ActionRequest): string {
  return hashUuid("vigil caep txn", req.decision.policy, req.decision.subject, String(req.decision.generation));
}

export function setClaims(opts: {
  readonly issuer: string;
  readonly receiver: string;
  readonly audience: string | readonly string[];
  readonly subId: SubjectIdentifier;
  readonly eventUri: string;
  readonly event: Readonly<Record<string, unknown>>;
  readonly req: ActionRequest;
}): SetClaims {
  return {
    iss: opts.issuer,
    jti: setJti(opts.issuer, opts.receiver, opts.req.idempotency_key),
    iat: Math.floor(opts.req.decision.decided_at / 1000),
    aud: opts.audience,
    txn: setTxn(opts.req),
    sub_id: opts.subId,
    events: { [opts.eventUri]: opts.event },
  };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value), "utf8").toString("base64url");

/** `BASE64URL(header).BASE64URL(claims)`, the JWS signing input. */
export function signingInput(header: SetHeader, claims: SetClaims): string {
  return `${b64(header)}.${b64(claims)}`;
}
