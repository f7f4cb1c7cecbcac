/**
 * vigil's version is written in package.json; the code reads it from there (src/util/version.ts).
 * What cannot read it, such as the image tag in a Kubernetes manifest, names the same version.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = new URL("../../", import.meta.url);
const VERSION = (JSON.parse(readFileSync(new URL("package.json", ROOT), "utf8")) as { version: string }).version;
const read = (file: string) => readFileSync(new URL(file, ROOT), "utf8");
const files = (patterns: string[]) =>
  globSync(patterns, { cwd: ROOT.pathname, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(ROOT.pathname, join(d.parentPath, d.name)));

test("src/ and bin/ never write the version: they read it from package.json", () => {
  // The version on its own, not as part of a longer number or address (10.1.0.7).
  const literal = new RegExp(`(?<![\\w.])${VERSION.replaceAll(".", "\\.")}(?![\\w.])`);
  assert.deepEqual(files(["src/**/*.ts", "bin/*"]).filter((f) => literal.test(read(f))), []);
});

test("image tags in deploy/, docs and the Dockerfile are package.json's version", () => {
  const tags: { file: string; tag: string }[] = [];
  for (const file of files(["deploy/**/*", "docs/**/*.md", "README.md", "CONTRIBUTING.md", "Dockerfile", "config/**/*"])) {
    for (const m of read(file).matchAll(/\/vigil:(\d[\w.+-]*)/g)) tags.push({ file, tag: m[1]! });
  }
  assert.ok(tags.some((t) => t.file === "deploy/kubernetes/sidecar.yaml"), "the sidecar manifest names an image tag");
  assert.deepEqual(tags.filter((t) => t.tag !== VERSION), [], `every vigil image tag is ${VERSION}`);
});
