import { test } from "node:test";
import assert from "node:assert/strict";
import { renderPath, renderTemplate } from "../../../../src/checks/certificate_validity/sources/template.ts";
import { SourceError } from "../../../../src/checks/certificate_validity/sources/common.ts";
import { subject } from "./pki.ts";

const s = subject({
  id: "web-1",
  identity: "spiffe://test.example/ns/prod/sa/web",
  attributes: { host: "web.internal", port: 8443, tls: { sni: "web.example", on: true }, empty: "", nothing: null, list: ["a"], dots: "a/../b", dot: ".", star: "*", nul: "a\0b" },
  labels: { app: "web", "app.kubernetes.io/name": "web-app" },
});

function throwsSource(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof SourceError && pattern.test(err.message));
}

test("placeholders are replaced with the subject's values", () => {
  const cases: [string, string][] = [
    ["{{id}}", "web-1"],
    ["{{ id }}", "web-1"],
    ["{{kind}}/{{identity}}", "workload/spiffe://test.example/ns/prod/sa/web"],
    ["{{attributes.host}}:{{attributes.port}}", "web.internal:8443"],
    ["{{attributes.tls.sni}}", "web.example"],
    ["{{attributes.tls.on}}", "true"],
    ["{{labels.app}}-tls", "web-tls"],
    ["{{labels.app.kubernetes.io/name}}", "web-app"],
    ["no placeholders", "no placeholders"],
    ["", ""],
    ["{single} braces }}", "{single} braces }}"],
  ];
  for (const [template, expected] of cases) assert.equal(renderTemplate(template, s), expected, template);
});

test("values are inserted literally and never re-scanned", () => {
  const tricky = subject({ attributes: { t: "{{id}}", js: "${process.exit(1)}" } });
  assert.equal(renderTemplate("{{attributes.t}}", tricky), "{{id}}");
  assert.equal(renderTemplate("{{attributes.js}}", tricky), "${process.exit(1)}");
});

test("a missing or unusable value throws a SourceError naming the placeholder", () => {
  const cases: [string, RegExp][] = [
    ["{{attributes.missing}}", /\{\{attributes\.missing\}\}/],
    ["{{attributes.empty}}", /\{\{attributes\.empty\}\}/],
    ["{{attributes.nothing}}", /\{\{attributes\.nothing\}\}/],
    ["{{attributes.list}}", /\{\{attributes\.list\}\}/],
    ["{{attributes.tls}}", /\{\{attributes\.tls\}\}/],
    ["{{attributes.host.length}}", /\{\{attributes\.host\.length\}\}/],
    ["{{attributes.constructor}}", /\{\{attributes\.constructor\}\}/],
    ["{{attributes.__proto__}}", /\{\{attributes\.__proto__\}\}/],
    ["{{labels.missing}}", /\{\{labels\.missing\}\}/],
    ["{{labels.constructor}}", /\{\{labels\.constructor\}\}/],
  ];
  for (const [template, pattern] of cases) throwsSource(() => renderTemplate(template, s), pattern);
  throwsSource(() => renderTemplate("{{identity}}", subject({ identity: undefined })), /\{\{identity\}\}/);
});

test("malformed templates are SourceErrors", () => {
  throwsSource(() => renderTemplate("{{id", s), /never closed/);
  throwsSource(() => renderTemplate("{{process.env.HOME}}", s), /unknown placeholder/);
  throwsSource(() => renderTemplate("{{attributes}}", s), /unknown placeholder/);
  throwsSource(() => renderTemplate("{{ }}", s), /unknown placeholder/);
  throwsSource(() => renderTemplate("{{id()}}", s), /unknown placeholder/);
  throwsSource(() => renderTemplate("x".repeat(5000), s), /longer than/);
});

test("renderPath refuses values that climb, carry NUL or glob characters", () => {
  assert.equal(renderPath("/certs/{{labels.app}}/{{id}}.pem", s), "/certs/web/web-1.pem");
  assert.equal(renderPath("../shared/{{id}}/*.pem", s), "../shared/web-1/*.pem"); // the template's own .. and glob are fine
  throwsSource(() => renderPath("/certs/{{attributes.dots}}.pem", s), /"\.\." path segment/);
  throwsSource(() => renderPath("/certs/.{{attributes.dot}}/x.pem", s), /"\.\." path segment/);
  throwsSource(() => renderPath("/certs/{{attributes.dot}}{{attributes.dot}}/x.pem", s), /"\.\." path segment/);
  throwsSource(() => renderPath("/certs/{{id}}", subject({ id: ".." })), /"\.\." path segment/);
  throwsSource(() => renderPath("/certs/{{attributes.nul}}", s), /NUL/);
  throwsSource(() => renderPath("/certs/{{attributes.star}}.pem", s), /glob/);
  throwsSource(() => renderPath("/certs/\0{{id}}", s), /NUL/);
  assert.equal(renderPath("/certs/{{attributes.dot}}/x.pem", s), "/certs/./x.pem"); // "." alone does not climb
  assert.equal(renderTemplate("{{attributes.dots}}", s), "a/../b"); // only paths are restricted
});
