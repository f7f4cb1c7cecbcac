// Builds the runnable form of vigil that bin/vigil, the systemd unit and the image start: one
// minified ES module bundle of src/ and its dependencies in dist/bundle/ (`npm run bundle`).
//
//   dist/bundle/vigil.mjs        the entry: maps stack traces to src/, then imports the CLI
//   dist/bundle/cert-worker.mjs  the worker threads of `vigil cert verify --batch`
//   dist/bundle/chunk-*.mjs      code shared by both, and every dynamic import() (providers,
//                                OTLP exporters, …): loaded on first use, as in the unbundled build
//   dist/bundle/*.map            source maps, so stack traces name src/ files and lines
//   dist/bundle/runtime.json     the packages the bundle leaves to node_modules (EXTERNAL below
//                                that it imports) and the production closure they need
//
// Why a bundle: Node reads, parses and keeps the source of every module it loads. A minified
// single build of only the code that runs starts faster and idles smaller than the 761 files
// (3.8 MB of source) the unbundled agent reads at start, and the image carries the bundle
// instead of 100 MB of node_modules (BENCHMARKS.md, section 14).
//
// `node scripts/bundle.ts --node-modules <dir>` also copies the closure into <dir>/node_modules
// (the Dockerfile's runtime tree). Without --node-modules the bundle runs from the checkout,
// where node_modules holds everything.
import { build, type Metafile, type Plugin } from "esbuild";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire, isBuiltin } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const OUT_DIR = join(ROOT, "dist", "bundle");

/**
 * Packages that stay in node_modules, each for a reason found in the package itself:
 * - bullmq reads its Lua commands (`commands/*.lua`) from its own directory at run time.
 * - ioredis: bullmq requires it from node_modules, and the Redis connections vigil hands to bullmq
 *   must be instances of that same copy, not of a second one inside the bundle.
 * Anything listed here that the bundle does not import is neither loaded nor shipped.
 */
export const EXTERNAL: readonly string[] = ["bullmq", "ioredis"];

/** What `runtime.json` records. */
export interface RuntimeManifest {
  /** Packages the bundle imports from node_modules (a subset of EXTERNAL). */
  readonly external: string[];
  /** Their production closure: paths relative to the project root, as npm installed them. */
  readonly closure: string[];
}

/**
 * `createRequire(import.meta.url)("pkg")` keeps a large package out of start-up in the unbundled
 * build (src/checks/certificate_validity/pki/dns.ts and tldts), but esbuild cannot see through it,
 * so the package would be missing from the bundle. As a plain `require("pkg")` esbuild includes
 * it, still evaluated on the first call only.
 */
const lazyRequire: Plugin = {
  name: "lazy-require",
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, "utf8");
      if (!text.includes("createRequire(")) return undefined;
      const rewritten = text.replaceAll(/createRequire\(import\.meta\.url\)\((["'][^"']+["'])\)/g, "require($1)");
      const left = /createRequire\([^)]*\)\s*\(/.exec(rewritten.replace(/^\s*import .*$/gm, ""));
      if (left) return { errors: [{ text: `${relative(ROOT, args.path)}: only createRequire(import.meta.url)("<package>") can be bundled, found ${left[0]}` }] };
      return { contents: rewritten, loader: "ts" };
    });
  },
};

/**
 * `await import("undici")` of a CommonJS package gives Node's namespace: `default` is
 * module.exports and each export is a named one too. With code splitting esbuild gives only
 * `default` (github.com/evanw/esbuild/issues/3245), so `(await import("undici")).Agent` would be
 * undefined. A dynamic import of a CommonJS package therefore goes through a small ES module that
 * names its exports, as Node would (the names are read by loading the package here, at build time).
 */
