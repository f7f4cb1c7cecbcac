/**
 * Durable state a plugin keeps across restarts, e.g. what an anomaly detector has learned about a
 * series: small binary values under string keys, grouped in spaces, optionally tied to a subject
 * so they go when the subject leaves every inventory. The state store implements it (embedded
 * SQLite now; any backend later), so a plugin never knows which one holds its state.
 */

/** One value to write; `value: null` deletes the key. */
export interface KeyValueEntry {
  readonly key: string;
  readonly value: Uint8Array | null;
  /** The subject the value is about: it is removed with the subject's states and results. */
  readonly subject?: string;
}

export interface KeyValueStore {
  /** The values stored under these keys of `space`; keys without one are absent from the map. */
  getValues(space: string, keys: readonly string[]): Promise<Map<string, Uint8Array>>;
  /** Writes (or deletes) the entries in one atomic step, stamped with `updatedAt` (epoch ms). */
  putValues(space: string, entries: readonly KeyValueEntry[], updatedAt: number): Promise<void>;
  /** Keys of `space` that start with any of the prefixes, at most `limit` (default 10,000) per prefix. */
  listKeys(space: string, prefixes: readonly string[], limit?: number): Promise<string[]>;
  /** Removes up to `limit` values of `space` last written before `before`; returns how many. */
  pruneValues(space: string, before: number, limit?: number): Promise<number>;
}
