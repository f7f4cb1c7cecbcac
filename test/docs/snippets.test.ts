/**
 * Every command and config snippet in README.md and docs/ (fenced blocks) runs, so the docs stay
 * right. The conventions are in CONTRIBUTING.md, "Docs that run":
 *
 * - ```yaml: a vigil config, validated by the real `vigil validate --offline`; without an
 *   `inventories` key it gets a file inventory (so a policy's source need not be listed), and the
 *   provider of every action it names gets that provider's example entry when the block configures
 *   none. `<!-- doctest: in KEY.PATH -->` before the fence places a fragment there in such a config.
 * - ```sh (or bash, shell, console): every `vigil …` / `bin/vigil …` line runs against a real agent
 *   on a scratch copy of the demo (config/vigil.yaml and its PKI), from that copy's directory, and
 *   must exit 0 (or N after `<!-- doctest: exit N -->`); `vigil run`, `--follow` and `--watch`
 *   must still be running after a while, then are stopped. Any other program must be in
 *   OTHER_PROGRAMS below, with the reason it is not run.
 * - ```js: must parse as a module.
 * - `<!-- doctest: skip (REASON) -->` before a fence: not run (another program's config).
 * Other languages (json, hcl, untagged) are shown, not run.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { parseAllDocuments, stringify } from "yaml";
import { loadBuiltins } from "../../src/actions/registry.ts";
import { AgentProcess, ROOT, runCli } from "../helpers/agent-process.ts";

/** Programs the docs show that this test does not run, and why. */
const OTHER_PROGRAMS: Readonly<Record<string, string>> = {
  npm: "installs dependencies or starts the demo in the repository itself; this test runs the same demo from a scratch copy",
  "scripts/install-test-deps": "installs Debian packages with apt-get",
  docker: "builds or runs the image; test/deploy/dockerfile.test.ts checks the Dockerfile",
  helm: "needs a Kubernetes cluster; test/deploy/helm.test.ts renders the chart",
  kubectl: "needs a Kubernetes cluster",
  systemctl: "needs systemd as the init system; test/deploy/systemd.test.ts checks the unit",
  curl: "talks to the demo's fixed port 7070; the API's routes are tested in test/http and test/integration",
  "TOKEN=": "sets the shell variable the curl lines after it use",
  openssl: "makes key material for a deployment",
  promtool: "tests the alert rules; test/telemetry/alert-rules.test.ts runs it",
};

const SHELL = new Set(["sh", "bash", "shell", "console"]);

interface Block {
  readonly file: string;
  readonly line: number;
  readonly lang: string;
  readonly text: string;
  readonly skip?: string;
  readonly in?: string;
  readonly exit?: number;
}

function docFiles(): string[] {
  const out = ["README.md"];
  const walk = (dir: string) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith(".md")) out.push(join(dir, e.name));
    }
  };
  walk("docs");
  return out.sort();
}

/** The fenced blocks of a markdown file, with the `<!-- doctest: … -->` lines right before each. */
export function blocksOf(file: string, markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})([\w-]*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    let end = i + 1;
    while (end < lines.length && lines[end]!.trim() !== fence) end++;
    const directives: Record<string, string> = {};
    for (let j = i - 1; j >= 0 && /^<!--\s*doctest:/.test(lines[j]!); j--) {
      const m = /^<!--\s*doctest:\s*(skip|in|exit)\b\s*(.*?)\s*-->$/.exec(lines[j]!);
      if (!m) throw new Error(`${file}:${j + 1}: unknown doctest directive: ${lines[j]}`);
      directives[m[1]!] = m[2]!;
    }
    if (directives.skip !== undefined && !/^\(.+\)$/.test(directives.skip)) throw new Error(`${file}:${i}: "doctest: skip" needs a reason in parentheses`);
    if (directives.exit !== undefined && !/^\d+$/.test(directives.exit)) throw new Error(`${file}:${i}: "doctest: exit" takes a number`);
    blocks.push({
      file,
      line: i + 1,
      lang: open[2]!,
      text: lines.slice(i + 1, end).join("\n"),
      ...(directives.skip !== undefined ? { skip: directives.skip } : {}),
      ...(directives.in !== undefined ? { in: directives.in } : {}),
      ...(directives.exit !== undefined ? { exit: Number(directives.exit) } : {}),
    });
    i = end;
  }
  return blocks;
}