const commonJsNamespaces: Plugin = {
  name: "commonjs-namespaces",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.kind !== "dynamic-import" || isBuiltin(args.path) || EXTERNAL.includes(packageName(args.path))) return undefined;
      const resolved = await b.resolve(args.path, { kind: "import-statement", resolveDir: args.resolveDir });
      if (resolved.errors.length > 0 || !isCommonJs(resolved.path)) return undefined;
      return { path: resolved.path, namespace: "commonjs-namespace" };
    });
    b.onLoad({ filter: /.*/, namespace: "commonjs-namespace" }, (args) => {
      const exported = createRequire(args.path)(args.path) as Record<string, unknown>;
      const names = Object.keys(exported).filter((n) => n !== "default" && n !== "__esModule" && /^[A-Za-z_$][\w$]*$/.test(n));
      return {
        resolveDir: dirname(args.path),
        loader: "js",
        contents: `const m = require(${JSON.stringify(args.path)});\nexport default m;\nexport const { ${names.join(", ")} } = m;\n`,
      };
    });
  },
};

/**
 * The ASN.1 packages (asn1js, @peculiar/asn1-*, and the helpers they import) are bundled from their
 * ES module builds, not the CommonJS `main` esbuild takes for platform node: bundled as CommonJS,
 * each of their ~80 files became a wrapper whose exports were copied through getters at load, and
 * loading the X.509 modules took 17–25 ms on the certificate check's first run; from the ES module
 * builds 6–7 ms (BENCHMARKS.md, section 22). Every one of them resolves here, so no copy of a class
 * is bundled twice in the two formats (their `instanceof` checks and schema registry need one).
 */
const ASN1_PACKAGES = /^(@peculiar\/asn1-[a-z0-9-]+|@peculiar\/utils|asn1js|pvtsutils|pvutils)$/;
const asn1EsModules: Plugin = {
  name: "asn1-es-modules",
  setup(b) {
    b.onResolve({ filter: ASN1_PACKAGES }, async (args) => {
      if (args.pluginData === "asn1-es-modules") return undefined;
      const main = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: "asn1-es-modules" });
      if (main.errors.length > 0) return undefined;
      const dir = packageDir(main.path, args.path);
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { module?: string; exports?: Record<string, unknown> };
      const dot = pkg.exports?.["."];
      const esm = (typeof dot === "object" && dot !== null ? (dot as { import?: unknown }).import : undefined) ?? pkg.module;
      if (typeof esm !== "string") throw new Error(`${args.path} has no ES module build`);
      return { path: join(dir, esm) };
    });
  },
};

