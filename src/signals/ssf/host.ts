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

/** One signal recorded, or refused because no inventory knows the subject or no policy covering it verifies the check. */
export type SsfSignalOutcome = { readonly accepted: true } | { readonly accepted: false; readonly reason: string };

export interface SsfHost {
  /**
   * Records the results and queues the subjects' evaluation; resolves once all of it is durable,
   * with one outcome per signal. Rejects only for the agent's own failure (the store).
   */
  acceptSignals(signals: readonly SsfSignal[]): Promise<readonly SsfSignalOutcome[]>;
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
