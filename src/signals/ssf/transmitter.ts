/**
 * One transmitter, end to end: discovery and keys, the stream (created, or adopted after a 409, kept
 * alive, its status followed), verification at start and periodically, delivery by push or poll,
 * and each SET from validation to durable signals.
 *
 * Nothing here can stop the agent: a transmitter that cannot be reached leaves its stream degraded
 * (listed in `health()`, the metrics and the readiness detail) and is retried with backoff.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { ClientCredentials } from "../../net/oauth.ts";
import { staticHeader, type Authenticator } from "../../net/api-call.ts";
import type { HttpClient } from "../../net/http.ts";
import { UpstreamError, VigilError, errorMessage } from "../../errors.ts";
import type { Logger } from "../../telemetry/log.ts";
import type { SsfSetResult } from "../../telemetry/names.ts";
import { backoffDelay } from "../../util/backoff.ts";
import type { Clock } from "../../util/clock.ts";
import { registerSecret } from "../../util/redact.ts";
import { isTransient } from "../../errors.ts";
import { IssuerMismatch, ProtocolError, TransmitterClient, failure, type StreamConfiguration, type StreamRequest, type StreamStatus, type TransmitterMetadata } from "./client.ts";
import { pushEndpoint, type SsfConfig, type TransmitterConfig } from "./config.ts";
import { eventName, eventUri, POLL_METHOD, PUSH_METHOD, STREAM_UPDATED_EVENT, VERIFICATION_EVENT } from "./events.ts";
import type { SsfHost } from "./host.ts";
import { JwksCache } from "./keys.ts";
import { SubjectLookup } from "./lookup.ts";
import { EventPayloadError, mapEvent, type EventOverride } from "./mapping.ts";
import type { SsfMetrics } from "./metrics.ts";
import { Poller, type PolledOutcome } from "./poll.ts";
import { keysUnavailable, SetError, validateSet, type ValidatedSet } from "./set.ts";
import type { SsfStore, StoredStream } from "./store.ts";
import { describeSubject, opaqueId, unprocessableCritical } from "./subject.ts";
import type { StreamCoordinator } from "./host.ts";

/** What was done with a valid SET. */
export type AcceptedResult = Extract<SsfSetResult, "accepted" | "unmatched" | "ignored" | "discarded" | "duplicate" | "verification" | "stream_updated">;

export type Outcome =
  | { readonly kind: "ok"; readonly result: AcceptedResult }
  | { readonly kind: "refused"; readonly error: SetError }
  /** vigil cannot judge the SET now (no keys yet, the stream not set up): the transmitter should deliver it again later. */
  | { readonly kind: "unavailable"; readonly description: string };

export interface TransmitterDeps {
  readonly config: TransmitterConfig;
  readonly ssf: SsfConfig;
  readonly http: HttpClient;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: SsfStore;
  readonly host: SsfHost;
  readonly metrics: SsfMetrics;
  readonly coordinator: StreamCoordinator;
}

/** Where a transmitter's stream stands, for `/readyz`, the metrics and tests. */
export interface TransmitterHealth {
  readonly transmitter: string;
  readonly delivery: "push" | "poll";
  readonly stream_id: string | undefined;
  readonly status: StreamStatus | undefined;
  readonly degraded: boolean;
  /** Why, one line each. */
  readonly problems: readonly string[];
  readonly verification_overdue: boolean;
  /** Epoch ms of the last verification event; undefined when none came yet. */
  readonly verified_at: number | undefined;
}

const BRING_UP_BACKOFF = { delay: 1_000, max_delay: 300_000 };
/** Verification states remembered: a late event answering an earlier request still verifies. */
const MAX_PENDING_STATES = 8;
const MAX_INFLIGHT = 10_000;
/** How often the same refusal or unmatched-check warning is logged at most. */
const LOG_EVERY_MS = 60_000;

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** Minimal sleep that an abort ends at once. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

export class Transmitter {
  readonly name: string;
  readonly config: TransmitterConfig;
  readonly #d: TransmitterDeps;
  readonly #client: TransmitterClient;
  readonly #jwks: JwksCache;
  readonly #lookup: SubjectLookup;
  readonly #overrides: Map<string, EventOverride>;
  readonly #endpoint: string | undefined;
  #abort = new AbortController();
  #running = false;
  #bringUp: Promise<void> | undefined;
  #metadata: TransmitterMetadata | undefined;
  #stream: StreamConfiguration | undefined;
  #status: StreamStatus | undefined;
  #pushAuthorization: string | undefined;
  #pushDigest: Buffer | undefined;
  #audiences: string[] | undefined;
  #pending: { state: string; at: number }[] = [];
  #verifiedAt: number | undefined;
  #overdue = false;
  readonly #problems = new Map<string, string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #poller: Poller | undefined;
  readonly #inflight = new Map<string, Promise<Outcome>>();
  readonly #lastLogged = new Map<string, number>();
  /** Bring-ups that ended for good (an issuer mismatch): only a reload starts another. */
  #halted = false;