/** A shell block's commands: continuation lines joined, comments and blank lines left out. */
export function commandsOf(text: string): string[] {
  const joined = text.replace(/\\\n\s*/g, "");
  return joined
    .split("\n")
    .map(stripComment)
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

const all = docFiles().flatMap((f) => blocksOf(f, readFileSync(join(ROOT, f), "utf8")));
const where = (b: Block) => `${b.file}:${b.line}`;

describe("the snippet conventions", () => {
  it("find the blocks, their directives and their commands", () => {
    const md = "text\n<!-- doctest: exit 1 -->\n```sh\nbin/vigil x \\\n  --y   # say 'hi' # twice\n\n# only a comment\nvigil z '#not a comment'\n```\n```yaml\na: 1\n```\n";
    const [sh, yaml] = blocksOf("x.md", md);
    assert.deepEqual([sh!.lang, sh!.line, sh!.exit, yaml!.lang, yaml!.text], ["sh", 3, 1, "yaml", "a: 1"]);
    assert.deepEqual(commandsOf(sh!.text), ["bin/vigil x --y", "vigil z '#not a comment'"]);
    assert.throws(() => blocksOf("x.md", "<!-- doctest: skip -->\n```yaml\na: 1\n```\n"), /needs a reason/);
    assert.throws(() => blocksOf("x.md", "<!-- doctest: skipp (x) -->\n```yaml\na: 1\n```\n"), /unknown doctest directive/);
  });

  it("README.md and docs/ hold snippets of each kind", () => {
    for (const lang of ["yaml", "sh", "js"]) assert.ok(all.some((b) => b.lang === lang), lang);
    assert.ok(all.filter((b) => b.lang === "yaml" && !b.skip).length >= 20);
  });
});

// ---------------------------------------------------------------------------------------------
// YAML: vigil configs

const { actions: builtinActions, providers: builtinProviders } = await loadBuiltins();
const scratch = mkdtempSync(join(tmpdir(), "vigil-docs-"));

/** The config a YAML block stands for (see the module comment). */
function configOf(b: Block): Record<string, unknown> {
  const docs = parseAllDocuments(b.text);
  assert.equal(docs.length, 1, `${where(b)}: one YAML document`);
  for (const d of docs) assert.deepEqual(d.errors, [], `${where(b)}: YAML errors`);
  const value = docs[0]!.toJS() as unknown;
  let config: Record<string, unknown>;
  if (b.in !== undefined) {
    config = {};
    const keys = b.in.split(".");
    let node = config;
    for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
    node[keys.at(-1)!] = value;
  } else {
    assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), `${where(b)}: a YAML block that is not a config needs <!-- doctest: in KEY --> or <!-- doctest: skip (why) -->`);
    config = value as Record<string, unknown>;
  }
  config.inventories ??= [{ type: "file", path: "subjects.json" }];
  if (config.providers === undefined) {
    const providers: Record<string, unknown> = {};
    for (const type of actionTypes(config)) {
      const provider = builtinActions.find((a) => a.type === type)?.provider;
      const example = builtinProviders.find((p) => p.type === provider)?.example;
      if (provider && example) providers[provider] = example;
    }
    if (Object.keys(providers).length > 0) config.providers = providers;
  }
  return config;
}

function actionTypes(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const v of value) actionTypes(v, out);
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "type" && typeof v === "string" && v.includes(":")) out.add(v);
      else actionTypes(v, out);
    }
  }
  return out;
}

