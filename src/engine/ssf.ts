/**
 * The agent's side of the Shared Signals receiver: signals go through `AgentService.acceptSignals`
 * (durable before a transmitter hears 202), subjects come from the subject index, audit lines go to
 * the store.
 *
 * Signals are committed in groups: everything SETs handed over within one turn of the event loop
 * is written with one transaction each for results, audit lines and jobs, and each policy gets one
 * evaluation job for all its subjects. Under load a turn brings many pushes, so a commit serves many
 * of them; when quiet, a SET waits for nothing but its own commit.
 */
import type { SsfHost, SsfSignal, SsfSignalOutcome } from "../signals/ssf/host.ts";
import type { StateStore } from "../store/contract.ts";
import type { VigilMetrics } from "../telemetry/metrics.ts";
import type { AgentService } from "./service.ts";
import type { SubjectIndex } from "./subjects.ts";

/** Most signals one commit takes; a larger backlog is split. */
const MAX_GROUP = 1000;

interface Waiting {
  readonly signals: readonly SsfSignal[];
  resolve(outcomes: SsfSignalOutcome[]): void;
  reject(err: unknown): void;
}

export function ssfHost(deps: { readonly service: AgentService; readonly index: SubjectIndex; readonly store: StateStore; readonly metrics: VigilMetrics }): SsfHost {
  const waiting: Waiting[] = [];
  let scheduled = false;

  const flush = async (): Promise<void> => {
    scheduled = false;
    const group: Waiting[] = [];
    let size = 0;
    while (waiting.length > 0 && (group.length === 0 || size + waiting[0]!.signals.length <= MAX_GROUP)) {
      const w = waiting.shift()!;
      group.push(w);
      size += w.signals.length;
    }
    if (waiting.length > 0) schedule();
    try {
      const outcomes = await deps.service.acceptSignals(group.flatMap((w) => w.signals));
      let at = 0;
      for (const w of group) {
        const mine = outcomes.slice(at, at + w.signals.length).map((o, i): SsfSignalOutcome => {
          if ("error" in o) return { accepted: false, reason: o.error.message };
          deps.metrics.signal(w.signals[i]!.check, "accepted");
          return { accepted: true };
        });
        at += w.signals.length;
        w.resolve(mine);
      }
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => void flush());
  };

  return {
    acceptSignals(signals) {
      if (signals.length === 0) return Promise.resolve([]);
      return new Promise<SsfSignalOutcome[]>((resolve, reject) => {
        waiting.push({ signals, resolve, reject });
        schedule();
      });
    },
    subjects: { all: () => deps.index.all(), version: () => deps.index.version },
    async audit(events) {
      await deps.store.appendAudit(events);
    },
  };
}

