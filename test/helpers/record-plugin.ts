/**
 * A plugin module written to disk and loaded through `plugins:` like a user's own: a `record`
 * action that logs its calls into globalThis.__vigilCalls (held back while `holdActions()` holds
 * them), and a `flaky` check whose verdict globalThis.__vigilFlaky controls ("pass", "fail" or "throw").
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export type Call = [op: string, subject: string, access: string];

export function calls(): Call[] {
  const g = globalThis as { __vigilCalls?: Call[] };
  return (g.__vigilCalls ??= []);
}

export function setFlaky(mode: "pass" | "fail" | "throw"): void {
  (globalThis as { __vigilFlaky?: string }).__vigilFlaky = mode;
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

export function writeRecordPlugin(dir: string): string {
  const zod = import.meta.resolve("zod");
  const file = join(dir, "record-plugin.mjs");
  writeFileSync(
    file,
    `import { z } from ${JSON.stringify(zod)};
globalThis.__vigilCalls ??= [];
export const actions = [{
  type: "record", description: "records calls", requiredPermissions: [], example: {}, revertible: true,
  configSchema: z.object({}).strict(),
  create: () => ({
    plan: (req) => [{ method: "RECORD", url: "record:", headers: {}, body: { subject: req.subject.id, op: req.operation } }],
    apply: async (req) => { await globalThis.__vigilHold; globalThis.__vigilCalls.push(["apply", req.subject.id, req.decision.access]); return { verified: true }; },
    revert: async (req) => { await globalThis.__vigilHold; globalThis.__vigilCalls.push(["revert", req.subject.id, req.decision.access]); return {}; },
  }),
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
}];`,
  );
  return file;
}
