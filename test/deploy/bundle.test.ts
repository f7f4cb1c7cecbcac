/**
 * The bundle as the image ships it: built by scripts/bundle.ts into a temp directory with only the
 * packages it leaves external copied beside it (no node_modules above it to fall back on), it
 * stays under the image's size budget and runs: --version, validate, `run` on the default config
 * up to /readyz, and the cert batch's worker threads (a separate entry found at run time).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { bundle, copyClosure, EXTERNAL, productionClosure, type RuntimeManifest } from "../../scripts/bundle.ts";
import { ROOT } from "../helpers/agent-process.ts";

/** The budget for what the image adds to the base: bundle plus runtime node_modules. */
const BUDGET_BYTES = 30 * 1024 * 1024;

function du(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, name) => sum + du(join(path, name)), 0);
}

let dir = "";
let entry = "";
let manifest: RuntimeManifest;
let inputs: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vigil-bundle-"));
  // Nothing above the temp dir may hold a node_modules that would hide a missing package.
  for (let d = dir; d !== dirname(d); d = dirname(d)) assert.ok(!existsSync(join(dirname(d), "node_modules")), `${dirname(d)}/node_modules exists`);
  const built = await bundle(join(dir, "dist", "bundle"));
  manifest = built.manifest;
  inputs = Object.keys(built.metafile.inputs);
  copyClosure(manifest, dir);
  entry = join(dir, "dist", "bundle", "vigil.mjs");
});

after(() => rmSync(dir, { recursive: true, force: true }));

const vigil = (...args: string[]) => spawnSync(process.execPath, [entry, ...args], { cwd: dir, encoding: "utf8", timeout: 60_000 });

