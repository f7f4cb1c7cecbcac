import type { Subject } from "../policy/model.ts";
import type { Inventory } from "../plugin/inventory.ts";
import type { Logger } from "../telemetry/log.ts";
import { errorMessage } from "../errors.ts";

/** How one inventory is doing, for readiness, metrics and `vigil check`. */
export interface InventoryStatus {
  /** `<index>:<type>` (or the index alone when the type is not known). */
  readonly label: string;
  /** It has listed successfully at least once. */
  readonly loaded: boolean;
  /** Its last listing failed (its last good list, if any, is in use). */
  readonly failing: boolean;
  /** Subjects in its current (or last good) list. */
  readonly subjects: number;
  readonly error?: string;
}

/** What the index tells its owner. Each hook runs synchronously after a refresh lands; it must not throw. */
export interface SubjectIndexHooks {
  /** An inventory's listing failed. `first`: it was fine (or never ran) before. */
  inventoryFailed?(label: string, error: string, kept: number, first: boolean): void;
  /** An inventory lists again after failing. */
  inventoryRecovered?(label: string): void;
  /** Subjects gone from every inventory, seen by a refresh in which every inventory listed successfully. */
  removed?(subjects: readonly Subject[]): void;
}

/** Subjects that left, kept a while so the work they leave behind (reverts) still knows them. */
const DEPARTED_MAX = 10_000;

/**
 * All subjects the inventories know, by id. A failing inventory keeps its last good list, so a
 * flaky source never makes subjects vanish (which would drop them to the default rule). Only a
 * refresh in which every inventory listed successfully can tell that a subject has really left.
 */
export class SubjectIndex {
  #byId = new Map<string, Subject>();
  #lastGood: (Subject[] | undefined)[] = [];
  #errors: (string | undefined)[] = [];
  #inventories: readonly Inventory[];
  #labels: readonly string[];
  readonly #logger: Logger;
  #refreshing: Promise<void> | undefined;
  #generation = 0;
  #version = 0;
  readonly #departed = new Map<string, Subject>();
  hooks: SubjectIndexHooks;

  constructor(inventories: readonly Inventory[], logger: Logger, options: { labels?: readonly string[]; hooks?: SubjectIndexHooks } = {}) {
    this.#inventories = inventories;
    this.#labels = options.labels ?? inventories.map((_, i) => String(i));
    this.#logger = logger;
    this.hooks = options.hooks ?? {};
  }

  /**
   * Swaps the inventories (config reload); the next refresh reads them. With `sameSources` (the
   * inventory config did not change) the last good lists carry over, so an inventory failing
   * right at the reload does not empty the index. `lists` (what a reload already read from the new
   * inventories, one per inventory) are taken as that read: the index holds their subjects at once,
   * with no second listing.
   */
  replace(inventories: readonly Inventory[], sameSources = false, options: { labels?: readonly string[]; lists?: readonly Subject[][] } = {}): void {
    this.#inventories = inventories;
    this.#labels = options.labels ?? inventories.map((_, i) => String(i));
    if (options.lists) this.#lastGood = [...options.lists];
    else if (!sameSources) this.#lastGood = [];
    if (!sameSources || options.lists) this.#errors = [];
    // A refresh still listing the old inventories is neither joined nor allowed to land.
    this.#generation++;
    this.#refreshing = undefined;
    if (options.lists) this.#take(options.lists.map((list) => ({ list })));
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
    const outcomes = await Promise.all(
      this.#inventories.map(async (inv, i): Promise<{ list: Subject[] } | { error: string }> => {
        try {
          return { list: await inv.list(AbortSignal.timeout(timeoutMs)) };
        } catch (err) {
          return { error: errorMessage(err) };
        }
      }),
    );
    if (generation !== this.#generation) return;
    this.#take(outcomes);
  }

  /** Takes one listing of every inventory (a list, or why it failed) as the current subjects. */
  #take(outcomes: readonly ({ list: Subject[] } | { error: string })[]): void {
    const lastGood = this.#lastGood;
    let complete = true;
    const lists = outcomes.map((o, i) => {
      const label = this.#labels[i] ?? String(i);
      if ("list" in o) {
        lastGood[i] = o.list;
        if (this.#errors[i] !== undefined) {
          this.#errors[i] = undefined;
          this.#logger.info({ inventory: label }, `inventory ${label} lists again`);
          this.hooks.inventoryRecovered?.(label);
        }
        return o.list;
      }
      complete = false;
      const first = this.#errors[i] === undefined;
      this.#errors[i] = o.error;
      const kept = lastGood[i]?.length ?? 0;
      this.#logger.error({ inventory: label, kept }, `inventory ${label} failed; keeping its last good list (${kept} subjects): ${o.error}`);
      this.hooks.inventoryFailed?.(label, o.error, kept, first);
      return lastGood[i] ?? [];
    });
    const next = new Map<string, Subject>();
    for (const list of lists) {
      for (const s of list) {
        if (next.has(s.id)) this.#logger.warn({ subject: s.id }, "subject listed by more than one inventory; the first wins");
        else next.set(s.id, s);
      }
    }
    const before = this.#byId;
    this.#byId = next;
    this.#version++;
    if (!complete) return;
    const removed: Subject[] = [];
    for (const [id, s] of before) if (!next.has(id)) removed.push(s);
    for (const s of removed) this.#depart(s);
    for (const id of next.keys()) this.#departed.delete(id);
    if (removed.length > 0) this.hooks.removed?.(removed);
  }

  #depart(s: Subject): void {
    this.#departed.delete(s.id);
    this.#departed.set(s.id, s);
    if (this.#departed.size > DEPARTED_MAX) {
      const oldest = this.#departed.keys().next().value;
      if (oldest !== undefined) this.#departed.delete(oldest);
    }
  }

  get(id: string): Subject | undefined {
    return this.#byId.get(id);
  }

  /** A subject that left every inventory lately (for the work it leaves behind, such as reverts). */
  departed(id: string): Subject | undefined {
    return this.#departed.get(id);
  }

  all(): IterableIterator<Subject> {
    return this.#byId.values();
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Grows each time a refresh lands (the subject list may have changed). */
  get version(): number {
    return this.#version;
  }

  /** Every inventory has listed successfully at least once. */
  get allLoaded(): boolean {
    return this.#inventories.every((_, i) => this.#lastGood[i] !== undefined);
  }

  status(): InventoryStatus[] {
    return this.#inventories.map((_, i) => {
      const error = this.#errors[i];
      return {
        label: this.#labels[i] ?? String(i),
        loaded: this.#lastGood[i] !== undefined,
        failing: error !== undefined,
        subjects: this.#lastGood[i]?.length ?? 0,
        ...(error === undefined ? {} : { error }),
      };
    });
  }
}

/**
 * Lists each inventory once (a reload's new inventories, before they replace the running ones).
 * Throws naming every inventory that failed.
 */
export async function listAll(inventories: readonly Inventory[], labels: readonly string[], timeoutMs = 30_000): Promise<Subject[][]> {
  const outcomes = await Promise.allSettled(inventories.map((inv) => inv.list(AbortSignal.timeout(timeoutMs))));
  const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [`inventory ${labels[i] ?? i}: ${errorMessage(o.reason)}`] : []));
  if (failed.length > 0) throw new Error(failed.join("; "));
  return outcomes.map((o) => (o as PromiseFulfilledResult<Subject[]>).value);
}
