/**
 * Resolves in a later turn of the event loop (a `setImmediate` task, after pending I/O), not in a
 * microtask: long work awaits it between slices so requests, signals and timers are not kept waiting.
 */
export function yieldToLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
