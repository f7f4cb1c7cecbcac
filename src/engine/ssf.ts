/**
 * The agent's side of the Shared Signals receiver: signals go through `AgentService.acceptSignal`
 * (durable before a transmitter hears 202), subjects come from the subject index, audit lines go to
 * the store.
 */
import type { SsfHost } from "../signals/ssf/host.ts";
import type { StateStore } from "../store/contract.ts";
import type { VigilMetrics } from "../telemetry/metrics.ts";
import type { AgentService } from "./service.ts";
import type { SubjectIndex } from "./subjects.ts";

export function ssfHost(deps: { readonly service: AgentService; readonly index: SubjectIndex; readonly store: StateStore; readonly metrics: VigilMetrics }): SsfHost {
  return {
    async acceptSignal(signal) {
      const accepted = await deps.service.acceptSignal(signal);
      deps.metrics.signal(signal.check, "accepted");
      return accepted;
    },
    subjects: { all: () => deps.index.all(), version: () => deps.index.version },
    async audit(events) {
      await deps.store.appendAudit(events);
    },
  };
}
