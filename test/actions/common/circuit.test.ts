import { test } from "node:test";
import assert from "node:assert/strict";
import { CircuitBreaker, circuitSchema, type CircuitState } from "../../../src/plugin/circuit.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { FakeClock } from "../../../src/util/clock.ts";

const transient = () => Promise.reject(new UpstreamError(true, "503", { status: 503 }));
const permanent = () => Promise.reject(new UpstreamError(false, "403", { status: 403 }));
const ok = () => Promise.resolve("ok");

async function settle(p: Promise<unknown>): Promise<unknown> {
  try {
    return await p;
  } catch (err) {
    return err;
  }
}

test("opens after `failures` transient failures in a row and then fails fast with the time left", async () => {
  const clock = new FakeClock();
  const changes: CircuitState[] = [];
  const b = new CircuitBreaker("okta", clock, { failures: 3, open_for: 30_000 }, (s) => changes.push(s));
  let calls = 0;
  const counted = () => (calls++, transient());
  for (let i = 0; i < 3; i++) await settle(b.run(counted));
  assert.equal(b.state, "open");
  assert.deepEqual(changes, ["open"]);
  clock.advance(10_000);
  const err = (await settle(b.run(counted))) as UpstreamError;
  assert.equal(calls, 3, "an open circuit does not reach the API");
  assert.ok(err instanceof UpstreamError && err.transient, "fails transient so the queue retries later");
  assert.equal(err.retryAfterMs, 20_000);
  assert.match(err.message, /circuit open/);
});

test("permanent errors do not count: the API answered", async () => {
  const b = new CircuitBreaker("aws", new FakeClock(), { failures: 2 });
  for (let i = 0; i < 10; i++) await settle(b.run(permanent));
  assert.equal(b.state, "closed");
});

test("a success resets the run of failures", async () => {
  const b = new CircuitBreaker("aws", new FakeClock(), { failures: 3 });
  await settle(b.run(transient));
  await settle(b.run(transient));
  await b.run(ok);
  await settle(b.run(transient));
  await settle(b.run(transient));
  assert.equal(b.state, "closed");
});

test("half-open lets one trial through; success closes, failure reopens for twice as long", async () => {
  const clock = new FakeClock();
  const b = new CircuitBreaker("entra", clock, { failures: 1, open_for: 1_000, max_open_for: 3_000 });
  await settle(b.run(transient));
  assert.equal(b.state, "open");
  clock.advance(1_000);
  assert.equal(b.state, "half_open");
  // The trial fails: open again, now for 2 s.
  await settle(b.run(transient));
  assert.equal(b.state, "open");
  clock.advance(1_999);
  assert.equal(b.state, "open");
  clock.advance(1);
  // While the trial is in flight, other calls are refused.
  let release!: () => void;
  const trial = b.run(() => new Promise<string>((r) => (release = () => r("ok"))));
  const concurrent = (await settle(b.run(ok))) as UpstreamError;
  assert.ok(concurrent instanceof UpstreamError && concurrent.transient);
  release();
  assert.equal(await trial, "ok");
  assert.equal(b.state, "closed");
  // The open period starts over from open_for after a close.
  await settle(b.run(transient));
  clock.advance(1_000);
  assert.equal(b.state, "half_open");
});

test("the open period is capped by max_open_for", async () => {
  const clock = new FakeClock();
  const b = new CircuitBreaker("vault", clock, { failures: 1, open_for: 1_000, max_open_for: 2_500 });
  await settle(b.run(transient));
  for (const wait of [1_000, 2_000, 2_500, 2_500]) {
    clock.advance(wait - 1);
    assert.equal(b.state, "open", `still open before ${wait} ms`);
    clock.advance(1);
    await settle(b.run(transient));
  }
});

test("circuitSchema: defaults and durations", () => {
  assert.deepEqual(circuitSchema.parse(undefined), { failures: 5, open_for: 30_000, max_open_for: 300_000 });
  assert.deepEqual(circuitSchema.parse({ failures: 2, open_for: "5s", max_open_for: "1m" }), { failures: 2, open_for: 5_000, max_open_for: 60_000 });
  assert.equal(circuitSchema.safeParse({ open_for: "soon" }).success, false);
  assert.equal(circuitSchema.safeParse({ extra: 1 }).success, false);
});

test("a call admitted before the circuit opened is not taken for the half-open trial", async () => {
  const clock = new FakeClock();
  const changes: CircuitState[] = [];
  const b = new CircuitBreaker("okta", clock, { failures: 1, open_for: 1_000 }, (s) => changes.push(s));
  // A slow call admitted while closed, still in flight when the circuit opens and half-opens.
  let failOld!: () => void;
  const old = settle(b.run(() => new Promise<string>((_, reject) => (failOld = () => reject(new UpstreamError(true, "timeout"))))));
  await settle(b.run(transient));
  assert.equal(b.state, "open");
  clock.advance(1_000);
  let release!: () => void;
  const trial = b.run(() => new Promise<string>((r) => (release = () => r("ok"))));
  assert.equal(b.state, "half_open");
  // The old call fails now: that is no verdict on the trial, which is still in flight.
  failOld();
  await old;
  assert.equal(b.state, "half_open", "the old call's failure reopened the circuit as if the trial had failed");
  let reached = false;
  const second = (await settle(b.run(() => ((reached = true), ok())))) as UpstreamError;
  assert.ok(second instanceof UpstreamError && /circuit open/.test(second.message) && !reached, "a second trial went through while the first was in flight");
  release();
  assert.equal(await trial, "ok");
  assert.equal(b.state, "closed");
  assert.deepEqual(changes, ["open", "half_open", "closed"]);
});
