/**
 * bin/vigil on a Node older than 22.12: it runs itself under the Node the project pins
 * (node_modules/node) when that is installed, passing arguments, output, exit codes and signals
 * through, and says what to do when it is not. An old Node is played by this Node with
 * `process.versions.node` changed before bin/vigil runs; a real one is used too when the machine has it.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { BIN, ROOT, TOKEN, tempConfig } from "../helpers/agent-process.ts";
import { until } from "../helpers/wait.ts";

const PINNED = JSON.parse(spawnSync(join(ROOT, "node_modules/node/bin/node"), ["-p", "JSON.stringify(process.versions.node)"], { encoding: "utf8" }).stdout) as string;
/** Makes this Node say it is 20.11.1, everywhere vigil could look. Not passed on to processes it starts. */
const pretendOld = `--import=data:text/javascript,${encodeURIComponent('Object.defineProperty(process.versions, "node", { value: "20.11.1" }); Object.defineProperty(process, "version", { value: "v20.11.1" });')}`;

function run(args: string[], env: NodeJS.ProcessEnv = {}, node = process.execPath, pre: string[] = [pretendOld]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(node, [...pre, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("bin/vigil on a Node older than 22.12", () => {
  it("runs under the pinned Node beside it: output and exit codes pass through", () => {
    const version = run([BIN, "version", "-o", "json"]);
    assert.equal(version.code, 0, version.stderr);
    assert.equal(JSON.parse(version.stdout).node, `v${PINNED}`, "the version was printed by the pinned Node, not the old one");
    const bad = run([BIN, "no-such-command"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "no-such-command"/);
  });

  it("without a pinned Node it exits 2 and says how to get one", () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-bin-"));
    mkdirSync(join(dir, "bin"));
    copyFileSync(BIN, join(dir, "bin/vigil"));
    const r = run([join(dir, "bin/vigil"), "version"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /vigil needs Node\.js >= 22\.12/);
    assert.match(r.stderr, /Run `npm ci` in .* to install the Node the project pins/);
    assert.equal(r.stdout, "");
  });

  it("a pinned Node that is too old as well is reported, not run again", () => {
    const r = run([BIN, "version"], { VIGIL_PINNED_NODE: "/opt/old/node" });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /the Node in \/opt\/old\/node is v/);
  });

  it("signals reach the agent: SIGHUP reloads, SIGTERM stops it cleanly", async () => {
    const { file } = tempConfig(
      (dir) => `
agent: {data_dir: ${join(dir, "var")}, api: {listen: "127.0.0.1:0", token: "${TOKEN}"}, metrics: {listen: false}, log_format: json}
inventories: [{type: static, subjects: [{id: carol, kind: user, attributes: {mfa: true, device_managed: true}}]}]
identity_perimeter: {require_location_check: false}
`,
    );
    const child = spawn(process.execPath, [pretendOld, BIN, "run", "-c", file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    const exited = once(child, "exit");
    try {
      await until(() => out.includes('"vigil started"'), 15_000);
      child.kill("SIGHUP");
      await until(() => out.includes('"configuration reloaded"'), 15_000);
      child.kill("SIGTERM");
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
      assert.ok(out.includes('"vigil stopped"'), "the agent stopped cleanly rather than being cut off");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });

  const system = ["/usr/bin/node", "/usr/local/bin/node"]
    .map((node) => ({ node, version: spawnSync(node, ["-p", "process.versions.node"], { encoding: "utf8" }).stdout?.trim() }))
    .find(({ version }) => version && Number(version.split(".")[0]) < 22);
  it("with a real older Node", { skip: system ? false : "no Node older than 22 installed here" }, () => {
    const r = run([BIN, "version", "-o", "json"], {}, system!.node, []);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).node, `v${PINNED}`);
  });
});