/** The directory of package `name` that holds `file`. */
function packageDir(file: string, name: string): string {
  const marker = `${sep}node_modules${sep}${name.split("/").join(sep)}${sep}`;
  const at = file.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot find the package directory of ${name} in ${file}`);
  return file.slice(0, at + marker.length - 1);
}

/**
 * Node's built-in modules are loaded with require(), not import. Importing one as an ES module
 * builds its ES facade, which reads every export once, getters included: `node:http`'s lazy
 * WebSocket, CloseEvent and MessageEvent then load Node's internal copy of undici. Measured in a
 * bare process: +12.8 MiB RSS and ~45 ms for code vigil never calls; the agent's idle RSS fell by
 * about that much (BENCHMARKS.md, section 18). require() returns the module object and leaves its
 * getters alone.
 */
const builtinsByRequire: Plugin = {
  name: "builtins-by-require",
  setup(b) {
    b.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
      if ((args.kind !== "import-statement" && args.kind !== "dynamic-import") || !isBuiltin(args.path)) return undefined;
      return { path: args.path, namespace: "node-builtin" };
    });
    b.onLoad({ filter: /.*/, namespace: "node-builtin" }, (args) => ({
      loader: "js",
      contents: `module.exports = require(${JSON.stringify(args.path.startsWith("node:") ? args.path : `node:${args.path}`)});`,
    }));
  },
};

/**
 * zod's namespace re-exports every locale's error messages (49 of them, ~250 KB of the start-up
 * chunks) and esbuild cannot tell which a namespace import uses. vigil speaks English only
 * (`z.locales.en()` in src/config/load.ts): the locales module of the bundle exports `en` alone.
 */
const zodEnglishOnly: Plugin = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
      if (!/[\\/]node_modules[\\/]zod[\\/]v4[\\/](classic|core)$/.test(args.resolveDir)) return undefined;
      return { path: join(args.resolveDir, "..", "locales", "en.js"), namespace: "zod-locales" };
    });
    b.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({
      resolveDir: dirname(args.path),
      loader: "js",
      contents: 'export { default as en } from "./en.js";\n',
    }));
  },
};

/** A file Node would load as CommonJS: .cjs, or .js without ES module syntax outside a "type": "module" package. */
function isCommonJs(file: string): boolean {
  if (file.endsWith(".cjs")) return true;
  if (!file.endsWith(".js")) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (!existsSync(join(dir, "package.json"))) continue;
    const type = (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { type?: string }).type;
    if (type === "module") return false;
    break;
  }
  return !/^\s*(?:import\s*[\w{*"']|export\s)/m.test(readFileSync(file, "utf8"));
}

/** The entry: stack traces are mapped from the first module on. */
const entry: Plugin = {
  name: "entry",
  setup(b) {
    b.onResolve({ filter: /^vigil:entry$/ }, () => ({ path: "entry", namespace: "vigil" }));
    b.onLoad({ filter: /.*/, namespace: "vigil" }, () => ({
      resolveDir: ROOT,
      loader: "js",
      contents: [
        'import { enableCompileCache } from "./src/cli/compile-cache.ts";',
        'import { mapBundleStackTraces } from "./src/cli/stack-traces.ts";',
        'import { pauseOptimizingCompilers } from "./src/cli/footprint.ts";',
        // The agent's start-up code runs once: its optimised copies would only take memory.
        'if (process.argv[2] === "run") pauseOptimizingCompilers();',
        // Before the chunks load, so their compiled code comes from (and goes to) the cache.
        "enableCompileCache();",
        // Stack traces are mapped to src/ on first need (src/cli/stack-traces.ts says why not by
        // Node), unless Node already maps them (`--enable-source-maps`) or is told not to.
        'const off = process.execArgv.concat((process.env.NODE_OPTIONS ?? "").split(/\\s+/)).includes("--no-enable-source-maps");',
        'if (!off && !process.sourceMapsEnabled) mapBundleStackTraces(new URL(".", import.meta.url).href);',
        'await import("./src/cli/main.ts");',
      ].join("\n"),
    }));
  },
};

/** Builds into `outDir` (emptied first); dist/bundle unless a test builds elsewhere. */
export async function bundle(outDir: string = OUT_DIR): Promise<{ metafile: Metafile; manifest: RuntimeManifest }> {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  rmSync(outDir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [
      { in: "vigil:entry", out: "vigil" },
      // Found by src/cli/cert.ts beside itself, with the extension of its own file.
      { in: "src/cli/cert-worker.ts", out: "cert-worker" },
    ],
    outdir: outDir,
    outExtension: { ".js": ".mjs" },
    // Chunks beside the entries: a chunk's import.meta.url then resolves ./cert-worker.mjs.
    chunkNames: "chunk-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22.12",
    // BUNDLE_NO_MINIFY=1 keeps names and lines readable in a CPU profile of the bundle.
    minify: process.env.BUNDLE_NO_MINIFY !== "1",
    // Error classes and plugin factories are told apart by name in places (and in logs).
    keepNames: true,
    sourcemap: "linked",
    // Stack traces need the mappings, not the sources: the .map files stay a third of the size.
    sourcesContent: false,
    // Licence texts are collected into one file instead (licenses below).
    legalComments: "none",
    external: [...EXTERNAL],
    define: { VIGIL_BUILD_VERSION: JSON.stringify(pkg.version) },
    // CommonJS dependencies bundled into ES modules still call require() for Node's built-ins.
    banner: { js: 'import{createRequire as __vigilRequire}from"node:module";const require=__vigilRequire(import.meta.url);' },
    plugins: [entry, asn1EsModules, builtinsByRequire, zodEnglishOnly, lazyRequire, commonJsNamespaces],
    metafile: true,
    logLevel: "warning",
    logOverride: { "empty-import-meta": "silent" },
  });
  const imported = new Set<string>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const imp of output.imports) if (imp.external && !isBuiltin(imp.path)) imported.add(packageName(imp.path));
  }
  const external = [...imported].sort();
  const stray = external.filter((p) => !EXTERNAL.includes(p));
  if (stray.length > 0) throw new Error(`the bundle imports ${stray.join(", ")} from node_modules without listing it in EXTERNAL`);
  writeFileSync(join(outDir, "THIRD-PARTY-LICENSES.txt"), licenses(result.metafile));
  const manifest: RuntimeManifest = { external, closure: productionClosure(ROOT, external) };
  writeFileSync(join(outDir, "runtime.json"), JSON.stringify(manifest, null, 2) + "\n");
  return { metafile: result.metafile, manifest };
}

/** The licence of every package with code in the bundle: bundling must not drop their notices. */
function licenses(metafile: Metafile): string {
  const dirs = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    if (/^[\w-]+:/.test(input)) continue; // a plugin's module (namespace:path), not a file
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) dirs.add(m[1]);
  }
  const parts: string[] = [];
  for (const dir of [...dirs].sort()) {
    const pkg = JSON.parse(readFileSync(join(ROOT, dir, "package.json"), "utf8")) as { name: string; version: string; license?: string };
    const file = readdirSync(join(ROOT, dir)).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
    const text = file ? readFileSync(join(ROOT, dir, file), "utf8").trim() : `License: ${pkg.license ?? "see the package"}`;
    parts.push(`${pkg.name}@${pkg.version}\n\n${text}\n`);
  }
  return `Third-party software in vigil's bundle (dist/bundle/*.mjs)\n\n${parts.join("\n" + "-".repeat(78) + "\n\n")}`;
}

