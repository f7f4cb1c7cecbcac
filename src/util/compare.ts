/**
 * Orders strings by UTF-16 code unit, as `Array.prototype.sort` does without a comparator: for
 * sorting by several keys in memory the way the stores' tables and scans order them.
 */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
