/**
 * The house rule, checked: imports in `src/` go downward only, plugin folders never import each
 * other, and no import cycle exists. The layer order is read from CONTRIBUTING.md, so the document
 * and the check cannot drift apart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, globSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");
const SRC = join(ROOT, "src");
/** Folders whose sub-folders are plugins: each may use its kind's `common/` folder, never a sibling plugin. */
const PLUGIN_KINDS = new Set(["checks", "actions", "inventories"]);

/** `cli → engine → … → errors.ts` from CONTRIBUTING.md; `a | b` share a rank and may not import each other. */
export function layerOrder(): Map<string, number> {
  const doc = readFileSync(join(ROOT, "CONTRIBUTING.md"), "utf8");
  const line = doc.split("\n").find((l) => l.trim().startsWith("layers:"));
  assert.ok(line, "CONTRIBUTING.md has a `layers:` line");
  const tiers = line.trim().slice("layers:".length).split("→").map((t) => t.split("|").map((s) => s.trim().replace(/`/g, "")));
  const rank = new Map<string, number>();
  tiers.forEach((names, i) => {
    for (const n of names) rank.set(n, tiers.length - i);
  });
  return rank;
}

/** src-relative path → the src-relative files it imports (static, type-only, re-exports and dynamic). */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of globSync("**/*.ts", { cwd: SRC })) {
    const text = readFileSync(join(SRC, file), "utf8");
    const targets: string[] = [];
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;"']*?from\s*"(\.{1,2}\/[^"]+)"|(?:^|\n)\s*import\s*"(\.{1,2}\/[^"]+)"|\bimport\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      targets.push(normalize(relative(SRC, join(SRC, dirname(file), spec))));
    }
    graph.set(file, targets);
  }
  return graph;
}

function layerOf(file: string): string {
  const first = file.split("/")[0]!;
  return file.includes("/") ? first : file;
}

test("CONTRIBUTING.md names every folder of src/ in its layer order", () => {
  const rank = layerOrder();
  const layers = new Set([...importGraph().keys()].map(layerOf));
  for (const l of layers) assert.ok(rank.has(l), `src/${l} is missing from the layers line of CONTRIBUTING.md`);
});

test("imports go downward only, and plugins never import each other", () => {
  const rank = layerOrder();
  const problems: string[] = [];
  for (const [file, targets] of importGraph()) {
    const from = layerOf(file);
    for (const target of targets) {
      const to = layerOf(target);
      if (from === to) {
        if (PLUGIN_KINDS.has(from)) {
          const [, own] = file.split("/");
          const [, other] = target.split("/");
          const isRoot = (p: string) => p.split("/").length === 2;
          // registry.ts (the kind's root) knows every plugin; a plugin folder may use its own files and common/.
          if (isRoot(file)) continue;
          if (own === "common" && other !== "common" && !isRoot(target)) problems.push(`${file} → ${target}: ${from}/common imports a plugin`);
          else if (own !== "common" && other !== own && other !== "common") problems.push(`${file} → ${target}: a plugin imports another plugin (shared code belongs in ${from}/common/ or a layer below)`);
          else if (isRoot(target)) problems.push(`${file} → ${target}: a plugin imports its kind's registry`);
        }
        continue;
      }
      const a = rank.get(from);
      const b = rank.get(to);
      if (a === undefined || b === undefined) continue; // reported by the test above
      if (b >= a) problems.push(`${file} → ${target}: ${from} may not import ${to} (${b === a ? "same layer" : "a layer above"})`);
    }
  }
  assert.deepEqual(problems, []);
});

test("src/ has no import cycles", () => {
  const graph = importGraph();
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  assert.deepEqual(cycles, []);
});

test("the checker sees real imports: a file known to import downward is found", () => {
  const graph = importGraph();
  assert.ok(graph.get("engine/agent.ts")?.some((t) => t.startsWith("config/")), "engine/agent.ts imports config/");
});
