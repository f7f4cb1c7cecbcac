/**
 * What the receiver needs from the agent, kept to a few calls so the receiver knows nothing of the
 * engine: recording a signal (durably, with its evaluation queued), the subjects, the audit log, and
 * whether this instance manages a transmitter's stream.
 */
import type { CheckStatus, RiskLevel } from "../../policy/model.ts";
import type { SubjectSource } from "./lookup.ts";

/** A result pushed by an event; the same shape the signals API takes. */
export interface SsfSignal {
  readonly subject: string;
  readonly check: string;
  readonly status: CheckStatus;
  readonly risk?: RiskLevel;
  readonly ttl_ms?: number;
  readonly reason?: string;
  readonly source?: string;
  readonly stream?: string;
  readonly evidence?: Readonly<Record<string, unknown>>;
}

export interface SsfHost {
  /**
   * Records the result and queues the subject's evaluation; resolves once all of it is durable.
   * Rejects with `VIGIL_ERR_UNKNOWN_SUBJECT` or `VIGIL_ERR_BAD_REQUEST` (no policy covering the subject
   * verifies the check); any other rejection is the agent's own failure.
   */
  acceptSignal(signal: SsfSignal): Promise<unknown>;
  readonly subjects: SubjectSource;
  /** Appends audit lines. */
  audit(events: readonly { readonly type: string; readonly [key: string]: unknown }[]): Promise<void>;
}

/**
 * Whether this instance creates, verifies, keeps alive and polls a transmitter's stream. One agent
 * manages all of them; with several replicas only the leader should, while every replica still
 * accepts pushes.
 */
export interface StreamCoordinator {
  manages(transmitter: string): boolean;
}

export const SOLE_INSTANCE: StreamCoordinator = { manages: () => true };
