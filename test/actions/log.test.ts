import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { tmpdir } from "node:os";
import { metrics, trace } from "@opentelemetry/api";
import { logAction } from "../../src/actions/log/index.ts";
import type { ActionRequest } from "../../src/plugin/action.ts";
import type { PluginContext } from "../../src/plugin/context.ts";
import { createHttpClient } from "../../src/net/http.ts";
import { createLogger } from "../../src/telemetry/log.ts";
import { systemClock } from "../../src/util/clock.ts";

function capture(): { ctx: PluginContext; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const ctx: PluginContext = {
    clock: systemClock,
    logger: createLogger({ level: "info", stream }),
    meter: metrics.getMeter("test"),
    tracer: trace.getTracer("test"),
    http: createHttpClient(),
    dataDir: tmpdir(),
    configDir: tmpdir(),
  };
  return { ctx, lines };
}

const req: ActionRequest = {
  decision: { policy: "perimeter", subject: "alice", access: "read_only", risk: "medium", reasons: [{ code: "MFA_MISSING", message: "no MFA" }], generation: 2, decided_at: 0, evidence: {}, exempt: false },
  subject: { id: "alice", kind: "user", attributes: {}, labels: {} },
  previous_access: "full_access",
  operation: "apply",
  idempotency_key: "k1",
};

test("log action writes one line per apply and revert at the configured level", async () => {
  const { ctx, lines } = capture();
  const action = logAction.create(logAction.configSchema.parse({ level: "error", message: "access changed" }), ctx);
  await action.apply(req);
  await action.revert!({ ...req, operation: "revert" });
  await ctx.http.close();
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.level, "error");
  assert.equal(lines[0]!.msg, "access changed");
  assert.equal(lines[0]!.subject, "alice");
  assert.equal(lines[0]!.access, "read_only");
  assert.equal(lines[0]!.operation, "apply");
  assert.deepEqual(lines[0]!.reasons, ["MFA_MISSING"]);
  assert.equal(lines[1]!.operation, "revert");
});

test("log action defaults to warn / enforcement and plans one LOG call", () => {
  const { ctx } = capture();
  const config = logAction.configSchema.parse({});
  assert.deepEqual(config, { level: "warn", message: "enforcement" });
  const calls = logAction.create(config, ctx).plan(req);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.method, "LOG");
  assert.equal(calls[0]!.url, "log:");
  assert.deepEqual(calls[0]!.headers, {});
  assert.deepEqual((calls[0]!.body as Record<string, unknown>).level, "warn");
  assert.deepEqual((calls[0]!.body as Record<string, unknown>).subject, "alice");
  assert.deepEqual(logAction.requiredPermissions, []);
  void ctx.http.close();
});

test("log config rejects unknown keys and levels", () => {
  assert.equal(logAction.configSchema.safeParse({ level: "debug" }).success, false);
  assert.equal(logAction.configSchema.safeParse({ colour: "red" }).success, false);
});

test("a revert writes that access was restored, never as an error", async () => {
  const { ctx, lines } = capture();
  const severe = logAction.create(logAction.configSchema.parse({ level: "error", message: "access denied" }), ctx);
  await severe.revert!({ ...req, operation: "revert", decision: { ...req.decision, access: "full_access" }, previous_access: "deny" });
  const quiet = logAction.create(logAction.configSchema.parse({ level: "info", message: "access denied", restore_message: "welcome back" }), ctx);
  await quiet.revert!({ ...req, operation: "revert" });
  await ctx.http.close();
  assert.deepEqual(
    lines.map((l) => [l.level, l.msg, l.operation]),
    [
      ["warn", "access restored", "revert"],
      ["info", "welcome back", "revert"],
    ],
  );
  assert.equal(lines[0]!.access, "full_access");
  // The plan shows the same line.
  const planned = severe.plan({ ...req, operation: "revert" })[0]!.body as Record<string, unknown>;
  assert.deepEqual([planned.level, planned.msg], ["warn", "access restored"]);
});
