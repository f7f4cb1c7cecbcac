/** A scan shared by everyone who asks while it is young enough, and a failure held, not retried by every caller. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SharedScan } from "../../../src/sources/common/scan.ts";
import { withRetries } from "../../../src/sources/common/retry.ts";
import { SharedResources } from "../../../src/plugin/shared.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { FakeClock } from "../../../src/util/clock.ts";

const signal = () => AbortSignal.timeout(5_000);

test("callers during a scan join it; callers within maxAge reuse it; older asks scan again", async () => {
  const clock = new FakeClock(0);
  let scans = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const scan = new SharedScan(async () => {
    scans++;
    await gate;
    return scans;
  }, { clock, scanTimeoutMs: 5_000 });
  const a = scan.get(1_000, signal());
  const b = scan.get(1_000, signal());
  release();
  assert.deepEqual([(await a).value, (await b).value], [1, 1]);
  clock.advance(900);
  assert.equal((await scan.get(1_000, signal())).value, 1);
  clock.advance(200);
  assert.equal((await scan.get(1_000, signal())).value, 2);
  assert.equal(scan.scans, 2);
});

test("a transient failure is held for at least failureHoldMs (or the server's hint); a permanent one for permanentHoldMs", async () => {
  const clock = new FakeClock(0);
  let calls = 0;
  let error: unknown = new UpstreamError(true, "503", { retryAfterMs: 45_000 });
  const scan = new SharedScan(async () => {
    calls++;
    throw error;
  }, { clock, scanTimeoutMs: 5_000, failureHoldMs: 30_000, permanentHoldMs: 300_000 });
  await assert.rejects(scan.get(0, signal()), /503/);
  clock.advance(40_000);
  await assert.rejects(scan.get(0, signal()), /503/);
  assert.equal(calls, 1, "Retry-After 45 s outlasts the 30 s hold");
  clock.advance(6_000);
  error = new UpstreamError(false, "403");
  await assert.rejects(scan.get(0, signal()), /403/);
  assert.equal(calls, 2);
  clock.advance(299_000);
  await assert.rejects(scan.get(0, signal()), /403/);
  assert.equal(calls, 2);
});

test("a caller whose deadline ends stops waiting; the scan goes on and serves the next caller", async () => {
  const clock = new FakeClock(0);
  let finish!: (v: string) => void;
  const scan = new SharedScan(() => new Promise<string>((r) => (finish = r)), { clock, scanTimeoutMs: 5_000 });
  const gaveUp = AbortSignal.timeout(20);
  await assert.rejects(scan.get(1_000, gaveUp), (err: unknown) => err instanceof UpstreamError && err.transient);
  finish("done");
  assert.equal((await scan.get(1_000, signal())).value, "done");
  assert.equal(scan.scans, 1);
});

test("retries stop at the deadline and never retry a permanent failure", async () => {
  let n = 0;
  await assert.rejects(
    withRetries(async () => {
      n++;
      throw new UpstreamError(false, "400");
    }, { signal: signal(), deadline: Date.now() + 10_000 }),
    /400/,
  );
  assert.equal(n, 1);
  n = 0;
  const started = Date.now();
  await assert.rejects(
    withRetries(async () => {
      n++;
      throw new UpstreamError(true, "503");
    }, { signal: signal(), deadline: Date.now() + 1_200, policy: { attempts: 10, delay: 200, max_delay: 400 } }),
    /503/,
  );
  assert.ok(n >= 2 && Date.now() - started < 1_500, `${n} tries in ${Date.now() - started} ms`);
});

test("shared resources: one value per key while held; released by its last holder; a new one after", () => {
  const shared = new SharedResources();
  let made = 0;
  let disposed = 0;
  const make = () => ({ n: ++made });
  const a = shared.acquire("k", make, () => disposed++);
  const b = shared.acquire("k", make, () => disposed++);
  assert.equal(a.value, b.value);
  a.release();
  a.release();
  assert.equal(disposed, 0, "b still holds it");
  const c = shared.acquire("k", make);
  assert.equal(c.value, a.value, "a reload's new holder takes over before the old one lets go");
  b.release();
  c.release();
  assert.equal(disposed, 1);
  assert.equal(shared.size, 0);
  assert.notEqual(shared.acquire("k", make).value, a.value);
});
