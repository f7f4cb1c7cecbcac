/**
 * `caep:transmit`: one signed CAEP 1.0 Security Event Token per receiver per change of access,
 * pushed per RFC 8935. Each receiver is its own step: a receiver that fails does not hold the
 * others back, and a retry only pushes to the receivers that have not acknowledged yet.
 */
import { UpstreamError, isTransient, VigilError } from "../../errors.ts";
import type { Action, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { CaepClient } from "./client.ts";
import { eventClaims, eventTypeUri, REVERSIBLE_EVENTS } from "./events.ts";
import { setClaims, type SetClaims, type SetHeader } from "./set.ts";
import { subjectIdentifier, type SubjectIdentifier } from "./subject.ts";
import { transmitConfigSchema, type TransmitConfig } from "./transmit-config.ts";

/** A planned push, with the SET shown decoded next to the body (the exact bytes, the signature masked). */
export type PlannedSet = PlannedCall & { readonly set: { readonly header: SetHeader; readonly claims: SetClaims } };

interface Push {
  readonly receiver: string;
  readonly jti: string;
  readonly header: SetHeader;
  readonly claims: SetClaims;
  readonly call: ApiCall;
}

function shownSubject(id: SubjectIdentifier): string {
  const { format, ...rest } = id;
  return `${format}:${Object.values(rest).join("/")}`;
}

/** The error to raise for failed receivers: transient when any can still succeed, so the job is retried for them. */
function failure(failures: readonly { receiver: string; error: unknown }[]): unknown {
  const transient = failures.filter((f) => isTransient(f.error));
  const relevant = transient.length > 0 ? transient : failures;
  if (relevant.length === 1) return relevant[0]!.error;
  const hints = relevant.map((f) => (f.error instanceof UpstreamError ? f.error.retryAfterMs : undefined)).filter((h): h is number => h !== undefined);
  return new UpstreamError(transient.length > 0, `caep: ${relevant.length} receivers failed: ${relevant.map((f) => (f.error instanceof Error ? f.error.message : String(f.error))).join("; ")}`, {
    ...(hints.length > 0 ? { retryAfterMs: Math.max(...hints) } : {}),
    cause: relevant[0]!.error,
    details: { receivers: Object.fromEntries(relevant.map((f) => [f.receiver, f.error instanceof UpstreamError ? (f.error.status ?? "failed") : "failed"])) },
  });
}

export const transmitAction: ActionFactory<TransmitConfig> = {
  type: "caep:transmit",
  description:
    "Send a signed CAEP 1.0 event (session-revoked, assurance-level-change, device-compliance-change, credential-change, risk-level-change) to SSF receivers by RFC 8935 push; revert sends the reverse event where one exists.",
  requiredPermissions: [
    "receiver: the transmitter registered with it (issuer + jwks_uri, or <issuer>/.well-known/ssf-configuration) and the event type enabled",
    "receiver: the push credential it requires, sent as the Authorization header (when it requires one)",
    "network: egress to each receiver endpoint over https; receivers reach <issuer>/.well-known/* on the agent's API listener",
  ],
  example: { type: "caep:transmit", event: "session-revoked", receivers: ["idp"], reason_admin: "Device no longer compliant" },
  configSchema: transmitConfigSchema,
  revertible: true,
  provider: "caep",
  create(config, ctx): Action {
    const client = ctx.provider;
    if (!(client instanceof CaepClient)) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", "caep:transmit needs a caep provider (providers.caep)");
    const targets = config.receivers ?? [...client.receivers.keys()];
    for (const name of targets) {
      if (!client.receivers.has(name)) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `caep:transmit: providers.${client.name} has no receiver "${name}"; known: ${[...client.receivers.keys()].join(", ")}`);
    }
    const eventUri = eventTypeUri(config.event);

    /** Every SET of the request, built before anything is sent: a subject without an identifier fails the job whole. */
    const build = (req: ActionRequest): Push[] => {
      const event = eventClaims(config, req);
      return targets.map((name) => {
        const receiver = client.receivers.get(name)!;
        const subId = subjectIdentifier(receiver.subject, req.subject, name);
        const claims = setClaims({ issuer: client.issuer, receiver: name, audience: client.audience(receiver), subId, eventUri, event, req });
        const { header, jws } = client.sign(claims);
        const summary = `push ${config.event} (${req.operation}) SET ${claims.jti} about ${shownSubject(subId)} to receiver ${name}`;
        return { receiver: name, jti: claims.jti, header, claims, call: client.pushCall(receiver, jws, summary) };
      });
    };

    const plan = (req: ActionRequest): PlannedSet[] => {
      if (req.operation === "revert" && !REVERSIBLE_EVENTS.has(config.event)) return [];
      // Receivers that already answered for a jti are not pushed to again.
      return build(req)
        .filter((p) => client.delivery(p.jti) === undefined)
        .map((p) => ({ ...client.describe(p.call), set: { header: p.header, claims: p.claims } }));
    };

    const deliver = async (req: ActionRequest): Promise<ActionOutcome> => {
      const pushes = build(req);
      const receivers: Record<string, { status: number; jti: string; earlier?: true }> = {};
      const failures: { receiver: string; error: unknown }[] = [];
      for (const p of pushes) {
        try {
          const { status, earlier } = await client.push(p.receiver, p.jti, p.call, req.signal);
          receivers[p.receiver] = { status, jti: p.jti, ...(earlier ? { earlier: true as const } : {}) };
        } catch (error) {
          failures.push({ receiver: p.receiver, error });
        }
      }
      if (failures.length > 0) throw failure(failures);
      // RFC 8935 §2.2: 202 means the receiver validated the SET; other 2xx answers say less.
      return { verified: pushes.every((p) => receivers[p.receiver]!.status === 202), detail: { event: config.event, operation: req.operation, receivers } };
    };

    return REVERSIBLE_EVENTS.has(config.event) ? { plan, apply: deliver, revert: deliver } : { plan, apply: deliver };
  },
};
