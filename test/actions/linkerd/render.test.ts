import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  fullAuthorization,
  linkerdNames,
  meshTlsAuthentication,
  readOnlyAuthorization,
  renderLinkerd,
  safeMethodsRoute,
  server,
  type LinkerdTarget,
} from "../../../src/actions/linkerd/render.ts";
import type { Step } from "../../../src/actions/common/mesh/mesh.ts";
import type { AccessLevel } from "../../../src/policy/model.ts";
import { schemaErrors } from "../istio/schema-validator.ts";

const LABELS = { "app.kubernetes.io/managed-by": "vigil", "vigil.dev/policy": "frontend-to-api" };

const target = (over: Partial<LinkerdTarget> = {}): LinkerdTarget => ({
  policy: "frontend-to-api",
  namespace: "api",
  selector: { app: "api" },
  port: 8443,
  protocol: "http",
  source: { serviceAccount: "frontend", namespace: "web" },
  accessPolicy: "deny",
  readOnlyFallback: "deny",
  namePrefix: "vigil",
  ...over,
});

const outline = (steps: readonly Step[]) => steps.map((s) => (s.op === "apply" ? `apply ${s.object.kind} ${s.object.metadata.name}` : `${s.op} ${s.ref.kind} ${s.ref.name}`));

const P = "vigil-frontend-to-api";

describe("renderLinkerd: steps per level", () => {
  const cases: { name: string; level: AccessLevel; over?: Partial<LinkerdTarget>; enforced: AccessLevel; steps: string[] }[] = [
    {
      name: "full_access: Server, authentication, Server-wide authorization; read-only route removed after",
      level: "full_access",
      enforced: "full_access",
      steps: [
        `apply Server ${P}-server`,
        `apply MeshTLSAuthentication ${P}-client`,
        `apply AuthorizationPolicy ${P}-full`,
        `delete AuthorizationPolicy ${P}-read-only`,
        `delete HTTPRoute ${P}-safe-methods`,
      ],
    },
    {
      name: "read_only: route and its authorization applied before the Server-wide authorization is removed",
      level: "read_only",
      enforced: "read_only",
      steps: [
        `apply Server ${P}-server`,
        `apply MeshTLSAuthentication ${P}-client`,
        `apply HTTPRoute ${P}-safe-methods`,
        `apply AuthorizationPolicy ${P}-read-only`,
        `delete AuthorizationPolicy ${P}-full`,
      ],
    },
    {
      name: "deny: Server kept, authorizations removed before what they refer to",
      level: "deny",
      enforced: "deny",
      steps: [
        `apply Server ${P}-server`,
        `delete AuthorizationPolicy ${P}-full`,
        `delete AuthorizationPolicy ${P}-read-only`,
        `delete HTTPRoute ${P}-safe-methods`,
        `delete MeshTLSAuthentication ${P}-client`,
      ],
    },
    {
      name: "an operator's Server is only read back, never written",
      level: "full_access",
      over: { existingServer: "api-http" },
      enforced: "full_access",
      steps: [
        "expect Server api-http",
        `apply MeshTLSAuthentication ${P}-client`,
        `apply AuthorizationPolicy ${P}-full`,
        `delete AuthorizationPolicy ${P}-read-only`,
        `delete HTTPRoute ${P}-safe-methods`,
      ],
    },
    {
      name: "read_only on an opaque tcp edge falls back to deny",
      level: "read_only",
      over: { protocol: "tcp" },
      enforced: "deny",
      steps: [
        `apply Server ${P}-server`,
        `delete AuthorizationPolicy ${P}-full`,
        `delete AuthorizationPolicy ${P}-read-only`,
        `delete HTTPRoute ${P}-safe-methods`,
        `delete MeshTLSAuthentication ${P}-client`,
      ],
    },
    {
      name: "read_only on tls with fallback full_access",
      level: "read_only",
      over: { protocol: "tls", readOnlyFallback: "full_access" },
      enforced: "full_access",
      steps: [
        `apply Server ${P}-server`,
        `apply MeshTLSAuthentication ${P}-client`,
        `apply AuthorizationPolicy ${P}-full`,
        `delete AuthorizationPolicy ${P}-read-only`,
        `delete HTTPRoute ${P}-safe-methods`,
      ],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = renderLinkerd(target(c.over), c.level);
      assert.equal(r.enforced, c.enforced);
      assert.deepEqual(outline(r.steps), c.steps);
      assert.equal(r.note !== undefined, c.enforced !== c.level);
    });
  }
});

