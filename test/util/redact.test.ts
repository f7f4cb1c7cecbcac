import { test } from "node:test";
import assert from "node:assert/strict";
import { AUTHORIZATION_MECHANISMS, MASK, isSecretField, redact } from "../../src/util/redact.ts";
import { createLogger } from "../../src/telemetry/log.ts";

test("a communication policy's authorization mechanism is not a secret; an Authorization header is", () => {
  for (const m of AUTHORIZATION_MECHANISMS) assert.equal(isSecretField("authorization", m), false, m);
  assert.equal(isSecretField("Authorization", "Bearer abc.def"), true);
  assert.equal(isSecretField("authorization", "oauth2 abc"), true, "anything but the bare mechanism word is masked");
  assert.equal(isSecretField("token", "oauth2"), true, "only under authorization is the word let through");
  const plan = redact({ edge: { source: "a", destination: "b", authorization: "oauth2" }, headers: { Authorization: "Bearer s3cr3t-token" } });
  assert.deepEqual(plan, { edge: { source: "a", destination: "b", authorization: "oauth2" }, headers: { Authorization: MASK } });
});

test("log lines show the mechanism and mask the header", () => {
  const lines: string[] = [];
  const logger = createLogger({ stream: { write: (l: string) => void lines.push(l) }, format: "json" });
  logger.info({ edge: { authorization: "spiffe" }, headers: { authorization: "Basic dXNlcjpwYXNz" } }, "x");
  const line = JSON.parse(lines[0]!) as { edge: { authorization: string }; headers: { authorization: string } };
  assert.deepEqual([line.edge.authorization, line.headers.authorization], ["spiffe", MASK]);
});
