/**
 * A plugin module written to disk and loaded through `plugins:` like a user's own: a `record`
 * action that logs its calls into globalThis.__vigilCalls (held back while `holdActions()` holds
 * them), and a `flaky` check whose verdict globalThis.__vigilFlaky controls ("pass", "fail" or "throw").
 * The `record` action also logs each request it got (`requests()`), fails while `failActions()` says
 * so, and returns the prior `priorFor()` gives it from apply. A `counted` inventory lists w1 and w2 and
 * counts its listings (`listings()`). A `sized` check passes everyone and records how many subjects
 * each run got (`sizedRuns()`), throwing for a run that holds the subject `sizedThrowsFor()` names.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export type Call = [op: string, subject: string, access: string];

export function calls(): Call[] {
  const g = globalThis as { __vigilCalls?: Call[] };
  return (g.__vigilCalls ??= []);
}

/** How many times a `counted` inventory has listed, in this process. */
export function listings(): number {
  return (globalThis as { __vigilListings?: number }).__vigilListings ?? 0;
}

export function setFlaky(mode: "pass" | "fail" | "throw"): void {
  (globalThis as { __vigilFlaky?: string }).__vigilFlaky = mode;
}

/** What one `record` call was given. */
export interface RecordedRequest {
  readonly op: string;
  readonly subject: string;
  readonly access: string;
  readonly action: { name: string; type: string } | undefined;
  readonly prior: Record<string, unknown> | undefined;
}

/** Every request a `record` action got, failed attempts included, in order. */
export function requests(): RecordedRequest[] {
  const g = globalThis as { __vigilRequests?: RecordedRequest[] };
  return (g.__vigilRequests ??= []);
}

/** While set, every `record` call fails: `transient` (an upstream 503, retried) or `permanent` (a plain error). */
export function failActions(mode: "transient" | "permanent" | undefined): void {
  (globalThis as { __vigilFail?: string }).__vigilFail = mode;
}

/** What a `record` apply returns as its prior (`ActionOutcome.prior`); undefined returns none. */
export function priorFor(fn: ((subject: string) => Record<string, unknown>) | undefined): void {
  (globalThis as { __vigilPrior?: unknown }).__vigilPrior = fn;
}

/** Holds every `record` call until the returned function is called. */
export function holdActions(): () => void {
  let release!: () => void;
  const g = globalThis as { __vigilHold?: Promise<void> };
  g.__vigilHold = new Promise<void>((r) => (release = r));
  return () => {
    g.__vigilHold = undefined;
    release();
  };
}

/** Each run of a `sized` check, in order: how many subjects it was given, and how many runs were in flight with it. */
export function sizedRuns(): { size: number; inFlight: number }[] {
  const g = globalThis as { __vigilSized?: { size: number; inFlight: number }[] };
  return (g.__vigilSized ??= []);
}

/** A `sized` run given this subject throws (undefined: none does). */
export function sizedThrowsFor(subject: string | undefined): void {
  (globalThis as { __vigilSizedThrow?: string }).__vigilSizedThrow = subject;
}

export function writeRecordPlugin(dir: string): string {
  const zod = import.meta.resolve("zod");
  const errors = import.meta.resolve("../../src/errors.ts");
  const file = join(dir, "record-plugin.mjs");
  writeFileSync(
    file,
    `import { z } from ${JSON.stringify(zod)};
import { UpstreamError } from ${JSON.stringify(errors)};
globalThis.__vigilCalls ??= [];
globalThis.__vigilRequests ??= [];
const seen = (op, req) => {
  globalThis.__vigilRequests.push({ op, subject: req.subject.id, access: req.decision.access, action: req.action, prior: req.prior });
  if (globalThis.__vigilFail === "transient") throw new UpstreamError(true, "record target unavailable (503)", { status: 503 });
  if (globalThis.__vigilFail === "permanent") throw new Error("record target refuses");
};
export const actions = [{
  type: "record", description: "records calls", requiredPermissions: [], example: {}, revertible: true,
  configSchema: z.object({}).strict(),
  create: () => ({
    plan: (req) => [{ method: "RECORD", url: "record:", headers: {}, body: { subject: req.subject.id, op: req.operation } }],
    apply: async (req) => {
      await globalThis.__vigilHold;
      seen("apply", req);
      globalThis.__vigilCalls.push(["apply", req.subject.id, req.decision.access]);
      const prior = globalThis.__vigilPrior?.(req.subject.id);
      return prior ? { verified: true, prior } : { verified: true };
    },
    revert: async (req) => { await globalThis.__vigilHold; seen("revert", req); globalThis.__vigilCalls.push(["revert", req.subject.id, req.decision.access]); return {}; },
  }),
}];
globalThis.__vigilListings ??= 0;
export const inventories = [{
  type: "counted", description: "lists w1 and w2, counting its listings", configSchema: z.object({}).strict(),
  create: () => ({ list: async () => { globalThis.__vigilListings++; return [{ id: "w1", kind: "workload" }, { id: "w2", kind: "workload" }]; } }),
}];
export const checks = [{
  type: "flaky", description: "verdict set by the test", configSchema: z.object({}).strict(), reasons: [],
  create: () => ({
    run: async (subjects, ctx) => {
      const mode = globalThis.__vigilFlaky ?? "pass";
      if (mode === "throw") throw new Error("backend down");
      const now = ctx.clock.now();
      return subjects.map((s) => ({ check: "flaky", subject: s.id, status: mode, reasons: mode === "fail" ? [{ code: "FLAKY", message: "bad" }] : [], observed_at: now, expires_at: now + 1, source: "pull" }));
    },
  }),
}, {
  type: "sized", description: "passes every subject, recording how many each run is given", configSchema: z.object({}).strict(), reasons: [],
  create: () => {
    let inFlight = 0;
    return {
      run: async (subjects, ctx) => {
        inFlight++;
        (globalThis.__vigilSized ??= []).push({ size: subjects.length, inFlight });
        try {
          // A turn of the loop inside the run, as a source call would take: runs at once would overlap here.
          await new Promise((r) => setImmediate(r));
          if (subjects.some((s) => s.id === globalThis.__vigilSizedThrow)) throw new Error("source down");
          const now = ctx.clock.now();
          return subjects.map((s) => ({ check: "sized", subject: s.id, status: "pass", reasons: [], observed_at: now, expires_at: now + 3_600_000, source: "pull" }));
        } finally {
          inFlight--;
        }
      },
    };
  },
}];`,
  );
  return file;
}
