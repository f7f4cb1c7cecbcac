import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AgentProcess, TOKEN, tempConfig } from "../helpers/agent-process.ts";

const FOOTPRINT = fileURLToPath(new URL("../../src/cli/footprint.ts", import.meta.url));

/** V8's optimisation status bit for "has optimised code" (runtime-test.cc `OptimizationStatus::kOptimized`). */
const OPTIMIZED = 16;

/**
 * Runs `body` as an ES module in a fresh Node with V8's natives syntax (to read a function's
 * optimisation status) and synchronous optimisation (so a function is optimised by the time the
 * call that made it hot returns). Prints and returns what the module writes as its last line.
 */
function child(body: string, extraArgs: string[] = []): Record<string, number> {
  const source = `import * as footprint from ${JSON.stringify(FOOTPRINT)};
function hot(n) { let s = 0; for (let i = 0; i < n; i++) s = (s + i * 7) % 1000003; return s; }
const warm = () => { for (let k = 0; k < 3000; k++) hot(1000); return %GetOptimizationStatus(hot); };
${body}`;
  const r = spawnSync(process.execPath, ["--allow-natives-syntax", "--no-concurrent-recompilation", ...extraArgs, "--input-type=module", "-e", source], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, number>;
}

/** An agent on loopback with debug logging, one identity-perimeter policy and these inventories (YAML list items). */
function agentConfig(dir: string, inventories: string): string {
  return `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
  log_level: debug
inventories:${inventories}
identity_perimeter:
  require_location_check: false
`;
}

describe("the agent's start-up footprint (src/cli/footprint.ts)", () => {
  it("keeps the optimising compilers off while paused and brings them back when the loop is busy for a whole window", () => {
    const out = child(`
footprint.pauseOptimizingCompilers();
const paused = warm();
// From inside the running event loop: its utilisation is measured from there.
setImmediate(() => {
  footprint.settleAfterStart();
  const until = Date.now() + 300;
  while (Date.now() < until) {}
  setTimeout(() => console.log(JSON.stringify({ paused, resumed: warm() })), 150);
});
`);
    assert.equal(out["paused"]! & OPTIMIZED, 0, "optimised while paused");
    assert.equal(out["resumed"]! & OPTIMIZED, OPTIMIZED, "not optimised after a busy window");
  });

  it("does not take a window the loop spends off the CPU (a host short of CPU) for work", () => {
    // Atomics.wait holds the loop without running it, as a thread waiting to be scheduled is held:
    // the loop's utilisation is 1 for the window, its CPU time about 0.
    const out = child(`
footprint.pauseOptimizingCompilers();
setImmediate(() => {
  footprint.settleAfterStart(undefined, { resumeAfterMs: 60_000 });
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  setTimeout(() => {
    const held = warm();
    // A stretch spent running is work (long enough to fill the window it falls in, wherever that began).
    const until = Date.now() + 1_000;
    while (Date.now() < until) {}
    setTimeout(() => console.log(JSON.stringify({ held, ran: warm() })), 150);
  }, 150);
});
`);
    assert.equal(out["held"]! & OPTIMIZED, 0, "optimised after a window spent off the CPU");
    assert.equal(out["ran"]! & OPTIMIZED, OPTIMIZED, "not optimised after a window spent running");
  });

  it("brings the compilers back after resumeAfterMs when the loop is busy, but never wholly", () => {
    const out = child(`
footprint.pauseOptimizingCompilers();
setImmediate(() => {
  footprint.settleAfterStart(undefined, { resumeAfterMs: 600 });
  // About a third busy: neither a busy window nor a quiet one.
  const load = setInterval(() => { const until = Date.now() + 30; while (Date.now() < until) {} }, 100);
  setTimeout(() => {
    const early = warm();
    setTimeout(() => {
      clearInterval(load);
      console.log(JSON.stringify({ early, late: warm() }));
    }, 700);
  }, 250);
});
`);
    assert.equal(out["early"]! & OPTIMIZED, 0, "optimised before resumeAfterMs");
    assert.equal(out["late"]! & OPTIMIZED, OPTIMIZED, "not optimised after resumeAfterMs");
  });

  it("leaves compiler options the operator gave as they are, in either spelling", () => {
    for (const given of ["--turbofan", "--no_maglev"]) {
      const out = child(`footprint.pauseOptimizingCompilers(); console.log(JSON.stringify({ paused: warm() }));`, [given]);
      assert.equal(out["paused"]! & OPTIMIZED, OPTIMIZED, given);
    }
  });

  it("turns V8's allocation-site pretenuring off for the agent, unless the operator set it", () => {
    // Batches of objects kept alive across a few scavenges, as a pass's batches are: V8 marks their
    // allocation site for tenuring, which --trace-pretenuring-statistics prints.
    const workload = `
function make(i) { return { a: i, b: [i, i + 1], c: "x" + i }; }
const keep = [];
for (let r = 0; r < 200; r++) { const batch = []; for (let i = 0; i < 20000; i++) batch.push(make(i)); keep.push(batch); if (keep.length > 3) keep.shift(); }`;
    const sites = (body: string, extra: string[] = []): number => {
      const source = `import * as footprint from ${JSON.stringify(FOOTPRINT)};\n${body}\n${workload}`;
      const r = spawnSync(process.execPath, ["--trace-pretenuring-statistics", ...extra, "--input-type=module", "-e", source], { encoding: "utf8", timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split("\n").filter((l) => l.includes("pretenuring: AllocationSite")).length;
    };
    assert.ok(sites("") > 0, "the workload gets its sites pretenured by default");
    assert.equal(sites("if (!footprint.turnOffPretenuring()) process.exit(3);"), 0, "pretenuring decisions after turnOffPretenuring");
    assert.ok(sites("if (footprint.turnOffPretenuring()) process.exit(3);", ["--allocation-site-pretenuring"]) > 0, "the operator's --allocation-site-pretenuring is kept");
  });

  it("collects start-up's garbage at the first quiet second, then brings the compilers back", () => {
    const out = child(`
import v8 from "node:v8";
footprint.pauseOptimizingCompilers();
// Garbage that survives long enough to reach the old generation, as start-up's does.
let junk = [];
for (let i = 0; i < 400000; i++) junk.push({ i, s: "x" + i, a: [i, i] });
junk = undefined;
const before = v8.getHeapStatistics().total_heap_size;
const began = Date.now();
// Keeps the process alive until the collection (the watch's timers are unref'd), 20 s at most.
const keep = setTimeout(() => {}, 20_000);
setImmediate(() =>
  footprint.settleAfterStart(({ collected }) => {
    const after = v8.getHeapStatistics().total_heap_size;
    console.log(JSON.stringify({ before, after, collected: Number(collected), waited: Date.now() - began, compilers: warm() }));
    clearTimeout(keep);
  }),
);
`);
    assert.equal(out["collected"], 1);
    assert.ok(out["waited"]! >= 1_000, `collected after ${out["waited"]} ms, before a quiet second had passed`);
    assert.ok(out["after"]! < out["before"]! - 20 * 1024 * 1024, `heap ${out["before"]} → ${out["after"]} bytes: start-up's garbage was not given back`);
    assert.equal(out["compilers"]! & OPTIMIZED, OPTIMIZED);
  });

  it("exposes no gc() of its own, and leaves an operator's --expose-gc as it was", () => {
    for (const args of [[], ["--expose-gc"]]) {
      const out = child(
        `
import vm from "node:vm";
const keep = setTimeout(() => {}, 20_000);
setImmediate(() =>
  footprint.settleAfterStart(({ collected }) => {
    // A context made afterwards (vm, a worker) gets gc() exactly when the operator asked for it.
    const later = vm.runInNewContext("typeof gc") === "function" ? 1 : 0;
    console.log(JSON.stringify({ collected: Number(collected), gc: typeof globalThis.gc === "function" ? 1 : 0, later }));
    clearTimeout(keep);
  }),
);
`,
        args,
      );
      assert.deepEqual(out, { collected: 1, gc: args.length, later: args.length }, args.join(" ") || "no flags");
    }
  });

  it("runs in the agent as shipped: bin/vigil run collects start-up's garbage once it is quiet", async (t) => {
    const { dir, file } = tempConfig((d) => agentConfig(d, `
  - type: static
    subjects:
      - {id: carol, kind: user, attributes: {mfa: true, device_managed: true, country: DE}}`));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const agent = await AgentProcess.start(file);
    try {
      const done = await agent.waitFor((l) => l.msg === "start-up garbage collected", 15_000);
      assert.equal(typeof done["ms"], "number");
      assert.equal(agent.lines.filter((l) => l.msg === "start-up garbage collected").length, 1);
    } finally {
      await agent.stop();
    }
  });

  it("turns the compilers on before the start when an inventory is read from a file (any size)", async (t) => {
    const { dir, file } = tempConfig((d) => {
      writeFileSync(join(d, "users.json"), JSON.stringify([{ id: "carol", kind: "user", attributes: { mfa: true, device_managed: true, country: "DE" } }]));
      return agentConfig(d, `
  - {type: file, path: ${join(d, "users.json")}}`);
    });
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const agent = await AgentProcess.start(file);
    try {
      const on = agent.lines.find((l) => String(l.msg).startsWith("optimising compilers on"));
      assert.equal(on?.["inventory"], "file");
      const startedAt = agent.lines.findIndex((l) => l.msg === "vigil started");
      assert.ok(agent.lines.indexOf(on!) < startedAt, "before the start");
    } finally {
      await agent.stop();
    }
  });
});
