/**
 * Summarises a V8 .cpuprofile (from `BENCH_AGENT_ARGS="--cpu-prof --cpu-prof-dir=DIR"`): self time by
 * function and by file, and inclusive time of the functions whose name matches an optional pattern.
 *   node bench/profile-summary.ts FILE.cpuprofile [top=25] [inclusive-regex]
 * PROFILE_WINDOW="FROM,TO" (seconds from the profile's start) counts only the samples in that window,
 * e.g. the evaluation pass without the start before it and the API reads after it.
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const [file, topArg, pattern] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.ts FILE [top] [regex]");
const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
const top = Number(topArg ?? 25);
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const [from, to] = (process.env.PROFILE_WINDOW ?? "0,Infinity").split(",").map(Number) as [number, number];
const self = new Map<number, number>();
let at = 0;
for (let i = 0; i < prof.samples.length; i++) {
  at += prof.timeDeltas[i]! / 1e6;
  if (at < from || at > to) continue;
  self.set(prof.samples[i]!, (self.get(prof.samples[i]!) ?? 0) + (prof.timeDeltas[i + 1] ?? 0) / 1000);
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
const short = (u: string) => u.replace(/^file:\/\/.*?\/(dist|node_modules)\//, "$1/").replace(/^node:/, "node:");
const label = (n: Node) => `${n.callFrame.functionName || "(anon)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

const fnSelf = new Map<string, number>();
const fileSelf = new Map<string, number>();
for (const [id, ms] of self) {
  const n = byId.get(id)!;
  fnSelf.set(label(n), (fnSelf.get(label(n)) ?? 0) + ms);
  const f = short(n.callFrame.url) || `(${n.callFrame.functionName})`;
  fileSelf.set(f, (fileSelf.get(f) ?? 0) + ms);
}
const print = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${v.toFixed(0).padStart(7)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
};
console.log(`profile ${((prof.endTime - prof.startTime) / 1e6).toFixed(2)} s wall, ${(total / 1000).toFixed(2)} s sampled`);
print("self time by function", fnSelf);
print("self time by file", fileSelf);
if (pattern) {
  const re = new RegExp(pattern);
  const incl = new Map<string, number>();
  for (const [id, ms] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      const l = label(n);
      if (re.test(l) && !seen.has(l)) {
        seen.add(l);
        incl.set(l, (incl.get(l) ?? 0) + ms);
      }
    }
  }
  print(`inclusive time of /${pattern}/`, incl);
}
