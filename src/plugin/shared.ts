/**
 * Values several plugins of one agent share, such as the device list an inventory and a check read
 * from the same source: whoever asks first fetches, everyone else reuses it ("one fetch shared by the
 * inventory and the check").
 *
 * An entry lives while at least one plugin holds it. A reload creates the new plugins before it stops
 * the old ones, so an entry whose configuration did not change carries over with its cached data, and
 * one that did (or is no longer used) is dropped as soon as its last holder lets go: nothing grows
 * with the number of reloads.
 */

/** A hold on a shared value; `release()` once when the holder stops (idempotent). */
export interface Lease<T> {
  readonly value: T;
  release(): void;
}

interface Entry {
  readonly value: unknown;
  holders: number;
  readonly dispose: ((value: unknown) => void) | undefined;
}

export class SharedResources {
  readonly #entries = new Map<string, Entry>();

  /**
   * The value under `key`, made with `create` when nobody holds one. The key must determine the
   * value's type: start it with the kind of thing it names (`device-source:…`), and derive the rest
   * from everything that changes what the value fetches. `dispose` runs when the last holder releases.
   */
  acquire<T>(key: string, create: () => T, dispose?: (value: T) => void): Lease<T> {
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { value: create(), holders: 0, dispose: dispose as ((value: unknown) => void) | undefined };
      this.#entries.set(key, entry);
    }
    entry.holders++;
    const held = entry;
    let released = false;
    return {
      value: held.value as T,
      release: () => {
        if (released) return;
        released = true;
        if (--held.holders > 0 || this.#entries.get(key) !== held) return;
        this.#entries.delete(key);
        held.dispose?.(held.value);
      },
    };
  }

  /** Entries held now, for tests and diagnostics. */
  get size(): number {
    return this.#entries.size;
  }
}

/** `ctx.shared` when the engine provides one; otherwise a store of the caller's own (nothing shared). */
export function sharedOrOwn(shared: SharedResources | undefined): SharedResources {
  return shared ?? new SharedResources();
}
