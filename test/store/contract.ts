/**
 * The StateStore contract as one suite, run against each implementation (embedded SQLite and the
 * audit file, Redis) by the files that import it. A backend gives fresh backing per test and store
 * instances on it (a second one stands for a restart, or another replica), and verifies the audit
 * chain the way `vigil audit verify` does for that backend.
 */
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import type { AccessLevel, CheckResult } from "../../src/policy/model.ts";
import type { StateStore, StoredState } from "../../src/store/contract.ts";
import { FakeClock } from "../../src/util/clock.ts";

export interface StoreEnv {
  /** A store on this test's backing, not started. */
  store(options?: { clock?: FakeClock; maxStreams?: number; onStreamsDropped?: (check: string, n: number) => void }): StateStore;
  /** The audit chain checked as `vigil audit verify` checks it, against the recorded head. */
  verify(): Promise<{ ok: boolean; entries: number; problems: readonly { problem: string }[] }>;
}

export interface StoreBackend {
  readonly name: string;
  readonly skip?: string | undefined;
  setup(t: TestContext): Promise<StoreEnv>;
}

export function state(policy: string, subject: string, o: { generation?: number; enforced?: number; access?: AccessLevel } = {}): StoredState {
  const generation = o.generation ?? 1;
  return {
    decision: {
      policy,
      subject,
      access: o.access ?? "full_access",
      risk: "low",
      reasons: [{ code: "ok", message: "all checks pass" }],
      generation,
      decided_at: 1_000,
      evidence: { mfa: { status: "pass" } },
      exempt: false,
    },
    candidate: o.access ?? "full_access",
    streak: 1,
    changed_at: 1_000,
    enforced_generation: o.enforced ?? generation,
    enforced_access: "full_access",
  };
}

export function result(subject: string, check: string, observed_at: number, o: Partial<CheckResult> = {}): CheckResult {
  return { check, subject, status: "pass", reasons: [], observed_at, expires_at: observed_at + 60_000, ...o };
}

const pushed = (stream: string, at: number, o: Partial<CheckResult> = {}): CheckResult => ({
  check: "anomaly_detection",
  subject: "u001",
  status: "fail",
  reasons: [{ code: "SIGNAL", message: "x".repeat(200) }],
  observed_at: at,
  expires_at: at + 60_000,
  source: "push",
  stream,
  ...o,
});