describe("renderLinkerd: the objects", () => {
  test("Server: pod selector, port, deny by default", () => {
    assert.deepEqual(server(target()), {
      apiVersion: "policy.linkerd.io/v1beta3",
      kind: "Server",
      metadata: { name: `${P}-server`, namespace: "api", labels: LABELS },
      spec: { podSelector: { matchLabels: { app: "api" } }, port: 8443, accessPolicy: "deny" },
    });
    assert.deepEqual((server(target({ port: "https", proxyProtocol: "HTTP/2", accessPolicy: "audit" })).spec as Record<string, unknown>), {
      podSelector: { matchLabels: { app: "api" } },
      port: "https",
      accessPolicy: "audit",
      proxyProtocol: "HTTP/2",
    });
  });

  test("MeshTLSAuthentication: the source's ServiceAccount, or a literal identity", () => {
    assert.deepEqual(meshTlsAuthentication(target()), {
      apiVersion: "policy.linkerd.io/v1alpha1",
      kind: "MeshTLSAuthentication",
      metadata: { name: `${P}-client`, namespace: "api", labels: LABELS },
      spec: { identityRefs: [{ kind: "ServiceAccount", name: "frontend", namespace: "web" }] },
    });
    const id = "frontend.web.serviceaccount.identity.linkerd.cluster.local";
    assert.deepEqual(meshTlsAuthentication(target({ source: { identity: id } })).spec, { identities: [id] });
  });

  test("AuthorizationPolicies: the Server, or the safe-methods route, requiring the authentication", () => {
    const authn = [{ group: "policy.linkerd.io", kind: "MeshTLSAuthentication", name: `${P}-client` }];
    assert.deepEqual(fullAuthorization(target()).spec, { targetRef: { group: "policy.linkerd.io", kind: "Server", name: `${P}-server` }, requiredAuthenticationRefs: authn });
    assert.deepEqual(readOnlyAuthorization(target()).spec, { targetRef: { group: "policy.linkerd.io", kind: "HTTPRoute", name: `${P}-safe-methods` }, requiredAuthenticationRefs: authn });
    assert.deepEqual((fullAuthorization(target({ existingServer: "api-http" })).spec as { targetRef: unknown }).targetRef, { group: "policy.linkerd.io", kind: "Server", name: "api-http" });
  });

  test("HTTPRoute: GET, HEAD and OPTIONS on any path, parent the Server", () => {
    assert.deepEqual(safeMethodsRoute(target()), {
      apiVersion: "policy.linkerd.io/v1beta3",
      kind: "HTTPRoute",
      metadata: { name: `${P}-safe-methods`, namespace: "api", labels: LABELS },
      spec: {
        parentRefs: [{ group: "policy.linkerd.io", kind: "Server", name: `${P}-server` }],
        rules: [
          {
            matches: [
              { path: { type: "PathPrefix", value: "/" }, method: "GET" },
              { path: { type: "PathPrefix", value: "/" }, method: "HEAD" },
              { path: { type: "PathPrefix", value: "/" }, method: "OPTIONS" },
            ],
          },
        ],
      },
    });
  });

  test("names", () => {
    assert.deepEqual(linkerdNames({ namePrefix: "vigil", policy: "frontend-to-api" }), {
      server: `${P}-server`,
      authn: `${P}-client`,
      full: `${P}-full`,
      route: `${P}-safe-methods`,
      readOnly: `${P}-read-only`,
    });
  });
});

describe("rendered Linkerd objects against the official CRD schemas", () => {
  const variants: Partial<LinkerdTarget>[] = [{}, { port: "https", proxyProtocol: "HTTP/1" }, { source: { identity: "frontend.web.serviceaccount.identity.linkerd.cluster.local" } }, { existingServer: "api-http" }];
  for (const level of ["full_access", "read_only", "deny"] as const) {
    for (const [i, over] of variants.entries()) {
      test(`${level}, variant ${i}: every applied object validates`, () => {
        const applied = renderLinkerd(target(over), level).steps.flatMap((s) => (s.op === "apply" ? [s.object] : []));
        for (const obj of applied) assert.deepEqual(schemaErrors(obj), [], `${obj.kind} ${obj.metadata.name}`);
      });
    }
  }

  test("every kind the action writes has a schema fixture", () => {
    for (const obj of [server(target()), meshTlsAuthentication(target()), fullAuthorization(target()), safeMethodsRoute(target()), readOnlyAuthorization(target())]) {
      assert.deepEqual(schemaErrors(obj), []);
    }
  });

  test("the validation bites", () => {
    const authz = fullAuthorization(target());
    // requiredAuthenticationRefs is required.
    assert.ok(schemaErrors({ ...authz, spec: { targetRef: (authz.spec as { targetRef: unknown }).targetRef } }).some((e) => e.includes("requiredAuthenticationRefs")));
    // identities and identityRefs are mutually exclusive (oneOf), and identities may not be empty.
    assert.ok(schemaErrors({ ...meshTlsAuthentication(target()), spec: { identities: ["a"], identityRefs: [{ kind: "ServiceAccount", name: "a" }] } }).length > 0);
    assert.ok(schemaErrors({ ...meshTlsAuthentication(target()), spec: { identities: [] } }).length > 0);
    // A Server needs a port and exactly one selector.
    assert.ok(schemaErrors({ ...server(target()), spec: { podSelector: { matchLabels: { app: "api" } } } }).some((e) => e.includes("port")));
    // HTTPRoute methods are an enum.
    const route = safeMethodsRoute(target());
    assert.ok(schemaErrors({ ...route, spec: { ...(route.spec as object), rules: [{ matches: [{ method: "get" }] }] } }).some((e) => e.includes("allowed values")));
  });
});
