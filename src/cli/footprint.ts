import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * What an idle agent keeps resident, for `vigil run` (BENCHMARKS.md section 20).
 *
 * Start-up runs a lot of code once (module bodies, zod's schema construction, the YAML parser,
 * the first certificate parse), enough of it often enough that V8's optimising compilers (Maglev and
 * TurboFan) pick some up. Their machine code in the `node` binary is then paged in, ~6 MiB of the
 * idle agent's RSS, for code that does not run again. `pauseOptimizingCompilers` turns them off
 * from the entry; `settleAfterStart` brings them back once start-up is over, or at once when the
 * agent's start turns out to be real work (`run` brings them back before the start when an
 * inventory is read from a file or an API).
 *
 * Start-up also leaves garbage that V8 gives back only when its memory reducer gets round to it
 * (~100 s later on an idle agent): `settleAfterStart` collects it at the first quiet second.
 *
 * Both go through `v8.setFlagsFromString`, which Node documents as possibly doing nothing once V8
 * runs: test/cli/footprint.test.ts reads V8's own optimisation status of a hot function and the
 * heap's size, so a Node on which either stops working fails there rather than quietly here.
 */

/** Node or V8 options about compiler tiers the operator set: those stay as given. */
const TIER_OPTION = /^--(?:no-)?(?:turbofan|maglev|opt|jitless|lite-mode|max-lazy|always-turbofan|always-sparkplug)(?:=|$)/;

let paused = false;

/** Turns off Maglev and TurboFan until `resumeOptimizingCompilers`, unless the operator set compiler options. */
export function pauseOptimizingCompilers(): void {
  if (paused || operatorGave(TIER_OPTION)) return;
  setFlagsFromString("--no-turbofan");
  setFlagsFromString("--no-maglev");
  paused = true;
}

/** The operator's own choice about pretenuring: kept as given. */
const PRETENURING_OPTION = /^--(?:no-)?allocation-site-pretenuring(?:=|$)/;

/**
 * Turns off V8's allocation-site pretenuring for `vigil run`, unless the operator set the option;
 * true when it did. V8 allocates objects straight into the old generation from an allocation site
 * whose objects it has seen survive scavenges. A pass over many subjects keeps each batch's objects
 * alive across a scavenge or two, so sites whose objects live for one batch were pretenured at
 * random moments; the old generation then filled with that garbage and a full collection ran in the
 * middle of the pass. At 100,000 subjects that pass peaked at 313–397 MiB, 0.4 s slower, in 8 of 11
 * runs instead of at ~210 MiB; with pretenuring off, in none of 22 (BENCHMARKS.md section 22).
 * Set at run time, as NODE_OPTIONS refuses the flag.
 */
export function turnOffPretenuring(): boolean {
  if (operatorGave(PRETENURING_OPTION)) return false;
  setFlagsFromString("--no-allocation-site-pretenuring");
  return true;
}

/** Whether Node was given an option matching `pattern`, on its command line or in NODE_OPTIONS (V8 takes its flags with underscores too: --no_maglev). */
function operatorGave(pattern: RegExp): boolean {
  return process.execArgv.concat((process.env["NODE_OPTIONS"] ?? "").split(/\s+/)).some((o) => pattern.test(o.replaceAll("_", "-")));
}

/** Turns the optimising compilers back on; false (and nothing done) unless they were paused here. */
export function resumeOptimizingCompilers(): boolean {
  if (!paused) return false;
  paused = false;
  setFlagsFromString("--maglev");
  setFlagsFromString("--turbofan");
  return true;
}

/**
 * A window this busy means real work: the compilers come back. Busy means both that the event loop
 * was running for that share of the window (its utilisation) and that the thread had the CPU for
 * that share of the window's nominal length (its CPU time). On a host short of CPU a loop waiting to
 * be scheduled counts as running, so by its utilisation alone every start-up window looked like
 * work there (BENCHMARKS.md section 23); the CPU time it got is what it really did.
 */
