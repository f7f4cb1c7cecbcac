/**
 * RFC 5280 §6.1 policy processing, table-tested on the fields it reads (policies, mappings,
 * constraints, inhibitAnyPolicy, self-issued), leaf first and anchor last as validatePath holds a path.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { ParsedCertificate } from "../../../../src/plugin/x509/certificate.ts";
import { processPolicies, type PolicyOptions } from "../../../../src/checks/certificate_validity/pki/policy.ts";

const ANY = "2.5.29.32.0";
interface Fake {
  policies?: string[];
  mappings?: [string, string][];
  requireExplicit?: number;
  inhibitMapping?: number;
  inhibitAny?: number;
  selfIssued?: boolean;
}
const cert = (f: Fake, i: number) =>
  ({
    subject: { text: `CN=c${i}` },
    selfIssued: f.selfIssued ?? false,
    policies: f.policies,
    policyMappings: f.mappings?.map(([issuerDomainPolicy, subjectDomainPolicy]) => ({ issuerDomainPolicy, subjectDomainPolicy })),
    policyConstraints: f.requireExplicit !== undefined || f.inhibitMapping !== undefined ? { ...(f.requireExplicit !== undefined ? { requireExplicitPolicy: f.requireExplicit } : {}), ...(f.inhibitMapping !== undefined ? { inhibitPolicyMapping: f.inhibitMapping } : {}) } : undefined,
    inhibitAnyPolicy: f.inhibitAny,
  }) as unknown as ParsedCertificate;
/** `chain` is written anchor-side first (intermediates, then the leaf), as RFC 5280 numbers them. */
const run = (chain: Fake[], o: PolicyOptions = {}) => processPolicies([...chain.map(cert)].reverse().concat([cert({}, 99)]), o);

test("policy processing, RFC 5280 §6.1", () => {
  const table: [string, Fake[], PolicyOptions, boolean, string[]?][] = [
    ["no policies anywhere, nothing required", [{}, {}], {}, true, []],
    ["no policies, explicit policy required", [{}, {}], { requireExplicitPolicy: true }, false],
    ["one policy all the way", [{ policies: ["1.1"] }, { policies: ["1.1"] }], { requireExplicitPolicy: true, initialPolicies: ["1.1"] }, true, ["1.1"]],
    ["anyPolicy in the CA lets the leaf's policy through", [{ policies: [ANY] }, { policies: ["1.1"] }], { requireExplicitPolicy: true, initialPolicies: ["1.1"] }, true, ["1.1"]],
    ["the leaf's policy is not the one wanted", [{ policies: [ANY] }, { policies: ["1.2"] }], { requireExplicitPolicy: true, initialPolicies: ["1.1"] }, false],
    ["without explicit policy a mismatch still passes (RFC 5280 §6.1.6)", [{ policies: [ANY] }, { policies: ["1.2"] }], { initialPolicies: ["1.1"] }, true, []],
    // The user set names the anchor's domain (1.1); the leaf's node holds its own domain's policy (2.2).
    ["a mapping carries the issuer's policy to the subject's", [{ policies: ["1.1"], mappings: [["1.1", "2.2"]] }, { policies: ["2.2"] }], { requireExplicitPolicy: true, initialPolicies: ["1.1"] }, true, ["2.2"]],
    ["inhibit_policy_mapping drops the mapped policy", [{ policies: ["1.1"], mappings: [["1.1", "2.2"]] }, { policies: ["2.2"] }], { requireExplicitPolicy: true, initialPolicies: ["1.1"], inhibitPolicyMapping: true }, false],
    ["inhibitPolicyMapping 0 in a CA drops mappings below it", [{ policies: ["1.1"], inhibitMapping: 0 }, { policies: ["1.1"], mappings: [["1.1", "2.2"]] }, { policies: ["2.2"] }], { requireExplicitPolicy: true }, false],
    ["requireExplicitPolicy 1 allows one more certificate without policies", [{ policies: ["1.1"], requireExplicit: 1 }, { policies: ["1.1"] }, {}], {}, false],
    ["requireExplicitPolicy 2 still binds the leaf (the wrap-up counts it)", [{ policies: ["1.1"], requireExplicit: 2 }, { policies: ["1.1"] }, {}], {}, false],
    ["requireExplicitPolicy 3 reaches past the leaf", [{ policies: ["1.1"], requireExplicit: 3 }, { policies: ["1.1"] }, {}], {}, true],
    ["a self-issued certificate does not count toward the skip", [{ policies: ["1.1"], requireExplicit: 2 }, { policies: ["1.1"], selfIssued: true }, {}], {}, true],
    ["inhibitAnyPolicy 0: anyPolicy in the leaf matches nothing", [{ policies: [ANY], inhibitAny: 0 }, { policies: [ANY] }], { requireExplicitPolicy: true }, false],
    ["inhibit_any_policy from the start", [{ policies: [ANY] }, { policies: ["1.1"] }], { requireExplicitPolicy: true, inhibitAnyPolicy: true }, false],
    ["a mapping of anyPolicy is refused", [{ policies: ["1.1"], mappings: [[ANY, "1.1"]] }, { policies: ["1.1"] }], {}, false],
  ];
  for (const [name, chain, options, ok, policies] of table) {
    const r = run(chain, options);
    assert.equal(r.problem === undefined, ok, `${name}: ${r.problem}`);
    if (policies) assert.deepEqual(r.policies, policies, name);
  }
});

test("a policy tree past 1,000 nodes is refused rather than grown (CVE-2023-0464)", () => {
  const ids = Array.from({ length: 40 }, (_, i) => `1.${i}`);
  const mapped = ids.flatMap((a) => ids.map((b) => [a, `2.${b}`] as [string, string]));
  const r = run([{ policies: ids }, { policies: ids, mappings: mapped }, { policies: ids.map((b) => `2.${b}`) }, { policies: [ANY] }]);
  assert.match(r.problem ?? "", /exceeds 1000 nodes/);
});
