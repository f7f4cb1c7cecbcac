import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { closest, didYouMean, editDistance } from "../../src/util/suggest.ts";

describe("editDistance (with adjacent transpositions)", () => {
  const cases: [string, string, number][] = [
    ["", "", 0],
    ["abc", "abc", 0],
    ["user_risk_scor", "user_risk_score", 1],
    ["mfq", "mfa", 1],
    ["ocsp", "oscp", 1],
    ["kitten", "sitting", 3],
    ["", "abc", 3],
  ];
  for (const [a, b, d] of cases) it(`${a || "''"} ↔ ${b || "''"} = ${d}`, () => {
    assert.equal(editDistance(a, b), d);
    assert.equal(editDistance(b, a), d);
  });
});

describe("closest / didYouMean", () => {
  const known = ["mfa", "managed_device", "location", "session_age", "certificate_validity", "user_risk_score", "device_compliance", "anomaly_detection"];
  it("suggests the nearest known name within a third of the length", () => {
    assert.equal(closest("user_risk_scor", known), "user_risk_score");
    assert.equal(closest("certificate_validty", known), "certificate_validity");
    assert.equal(closest("Location", known), "location");
    assert.equal(didYouMean("anomaly_detectoin", known), '; did you mean "anomaly_detection"?');
  });
  it("suggests nothing for a far name or an exact one", () => {
    assert.equal(closest("zebra", known), undefined);
    assert.equal(closest("mfa", known), undefined);
    assert.equal(closest("x".repeat(10_000), known), undefined);
    assert.equal(didYouMean("zebra", known), "");
  });
});
