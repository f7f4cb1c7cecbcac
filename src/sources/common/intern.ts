/**
 * One shared copy of the small values a scan repeats on every record (states, agents, versions,
 * platforms, countries): JSON.parse makes a new string for each, and a hundred thousand copies of
 * "compliant" add up. Bounded: past its size, values are kept as they come.
 */
const POOL = new Map<string, string>();

export function intern<T extends string | undefined>(s: T): T {
  if (s === undefined || s.length > 64) return s;
  const had = POOL.get(s);
  if (had !== undefined) return had as T;
  if (POOL.size < 4096) POOL.set(s, s);
  return s;
}

const LISTS = new Map<string, readonly string[]>();

/** One shared, frozen copy of a short list of short values (a sign-in's methods, say), bounded like `intern`. */
export function internList(list: readonly string[]): readonly string[] {
  const key = list.join("\u0000");
  const had = LISTS.get(key);
  if (had !== undefined) return had;
  const frozen = Object.freeze(list.map((x) => intern(x)));
  if (LISTS.size < 1024 && key.length <= 256) LISTS.set(key, frozen);
  return frozen;
}
