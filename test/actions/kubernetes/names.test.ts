import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkNamespace, checkSelector, defaultObjectName, dnsLabelFrom, isDnsLabel, isLabelKey, isLabelValue, isOwned, ownerLabels, policyLabelValue } from "../../../src/actions/common/kubernetes/names.ts";
import { VigilError } from "../../../src/errors.ts";

describe("kubernetes names", () => {
  const labelKeys: [string, boolean][] = [
    ["app", true],
    ["app.kubernetes.io/name", true],
    ["vigil.dev/policy", true],
    ["a_b.c-d", true],
    ["", false],
    ["-app", false],
    ["has space", false],
    ["Upper.Case/x", false],
    ["a/b/c", false],
    [`${"x".repeat(64)}`, false],
  ];
  for (const [key, ok] of labelKeys) test(`isLabelKey(${JSON.stringify(key)}) = ${ok}`, () => assert.equal(isLabelKey(key), ok));

  const labelValues: [string, boolean][] = [
    ["", true],
    ["frontend", true],
    ["Front_end.v1-2", true],
    ["-x", false],
    ["x-", false],
    ["two words", false],
    ["x".repeat(63), true],
    ["x".repeat(64), false],
  ];
  for (const [value, ok] of labelValues) test(`isLabelValue(${JSON.stringify(value)}) = ${ok}`, () => assert.equal(isLabelValue(value), ok));

  const labels: [string, string][] = [
    ["frontend-to-api", "frontend-to-api"],
    ["Frontend_To_API", "frontend-to-api-"],
    ["a..b", "a-b-"],
    ["---", ""],
    ["x".repeat(70), "x".repeat(54) + "-"],
  ];
  for (const [input, prefix] of labels) {
    test(`dnsLabelFrom(${JSON.stringify(input.slice(0, 20))}) is a DNS label starting ${JSON.stringify(prefix.slice(0, 20))}`, () => {
      const out = dnsLabelFrom(input);
      assert.ok(isDnsLabel(out), out);
      assert.ok(out.startsWith(prefix), out);
      if (out !== input) assert.match(out, /[0-9a-f]{8}$/, "a changed name carries a hash of the original");
    });
  }

  test("names that sanitise alike stay distinct", () => {
    assert.notEqual(dnsLabelFrom("Team A"), dnsLabelFrom("team-a"));
    assert.notEqual(policyLabelValue("a b"), policyLabelValue("a/b"));
  });

  test("defaultObjectName leaves room for a suffix", () => {
    const n = defaultObjectName("p".repeat(100), "-deny-ingress".length);
    assert.ok(`${n}-deny-ingress`.length <= 63);
    assert.ok(n.startsWith("vigil-"));
    assert.equal(defaultObjectName("frontend-to-api"), "vigil-frontend-to-api");
  });

  const policies: [string, string | RegExp][] = [
    ["frontend-to-api", "frontend-to-api"],
    ["Perimeter.v2", "Perimeter.v2"],
    ["frontend to api", /^frontend-to-api-[0-9a-f]{8}$/],
    ["/", /^[0-9a-f]{8}$/],
    ["y".repeat(80), /^y{54}-[0-9a-f]{8}$/],
  ];
  for (const [policy, want] of policies) {
    test(`policyLabelValue(${JSON.stringify(policy.slice(0, 20))})`, () => {
      const v = policyLabelValue(policy);
      assert.ok(isLabelValue(v) && v !== "", v);
      if (typeof want === "string") assert.equal(v, want);
      else assert.match(v, want);
    });
  }

  test("ownerLabels and isOwned", () => {
    assert.deepEqual(ownerLabels("p"), { "app.kubernetes.io/managed-by": "vigil", "vigil.dev/policy": "p" });
    assert.equal(isOwned({ metadata: { name: "x", labels: ownerLabels("p") } }), true);
    assert.equal(isOwned({ metadata: { name: "x", labels: { "app.kubernetes.io/managed-by": "helm" } } }), false);
    assert.equal(isOwned({ metadata: { name: "x" } }), false);
  });

  test("checkNamespace and checkSelector raise VIGIL_ERR_ACTION_INPUT naming the setting", () => {
    assert.equal(checkNamespace("web", "source.namespace"), "web");
    assert.throws(() => checkNamespace("Web", "source.namespace"), (e: unknown) => e instanceof VigilError && e.code === "VIGIL_ERR_ACTION_INPUT" && /source\.namespace/.test(e.message));
    assert.deepEqual(checkSelector({ app: "x" }, "s"), { app: "x" });
    assert.throws(() => checkSelector({ app: "x y" }, "s"), /s\.app/);
    assert.throws(() => checkSelector({ "bad key": "x" }, "s"), /not a label key/);
  });
});
