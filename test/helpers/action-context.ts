/**
 * What the action tests share: a plugin context, a provider context, an ActionRequest builder, and
 * `attempt()`, which runs an action the way the durable queue does: again after a transient failure
 * (recording the server's wait hint), never after a permanent one.
 */
import { tmpdir } from "node:os";
import { metrics, trace } from "@opentelemetry/api";
import type { ActionContext, ActionOutcome, ActionRequest } from "../../src/plugin/action.ts";
import { applyEnforcementEvent, desire, type EnforcementEvent, type EnforcementRecord } from "../../src/store/enforcement.ts";
import type { ProviderContext } from "../../src/plugin/provider.ts";
import type { PluginContext } from "../../src/plugin/context.ts";
import { createHttpClient } from "../../src/net/http.ts";
import { createLogger } from "../../src/telemetry/log.ts";
import { isTransient, UpstreamError } from "../../src/errors.ts";
import type { AccessLevel, Subject } from "../../src/policy/model.ts";
import { systemClock, type Clock } from "../../src/util/clock.ts";

export function pluginContext(clock: Clock = systemClock): PluginContext {
  return {
    clock,
    logger: createLogger({ level: "silent" }),
    meter: metrics.getMeter("test"),
    tracer: trace.getTracer("test"),
    http: createHttpClient(),
    dataDir: tmpdir(),
    configDir: tmpdir(),
  };
}

export function providerContext(name: string, clock: Clock = systemClock): ProviderContext {
  return { ...pluginContext(clock), name };
}

export function actionContext(provider: ActionContext["provider"], clock: Clock = systemClock): ActionContext {
  return { ...pluginContext(clock), ...(provider ? { provider } : {}) };
}

export function request(opts: {
  subject?: Partial<Subject> & { id?: string };
  access?: AccessLevel;
  previous?: AccessLevel;
  operation?: "apply" | "revert";
  policy?: string;
  generation?: number;
  edge?: ActionRequest["edge"];
} = {}): ActionRequest {
  const subject: Subject = { id: "alice", kind: "user", attributes: {}, labels: {}, ...opts.subject };
  const access = opts.access ?? "deny";
  return {
    decision: {
      policy: opts.policy ?? "perimeter",
      subject: subject.id,
      access,
      risk: access === "deny" ? "high" : access === "read_only" ? "medium" : "low",
      reasons: [{ code: "TEST", message: "test decision" }],
      generation: opts.generation ?? 2,
      decided_at: Date.parse("2026-11-24T10:00:00Z"),
      evidence: {},
      exempt: false,
    },
    subject,
    previous_access: opts.previous ?? "full_access",
    operation: opts.operation ?? "apply",
    idempotency_key: `key-${subject.id}-${opts.generation ?? 2}-${opts.operation ?? "apply"}`,
    ...(opts.edge ? { edge: opts.edge } : {}),
  };
}

export interface Attempts<T> {
  /** The value of the successful attempt. */
  readonly value?: T;
  /** The error of the last attempt when none succeeded. */
  readonly error?: unknown;
  readonly attempts: number;
  /** The wait hints (ms) of the transient failures, in order. */
  readonly retryAfter: (number | undefined)[];
}

/** Runs `fn` as the queue would: up to `max` attempts, again only after a transient error. No sleeping. */
export async function attempt<T>(fn: () => Promise<T>, max = 5): Promise<Attempts<T>> {
  const retryAfter: (number | undefined)[] = [];
  let error: unknown;
  for (let n = 1; n <= max; n++) {
    try {
      return { value: await fn(), attempts: n, retryAfter };
    } catch (err) {
      error = err;
      if (!isTransient(err)) return { error, attempts: n, retryAfter };
      retryAfter.push(err instanceof UpstreamError ? err.retryAfterMs : undefined);
    }
  }
  return { error, attempts: max, retryAfter };
}

/**
 * Stands in for the engine's enforcement record of one action, with the store's own transitions
 * (src/store/enforcement.ts): `forApply` builds an apply attempt's request as the engine does (what an
 * earlier attempt recorded as `prior`, and a `recordPrior` that keeps what the action notes);
 * `applied` records the successful apply's outcome; `forRevert` gives the revert what is recorded.
 */
export class EnforcementRecordFake {
  #record: EnforcementRecord;

  constructor(req: ActionRequest) {
    const d = req.decision;
    this.#record = desire(undefined, {
      policy: d.policy,
      subject: req.subject.id,
      action: "under-test",
      action_type: "under-test",
      operation: "apply",
      access: d.access,
      previous_access: req.previous_access,
      generation: d.generation,
      decided_at: d.decided_at,
      idempotency_key: req.idempotency_key,
    });
  }

  get record(): EnforcementRecord {
    return this.#record;
  }

  forApply(req: ActionRequest): ActionRequest {
    const prior = this.#record.in_effect ? this.#record.prior : undefined;
    // The engine records a failed attempt when it ends; marked here up front, since `attempt()` does
    // not say how an attempt ended. Either way the next attempt and the revert see it.
    this.#event({ kind: "attempted" });
    return {
      ...req,
      operation: "apply",
      ...(prior === undefined ? {} : { prior }),
      recordPrior: async (p) => this.#event({ kind: "prior", prior: p }),
    };
  }

  applied(outcome: ActionOutcome): void {
    this.#event({ kind: "achieved", generation: this.#record.generation, operation: "apply", ...(outcome.prior ? { prior: outcome.prior } : {}) });
  }

  forRevert(req: ActionRequest): ActionRequest {
    const prior = this.#record.prior;
    return { ...req, operation: "revert", ...(prior === undefined ? {} : { prior }) };
  }

  #event(e: EnforcementEvent): void {
    this.#record = applyEnforcementEvent(this.#record, e) ?? this.#record;
  }
}
