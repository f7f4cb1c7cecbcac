/**
 * Lookups keyed by user input (a label, a severity, a check or command name) read own properties
 * only: on a plain object, `record["constructor"]` is `Object` and `record["__proto__"]` its
 * prototype, which a bare `record[key]` would take for a configured value.
 */
export function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Sets `record[key]` as an own property, also when `key` is `__proto__` (which an assignment would take as the prototype). */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