describe("the bundle", () => {
  it("is under 30 MB together with its runtime node_modules, which hold only the external packages' closure", () => {
    const bundleBytes = du(join(dir, "dist", "bundle"));
    const modulesBytes = du(join(dir, "node_modules"));
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    assert.ok(bundleBytes + modulesBytes < BUDGET_BYTES, `bundle ${mib(bundleBytes)} MiB + node_modules ${mib(modulesBytes)} MiB`);
    assert.ok(manifest.external.every((p) => EXTERNAL.includes(p)), `external: ${manifest.external.join(", ")}`);
    for (const p of manifest.external) assert.ok(manifest.closure.includes(`node_modules/${p}`), `${p} is in the closure`);
    const top = readdirSync(join(dir, "node_modules")).flatMap((n) => (n.startsWith("@") ? readdirSync(join(dir, "node_modules", n)).map((m) => `${n}/${m}`) : [n]));
    assert.deepEqual(top.map((n) => `node_modules/${n}`).sort(), manifest.closure.filter((p) => !p.slice("node_modules/".length).includes("/node_modules/")).sort());
    // Dev dependencies are never part of it.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
    for (const dev of Object.keys(pkg.devDependencies)) assert.ok(!existsSync(join(dir, "node_modules", dev)), `dev dependency ${dev} in the runtime tree`);
  });

  it("each external package loads from the copied tree alone", () => {
    for (const name of manifest.external) {
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", `const m = await import(${JSON.stringify(name)}); if (Object.keys(m).length < 2) process.exit(3);`], { cwd: dir, encoding: "utf8", timeout: 30_000 });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    }
    // bullmq's Lua commands, the reason it is external, came along.
    if (manifest.external.includes("bullmq")) assert.ok(readdirSync(join(dir, "node_modules/bullmq/dist/cjs/commands")).some((f) => f.endsWith(".lua")));
  });

  it("bundles the packages src/ loads lazily instead of leaving them to node_modules", () => {
    for (const p of ["tldts", "jose", "@opentelemetry/exporter-trace-otlp-http", "@aws-sdk/credential-provider-node"]) {
      assert.ok(inputs.some((i) => i.startsWith(`node_modules/${p}/`)), `${p} is in the bundle`);
    }
    // Source maps name src/ files, so a stack trace points at the code as written.
    const map = JSON.parse(readFileSync(join(dir, "dist", "bundle", "vigil.mjs.map"), "utf8")) as { sources: string[] };
    assert.ok(map.sources.length > 0);
    assert.ok(readFileSync(join(dir, "dist", "bundle", "THIRD-PARTY-LICENSES.txt"), "utf8").includes("zod@"), "bundled packages' licences are kept");
  });

  it("bundles the ASN.1 packages from their ES module builds, none from its CommonJS one", () => {
    const asn1 = inputs.filter((i) => /^node_modules\/(@peculiar\/(asn1-[^/]+|utils)|asn1js|pvtsutils|pvutils)\//.test(i));
    assert.ok(asn1.some((i) => i.startsWith("node_modules/@peculiar/asn1-x509/")) && asn1.some((i) => i.startsWith("node_modules/asn1js/")), asn1.join(", "));
    // Their CommonJS builds (build/cjs, build/index.js, …) would be wrapped and copied through getters at load.
    const cjs = asn1.filter((i) => /\/build\/(cjs\/|index\.js$|utils\.js$)/.test(i));
    assert.deepEqual(cjs, [], "CommonJS builds in the bundle");
  });

  it("prints package.json's version without package.json beside it", () => {
    const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
    assert.ok(!existsSync(join(dir, "package.json")));
    const r = vigil("--version");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
  });

  it("maps stack traces to src/ on demand, and leaves them alone under --no-enable-source-maps", () => {
    // The stack at the moment the CLI writes its version runs through the bundle's own frames.
    const probe = (flags: string[]) =>
      spawnSync(
        process.execPath,
        [
          ...flags,
          "--input-type=module",
          "-e",
          `let stack = "";
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk, ...rest) => { stack ||= new Error("probe").stack; return write(chunk, ...rest); };
process.argv = [process.argv[0], "vigil", "--version"];
process.on("exit", () => process.stderr.write(stack));
await import(${JSON.stringify(entry)});`,
        ],
        { cwd: dir, encoding: "utf8", timeout: 30_000 },
      );
    const mapped = probe([]);
    assert.equal(mapped.status, 0, mapped.stderr);
    assert.match(mapped.stderr, /^Error: probe\n/);
    assert.match(mapped.stderr, /\n {4}at .+ \(\/.+\/src\/cli\/[\w-]+\.ts:\d+:\d+\)/, mapped.stderr);
    assert.ok(!/chunk-\w+\.mjs/.test(mapped.stderr), mapped.stderr);
    const raw = probe(["--no-enable-source-maps"]);
    assert.equal(raw.status, 0, raw.stderr);
    assert.match(raw.stderr, /dist\/bundle\/(chunk-\w+|vigil)\.mjs:\d+:\d+/, raw.stderr);
  });

  it("keeps Node's compile cache under $XDG_CACHE_HOME/vigil unless told otherwise", () => {
    const home = mkdtempSync(join(tmpdir(), "vigil-cache-"));
    try {
      const run = (env: NodeJS.ProcessEnv) => {
        const clean = { ...process.env };
        delete clean["NODE_COMPILE_CACHE"];
        delete clean["NODE_DISABLE_COMPILE_CACHE"];
        const r = spawnSync(process.execPath, [entry, "validate", "-c", join(ROOT, "config/vigil.yaml")], { cwd: dir, encoding: "utf8", timeout: 60_000, env: { ...clean, ...env } });
        assert.equal(r.status, 0, r.stderr);
      };
      const cache = join(home, "vigil", "compile-cache");
      run({ XDG_CACHE_HOME: home, NODE_DISABLE_COMPILE_CACHE: "1" });
      assert.ok(!existsSync(cache), "NODE_DISABLE_COMPILE_CACHE turns it off");
      run({ XDG_CACHE_HOME: home });
      // One directory per Node version, holding an entry per compiled chunk.
      const [versionDir, ...more] = readdirSync(cache);
      assert.equal(more.length, 0);
      assert.ok(readdirSync(join(cache, versionDir!)).length >= 5, "the chunks' compiled code is kept");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("validates config/vigil.yaml", () => {
    const r = vigil("validate", "-c", join(ROOT, "config/vigil.yaml"));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /config\/vigil\.yaml: valid/);
  });

  it("runs the default config until /readyz answers 200", async () => {
    // config/ beside var/ as in the checkout, so the config's ../var paths hold.
    mkdirSync(join(dir, "config"));
    const yaml = readFileSync(join(ROOT, "config/vigil.yaml"), "utf8").replace(/^(\s*listen:\s*)"127\.0\.0\.1:\d+"/gm, '$1"127.0.0.1:0"');
    assert.doesNotMatch(yaml, /127\.0\.0\.1:[1-9]/);
    writeFileSync(join(dir, "config/vigil.yaml"), yaml);
    const pki = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts"), join(dir, "var/demo-pki")], { encoding: "utf8" });
    assert.equal(pki.status, 0, pki.stderr);
    const child: ChildProcess = spawn(process.execPath, [entry, "run", "-c", join(dir, "config/vigil.yaml")], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let buffer = "";
        child.stdout!.setEncoding("utf8").on("data", (c: string) => {
          buffer += c;
          for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            const rec = JSON.parse(line) as { msg?: string; address?: { port?: number } };
            if (rec.msg === "api server listening" && rec.address?.port) resolve(rec.address.port);
          }
        });
        child.once("exit", (code) => reject(new Error(`exited ${code} before listening: ${stderr}`)));
      });
      let status = 0;
      for (const deadline = Date.now() + 30_000; status !== 200 && Date.now() < deadline; ) {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        await res.arrayBuffer();
        status = res.status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(status, 200, stderr);
    } finally {
      const exited = child.exitCode === null ? once(child, "exit") : Promise.resolve([child.exitCode]);
      child.kill("SIGTERM");
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0, `stopped cleanly on SIGTERM: ${stderr}`);
    }
  });

  it("starts the cert batch's worker threads from their own entry", () => {
    const pki = join(dir, "batch-pki");
    const gen = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts"), pki], { encoding: "utf8" });
    assert.equal(gen.status, 0, gen.stderr);
    const lines = readFileSync(join(pki, "chains.jsonl"), "utf8").trim().split("\n");
    assert.ok(lines.length >= 2);
    const r = vigil("cert", "verify", "--batch", join(pki, "chains.jsonl"), "--jobs", "2");
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, lines.length, "one verdict per line");
    assert.equal(r.stderr, "");
  });
});

