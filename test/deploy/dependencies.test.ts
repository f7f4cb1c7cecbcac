/**
 * package.json says what the agent needs at run time: every package src/ imports is a runtime
 * dependency (not reachable only because npm hoisted someone else's), and every runtime dependency is
 * imported by src/ (the image carries nothing the agent never loads). Tests, benchmarks and scripts
 * may also use dev dependencies.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { globSync, readFileSync } from "node:fs";
import { isBuiltin } from "node:module";

const ROOT = new URL("../../", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", ROOT), "utf8")) as { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
const runtime = new Set(Object.keys(pkg.dependencies ?? {}));
const dev = new Set(Object.keys(pkg.devDependencies ?? {}));

/**
 * Module specifiers of a source file: `import … from`, `export … from` and side-effect imports
 * (statements start a line, so comments and strings that mention them do not count), and `import()`
 * of a string anywhere, which covers lazy loads and `typeof import()` in types.
 */
function specifiers(source: string): string[] {
  const statements = [...source.matchAll(/^[ \t]*(?:import|export)\s(?:[^;"'`]*?\sfrom\s*)?["']([^"']+)["']/gm)];
  const dynamic = [...source.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)];
  return [...statements, ...dynamic].map((m) => m[1]!);
}

/** The package a bare specifier names (`@scope/name/sub` → `@scope/name`); undefined for relative paths, URLs and Node builtins. */
function packageOf(specifier: string): string | undefined {
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes(":") || isBuiltin(specifier)) return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Package → the files (relative to the repository) that import it. */
function importedPackages(patterns: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const file of globSync(patterns, { cwd: ROOT.pathname })) {
    for (const spec of specifiers(readFileSync(new URL(file, ROOT), "utf8"))) {
      const name = packageOf(spec);
      if (name !== undefined) out.set(name, [...(out.get(name) ?? []), file]);
    }
  }
  return out;
}

const SRC = ["src/**/*.ts"];
const TOOLS = ["test/**/*.ts", "bench/**/*.ts", "scripts/**/*.ts", "scripts/**/*.mjs", "bin/*"];

test("the import scan sees every form of import and ignores the rest", () => {
  // Written with a stand-in keyword so that scanning this file does not find the sample's packages.
  const source = [
    'IMPORT { a } from "pkg-a";',
    'IMPORT type { B } from "@scope/pkg-b/sub/path";',
    "import {",
    "  c,",
    "  type D,",
    '} from "pkg-c";',
    'IMPORT "side-effect";',
    'export { e } from "pkg-e";',
    'const f = await IMPORT("pkg-f");',
    'let g: typeof IMPORT("pkg-g") | undefined;',
    'IMPORT { h } from "./relative.ts";',
    'IMPORT { i } from "node:fs";',
    ' * `pkg-in-comment` is imported from "nowhere" here',
    'const text = "import x from \\"not-a-statement\\"";',
  ]
    .join("\n")
    .replaceAll("IMPORT", "import");
  const found = specifiers(source).map(packageOf).filter((p) => p !== undefined);
  assert.deepEqual(found.sort(), ["@scope/pkg-b", "pkg-a", "pkg-c", "pkg-e", "pkg-f", "pkg-g", "side-effect"]);
});

test("every package src/ imports, statically or lazily, is a runtime dependency", () => {
  const imported = importedPackages(SRC);
  // The scan must see the lazily loaded ones too, or this test would pass on an empty list.
  for (const lazy of ["@opentelemetry/sdk-trace-node", "@aws-sdk/credential-provider-node", "jose"]) assert.ok(imported.has(lazy), `the scan finds ${lazy}`);
  const undeclared = [...imported].filter(([name]) => !runtime.has(name)).map(([name, files]) => `${name} (${files.join(", ")})`);
  assert.deepEqual(undeclared, [], "imported by src/ but not in package.json dependencies");
});

test("every runtime dependency is imported by src/", () => {
  const imported = importedPackages(SRC);
  assert.deepEqual([...runtime].filter((name) => !imported.has(name)), [], "in dependencies but never imported by src/: move it to devDependencies or drop it");
});

test("tests, benchmarks and scripts import only declared packages", () => {
  const undeclared = [...importedPackages(TOOLS)].filter(([name]) => !runtime.has(name) && !dev.has(name)).map(([name, files]) => `${name} (${files.join(", ")})`);
  assert.deepEqual(undeclared, []);
});

test("no package is both a runtime and a dev dependency", () => {
  assert.deepEqual([...runtime].filter((name) => dev.has(name)), []);
});