  constructor(deps: TransmitterDeps) {
    this.#d = deps;
    const t = deps.config;
    this.config = t;
    this.name = t.name;
    this.#client = new TransmitterClient({ config: t, http: deps.http, auth: authenticator(t, deps.http, deps.clock) });
    this.#jwks = new JwksCache({
      http: deps.http,
      clock: deps.clock,
      algorithms: t.algorithms,
      // An operator-given jwks_uri is trusted like the metadata URL; a discovered one is the transmitter's word.
      untrusted: t.jwks_uri !== undefined ? undefined : { allowPrivate: t.internal },
      timeoutMs: t.timeout,
      onSkipped: (skipped) => deps.logger.warn({ transmitter: t.name, skipped }, `ssf ${t.name}: some keys of the JWKS cannot verify SETs and are ignored`),
    });
    if (t.jwks_uri !== undefined) this.#jwks.setUrl(t.jwks_uri);
    this.#lookup = new SubjectLookup(t.subjects, deps.host.subjects);
    this.#overrides = new Map(Object.entries(t.overrides).map(([k, v]) => [eventUri(k), { ...(v.check ? { check: v.check } : {}), ...(v.status ? { status: v.status } : {}), ...(v.risk ? { risk: v.risk } : {}), ...(v.ttl !== undefined ? { ttl_ms: v.ttl } : {}) }]));
    this.#endpoint = t.delivery === "push" ? pushEndpoint(deps.ssf, t) : undefined;
    const stored = t.manage ? deps.store.loadStream(t.name) : undefined;
    if (t.delivery === "push") {
      this.#setPushAuthorization(t.manage ? (stored?.authorization ?? `Bearer ${randomBytes(32).toString("base64url")}`) : t.push.authorization);
    }
    const configured = t.audience === undefined ? undefined : typeof t.audience === "string" ? [t.audience] : [...t.audience];
    this.#audiences = configured ?? (stored?.aud ? [...stored.aud] : !t.manage && this.#endpoint ? [new URL(this.#endpoint).origin] : undefined);
    deps.metrics.declare(t.name);
  }

  get delivery(): "push" | "poll" {
    return this.config.delivery;
  }

  // -------------------------------------------------------------------------------------------
  // Lifecycle

  /** Starts the bring-up in the background; returns at once. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#bringUp = this.#bringUpLoop();
  }

  /** Ends background work (timers, polls, the bring-up); pushes are still answered. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await this.#bringUp?.catch(() => undefined);
    await this.#poller?.stop();
    this.#poller = undefined;
  }

  /** Stops, then deletes the managed stream at the transmitter and forgets it (the transmitter left the config). */
  async remove(): Promise<void> {
    await this.stop();
    const stream = this.#stream ?? this.#storedStream();
    const endpoint = this.#metadata?.configuration_endpoint;
    if (this.config.manage && stream && endpoint && this.#d.coordinator.manages(this.name)) {
      try {
        await this.#client.deleteStream(endpoint, stream.stream_id, AbortSignal.timeout(this.config.timeout));
        await this.#audit({ change: "deleted", stream_id: stream.stream_id });
      } catch (err) {
        this.#d.logger.warn({ transmitter: this.name, err }, `ssf ${this.name}: could not delete stream ${stream.stream_id}: ${errorMessage(err)}`);
      }
    }
    if (this.config.manage) this.#d.store.forgetStream(this.name);
  }

  health(): TransmitterHealth {
    const problems = [...this.#problems.values()];
    return {
      transmitter: this.name,
      delivery: this.config.delivery,
      stream_id: this.#stream?.stream_id,
      status: this.#status,
      degraded: problems.length > 0,
      problems,
      verification_overdue: this.#overdue,
      verified_at: this.#verifiedAt,
    };
  }

  /** The poller, once polling (tests read its counters). */
  get poller(): Poller | undefined {
    return this.#poller;
  }

  // -------------------------------------------------------------------------------------------
  // Push

  /** vigil refused this transmitter's stream (a foreign `iss`): pushes on it are not accepted until a reload. */
  get refused(): boolean {
    return this.#halted;
  }

  /** Is `header` the Authorization the transmitter must send with pushes? Compared in constant time. */
  authorizes(header: string | undefined): boolean {
    if (this.#pushDigest === undefined || header === undefined) return false;
    return timingSafeEqual(digest(header), this.#pushDigest);
  }

  // -------------------------------------------------------------------------------------------
  // Delivery

  /** Validates and processes one SET (push or poll), counts it, and says what to answer. Throws only for the agent's own failures. */
  async deliver(raw: string): Promise<Outcome> {
    let set: ValidatedSet;
    try {
      set = await validateSet(raw, {
        issuer: this.config.issuer,
        audiences: this.#audiences,
        algorithms: this.config.algorithms,
        keys: this.#jwks,
        now: this.#d.clock.now(),
        clockSkewMs: this.config.clock_skew,
        maxAgeMs: this.config.max_set_age,
        maxBytes: this.config.max_set_bytes,
        ...(this.#d.store.forgottenBefore !== undefined ? { forgottenBefore: this.#d.store.forgottenBefore } : {}),
      });
    } catch (err) {
      if (err instanceof SetError) {
        if (err.err === "invalid_audience" && this.#audiences === undefined) return this.#count({ kind: "unavailable", description: "the stream is not set up yet; deliver again later" });
        return this.#count({ kind: "refused", error: err });
      }
      if (keysUnavailable(err)) return this.#count({ kind: "unavailable", description: "the transmitter's keys could not be fetched yet; deliver again later" });
      throw err;
    }
    const running = this.#inflight.get(set.jti);
    if (running) {
      const o = await running;
      return this.#count(o.kind === "ok" ? { kind: "ok", result: "duplicate" } : o);
    }
    if (this.#d.store.seen(this.name, set.jti)) return this.#count({ kind: "ok", result: "duplicate" });
    if (this.#inflight.size >= MAX_INFLIGHT) return this.#count({ kind: "unavailable", description: "too many SETs in progress; deliver again later" });
    const work = this.#process(set).then(async (outcome) => {
      // Remembered only once its signals are durable; a refusal is worked out again the same way.
      if (outcome.kind === "ok") await this.#d.store.remember(this.name, set.jti, set.iat);
      return outcome;
    });
    this.#inflight.set(set.jti, work);
    try {
      return this.#count(await work);
    } finally {
      this.#inflight.delete(set.jti);
    }
  }

  #count(outcome: Outcome): Outcome {
    const result: SsfSetResult = outcome.kind === "ok" ? outcome.result : outcome.kind === "refused" ? outcome.error.err : "unavailable";
    this.#d.metrics.set(this.name, result);
    if (outcome.kind !== "ok") this.#logLimited(`refused:${result}`, () => this.#d.logger.warn({ transmitter: this.name, result, description: outcome.kind === "refused" ? outcome.error.message : outcome.description }, `ssf ${this.name}: SET not accepted (${result})`));
    return outcome;
  }

  async #process(set: ValidatedSet): Promise<Outcome> {
    if (set.eventUri === VERIFICATION_EVENT) return this.#verification(set);
    if (set.eventUri === STREAM_UPDATED_EVENT) return this.#streamUpdated(set);
    const name = eventName(set.eventUri);
    const label = name ?? set.eventUri.slice(0, 200);
    let mapped;
    try {
      mapped = mapEvent(this.name, name, set.eventUri, set.payload, this.#overrides.get(set.eventUri));
    } catch (err) {
      if (err instanceof EventPayloadError) return { kind: "refused", error: new SetError("invalid_request", `${label}: ${err.message}`) };
      throw err;
    }
    if (mapped.kind === "ignored") {
      await this.#d.host.audit([{ type: "ssf_event", transmitter: this.name, event: label, jti: set.jti, outcome: "ignored", reason: mapped.reason }]);
      return { kind: "ok", result: "ignored" };
    }
    if (set.subject === undefined) return { kind: "refused", error: new SetError("invalid_request", `${label}: the SET has no sub_id`) };
    const critical = unprocessableCritical(set.subject, this.#metadata?.critical_subject_members ?? []);
    if (critical !== undefined) {
      await this.#d.host.audit([{ type: "ssf_event", transmitter: this.name, event: label, jti: set.jti, outcome: "discarded", reason: `critical subject member ${critical} cannot be processed` }]);
      return { kind: "ok", result: "discarded" };
    }
    const { ids, truncated } = this.#lookup.resolve(set.subject);
    if (truncated) this.#logLimited("truncated", () => this.#d.logger.warn({ transmitter: this.name, event: label }, `ssf ${this.name}: an event named more vigil subjects than one event may change; the rest were left out`));
    const e = mapped.event;
    const evidence = { transmitter: this.name, event: label, jti: set.jti, ...(set.txn !== undefined ? { txn: set.txn } : {}), ...e.evidence };
    const outcomes = await this.#d.host.acceptSignals(
      ids.map((subject) => ({
        subject,
        check: e.check,
        status: e.status,
        risk: e.risk,
        ttl_ms: e.ttl_ms,
        reason: e.reason,
        source: `ssf:${this.name}`,
        stream: `ssf:${this.name}:${e.group}`,
        evidence,
      })),
    );
    const accepted = outcomes.filter((o) => o.accepted).length;
    const uncovered = ids.filter((_, i) => !outcomes[i]?.accepted);
    if (uncovered.length > 0) {
      this.#logLimited(`uncovered:${e.check}`, () =>
        this.#d.logger.warn(
          { transmitter: this.name, event: label, check: e.check, subjects: uncovered.slice(0, 5) },
          `ssf ${this.name}: ${label} sets check ${e.check}, which no policy covering ${uncovered.slice(0, 3).join(", ")} verifies; declare checks.${e.check}: {type: push, on_unknown: ignore} and add it to the policy, or override the event's check`,
        ),
      );
    }
    if (accepted === 0) this.#d.logger.debug({ transmitter: this.name, event: label, subject: describeSubject(set.subject) }, `ssf ${this.name}: ${label} names no vigil subject a policy verifies ${e.check} for`);
    return { kind: "ok", result: accepted > 0 ? "accepted" : "unmatched" };
  }

  /** SSF 1.0 §8.1.4.1: the verification event names the stream and echoes a state vigil sent, or none (unsolicited). */
  async #verification(set: ValidatedSet): Promise<Outcome> {
    const streamId = set.subject ? opaqueId(set.subject) : undefined;
    if (streamId === undefined) return { kind: "refused", error: new SetError("invalid_request", "a verification event's sub_id must be an opaque stream id") };
    const expected = this.#stream?.stream_id;
    if (expected !== undefined && streamId !== expected) return { kind: "refused", error: new SetError("invalid_request", "the verification event names another stream") };
    const state = set.payload.state;
    if (state !== undefined && typeof state !== "string") return { kind: "refused", error: new SetError("invalid_request", "state must be a string") };
    const now = this.#d.clock.now();
    if (state !== undefined) {
      const i = this.#pending.findIndex((p) => p.state === state);
      if (i < 0) return { kind: "refused", error: new SetError("invalid_state", "state is not one vigil sent in a verification request") };
      this.#pending.splice(0, i + 1);
    }
    this.#verifiedAt = now;
    if (this.#overdue) {
      this.#overdue = false;
      this.#problems.delete("verification");
      await this.#audit({ change: "verified_again", stream_id: streamId });
      this.#d.logger.info({ transmitter: this.name }, `ssf ${this.name}: verification events arrive again`);
    }
    return { kind: "ok", result: "verification" };
  }

  /** SSF 1.0 §8.1.5: the transmitter changed the stream's status on its own. */
  async #streamUpdated(set: ValidatedSet): Promise<Outcome> {
    const status = set.payload.status;
    if (status !== "enabled" && status !== "paused" && status !== "disabled") return { kind: "refused", error: new SetError("invalid_request", "stream-updated: status must be enabled, paused or disabled") };
    const streamId = set.subject ? opaqueId(set.subject) : undefined;
    const expected = this.#stream?.stream_id;
    if (expected !== undefined && streamId !== undefined && streamId !== expected) return { kind: "refused", error: new SetError("invalid_request", "the stream-updated event names another stream") };
    if (set.payload.subject !== undefined && streamId === undefined) {
      // The drafts' per-subject status: vigil assumes every subject is in the stream, so it only records it.
      await this.#d.host.audit([{ type: "ssf_event", transmitter: this.name, event: "stream-updated", jti: set.jti, outcome: "ignored", reason: "status change for one subject" }]);
      return { kind: "ok", result: "stream_updated" };
    }
    const reason = typeof set.payload.reason === "string" ? set.payload.reason.slice(0, 256) : undefined;
    await this.#setStatus(status, reason, "transmitter");
    return { kind: "ok", result: "stream_updated" };
  }

  async #setStatus(status: StreamStatus, reason: string | undefined, by: "transmitter" | "read" | "vigil"): Promise<void> {
    const before = this.#status;
    this.#status = status;
    if (status === "enabled") this.#problems.delete("status");
    else this.#problems.set("status", `stream ${status}${reason ? `: ${reason}` : ""}`);
    if (before === status) return;
    await this.#audit({ change: "status", status, ...(reason ? { reason } : {}), by, ...(this.#stream ? { stream_id: this.#stream.stream_id } : {}) });
    const fields = { transmitter: this.name, status, reason };
    if (status === "enabled") this.#d.logger.info(fields, `ssf ${this.name}: stream ${status}`);
    else this.#d.logger.warn(fields, `ssf ${this.name}: stream ${status}${reason ? `: ${reason}` : ""}`);
  }

  /** Answer for a polled SET. */
  async handlePolled(jws: string): Promise<PolledOutcome> {
    try {
      const o = await this.deliver(jws);
      if (o.kind === "ok") return { kind: "ack" };
      if (o.kind === "refused") return { kind: "error", err: o.error.err, description: o.error.message };
      return { kind: "retry" };
    } catch (err) {
      this.#d.logger.error({ transmitter: this.name, err }, `ssf ${this.name}: a polled SET could not be recorded; it will be delivered again: ${errorMessage(err)}`);
      return { kind: "retry" };
    }
  }

  // -------------------------------------------------------------------------------------------
  // Bring-up: metadata, keys, stream, status, verification, polling

  async #bringUpLoop(): Promise<void> {
    const signal = this.#abort.signal;
    let attempt = 0;
    while (this.#running && !this.#halted) {
      try {
        await this.#setUp(signal);
        return;
      } catch (err) {
        if (!this.#running) return;
        if (err instanceof IssuerMismatch) {
          await this.#refuseStream(err);
          return;
        }
        attempt++;
        const delay = backoffDelay(attempt, BRING_UP_BACKOFF, err instanceof UpstreamError ? (err.retryAfterMs ?? 0) : 0);
        this.#d.logger.warn({ transmitter: this.name, err, retry_in_ms: delay }, `ssf ${this.name}: setting up the stream failed, retrying: ${errorMessage(err)}`);
        await sleep(delay, signal);
      }
    }
  }

  async #setUp(signal: AbortSignal): Promise<void> {
    const t = this.config;
    if (t.manage || t.jwks_uri === undefined) {
      try {
        this.#metadata = await this.#client.discover(signal);
        this.#problems.delete("metadata");
      } catch (err) {
        this.#problems.set("metadata", `metadata unavailable: ${failure(err)}`);
        throw err;
      }
    }
    if (t.jwks_uri === undefined) {
      const jwks = this.#metadata?.jwks_uri;
      if (jwks === undefined) {
        this.#problems.set("keys", "the transmitter's metadata names no jwks_uri");
        throw new ProtocolError("the transmitter's metadata names no jwks_uri");
      }
      this.#jwks.setUrl(jwks);
    }
    try {
      await this.#jwks.refresh(signal);
      this.#problems.delete("keys");
    } catch (err) {
      this.#problems.set("keys", `keys unavailable: ${failure(err)}`);
      throw err;
    }
    if (!this.#d.coordinator.manages(this.name)) return;
    if (t.manage) {
      await this.#establish(signal);
      await this.#ensureEnabled(signal);
      this.#schedule(0, () => this.#verify());
      this.#schedule(this.#keepaliveMs(), () => this.#keepalive());
    } else {
      this.#status = undefined;
    }
    if (t.delivery === "poll") this.#startPolling();
  }

  #desired(): StreamRequest {
    const t = this.config;
    const events = [...new Set(t.events.map(eventUri))];
    const delivery = t.delivery === "push" ? { method: PUSH_METHOD, endpoint_url: this.#endpoint!, authorization_header: this.#pushAuthorization! } : { method: POLL_METHOD };
    return { delivery, events_requested: events, description: t.description };
  }

  /** Adopts the remembered stream, or creates one (201), or takes over the receiver's existing one (409 → read, update). */
  async #establish(signal: AbortSignal): Promise<void> {
    const endpoint = this.#metadata?.configuration_endpoint;
    if (endpoint === undefined) {
      this.#problems.set("stream", "the transmitter's metadata names no configuration_endpoint (use manage: false for a stream set up by hand)");
      throw new ProtocolError("no configuration_endpoint");
    }
    const desired = this.#desired();
    let stream: StreamConfiguration | undefined;
    let change = "adopted";
    try {
      const stored = this.#storedStream();
      if (stored) {
        stream = await this.#client.readStream(endpoint, stored.stream_id, signal);
        if (stream && this.#differs(stream, desired)) {
          const updated = await this.#update(endpoint, stream, desired, signal);
          if (updated === "unsupported") this.#d.logger.warn({ transmitter: this.name }, `ssf ${this.name}: the transmitter does not take stream updates; keeping the stream as it is`);
          else stream = updated;
        }
        if (!stream) this.#d.store.forgetStream(this.name);
      }
      if (!stream) {
        const created = await this.#client.createStream(endpoint, desired, signal);
        change = "created";
        if (created === "conflict") {
          // One stream per receiver (SSF 1.0 §8.1.1.1): take the existing one over, with vigil's delivery.
          const list = await this.#client.listStreams(endpoint, signal);
          const existing = list.find((s) => s.delivery.endpoint_url !== undefined && s.delivery.endpoint_url === this.#endpoint) ?? list[0];
          if (!existing) throw new ProtocolError("the transmitter answered 409 to the stream creation but lists no stream");
          const updated = await this.#update(endpoint, existing, { ...desired, stream_id: existing.stream_id }, signal);
          if (updated === "unsupported") {
            // Neither PATCH nor PUT (as the CAEP interoperability profile permits): only a new stream carries vigil's delivery.
            await this.#client.deleteStream(endpoint, existing.stream_id, signal);
            const again = await this.#client.createStream(endpoint, desired, signal);
            if (again === "conflict") throw new ProtocolError("the transmitter still answers 409 after the old stream was deleted");
            stream = again;
          } else {
            stream = updated;
            change = "adopted";
          }
        } else stream = created;
      }
    } catch (err) {
      if (!(err instanceof IssuerMismatch)) this.#problems.set("stream", `no stream: ${failure(err)}`);
      throw err;
    }
    if (stream === undefined) throw this.#streamProblem(new ProtocolError("no stream could be created or adopted"));
    if (stream.delivery.method !== desired.delivery.method) throw this.#streamProblem(new ProtocolError(`the stream delivers by ${stream.delivery.method}, not ${desired.delivery.method}`));
    if (this.config.delivery === "poll" && stream.delivery.endpoint_url === undefined) throw this.#streamProblem(new ProtocolError("the poll stream has no endpoint_url"));
    const configured = this.config.audience === undefined ? undefined : typeof this.config.audience === "string" ? [this.config.audience] : this.config.audience;
    if (configured !== undefined && !stream.aud.some((a) => configured.includes(a))) {
      throw this.#streamProblem(new ProtocolError(`the stream's aud (${stream.aud.join(", ").slice(0, 200)}) is none of the configured audience`));
    }
    if (stream.aud.length === 0 && configured === undefined) throw this.#streamProblem(new ProtocolError("the stream configuration has no aud"));
    this.#stream = stream;
    this.#audiences = configured ? [...configured] : [...stream.aud];
    this.#d.store.saveStream(this.name, {
      stream_id: stream.stream_id,
      ...(this.#pushAuthorization !== undefined ? { authorization: this.#pushAuthorization } : {}),
      ...(this.#endpoint !== undefined ? { endpoint_url: this.#endpoint } : {}),
      aud: stream.aud,
    });
    this.#problems.delete("stream");
    const missing = desired.events_requested.filter((e) => !stream.events_delivered.includes(e));
    await this.#audit({ change, stream_id: stream.stream_id, events_delivered: stream.events_delivered.length });
    this.#d.logger.info(
      { transmitter: this.name, stream_id: stream.stream_id, delivery: this.config.delivery, events_delivered: stream.events_delivered.length, not_delivered: missing.length > 0 ? missing : undefined },
      `ssf ${this.name}: stream ${stream.stream_id} ${change}`,
    );
  }

  #streamProblem(err: ProtocolError): ProtocolError {
    this.#problems.set("stream", `stream unusable: ${failure(err)}`);
    return err;
  }

  #differs(stream: StreamConfiguration, desired: StreamRequest): boolean {
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
    return stream.delivery.method !== desired.delivery.method || (desired.delivery.endpoint_url !== undefined && stream.delivery.endpoint_url !== desired.delivery.endpoint_url) || !same(stream.events_requested, desired.events_requested) || stream.description !== desired.description;
  }

  async #update(endpoint: string, stream: StreamConfiguration, desired: StreamRequest, signal: AbortSignal): Promise<StreamConfiguration | "unsupported"> {
    const body = { ...desired, stream_id: stream.stream_id };
    const patched = await this.#client.updateStream(endpoint, "PATCH", body, signal);
    if (patched !== "unsupported") return patched;
    return this.#client.updateStream(endpoint, "PUT", body, signal);
  }

  /** The stream's iss is another issuer's: never used (SSF 1.0 §8.1.1.1); vigil created it, so vigil deletes it. */
  async #refuseStream(err: IssuerMismatch): Promise<void> {
    this.#halted = true;
    this.#problems.set("stream", `stream refused: ${err.message}`);
    this.#d.logger.error({ transmitter: this.name, stream_id: err.streamId }, `ssf ${this.name}: ${err.message}; the stream is deleted and not used until the configuration is reloaded`);
    const endpoint = this.#metadata?.configuration_endpoint;
    if (endpoint !== undefined) {
      try {
        await this.#client.deleteStream(endpoint, err.streamId, AbortSignal.timeout(this.config.timeout));
      } catch (deleteErr) {
        this.#d.logger.warn({ transmitter: this.name, err: deleteErr }, `ssf ${this.name}: could not delete the refused stream: ${errorMessage(deleteErr)}`);
      }
    }
    if (this.#storedStream()?.stream_id === err.streamId) this.#d.store.forgetStream(this.name);
    await this.#audit({ change: "refused", stream_id: err.streamId, reason: "iss is not the transmitter's issuer" }).catch(() => undefined);
  }

  /** A stream paused or disabled while vigil was away is asked to resume: starting the agent is the operator's wish to receive. */
  async #ensureEnabled(signal: AbortSignal): Promise<void> {
    const endpoint = this.#metadata?.status_endpoint;
    const stream = this.#stream;
    if (endpoint === undefined || stream === undefined) return;
    try {
      const { status, reason } = await this.#client.readStatus(endpoint, stream.stream_id, signal);
      if (status !== "enabled") {
        const answer = await this.#client.updateStatus(endpoint, stream.stream_id, "enabled", "vigil started", signal);
        if (answer === "pending") await this.#setStatus(status, reason, "read");
        else await this.#setStatus(answer.status, answer.reason, "vigil");
      } else await this.#setStatus(status, reason, "read");
    } catch (err) {
      if (signal.aborted) return;
      this.#d.logger.warn({ transmitter: this.name, err }, `ssf ${this.name}: could not read or update the stream status: ${errorMessage(err)}`);
    }
  }

  #keepaliveMs(): number {
    const timeout = this.#stream?.inactivity_timeout;
    // Well inside the inactivity timeout, so one failed call does not lose the stream.
    return timeout === undefined ? 3_600_000 : Math.min(3_600_000, Math.max(1_000, Math.floor((timeout * 1000) / 3)));
  }

  #verifyMs(): number {
    return Math.max(this.config.verification.interval, (this.#stream?.min_verification_interval ?? 0) * 1000);
  }

  /** Runs `fn` after `ms`, and again after whatever delay it returns. */
  #schedule(ms: number, fn: () => Promise<number | undefined>): void {
    if (!this.#running) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn()
        .then((next) => {
          if (next !== undefined) this.#schedule(next, fn);
        })
        .catch((err: unknown) => this.#d.logger.error({ transmitter: this.name, err }, `ssf ${this.name}: background task failed: ${errorMessage(err)}`));
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  /** Keeps the stream alive (SSF 1.0 §8.1.1: a management call restarts the inactivity timeout) and follows its status. */
  async #keepalive(): Promise<number | undefined> {
    const stream = this.#stream;
    const metadata = this.#metadata;
    if (!this.#running || stream === undefined || metadata === undefined) return undefined;
    const signal = this.#abort.signal;
    try {
      if (metadata.status_endpoint !== undefined) {
        const { status, reason } = await this.#client.readStatus(metadata.status_endpoint, stream.stream_id, signal);
        await this.#setStatus(status, reason, "read");
      } else if (metadata.configuration_endpoint !== undefined) {
        const found = await this.#client.readStream(metadata.configuration_endpoint, stream.stream_id, signal);
        if (found === undefined) throw new UpstreamError(false, "the stream is gone", { status: 404 });
      }
      this.#problems.delete("keepalive");
    } catch (err) {
      if (signal.aborted) return undefined;
      if (err instanceof UpstreamError && err.status === 404) {
        // The transmitter dropped the stream (inactivity, an operator): set it up again.
        this.#problems.set("stream", "the transmitter no longer knows the stream");
        this.#d.logger.warn({ transmitter: this.name, stream_id: stream.stream_id }, `ssf ${this.name}: stream ${stream.stream_id} is gone; creating a new one`);
        this.#stream = undefined;
        this.#d.store.forgetStream(this.name);
        for (const t of this.#timers) clearTimeout(t);
        this.#timers.clear();
        this.#bringUp = this.#bringUpLoop();
        return undefined;
      }
      this.#problems.set("keepalive", `status check failed: ${failure(err)}`);
      this.#d.logger.warn({ transmitter: this.name, err }, `ssf ${this.name}: stream status check failed: ${errorMessage(err)}`);
    }
    return this.#keepaliveMs();
  }

  /** Asks for a verification event; checks it arrived `verification.timeout` later. */
  async #verify(): Promise<number | undefined> {
    const stream = this.#stream;
    const endpoint = this.#metadata?.verification_endpoint;
    if (!this.#running || stream === undefined) return undefined;
    if (endpoint === undefined) {
      this.#d.logger.info({ transmitter: this.name }, `ssf ${this.name}: the transmitter has no verification endpoint; streams are not verified`);
      return undefined;
    }
    const state = randomBytes(18).toString("base64url");
    const at = this.#d.clock.now();
    this.#pending.push({ state, at });
    if (this.#pending.length > MAX_PENDING_STATES) this.#pending.splice(0, this.#pending.length - MAX_PENDING_STATES);
    try {
      await this.#client.requestVerification(endpoint, stream.stream_id, state, this.#abort.signal);
      this.#problems.delete("verification_request");
    } catch (err) {
      this.#pending = this.#pending.filter((p) => p.state !== state);
      if (this.#abort.signal.aborted) return undefined;
      const retryAfter = err instanceof UpstreamError ? err.retryAfterMs : undefined;
      if (err instanceof UpstreamError && err.status === 429) {
        this.#d.logger.info({ transmitter: this.name, retry_in_ms: retryAfter }, `ssf ${this.name}: verification asked for too soon; asking again later`);
        return Math.max(retryAfter ?? 0, (this.#stream?.min_verification_interval ?? 60) * 1000);
      }
      this.#problems.set("verification_request", `verification request failed: ${failure(err)}`);
      this.#d.logger.warn({ transmitter: this.name, err }, `ssf ${this.name}: verification request failed: ${errorMessage(err)}`);
      return isTransient(err) ? Math.min(this.#verifyMs(), backoffDelay(1, BRING_UP_BACKOFF, retryAfter ?? 0) * 30) : this.#verifyMs();
    }
    this.#schedule(this.config.verification.timeout, () => this.#checkOverdue(at));
    return this.#verifyMs();
  }

  async #checkOverdue(requestedAt: number): Promise<undefined> {
    if (!this.#running || this.#overdue) return undefined;
    if (this.#verifiedAt !== undefined && this.#verifiedAt >= requestedAt) return undefined;
    this.#overdue = true;
    const within = Math.round(this.config.verification.timeout / 1000);
    this.#problems.set("verification", `verification overdue: no verification event within ${within}s of the request`);
    this.#d.logger.warn({ transmitter: this.name, stream_id: this.#stream?.stream_id }, `ssf ${this.name}: the requested verification event did not arrive within ${within}s`);
    await this.#audit({ change: "verification_overdue", ...(this.#stream ? { stream_id: this.#stream.stream_id } : {}), timeout_s: within });
    return undefined;
  }

  #startPolling(): void {
    const url = this.config.manage ? this.#stream?.delivery.endpoint_url : this.config.poll.endpoint_url;
    if (url === undefined || this.#poller || !this.#running) return;
    this.#poller = new Poller({
      transmitter: this.name,
      maxEvents: this.config.poll.max_events,
      timeoutMs: this.config.poll.timeout,
      logger: this.#d.logger,
      poll: (body, timeoutMs, signal) => this.#client.poll(url, body, timeoutMs, signal),
      handle: (jws) => this.handlePolled(jws),
      onHealth: (problem) => (problem === undefined ? this.#problems.delete("poll") : this.#problems.set("poll", problem)),
    });
    this.#poller.start();
  }

  // -------------------------------------------------------------------------------------------

  #setPushAuthorization(value: string | undefined): void {
    this.#pushAuthorization = value;
    this.#pushDigest = value === undefined ? undefined : digest(value);
    if (value !== undefined) {
      registerSecret(value);
      registerSecret(value.replace(/^[A-Za-z][\w.+-]*\s+/, ""));
    }
  }

  #storedStream(): StoredStream | undefined {
    return this.config.manage ? this.#d.store.loadStream(this.name) : undefined;
  }

  async #audit(fields: Record<string, unknown>): Promise<void> {
    await this.#d.host.audit([{ type: "ssf_stream", transmitter: this.name, ...fields }]);
  }

  #logLimited(key: string, log: () => void): void {
    const now = this.#d.clock.now();
    const last = this.#lastLogged.get(key);
    if (last !== undefined && now - last < LOG_EVERY_MS) return;
    this.#lastLogged.set(key, now);
    log();
  }
}

/** The management API's credentials: a fixed bearer token, or OAuth client credentials (cached, refreshed). */
function authenticator(t: TransmitterConfig, http: HttpClient, clock: Clock): Authenticator | undefined {
  const auth = t.auth;
  if (auth === undefined) return undefined;
  if (auth.bearer_token !== undefined) {
    registerSecret(auth.bearer_token);
    return staticHeader("Authorization", `Bearer ${auth.bearer_token}`);
  }
  const o = auth.oauth!;
  const method = o.method ?? (o.private_key !== undefined ? "private_key_jwt" : "client_secret_basic");
  return new ClientCredentials({
    tokenUrl: o.token_url,
    clientId: o.client_id,
    auth: method === "private_key_jwt" ? { method, private_key: o.private_key!, ...(o.key_id ? { key_id: o.key_id } : {}) } : { method, client_secret: o.client_secret! },
    scope: o.scope,
    http,
    clock,
    timeoutMs: t.timeout,
  });
}
