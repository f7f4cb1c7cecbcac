import { test } from "node:test";
import assert from "node:assert/strict";
import { UpstreamError, VigilError, isTransient } from "../src/errors.ts";

test("an error without a vigil code is permanent: a misconfiguration is not retried to the attempt limit", () => {
  assert.equal(isTransient(new Error("providers.okta: no such key")), false);
  assert.equal(isTransient(new TypeError("cannot read properties of undefined")), false);
  assert.equal(isTransient(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })), false, "a network error counts only once net/ has classified it");
  assert.equal(isTransient("a thrown string"), false);
  assert.equal(isTransient(undefined), false);
});

test("transient are a retryable upstream failure, a store failure and a stop cutting work short", () => {
  assert.equal(isTransient(new UpstreamError(true, "503")), true);
  assert.equal(isTransient(new UpstreamError(false, "403")), false);
  assert.equal(isTransient(new VigilError("VIGIL_ERR_STORE", "database is locked")), true);
  assert.equal(isTransient(new VigilError("VIGIL_ERR_SHUTDOWN", "the agent is stopping")), true);
  assert.equal(isTransient(new VigilError("VIGIL_ERR_CONFIG_INVALID", "bad key")), false);
  assert.equal(isTransient(new VigilError("VIGIL_ERR_ACTION_INPUT", "no attribute")), false);
});
