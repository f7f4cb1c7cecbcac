import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { renderIstio, istioNames, allowPolicy, allowNothingPolicy, denyPolicy, strictPeerAuthentication, type IstioTarget } from "../../../src/actions/istio/render.ts";
import { enforcedLevel, methodAware, objectName, parseSpiffe } from "../../../src/actions/common/mesh/mesh.ts";
import type { Step } from "../../../src/actions/common/mesh/mesh.ts";
import type { AccessLevel } from "../../../src/policy/model.ts";
import { schemaErrors } from "./schema-validator.ts";

const LABELS = { "app.kubernetes.io/managed-by": "vigil", "vigil.dev/policy": "frontend-to-api" };

const target = (over: Partial<IstioTarget> = {}): IstioTarget => ({
  policy: "frontend-to-api",
  namespace: "api",
  selector: { app: "api" },
  principal: "cluster.local/ns/web/sa/frontend",
  port: 8443,
  protocol: "https",
  peerAuthentication: "none",
  readOnlyFallback: "deny",
  namePrefix: "vigil",
  ...over,
});

/** `apply Kind name` / `delete Kind name`, to compare the order of steps at a glance. */
const outline = (steps: readonly Step[]) => steps.map((s) => (s.op === "apply" ? `apply ${s.object.kind} ${s.object.metadata.name}` : `${s.op} ${s.ref.kind} ${s.ref.name}`));

describe("renderIstio: steps per level", () => {
  const cases: { name: string; level: AccessLevel; over?: Partial<IstioTarget>; enforced: AccessLevel; steps: string[] }[] = [
    {
      name: "full_access: ALLOW applied, vigil's DENY removed",
      level: "full_access",
      enforced: "full_access",
      steps: ["delete PeerAuthentication vigil-frontend-to-api-mtls", "apply AuthorizationPolicy vigil-frontend-to-api-allow", "delete AuthorizationPolicy vigil-frontend-to-api-deny"],
    },
    {
      name: "read_only on https: narrowed ALLOW, then a DENY of the other methods",
      level: "read_only",
      enforced: "read_only",
      steps: ["delete PeerAuthentication vigil-frontend-to-api-mtls", "apply AuthorizationPolicy vigil-frontend-to-api-allow", "apply AuthorizationPolicy vigil-frontend-to-api-deny"],
    },
    {
      name: "deny: DENY applied before the ALLOW is emptied (not deleted)",
      level: "deny",
      enforced: "deny",
      steps: ["delete PeerAuthentication vigil-frontend-to-api-mtls", "apply AuthorizationPolicy vigil-frontend-to-api-deny", "apply AuthorizationPolicy vigil-frontend-to-api-allow"],
    },
    {
      name: "STRICT: the PeerAuthentication is applied first",
      level: "deny",
      over: { peerAuthentication: "STRICT" },
      enforced: "deny",
      steps: ["apply PeerAuthentication vigil-frontend-to-api-mtls", "apply AuthorizationPolicy vigil-frontend-to-api-deny", "apply AuthorizationPolicy vigil-frontend-to-api-allow"],
    },
    {
      name: "read_only on tcp falls back to deny by default",
      level: "read_only",
      over: { protocol: "tcp" },
      enforced: "deny",
      steps: ["delete PeerAuthentication vigil-frontend-to-api-mtls", "apply AuthorizationPolicy vigil-frontend-to-api-deny", "apply AuthorizationPolicy vigil-frontend-to-api-allow"],
    },
    {
      name: "read_only on grpc with fallback full_access keeps the full ALLOW",
      level: "read_only",
      over: { protocol: "grpc", readOnlyFallback: "full_access" },
      enforced: "full_access",
      steps: ["delete PeerAuthentication vigil-frontend-to-api-mtls", "apply AuthorizationPolicy vigil-frontend-to-api-allow", "delete AuthorizationPolicy vigil-frontend-to-api-deny"],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = renderIstio(target(c.over), c.level);
      assert.equal(r.level, c.level);
      assert.equal(r.enforced, c.enforced);
      assert.deepEqual(outline(r.steps), c.steps);
      assert.equal(r.note !== undefined, c.enforced !== c.level);
    });
  }
});

