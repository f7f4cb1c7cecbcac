/** `vigil anomaly score` through the real bin/vigil on generated CSV files. */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, createWriteStream, readFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { runCli, BIN } from "../helpers/agent-process.ts";
import { makeSeries } from "../helpers/series.ts";

let dir: string;
const iso = (t: number) => new Date(t).toISOString().replace("T", " ").slice(0, 19);

before(() => {
  dir = mkdtempSync(join(tmpdir(), "vigil-anomaly-"));
});

test("scores every line, finds the spike, leaves skipped points empty, --threshold adds a column", async () => {
  const s = makeSeries("spike", { seed: 3, length: 2000, onset: 1500 });
  const lines = ["timestamp,value", ...s.t.map((t, i) => `${i % 2 ? iso(t) : new Date(t).toISOString()},${s.v[i]!.toFixed(3)}`)];
  lines.splice(101, 0, `${iso(s.t[99]! + 1000)},NaN`, `${iso(s.t[99]! + 2000)},`);
  writeFileSync(join(dir, "spike.csv"), lines.join("\n") + "\n");
  const r = await runCli(["anomaly", "score", join(dir, "spike.csv"), "--threshold", "0.6"]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout.trimEnd().split("\n");
  assert.equal(out[0], "timestamp,value,anomaly_score,anomaly");
  assert.equal(out.length, lines.length);
  const rows = out.slice(1).map((l) => l.split(","));
  assert.deepEqual(rows[100]!.slice(1), ["NaN", "", ""]);
  assert.deepEqual(rows[101]!.slice(1), ["", "", ""]);
  const flagged = rows.map((c, i) => (c[3] === "1" ? i : -1)).filter((i) => i >= 0);
  // Line index 1502 in the output = point 1500 (two extra lines were inserted before it).
  assert.deepEqual(flagged, [1502]);
  assert.ok(rows.slice(0, 300).every((c) => c[2] === "0" || c[2] === ""), "warm-up (15 % of 2002 lines) scores 0");
  assert.match(r.stderr, /median_mad: 2002 points, warm-up 300, skipped 2 non-finite and 0 out of order, 1 at or above 0\.6/);
});

test("--detector, --min/--max and --warmup are honoured", async () => {
  const s = makeSeries("level_shift", { seed: 4, length: 600, onset: 400 });
  writeFileSync(join(dir, "cad.csv"), ["time,value", ...s.t.map((t, i) => `${t / 1000},${s.v[i]}`)].join("\n"));
  const r = await runCli(["anomaly", "score", join(dir, "cad.csv"), "--detector", "cad_ose", "--min", "80", "--max", "120", "--warmup", "50"]);
  assert.equal(r.code, 0, r.stderr);
  const scores = r.stdout.trimEnd().split("\n").slice(1).map((l) => Number(l.split(",")[2]));
  assert.equal(scores.length, 600);
  assert.ok(scores.slice(0, 50).every((x) => x === 0));
  assert.ok(scores.slice(50).some((x) => x > 0), "CAD OSE scores after the warm-up");
  assert.match(r.stderr, /cad_ose: 600 points, warm-up 50/);
});

test("a bad line is named and exits 2 before anything is printed; a missing file exits 2", async () => {
  writeFileSync(join(dir, "bad.csv"), "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,2\n2026-13-01 00:10:00,3\n");
  let r = await runCli(["anomaly", "score", join(dir, "bad.csv")]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /bad\.csv:4: unreadable timestamp "2026-13-01 00:10:00"/);
  writeFileSync(join(dir, "bad2.csv"), "timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,abc\n");
  r = await runCli(["anomaly", "score", join(dir, "bad2.csv")]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad2\.csv:3: unreadable value "abc"/);
  writeFileSync(join(dir, "noheader.csv"), "2026-01-01 00:00:00,1\n");
  r = await runCli(["anomaly", "score", join(dir, "noheader.csv")]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /noheader\.csv:1: the first line must be a header/);
  r = await runCli(["anomaly", "score", join(dir, "missing.csv")]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read .*missing\.csv/);
  r = await runCli(["anomaly", "score", join(dir, "bad.csv"), "--detector", "nope"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown detector "nope"/);
});

test("--help lists the built-in detectors", async () => {
  const r = await runCli(["anomaly", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /median_mad +rolling median/);
  assert.match(r.stdout, /cad_ose +Contextual Anomaly Detector/);
});

test("memory does not grow with the file: 1,000,000 lines stream through", { timeout: 240_000 }, async () => {
  const file = join(dir, "long.csv");
  const w = createWriteStream(file);
  w.write("timestamp,value\n");
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  for (let i = 0; i < 1_000_000; i++) {
    if (!w.write(`${t0 / 1000 + i * 60},${(100 + 10 * Math.sin(i / 100) + (i % 7)).toFixed(2)}\n`)) await once(w, "drain");
  }
  w.end();
  await once(w, "finish");
  const child = spawn(process.execPath, [BIN, "anomaly", "score", file], { stdio: ["ignore", "pipe", "pipe"] });
  let lines = 0;
  let peak = 0;
  child.stdout.on("data", (c: Buffer) => {
    for (const b of c) if (b === 10) lines++;
  });
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(child.pid!));
    } catch {
      /* exited */
    }
  }, 50);
  const [code] = (await once(child, "exit")) as [number];
  clearInterval(timer);
  assert.equal(code, 0);
  assert.equal(lines, 1_000_001);
  // The file is ~25 MB and its output ~35 MB; a process that held either would be far above this.
  assert.ok(peak < 150, `peak RSS ${peak.toFixed(0)} MiB`);
});

/** VmRSS of a process in MiB. */
function rssMiB(pid: number): number {
  const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return kib / 1024;
}
