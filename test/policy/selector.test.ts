import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { anyMatch, compileSelector, type SelectorSpec } from "../../src/policy/selector.ts";
import type { Subject } from "../../src/policy/model.ts";

const frontend: Subject = { id: "frontend", kind: "workload", identity: "spiffe://example.org/ns/web/sa/frontend", attributes: {}, labels: { app: "frontend", tier: "web" } };
const api: Subject = { id: "api", kind: "workload", identity: "spiffe://example.org/ns/api/sa/api", attributes: {}, labels: { app: "api", tier: "backend" } };
const alice: Subject = { id: "alice", kind: "user", identity: "alice@example.org", attributes: {}, labels: {} };
const laptop: Subject = { id: "laptop-42", kind: "device", attributes: {}, labels: { tier: "web" } };
const dotted: Subject = { id: "svc.a", kind: "session", attributes: {}, labels: {} };
const ALL = [frontend, api, alice, laptop, dotted];

const cases: { name: string; spec: SelectorSpec; matches: string[] }[] = [
  { name: "empty selector matches all", spec: {}, matches: ["frontend", "api", "alice", "laptop-42", "svc.a"] },
  { name: "id: exact string", spec: { id: "api" }, matches: ["api"] },
  { name: "id: exact string does not match a prefix", spec: { id: "ap" }, matches: [] },
  { name: "id: list", spec: { id: ["api", "alice"] }, matches: ["api", "alice"] },
  { name: "id: empty list matches nothing", spec: { id: [] }, matches: [] },
  { name: "id: wildcard suffix", spec: { id: "laptop-*" }, matches: ["laptop-42"] },
  { name: "id: wildcard in the middle", spec: { id: "f*d" }, matches: ["frontend"] },
  { name: "id: * alone matches every id", spec: { id: "*" }, matches: ["frontend", "api", "alice", "laptop-42", "svc.a"] },
  { name: "id: list with a wildcard", spec: { id: ["a*", "svc.a"] }, matches: ["api", "alice", "svc.a"] },
  { name: "id: dot is literal, not a regex wildcard", spec: { id: "svc.a" }, matches: ["svc.a"] },
  { name: "id: dot is literal (svcXa does not match)", spec: { id: "svc?a" }, matches: [] },
  { name: "kind: one", spec: { kind: "workload" }, matches: ["frontend", "api"] },
  { name: "kind: list", spec: { kind: ["user", "device"] }, matches: ["alice", "laptop-42"] },
  { name: "identity: exact", spec: { identity: "alice@example.org" }, matches: ["alice"] },
  { name: "identity: spiffe wildcard over a namespace", spec: { identity: "spiffe://example.org/ns/web/*" }, matches: ["frontend"] },
  { name: "identity: spiffe wildcard over a trust domain", spec: { identity: "spiffe://example.org/*" }, matches: ["frontend", "api"] },
  { name: "identity: wildcard segment in the middle", spec: { identity: "spiffe://example.org/ns/*/sa/api" }, matches: ["api"] },
  { name: "identity: other trust domain matches nothing", spec: { identity: "spiffe://other.org/*" }, matches: [] },
  { name: "identity: * does not match subjects without identity", spec: { identity: "*" }, matches: ["frontend", "api", "alice"] },
  { name: "labels: one label", spec: { labels: { tier: "web" } }, matches: ["frontend", "laptop-42"] },
  { name: "labels: all must match", spec: { labels: { tier: "web", app: "frontend" } }, matches: ["frontend"] },
  { name: "labels: one mismatch fails", spec: { labels: { tier: "web", app: "api" } }, matches: [] },
  { name: "labels: empty map matches all", spec: { labels: {} }, matches: ["frontend", "api", "alice", "laptop-42", "svc.a"] },
  { name: "fields combine with AND: kind + labels", spec: { kind: "workload", labels: { tier: "web" } }, matches: ["frontend"] },
  { name: "fields combine with AND: id + kind mismatch", spec: { id: "alice", kind: "workload" }, matches: [] },
];

describe("compileSelector", () => {
  for (const c of cases) {
    it(c.name, () => {
      const m = compileSelector(c.spec);
      assert.deepEqual(ALL.filter(m).map((s) => s.id), c.matches);
    });
  }
});

describe("anyMatch", () => {
  it("true when any matcher matches, false for none or an empty list", () => {
    const ms = [compileSelector({ id: "api" }), compileSelector({ kind: "user" })];
    assert.deepEqual(ALL.map((s) => anyMatch(ms, s)), [false, true, true, false, false]);
    assert.equal(anyMatch([], frontend), false);
  });
});
