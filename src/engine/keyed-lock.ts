/**
 * Holds every key while `fn` runs. The engine locks (policy, subject) pairs for evaluation and
 * enforcement, and (policy, subject, action) triples for action jobs. `KeyedLock` is the
 * in-process one (embedded mode); cluster mode's holds the keys in Redis, across replicas.
 */
export interface Lock {
  run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>;
}

/**
 * Never two evaluations of one (policy, subject) at once: a job waits until none of its keys is
 * held, then claims them all in the same synchronous step.
 */
export class KeyedLock implements Lock {
  readonly #held = new Map<string, Promise<void>>();

  async run<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    for (;;) {
      const waits: Promise<void>[] = [];
      for (const k of keys) {
        const p = this.#held.get(k);
        if (p) waits.push(p);
      }
      if (waits.length === 0) break;
      await Promise.all(waits);
    }
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    for (const k of keys) this.#held.set(k, mine);
    try {
      return await fn();
    } finally {
      for (const k of keys) if (this.#held.get(k) === mine) this.#held.delete(k);
      release();
    }
  }

  get size(): number {
    return this.#held.size;
  }
}