describe("renderIstio: the objects", () => {
  test("full_access ALLOW: principal and port, every method", () => {
    assert.deepEqual(allowPolicy(target(), false), {
      apiVersion: "security.istio.io/v1",
      kind: "AuthorizationPolicy",
      metadata: { name: "vigil-frontend-to-api-allow", namespace: "api", labels: LABELS },
      spec: {
        selector: { matchLabels: { app: "api" } },
        action: "ALLOW",
        rules: [{ from: [{ source: { principals: ["cluster.local/ns/web/sa/frontend"] } }], to: [{ operation: { ports: ["8443"] } }] }],
      },
    });
  });

  test("read_only ALLOW: GET, HEAD, OPTIONS only", () => {
    const spec = allowPolicy(target(), true).spec as { action: string; rules: { to: { operation: unknown }[] }[] };
    assert.equal(spec.action, "ALLOW");
    assert.deepEqual(spec.rules[0]!.to, [{ operation: { ports: ["8443"], methods: ["GET", "HEAD", "OPTIONS"] } }]);
  });

  test("deny ALLOW: no rules, so it matches nothing but keeps the workload deny-by-default", () => {
    assert.deepEqual(allowNothingPolicy(target()).spec, { selector: { matchLabels: { app: "api" } }, action: "ALLOW", rules: [] });
    assert.equal(allowNothingPolicy(target()).metadata.name, istioNames(target()).allow);
  });

  test("read_only DENY: every method but the safe ones", () => {
    const spec = denyPolicy(target(), true).spec as { action: string; rules: { from: unknown; to: { operation: unknown }[] }[] };
    assert.equal(spec.action, "DENY");
    assert.deepEqual(spec.rules[0]!.from, [{ source: { principals: ["cluster.local/ns/web/sa/frontend"] } }]);
    assert.deepEqual(spec.rules[0]!.to, [{ operation: { ports: ["8443"], notMethods: ["GET", "HEAD", "OPTIONS"] } }]);
  });

  test("deny DENY: the whole port", () => {
    assert.deepEqual((denyPolicy(target(), false).spec as { rules: unknown }).rules, [
      { from: [{ source: { principals: ["cluster.local/ns/web/sa/frontend"] } }], to: [{ operation: { ports: ["8443"] } }] },
    ]);
  });

  test("without a port the rules cover the workload", () => {
    assert.deepEqual((denyPolicy(target({ port: undefined }), false).spec as { rules: unknown }).rules, [{ from: [{ source: { principals: ["cluster.local/ns/web/sa/frontend"] } }] }]);
  });

  test("target_ref instead of a selector", () => {
    const spec = allowPolicy(target({ selector: undefined, targetRef: { group: "", kind: "Service", name: "api" } }), false).spec as Record<string, unknown>;
    assert.deepEqual(spec.targetRef, { group: "", kind: "Service", name: "api" });
    assert.equal(spec.selector, undefined);
  });

  test("STRICT PeerAuthentication selects the destination workload", () => {
    assert.deepEqual(strictPeerAuthentication(target()), {
      apiVersion: "security.istio.io/v1",
      kind: "PeerAuthentication",
      metadata: { name: "vigil-frontend-to-api-mtls", namespace: "api", labels: LABELS },
      spec: { selector: { matchLabels: { app: "api" } }, mtls: { mode: "STRICT" } },
    });
  });

  test("rendering is deterministic", () => {
    assert.equal(JSON.stringify(renderIstio(target(), "read_only")), JSON.stringify(renderIstio(target(), "read_only")));
  });
});

