/**
 * A directory kept in memory and brought up to date incrementally: every record by id, an index by
 * the keys subjects name them with (id, login, e-mail; built on first use after a change), and a
 * version that grows with every change so whoever built something from it knows when to rebuild.
 */
import type { Reader } from "../common/read.ts";

export class Directory<T extends { readonly id: string }> {
  #items = new Map<string, T>();
  #index: Map<string, T> | undefined;
  readonly #keys: (item: T) => readonly string[];
  /** Grows with every change. */
  version = 0;

  constructor(keys: (item: T) => readonly string[]) {
    this.#keys = keys;
  }

  get size(): number {
    return this.#items.size;
  }

  get(id: string): T | undefined {
    return this.#items.get(id);
  }

  values(): IterableIterator<T> {
    return this.#items.values();
  }

  /** The record any of these lower-cased keys names (id first, then login and e-mail). */
  find(keys: readonly string[]): T | undefined {
    for (const k of keys) {
      const hit = this.#items.get(k);
      if (hit) return hit;
    }
    if (!this.#index) {
      const index = new Map<string, T>();
      for (const item of this.#items.values()) for (const k of this.#keys(item)) if (!index.has(k)) index.set(k, item);
      this.#index = index;
    }
    for (const k of keys) {
      const hit = this.#index.get(k);
      if (hit) return hit;
    }
    return undefined;
  }

  set(item: T): void {
    this.#items.set(item.id, item);
    this.#changed();
  }

  delete(id: string): void {
    if (this.#items.delete(id)) this.#changed();
  }

  /** Replaces every record (a full listing). */
  replace(items: Map<string, T>): void {
    this.#items = items;
    this.#changed();
  }

  #changed(): void {
    this.#index = undefined;
    this.version++;
  }
}

/** An optional nested object of an answer: absent and null read as undefined. */
export function optObject(r: Reader, o: Record<string, unknown>, key: string, path: string): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  return r.object(v, `${path}.${key}`);
}

/** An optional list of strings; other items are refused. */
export function optStrings(r: Reader, o: Record<string, unknown>, key: string, path: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  const list = r.array(v, `${path}.${key}`);
  return list.map((x, i) => {
    if (typeof x !== "string") r.fail(`${path}.${key}[${i}]`, "expected a string");
    return x;
  });
}