function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/**
 * The installed directories (`node_modules/a`, `node_modules/a/node_modules/b`) that `roots` need
 * at run time, resolved from package-lock.json the way Node resolves them: a dependency of the
 * package at P is P/node_modules/D, else the same under P's ancestors. Optional dependencies npm
 * did not install (another platform's binaries) are skipped; a missing required one is an error.
 */
export function productionClosure(root: string, roots: readonly string[]): string[] {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, LockPackage> };
  const packages = lock.packages;
  const resolveFrom = (from: string, name: string): string | undefined => {
    for (let base = from; ; ) {
      const candidate = `${base === "" ? "" : `${base}/`}node_modules/${name}`;
      if (packages[candidate]) return candidate;
      if (base === "") return undefined;
      const at = base.lastIndexOf("/node_modules/");
      base = at < 0 ? "" : base.slice(0, at);
    }
  };
  const seen = new Set<string>();
  const visit = (from: string, name: string, required: boolean) => {
    const path = resolveFrom(from, name);
    if (!path) {
      if (required) throw new Error(`${name} (needed by ${from || "vigil"}) is not in package-lock.json`);
      return;
    }
    if (seen.has(path)) return;
    const entry = packages[path]!;
    // The lockfile lists every platform's optional packages; npm installed only this one's.
    if (!existsSync(join(root, path))) {
      if (required && !entry.optional) throw new Error(`${path} (needed by ${from || "vigil"}) is not installed: run npm ci`);
      return;
    }
    if (entry.dev) throw new Error(`${path} is a dev dependency but the runtime needs it (from ${from || "vigil"})`);
    seen.add(path);
    for (const dep of Object.keys(entry.dependencies ?? {})) visit(path, dep, true);
    for (const dep of Object.keys(entry.optionalDependencies ?? {})) visit(path, dep, false);
    for (const dep of Object.keys(entry.peerDependencies ?? {})) visit(path, dep, !entry.peerDependenciesMeta?.[dep]?.optional);
  };
  for (const name of roots) visit("", name, true);
  return [...seen].sort();
}

/** Copies the closure from the installed node_modules into <dest>/node_modules. */
export function copyClosure(manifest: RuntimeManifest, dest: string): void {
  rmSync(join(dest, "node_modules"), { recursive: true, force: true });
  mkdirSync(join(dest, "node_modules"), { recursive: true });
  for (const path of manifest.closure) {
    const from = join(ROOT, path);
    // A nested node_modules is copied only as far as the closure names its packages.
    const own = (src: string) => !relative(from, src).split(sep).includes("node_modules");
    cpSync(from, join(dest, path), { recursive: true, verbatimSymlinks: true, filter: own });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { manifest } = await bundle();
  const at = process.argv.indexOf("--node-modules");
  if (at > 0) {
    const dest = process.argv[at + 1];
    if (!dest) throw new Error("--node-modules needs a directory");
    copyClosure(manifest, resolve(dest));
  }
}