describe("rendered Istio objects against the official CRD schemas", () => {
  const variants: Partial<IstioTarget>[] = [{}, { peerAuthentication: "STRICT" }, { port: undefined }, { selector: undefined, targetRef: { group: "", kind: "Service", name: "api" } }];
  for (const level of ["full_access", "read_only", "deny"] as const) {
    for (const [i, over] of variants.entries()) {
      test(`${level}, variant ${i}: every applied object validates`, () => {
        const applied = renderIstio(target(over), level).steps.flatMap((s) => (s.op === "apply" ? [s.object] : []));
        assert.ok(applied.length > 0);
        for (const obj of applied) assert.deepEqual(schemaErrors(obj), [], `${obj.kind} ${obj.metadata.name}`);
      });
    }
  }

  test("the validation bites: a wrong action, a bad ports type and a bad selector are rejected", () => {
    const ok = allowPolicy(target(), false);
    const spec = ok.spec as Record<string, unknown>;
    assert.ok(schemaErrors({ ...ok, spec: { ...spec, action: "PERMIT" } }).some((e) => e.includes("allowed values")));
    assert.ok(schemaErrors({ ...ok, spec: { ...spec, rules: [{ to: [{ operation: { ports: [8443] } }] }] } }).some((e) => e.includes("must be string")));
    assert.ok(schemaErrors({ ...ok, spec: { ...spec, selector: { matchLabels: { app: "x".repeat(64) } } } }).length > 0);
    assert.ok(schemaErrors({ ...ok, spec: { ...spec, rules: "all" } }).length > 0);
    const pa = strictPeerAuthentication(target());
    assert.ok(schemaErrors({ ...pa, spec: { mtls: { mode: "REQUIRED" } } }).length > 0);
  });
});

describe("mesh helpers", () => {
  test("parseSpiffe", () => {
    const cases: [string, ReturnType<typeof parseSpiffe>][] = [
      ["spiffe://cluster.local/ns/web/sa/frontend", { trustDomain: "cluster.local", path: "/ns/web/sa/frontend", namespace: "web", serviceAccount: "frontend" }],
      ["spiffe://example.org/workload/x", { trustDomain: "example.org", path: "/workload/x" }],
      ["spiffe://example.org/ns/a/sa/b/extra", { trustDomain: "example.org", path: "/ns/a/sa/b/extra" }],
      ["spiffe://Example.org/ns/a/sa/b", undefined],
      ["spiffe://example.org/ns/../sa/b", undefined],
      ["https://example.org/ns/a/sa/b", undefined],
      ["alice@example.org", undefined],
    ];
    for (const [id, want] of cases) assert.deepEqual(parseSpiffe(id), want, id);
  });

  test("methodAware and enforcedLevel", () => {
    assert.deepEqual(["http", "https", "HTTP", "grpc", "tcp", "tls", undefined].map(methodAware), [true, true, true, false, false, false, false]);
    assert.deepEqual(enforcedLevel("read_only", "http", "deny"), { level: "read_only" });
    assert.equal(enforcedLevel("read_only", "tls", "deny").level, "deny");
    assert.equal(enforcedLevel("read_only", "tcp", "full_access").level, "full_access");
    assert.deepEqual(enforcedLevel("deny", "tcp", "full_access"), { level: "deny" });
  });

  test("objectName: valid, stable and distinct for any policy name", () => {
    assert.equal(objectName("vigil", "frontend-to-api", "allow"), "vigil-frontend-to-api-allow");
    const a = objectName("vigil", "Front_End.to.API", "allow");
    const b = objectName("vigil", "front-end-to-api", "allow");
    assert.notEqual(a, b);
    const long = objectName("vigil", "p".repeat(200), "safe-methods");
    for (const n of [a, b, long]) assert.match(n, /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/);
    assert.equal(long, objectName("vigil", "p".repeat(200), "safe-methods"));
    assert.deepEqual(istioNames({ namePrefix: "mesh", policy: "x" }), { allow: "mesh-x-allow", deny: "mesh-x-deny", mtls: "mesh-x-mtls" });
  });
});
