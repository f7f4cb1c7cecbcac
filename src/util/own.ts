/**
 * Lookups keyed by user input (a label, a severity, a check or command name) read own properties
 * only: on a plain object, `record["constructor"]` is `Object` and `record["__proto__"]` its
 * prototype, which a bare `record[key]` would take for a configured value.
 */
export function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/**
 * Sets `record[key]` as an own property, also when `key` is `__proto__` (which an assignment would
 * take as the prototype). Other keys are assigned: on a plain object that is the same own property,
 * and the copies that call this for every key (canonical JSON, the logger's masking) stay fast.
 */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}
