import type { Subject } from "../policy/model.ts";
import type { Inventory } from "../plugin/inventory.ts";
import type { Logger } from "../telemetry/log.ts";
import { errorMessage } from "../errors.ts";

/**
 * All subjects the inventories know, by id. A failing inventory keeps its last good list, so a
 * flaky source never makes subjects vanish (which would drop them to the default rule).
 */
export class SubjectIndex {
  #byId = new Map<string, Subject>();
  #lastGood: (Subject[] | undefined)[] = [];
  #inventories: readonly Inventory[];
  readonly #logger: Logger;
  #refreshing: Promise<void> | undefined;
  #generation = 0;
  #version = 0;

  constructor(inventories: readonly Inventory[], logger: Logger) {
    this.#inventories = inventories;
    this.#logger = logger;
  }

  /**
   * Swaps the inventories (config reload); the next refresh reads them. With `sameSources` (the
   * inventory config did not change) the last good lists carry over, so an inventory failing
   * right at the reload does not empty the index.
   */
  replace(inventories: readonly Inventory[], sameSources = false): void {
    this.#inventories = inventories;
    if (!sameSources) this.#lastGood = [];
    // A refresh still listing the old inventories is neither joined nor allowed to land.
    this.#generation++;
    this.#refreshing = undefined;
  }

  /**
   * Re-reads every inventory. Policies sharing an interval tick at the same instant: refreshes
   * asked for while one is running share it rather than listing every inventory again.
   */
  refresh(timeoutMs = 30_000): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    const run = this.#refresh(timeoutMs).finally(() => {
      if (this.#refreshing === run) this.#refreshing = undefined;
    });
    this.#refreshing = run;
    return run;
  }

  async #refresh(timeoutMs: number): Promise<void> {
    const generation = this.#generation;
    const lastGood = this.#lastGood;
    const lists = await Promise.all(
      this.#inventories.map(async (inv, i) => {
        try {
          const list = await inv.list(AbortSignal.timeout(timeoutMs));
          lastGood[i] = list;
          return list;
        } catch (err) {
          this.#logger.error({ err, inventory: i }, `inventory ${i} failed; keeping its last good list: ${errorMessage(err)}`);
          return lastGood[i] ?? [];
        }
      }),
    );
    if (generation !== this.#generation) return;
    const next = new Map<string, Subject>();
    for (const list of lists) {
      for (const s of list) {
        if (next.has(s.id)) this.#logger.warn({ subject: s.id }, "subject listed by more than one inventory; the first wins");
        else next.set(s.id, s);
      }
    }
    this.#byId = next;
    this.#version++;
  }

  /** Changes whenever the set of subjects is replaced, so lookups built over it know to rebuild. */
  get version(): number {
    return this.#version;
  }

  get(id: string): Subject | undefined {
    return this.#byId.get(id);
  }

  all(): IterableIterator<Subject> {
    return this.#byId.values();
  }

  get size(): number {
    return this.#byId.size;
  }
}