it("the runtime closure follows Node's resolution through package-lock.json", () => {
  const root = mkdtempSync(join(tmpdir(), "vigil-closure-"));
  try {
    const packages: Record<string, object> = {
      "": { dependencies: { a: "1" }, devDependencies: { dev: "1" } },
      "node_modules/a": { dependencies: { b: "2", c: "1" }, optionalDependencies: { "other-platform": "1", here: "1" } },
      "node_modules/a/node_modules/b": { dependencies: { c: "1" } },
      "node_modules/b": {},
      "node_modules/c": { peerDependencies: { maybe: "1" }, peerDependenciesMeta: { maybe: { optional: true } } },
      "node_modules/here": { optional: true },
      "node_modules/other-platform": { optional: true },
      "node_modules/dev": { dev: true },
    };
    writeFileSync(join(root, "package-lock.json"), JSON.stringify({ packages }));
    for (const p of Object.keys(packages)) if (p !== "" && p !== "node_modules/other-platform") mkdirSync(join(root, p), { recursive: true });
    // a's own b (nested) wins over the hoisted one; c is found from the nested b by going up.
    assert.deepEqual(productionClosure(root, ["a"]), ["node_modules/a", "node_modules/a/node_modules/b", "node_modules/c", "node_modules/here"]);
    assert.throws(() => productionClosure(root, ["dev"]), /dev dependency/);
    assert.throws(() => productionClosure(root, ["absent"]), /not in package-lock\.json/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