export function stateStoreContract(backend: StoreBackend): void {
  describe(`StateStore contract (${backend.name})`, { skip: backend.skip ?? false }, () => {
    /** A started store on fresh backing, stopped after the test. */
    async function started(t: TestContext, options: Parameters<StoreEnv["store"]>[0] = {}): Promise<{ env: StoreEnv; store: StateStore }> {
      const env = await backend.setup(t);
      const store = env.store({ clock: new FakeClock("2026-02-01T00:00:00Z"), ...options });
      await store.start();
      t.after(() => store.stop());
      return { env, store };
    }

    test("states are written and read back, singly, in batches and by filter", async (t) => {
      const { store } = await started(t);
      const many = Array.from({ length: 1_200 }, (_, i) => state("prod", `s${i}`));
      await store.putStates([...many, state("dev", "s1", { access: "read_only" })]);

      assert.deepEqual(await store.getState("prod", "s7"), many[7]);
      assert.equal(await store.getState("prod", "missing"), undefined);
      assert.equal((await store.getState("dev", "s1"))?.decision.access, "read_only");

      // More subjects than one IN list holds, with duplicates and unknown ones.
      const wanted = [...Array.from({ length: 1_100 }, (_, i) => `s${i}`), "s5", "nobody"];
      const got = await store.getStates("prod", wanted);
      assert.equal(got.size, 1_100);
      assert.deepEqual(got.get("s1099"), many[1_099]);
      assert.equal(got.has("nobody"), false);

      assert.equal((await store.listStates()).length, 1_201);
      assert.equal((await store.listStates({ policy: "dev" })).length, 1);
      assert.deepEqual(
        (await store.listStates({ subject: "s1" })).map((s) => s.decision.policy),
        ["dev", "prod"],
      );
      assert.equal((await store.listStates({ policy: "dev", subject: "s2" })).length, 0);

      await store.putStates([state("prod", "s7", { generation: 2, access: "deny", enforced: 1 })]);
      assert.equal((await store.getState("prod", "s7"))?.decision.access, "deny");
      assert.deepEqual(await store.countByAccess(), { dev: { read_only: 1 }, prod: { deny: 1, full_access: 1_199 } });
    });

    test("unenforced lists states ahead of enforcement until markEnforced catches up", async (t) => {
      const { store } = await started(t);
      await store.putStates([
        state("p", "a", { generation: 1, enforced: 1 }),
        state("p", "b", { generation: 2, enforced: 1, access: "deny" }),
        state("p", "c", { generation: 3, enforced: 0, access: "read_only" }),
      ]);
      assert.deepEqual(
        (await store.unenforced()).map((s) => s.decision.subject),
        ["b", "c"],
      );

      await store.markEnforced("p", "b", 2, "deny");
      assert.deepEqual(
        (await store.unenforced()).map((s) => s.decision.subject),
        ["c"],
      );
      const b = await store.getState("p", "b");
      assert.equal(b?.enforced_generation, 2);
      assert.equal(b?.enforced_access, "deny");
      assert.equal(b?.decision.reasons[0]?.code, "ok", "the rest of the stored JSON is kept");

      // An older generation arriving late does not move enforcement backwards.
      await store.markEnforced("p", "b", 1, "full_access");
      assert.equal((await store.getState("p", "b"))?.enforced_access, "deny");

      // A new decision makes the state unenforced again.
      await store.putStates([{ ...state("p", "b", { generation: 3, access: "full_access" }), enforced_generation: 2, enforced_access: "deny" }]);
      assert.deepEqual(
        (await store.unenforced()).map((s) => s.decision.subject),
        ["b", "c"],
      );
    });

    test("unsettled lists the states whose access differs from the access last enforced", async (t) => {
      const { store } = await started(t);
      await store.putStates([
        { ...state("p", "a", { access: "deny" }), enforced_access: "full_access" },
        { ...state("p", "b", { access: "deny" }), enforced_access: "deny" },
        { ...state("q", "a", { access: "read_only" }), enforced_access: "deny" },
        state("p", "c"),
      ]);
      assert.deepEqual((await store.unsettled()).map((s) => `${s.decision.policy}/${s.decision.subject}`), ["p/a", "q/a"]);
      await store.markEnforced("p", "a", 1, "deny");
      assert.deepEqual((await store.unsettled()).map((s) => `${s.decision.policy}/${s.decision.subject}`), ["q/a"]);
      assert.deepEqual((await store.unsettled())[0], { ...state("q", "a", { access: "read_only" }), enforced_access: "deny" });
    });

    test("the newest result per subject, check and source wins", async (t) => {
      const { store } = await started(t);
      await store.putResults([result("s1", "mfa", 100), result("s1", "mfa", 100, { source: "push", status: "fail" }), result("s2", "mfa", 100)]);
      await store.putResults([result("s1", "mfa", 50, { status: "fail" })]);
      assert.equal((await store.getResults(["s1"], ["mfa"])).find((r) => r.source === undefined)?.status, "pass", "an older result replaced a newer one");
      await store.putResults([result("s1", "mfa", 200, { status: "warn" }), result("s1", "device", 10)]);

      const got = await store.getResults(["s1"], ["mfa"]);
      assert.equal(got.length, 2);
      assert.deepEqual(got.map((r) => [r.source ?? "pull", r.status, r.observed_at]).sort(), [
        ["pull", "warn", 200],
        ["push", "fail", 100],
      ]);
      assert.equal((await store.getResults(["s1", "s2", "s3"], ["mfa", "device"])).length, 4);
      assert.deepEqual(await store.getResults([], ["mfa"]), []);
    });

    test("pushed streams per (subject, check) are capped, oldest dropped first and counted", async (t) => {
      const dropped: [string, number][] = [];
      const { store } = await started(t, { maxStreams: 64, onStreamsDropped: (check, n) => dropped.push([check, n]) });
      for (let i = 0; i < 500; i += 50) await store.putResults(Array.from({ length: 50 }, (_, k) => pushed(`s${i + k}`, 1_000 + i + k)));
      const kept = await store.getResults(["u001"], ["anomaly_detection"]);
      assert.equal(kept.length, 64);
      assert.deepEqual(new Set(kept.map((r) => r.stream)), new Set(Array.from({ length: 64 }, (_, k) => `s${436 + k}`)), "the newest 64 streams stay");
      assert.equal(dropped.reduce((a, [, n]) => a + n, 0), 436);
      assert.ok(dropped.every(([check]) => check === "anomaly_detection"));
      // Pull results and another subject's streams are not touched.
      await store.putResults([pushed("x", 5_000, { subject: "u002" }), { ...pushed("", 5_000), source: "pull", stream: undefined } as CheckResult]);
      assert.equal((await store.getResults(["u001", "u002"], ["anomaly_detection"])).length, 66);
    });

    test("results that expired before the horizon are pruned, a bounded number at a time", async (t) => {
      const { store } = await started(t);
      await store.putResults(Array.from({ length: 30 }, (_, k) => pushed(`old${k}`, 1_000, { expires_at: 2_000 + k })));
      await store.putResults([pushed("fresh", 9_000, { expires_at: 100_000 })]);
      assert.equal(await store.pruneResults(50_000, 20), 20, "one slice of 20 rows, all expired");
      assert.equal(await store.pruneResults(50_000, 20), 10, "the rest: 10 expired, the fresh one stays");
      assert.equal(await store.pruneResults(50_000, 20), 0, "nothing more");
      assert.deepEqual((await store.getResults(["u001"], ["anomaly_detection"])).map((r) => r.stream), ["fresh"]);
    });

    test("pulled results are pruned by check, a bounded number at a time, and fresh ones stay", async (t) => {
      const { store } = await started(t);
      // Thirty subjects with an expired mfa result; a and b also have a device result, fresh for a.
      await store.putResults(Array.from({ length: 30 }, (_, k) => result(`s${String(k).padStart(2, "0")}`, "mfa", 1_000, { expires_at: 2_000 })));
      await store.putResults([result("s00", "device", 9_000, { expires_at: 100_000 }), result("s01", "device", 1_000, { expires_at: 2_000 })]);
      const pruned = [await store.pruneResults(50_000, 20), await store.pruneResults(50_000, 20), await store.pruneResults(50_000, 20)];
      assert.ok(pruned.every((n) => n <= 20), `at most the limit each time: ${pruned.join(", ")}`);
      assert.equal(pruned.reduce((a, b) => a + b, 0), 31, "every expired one, once");
      assert.equal(await store.pruneResults(50_000, 20), 0, "nothing more");
      const left = await store.getResults(Array.from({ length: 30 }, (_, k) => `s${String(k).padStart(2, "0")}`), ["mfa", "device"]);
      assert.deepEqual(left.map((r) => [r.subject, r.check]), [["s00", "device"]]);
      // One subject's expired results beyond the limit: the limit holds, the rest go next time.
      await store.putResults(["a", "b", "c", "d"].map((c) => result("z", c, 1_000, { expires_at: 2_000 })));
      assert.deepEqual([await store.pruneResults(50_000, 3), await store.pruneResults(50_000, 3), await store.pruneResults(50_000, 3)], [3, 1, 0]);
      assert.deepEqual(await store.getResults(["z"], ["a", "b", "c", "d"]), []);
    });

    test("a read between writes does not bring back what a write, a prune or a forget removed", async (t) => {
      const { store } = await started(t);
      const checksOf = async (subject: string) => (await store.getResults([subject], ["mfa", "device", "location"])).map((r) => r.check);
      // Read (nothing there), another write, then this one: both stay.
      assert.deepEqual(await checksOf("s"), []);
      await store.putResults([result("s", "device", 100)]);
      await store.putResults([result("s", "mfa", 100)]);
      assert.deepEqual(await checksOf("s"), ["device", "mfa"]);
      // Read, prune the expired one, write another: the pruned one stays gone.
      await store.putResults([result("p", "mfa", 1, { expires_at: 2 }), result("p", "device", 1, { expires_at: 1_000_000 })]);
      assert.deepEqual(await checksOf("p"), ["device", "mfa"]);
      assert.equal(await store.pruneResults(50), 1);
      await store.putResults([result("p", "location", 5)]);
      assert.deepEqual(await checksOf("p"), ["device", "location"]);
      // Read, forget the subject, write again: only the new result.
      await store.putStates([state("x", "f")]);
      await store.putResults([result("f", "mfa", 1)]);
      assert.deepEqual(await checksOf("f"), ["mfa"]);
      await store.forgetSubjects(["f"]);
      await store.putResults([result("f", "device", 2)]);
      assert.deepEqual(await checksOf("f"), ["device"]);
    });

    test("forgetting subjects removes their states and results, and only theirs", async (t) => {
      const { store } = await started(t);
      await store.putStates([state("p", "a", { access: "deny" }), state("p", "b"), state("q", "a", { access: "read_only" })]);
      await store.putResults([result("a", "mfa", 1), result("b", "mfa", 1)]);
      assert.deepEqual((await store.stateSubjects()).sort(), ["a", "b"]);
      await store.forgetSubjects(["a", "nobody"]);
      assert.deepEqual(await store.stateSubjects(), ["b"]);
      assert.deepEqual((await store.listStates()).map((s) => `${s.decision.policy}/${s.decision.subject}`), ["p/b"]);
      assert.deepEqual(await store.getResults(["a", "b"], ["mfa"]), [result("b", "mfa", 1)]);
      assert.deepEqual(await store.countByAccess(), { p: { full_access: 1 } });
      assert.deepEqual(await store.unenforced(), []);
    });

    test("meta documents are kept, and updateMeta reads and writes in one step", async (t) => {
      const { store } = await started(t);
      assert.equal(await store.getMeta("guard:p"), undefined);
      await store.putMeta("guard:p", { recent: [1, 2], paused: false });
      assert.deepEqual(await store.getMeta("guard:p"), { recent: [1, 2], paused: false });
      const results = await Promise.all(
        Array.from({ length: 20 }, () => store.updateMeta("counter", (n) => ({ value: ((n as number | undefined) ?? 0) + 1, result: ((n as number | undefined) ?? 0) + 1 }))),
      );
      assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1), "each update saw the one before");
      assert.equal(await store.getMeta("counter"), 20);
    });

    test("audit entries are appended, read with filters and chained; another store continues the chain", async (t) => {
      const { env, store } = await started(t);
      const first = await store.appendAudit([
        { type: "decision", subject: "a", access: "deny" },
        { type: "action", subject: "a" },
        { type: "decision", subject: "b", access: "full_access" },
      ]);
      assert.deepEqual(
        first.map((e) => e.seq),
        [1, 2, 3],
      );
      assert.equal(first[1]?.prev, first[0]?.hash);
      assert.equal(first[0]?.ts, "2026-02-01T00:00:00.000Z");
      await store.appendAudit([{ type: "signal", subject: "b" }]);
      assert.deepEqual(await store.appendAudit([]), []);

      assert.deepEqual(
        (await store.readAudit()).map((e) => e.seq),
        [1, 2, 3, 4],
      );
      assert.deepEqual(
        (await store.readAudit({ type: "decision" })).map((e) => e["subject"]),
        ["a", "b"],
      );
      assert.deepEqual(
        (await store.readAudit({ subject: "b" })).map((e) => e.type),
        ["decision", "signal"],
      );
      assert.deepEqual(
        (await store.readAudit({ after: 2 })).map((e) => e.seq),
        [3, 4],
      );
      assert.deepEqual(
        (await store.readAudit({ limit: 2 })).map((e) => e.seq),
        [3, 4],
      );
      assert.deepEqual(
        (await store.readAudit({ after: 1, limit: 2 })).map((e) => e.seq),
        [2, 3],
      );
      assert.deepEqual(
        (await store.readAudit({ subject: "a", type: "action" })).map((e) => e.seq),
        [2],
      );
      assert.deepEqual(await env.verify(), { ok: true, entries: 4, problems: [] });

      // A new store on the same data continues the chain.
      const fourth = (await store.readAudit({ after: 3 }))[0];
      await store.stop();
      const again = env.store({ clock: new FakeClock() });
      await again.start();
      const [next] = await again.appendAudit([{ type: "config_reloaded" }]);
      await again.stop();
      assert.equal(next?.seq, 5);
      assert.equal(next?.prev, fourth?.hash);
      assert.deepEqual((await env.verify()).ok, true);
    });

    test("recordEvaluation writes the results, the audit lines and the states of one evaluation", async (t) => {
      const { env, store } = await started(t);
      await store.recordEvaluation({
        results: [result("a", "mfa", 1_000), result("b", "mfa", 1_000, { status: "fail" })],
        audit: [
          { type: "decision", subject: "a", access: "full_access" },
          { type: "decision", subject: "b", access: "deny" },
        ],
        states: [state("p", "a"), state("p", "b", { access: "deny" })],
      });
      // Nothing decided: results and states only, no audit line.
      await store.recordEvaluation({ results: [result("a", "mfa", 2_000)], audit: [], states: [state("p", "a", { generation: 2 })] });
      assert.deepEqual(
        (await store.getResults(["a", "b"], ["mfa"])).map((r) => [r.subject, r.status, r.observed_at]),
        [
          ["a", "pass", 2_000],
          ["b", "fail", 1_000],
        ],
      );
      assert.deepEqual(
        (await store.listStates({ policy: "p" })).map((s) => [s.decision.subject, s.decision.access, s.decision.generation]),
        [
          ["a", "full_access", 2],
          ["b", "deny", 1],
        ],
      );
      assert.deepEqual(
        (await store.readAudit({ subject: "b" })).map((e) => [e.seq, e.type, e["access"]]),
        [[2, "decision", "deny"]],
      );
      assert.deepEqual(await env.verify(), { ok: true, entries: 2, problems: [] });
    });

    test("states survive a new store on the same data", async (t) => {
      const { env, store } = await started(t);
      await store.putStates([state("p", "x", { generation: 4, enforced: 3 })]);
      await store.stop();
      const reopened = env.store();
      await reopened.start();
      t.after(() => reopened.stop());
      assert.equal((await reopened.getState("p", "x"))?.decision.generation, 4);
      assert.equal((await reopened.unenforced()).length, 1);
    });
  });
}