describe("YAML snippets validate with vigil validate --offline", { concurrency: 8 }, () => {
  for (const b of all.filter((x) => x.lang === "yaml" && !x.skip)) {
    it(where(b), async () => {
      const file = join(scratch, "yaml", `${b.file.replace(/[/.]/g, "_")}-${b.line}.yaml`);
      mkdirSync(join(scratch, "yaml"), { recursive: true });
      writeFileSync(file, stringify(configOf(b)));
      const r = await runCli(["validate", "--offline", "-c", file]);
      assert.equal(r.code, 0, `${where(b)} (as ${file}):\n${r.stderr}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// JS

describe("JS snippets parse", () => {
  for (const b of all.filter((x) => x.lang === "js" && !x.skip)) {
    it(where(b), () => {
      const file = join(scratch, `${b.file.replace(/[/.]/g, "_")}-${b.line}.mjs`);
      writeFileSync(file, b.text);
      const r = spawnSync(process.execPath, ["--check", file], { encoding: "utf8" });
      assert.equal(r.status, 0, `${where(b)}: ${r.stderr}`);
    });
  }

  it("the receiver-side signature check of docs/api.md refuses a missing, short or wrong header without throwing", async () => {
    const b = all.find((x) => x.file === "docs/api.md" && x.lang === "js" && x.text.includes("signatureValid"));
    assert.ok(b, "docs/api.md shows signatureValid");
    const file = join(scratch, "signature.mjs");
    writeFileSync(file, b.text);
    const { signatureValid } = (await import(pathToFileURL(file).href)) as { signatureValid: (body: Buffer, header: string | undefined, secret: string) => boolean };
    const { createHmac } = await import("node:crypto");
    const body = Buffer.from('{"subject":"frontend"}');
    const good = "sha256=" + createHmac("sha256", "s3cret-0123456789").update(body).digest("hex");
    assert.equal(signatureValid(body, good, "s3cret-0123456789"), true);
    assert.equal(signatureValid(body, undefined, "s3cret-0123456789"), false, "missing header");
    assert.equal(signatureValid(body, "sha256=ab", "s3cret-0123456789"), false, "short header");
    assert.equal(signatureValid(body, good.slice(0, -1) + (good.endsWith("0") ? "1" : "0"), "s3cret-0123456789"), false, "wrong signature");
    assert.equal(signatureValid(body, good, "another-secret-000"), false, "wrong secret");
  });
});

// ---------------------------------------------------------------------------------------------
// Shell: against a real agent on a scratch copy of the demo

const demo = join(scratch, "demo");
let agent: AgentProcess | undefined;
const env: NodeJS.ProcessEnv = {};

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("shell snippets run against a real agent", () => {
  before(async () => {
    mkdirSync(join(demo, "config"), { recursive: true });
    const [api, metrics] = [await freePort(), await freePort()];
    const text = readFileSync(join(ROOT, "config/vigil.yaml"), "utf8").replace('"127.0.0.1:7070"', `"127.0.0.1:${api}"`).replace('"127.0.0.1:9464"', `"127.0.0.1:${metrics}"`);
    assert.match(text, new RegExp(`127\\.0\\.0\\.1:${api}`), "the demo's API address is replaced");
    writeFileSync(join(demo, "config/vigil.yaml"), text);
    copyFileSync(join(ROOT, "config/schema.json"), join(demo, "config/schema.json"));
    symlinkSync(join(ROOT, "config/examples"), join(demo, "config/examples"));
    symlinkSync(join(ROOT, "bin"), join(demo, "bin"));
    const pki = spawnSync(process.execPath, [join(ROOT, "scripts/demo-pki.ts"), join(demo, "var/demo-pki")], { encoding: "utf8" });
    assert.equal(pki.status, 0, pki.stderr);
    // The generated audit key goes to the scratch directory, not the home of whoever runs the tests.
    Object.assign(env, { XDG_CONFIG_HOME: join(scratch, "xdg"), PATH: `${join(demo, "bin")}:${process.env.PATH ?? ""}` });
    for (const k of Object.keys(process.env)) if (k.startsWith("VIGIL_")) env[k] = "";
    agent = await AgentProcess.start(join(demo, "config/vigil.yaml"), env);
  });

  after(async () => {
    if (agent) assert.equal(await agent.stop(), 0, agent.stderr.join(""));
  });

  for (const b of all.filter((x) => SHELL.has(x.lang) && !x.skip)) {
    it(where(b), async () => {
      for (const command of commandsOf(b.text)) {
        const first = command.split(/\s+/)[0]!;
        if (first !== "vigil" && first !== "bin/vigil") {
          const known = Object.keys(OTHER_PROGRAMS).find((p) => first === p || (p.endsWith("=") && first.startsWith(p)));
          assert.ok(known, `${where(b)}: "${command}" runs ${first}, which is not vigil: add it to OTHER_PROGRAMS with the reason it is not run, or skip the block`);
          continue;
        }
        await run(b, command);
      }
    });
  }
});

/** Long-running commands: the agent itself, and those that follow changes until stopped. */
const longRunning = (args: string[]) => args[0] === "run" || args.some((a) => ["--follow", "-f", "--watch", "-w"].includes(a));

async function run(b: Block, command: string): Promise<void> {
  const args = command.split(/\s+/).slice(1);
  const child = spawn("bash", ["-c", command], { cwd: demo, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (output += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (output += c));
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  if (longRunning(args)) {
    const early = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2_500))]);
    assert.equal(early, undefined, `${where(b)}: "${command}" should keep running, but exited ${JSON.stringify(early)}:\n${output}`);
    process.kill(-child.pid!, "SIGINT");
    await exited;
    assert.doesNotMatch(output, /^vigil: /m, `${where(b)}: "${command}" reported an error:\n${output}`);
    return;
  }
  const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 60_000);
  const [code] = await exited;
  clearTimeout(timer);
  assert.equal(code, b.exit ?? 0, `${where(b)}: "${command}" (in ${relative(ROOT, demo) || demo}):\n${output}`);
}

after(() => {
  // Left for a look when a snippet fails; the OS cleans the temp directory.
  writeFileSync(join(scratch, "README"), "scratch directory of test/docs/snippets.test.ts\n");
});
