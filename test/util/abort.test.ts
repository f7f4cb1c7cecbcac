import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { raceAbort } from "../../src/util/abort.ts";

/** Rejections nobody handled while `fn` and the turns after it ran. */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => void seen.push(reason);
  process.on("unhandledRejection", listener);
  try {
    await fn();
    // Unhandled rejections are reported after the microtask queue drains.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("unhandledRejection", listener);
  }
  return seen;
}

describe("raceAbort", () => {
  it("settles as the work does while the signal stays quiet, and stops listening to it", async () => {
    const ctl = new AbortController();
    assert.equal(await raceAbort(Promise.resolve(7), ctl.signal), 7);
    await assert.rejects(raceAbort(Promise.reject(new Error("boom")), ctl.signal), /boom/);
    assert.equal(await raceAbort(Promise.resolve("no signal"), undefined), "no signal");
  });

  it("rejects with the reason as soon as the signal aborts, the work still pending", async () => {
    const ctl = new AbortController();
    const pending = raceAbort(new Promise<number>(() => undefined), ctl.signal, () => new Error("gave up"));
    ctl.abort();
    await assert.rejects(pending, /gave up/);
    const byDefault = new AbortController();
    const p = raceAbort(new Promise<number>(() => undefined), byDefault.signal);
    byDefault.abort(new Error("the signal's own reason"));
    await assert.rejects(p, /the signal's own reason/);
  });

  it("work that fails after the abort, or after an abort that came first, is no unhandled rejection", async () => {
    const seen = await unhandledDuring(async () => {
      const ctl = new AbortController();
      let fail!: (e: Error) => void;
      const late = raceAbort(new Promise<void>((_, reject) => (fail = reject)), ctl.signal, () => "aborted");
      ctl.abort();
      await assert.rejects(late, (e: unknown) => e === "aborted");
      fail(new Error("late failure"));

      const already = AbortSignal.abort();
      const early = raceAbort(Promise.reject(new Error("failure of work started anyway")), already, () => "aborted first");
      await assert.rejects(early, (e: unknown) => e === "aborted first");
    });
    assert.deepEqual(seen, []);
  });
});