const BUSY_UTILIZATION = 0.9;
/** A window at most this busy counts towards the quiet second. */
const QUIET_UTILIZATION = 0.05;
const WINDOW_MS = 100;
const QUIET_MS = 1_000;
/** The compilers come back this long after the start at the latest (an agent busy in between, but never fully). */
const RESUME_AFTER_MS = 5_000;
/** Gives up waiting for a quiet second after this long. */
const GIVE_UP_MS = 5 * 60_000;

/**
 * Watches the event loop from the agent's start in 100-ms windows, until the first quiet second:
 * - a window at least 90 % busy, running on the CPU, is work (a large inventory, its first pass):
 *   the optimising compilers come back at once;
 * - a second of windows at most 5 % busy: one memory-reducing full collection (V8's "last resort"
 *   flavour: collects until nothing more is freed, shrinks the young generation, returns free pages
 *   to the system; tens of milliseconds, once, when nothing waits), then the compilers come back
 *   and the watch ends. The code that was hot at start-up has run its course by then;
 * - neither within `resumeAfterMs` (default 5 s): the compilers come back, and the watch goes on
 *   looking for the quiet second (5 minutes at most).
 * Returns a function that ends the watch (the compilers come back).
 */
export function settleAfterStart(onCollected?: (outcome: { collected: boolean; ms: number }) => void, options: { resumeAfterMs?: number } = {}): () => void {
  const resumeAfterMs = options.resumeAfterMs ?? RESUME_AFTER_MS;
  let timer: NodeJS.Timeout | undefined;
  let quiet = 0;
  const began = performance.now();
  const watch = (): void => {
    const from = performance.eventLoopUtilization();
    const cpuFrom = threadCpuMicros();
    timer = setTimeout(() => {
      timer = undefined;
      const used = performance.eventLoopUtilization(from).utilization;
      const cpu = threadCpuMicros();
      const ran = cpu === undefined || cpuFrom === undefined ? used : (cpu - cpuFrom) / 1000 / WINDOW_MS;
      if (Math.min(used, ran) >= BUSY_UTILIZATION || performance.now() - began >= resumeAfterMs) resumeOptimizingCompilers();
      quiet = used <= QUIET_UTILIZATION ? quiet + WINDOW_MS : 0;
      if (quiet >= QUIET_MS) {
        const at = performance.now();
        const collected = collectGarbage();
        const ms = performance.now() - at;
        resumeOptimizingCompilers();
        onCollected?.({ collected, ms });
        return;
      }
      if (performance.now() - began > GIVE_UP_MS) {
        resumeOptimizingCompilers();
        return;
      }
      watch();
    }, WINDOW_MS);
    timer.unref();
  };
  watch();
  return () => {
    clearTimeout(timer);
    resumeOptimizingCompilers();
  };
}

/** CPU time of this thread so far (µs); undefined on a Node without `process.threadCpuUsage` (before 23.9). */
function threadCpuMicros(): number | undefined {
  const usage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.();
  return usage === undefined ? undefined : usage.user + usage.system;
}

/**
 * V8's `gc()` without exposing it to the process: the flag is on only while a throwaway context is
 * made, which is where V8 installs it (an operator's own `--expose-gc` is used as it is). Options as
 * V8's gc extension takes them. False when no collection could be had: the agent runs on without it.
 */
function collectGarbage(): boolean {
  type Gc = (options: { type: string; execution: string; flavor: string }) => void;
  const exposed = (globalThis as { gc?: Gc }).gc;
  try {
    let gc: Gc;
    if (typeof exposed === "function") gc = exposed;
    else {
      setFlagsFromString("--expose-gc");
      try {
        gc = runInNewContext("gc") as Gc;
      } finally {
        setFlagsFromString("--no-expose-gc");
      }
    }
    gc({ type: "major", execution: "sync", flavor: "last-resort" });
    return true;
  } catch {
    return false;
  }
}
