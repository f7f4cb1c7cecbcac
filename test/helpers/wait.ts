/** Polls `pred` every 20 ms until it holds; throws after `ms`. */
export async function until(pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Resolves on the next turn of the event loop, after every promise continuation already queued has
 * run. Code that does no I/O and sets no timer (in-memory stores, fake plugins, locks) has then done
 * all it can without outside input, so a test may assert that something did not happen.
 */
export function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
