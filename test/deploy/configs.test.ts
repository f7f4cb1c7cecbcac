/**
 * Every vigil configuration shipped in deploy/ is one vigil accepts: the image's default
 * (deploy/docker/vigil.yaml), the vigil.yaml of each Kubernetes ConfigMap, and the example in the
 * systemd unit's comments all pass the real `vigil validate`; the image's and the sidecar's start a
 * real agent the way their container runs them, with no writable home directory.
 * (The Helm chart's rendered configuration is checked in helm.test.ts.)
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { globSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { AgentProcess, ROOT, runCli } from "../helpers/agent-process.ts";

interface Shipped {
  /** Where it comes from. */
  source: string;
  text: string;
  /** Started by a container as it is (listen addresses and paths aside). */
  runs: boolean;
}

/** The YAML block in the unit's comments that starts at `#   agent:` and ends at a bare `#`. */
function systemdExample(unit: string): string {
  const lines = unit.split("\n");
  const start = lines.findIndex((l) => l === "#   agent:");
  assert.ok(start >= 0, "the unit's comments carry a vigil.yaml example starting with `#   agent:`");
  const block: string[] = [];
  for (const line of lines.slice(start)) {
    if (line === "#") break;
    assert.ok(line.startsWith("#   "), `not part of the example: ${line}`);
    block.push(line.slice(4));
  }
  return `${block.join("\n")}\n`;
}

function shipped(): Shipped[] {
  const out: Shipped[] = [{ source: "deploy/docker/vigil.yaml", text: readFileSync(join(ROOT, "deploy/docker/vigil.yaml"), "utf8"), runs: true }];
  for (const file of globSync("deploy/kubernetes/*.yaml", { cwd: ROOT }).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(ROOT, file), "utf8"))) {
      const o = doc.toJS() as { kind?: string; metadata?: { name?: string }; data?: Record<string, string> } | null;
      const text = o?.kind === "ConfigMap" ? o.data?.["vigil.yaml"] : undefined;
      if (text !== undefined) out.push({ source: `${file} ConfigMap ${o?.metadata?.name}`, text, runs: file === "deploy/kubernetes/sidecar.yaml" });
    }
  }
  out.push({ source: "deploy/systemd/vigil.service (example in the comments)", text: systemdExample(readFileSync(join(ROOT, "deploy/systemd/vigil.service"), "utf8")), runs: false });
  return out;
}

describe("vigil configurations shipped in deploy/", () => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-deploy-configs-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // A regular file: nothing can be created below it, not even by root, as in the image (HOME=/nonexistent).
  const noHome = join(dir, "not-a-directory");
  writeFileSync(noHome, "");
  let n = 0;

  /**
   * The configuration made runnable here: each `${env:NAME}` gets a value in the environment, each
   * `${file:/path}` a file of its own with a value in it, the data directory and listen addresses
   * move into the test's directory and onto loopback.
   */
  function localize(text: string): { file: string; env: NodeJS.ProcessEnv } {
    const base = join(dir, `c${++n}`);
    const env: NodeJS.ProcessEnv = {};
    for (const [, name] of text.matchAll(/\$\{env:([^}]+)\}/g)) env[name!] = `placeholder-for-${name}-0123456789abcdef`;
    let local = text.replace(/\$\{file:([^}]+)\}/g, (_m, path: string) => {
      const file = `${base}-${path.replaceAll("/", "_")}`;
      writeFileSync(file, `placeholder-for-${path}-0123456789abcdef\n`);
      return `\${file:${file}}`;
    });
    local = local.replaceAll("/var/lib/vigil", `${base}-data`).replace(/"?0\.0\.0\.0:\d+"?/g, '"127.0.0.1:0"');
    const file = `${base}.yaml`;
    writeFileSync(file, local);
    return { file, env };
  }

  const configs = shipped();

  it("finds the image's default, the sidecar's ConfigMap and the systemd example", () => {
    const sources = configs.map((c) => c.source);
    for (const s of ["deploy/docker/vigil.yaml", "deploy/kubernetes/sidecar.yaml ConfigMap vigil-config", "deploy/systemd/vigil.service (example in the comments)"]) assert.ok(sources.includes(s), `${s} in ${sources.join(", ")}`);
  });

  for (const c of configs) {
    it(`${c.source} passes vigil validate`, async () => {
      const { file, env } = localize(c.text);
      const r = await runCli(["validate", "-c", file], env);
      assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n--- ${c.source} ---\n${c.text}`);
      assert.match(r.stdout, /: valid$/m);
    });
    if (c.runs) {
      it(`${c.source} starts an agent that has no home directory to write to`, async () => {
        const { file, env } = localize(c.text);
        const agent = await AgentProcess.start(file, { ...env, HOME: noHome, XDG_CONFIG_HOME: "" });
        try {
          assert.equal((await fetch(`${agent.api}/readyz`)).status, 200);
          const token = Object.entries(env).find(([k]) => k.includes("TOKEN"))?.[1];
          assert.equal((await agent.request("GET", "/v1/status", undefined, token)).status, 200, "the token from the environment");
        } finally {
          await agent.stop();
        }
      });
    }
  }

  it("without an audit key such a container could not start (why every shipped config sets one)", async () => {
    const image = configs.find((c) => c.source === "deploy/docker/vigil.yaml")!;
    const withoutKey = image.text.replace(/^ {2}audit:\n {4}key: .*\n/m, "");
    assert.notEqual(withoutKey, image.text);
    const { file, env } = localize(withoutKey);
    await assert.rejects(AgentProcess.start(file, { ...env, HOME: noHome, XDG_CONFIG_HOME: "" }), /cannot read or create the audit key file/);
  });

  it("the image's default refuses to start without its secrets, naming each", async () => {
    const image = configs.find((c) => c.source === "deploy/docker/vigil.yaml")!;
    const { file } = localize(image.text);
    const env = { VIGIL_API_TOKEN: undefined, VIGIL_AUDIT_KEY: undefined };
    const r = await runCli(["validate", "-c", file], env);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /environment variable VIGIL_API_TOKEN is not set/);
    assert.match(r.stderr, /environment variable VIGIL_AUDIT_KEY is not set/);
    assert.ok(relative(ROOT, file).startsWith(".."), "ran on a copy outside the repository");
  });
});
