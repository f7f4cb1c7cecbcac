/**
 * One evaluation pass outside the daemon, for `check` and `explain`: the same evaluator, on an
 * in-memory store seeded (read-only use) from the agent's data when it exists, so pushed signals
 * and hysteresis history count, and nothing is written back or enforced.
 */
import { resolve } from "node:path";
import type { LoadedConfig } from "../config/load.ts";
import { Runtime } from "../engine/runtime.ts";
import { SubjectIndex } from "../engine/subjects.ts";
import { Evaluator, type Evaluated } from "../engine/evaluator.ts";
import { MemoryStore } from "../store/memory.ts";
import { openDatabase } from "../db/sqlite.ts";
import { EmbeddedStore } from "../store/embedded.ts";
import { noopMetrics } from "../telemetry/metrics.ts";
import type { Subject } from "../policy/model.ts";
import { cliContext, dbPath } from "./common.ts";

export interface OneShot {
  readonly runtime: Runtime;
  readonly index: SubjectIndex;
  readonly store: MemoryStore;
  evaluate(policy: string, ids: readonly string[]): Promise<Evaluated[]>;
  close(): Promise<void>;
}

export async function oneShot(config: LoadedConfig, options: { seed?: boolean } = {}): Promise<OneShot> {
  const ctx = cliContext(config);
  const runtime = new Runtime(config, ctx);
  const index = new SubjectIndex(runtime.inventories, ctx.logger, { labels: config.inventories.map((inv, i) => `${i}:${inv.type}`) });
  await index.refresh();
  const store = new MemoryStore();
  if (options.seed !== false && dbPath(config)) await seedFrom(config, store, [...index.all()], runtime);
  const evaluator = new Evaluator({ store, index, metrics: noopMetrics(), ctx, runtime });
  return {
    runtime,
    index,
    store,
    evaluate: (policy, ids) => evaluator.evaluate(policy, ids, { pull: "always", trigger: "cli" }),
    close: async () => {
      await runtime.stop();
      await ctx.http.close();
    },
  };
}

async function seedFrom(config: LoadedConfig, store: MemoryStore, subjects: Subject[], runtime: Runtime): Promise<void> {
  const db = openDatabase(resolve(config.raw.agent.data_dir));
  try {
    const agentStore = new EmbeddedStore(db, resolve(config.raw.agent.data_dir), {});
    await store.putStates(await agentStore.listStates());
    const checks = [...new Set(runtime.policies.flatMap((p) => p.checks))];
    await store.putResults(await agentStore.getResults(subjects.map((s) => s.id), checks));
  } finally {
    db.close();
  }
}
