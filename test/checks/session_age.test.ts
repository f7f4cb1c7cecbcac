import { test } from "node:test";
import assert from "node:assert/strict";
import { evaluateSessionAge } from "../../src/checks/session_age/index.ts";

test("a session's age is written for people: 10h15m, not 10h15m13s637ms", () => {
  const now = Date.UTC(2026, 10, 24, 12);
  const authenticated = now - (10 * 3_600_000 + 15 * 60_000 + 13_637);
  const v = evaluateSessionAge({ id: "alice", kind: "user", attributes: { authenticated_at: new Date(authenticated).toISOString() }, labels: {} }, 8 * 3_600_000, now);
  assert.equal(v.status, "fail");
  assert.equal(v.reasons[0]!.message, "session is 10h15m old, longer than 8h");
});
