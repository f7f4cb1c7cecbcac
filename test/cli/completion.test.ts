import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bashScript, commandSpecs, fishScript, parseHelp, zshScript, type CommandSpec } from "../../src/cli/completion.ts";
import { COMMANDS } from "../../src/cli/commands.ts";

describe("reading a command's help", () => {
  it("finds subcommands, options, short-long pairs and what each option's value is", () => {
    const help = `Usage: vigil thing list [-c FILE | --data-dir DIR] [-o table|json|yaml]
       vigil thing drop|keep ID [--level LEVEL] [--at RFC3339]

  -c, --config FILE        a config
  -o, --output table|json|yaml   output
  -w, --watch              follow; see -f/--follow
  --batch FILE|-           lines from FILE
  --json                   machine-readable; "--not-an-option" in quotes is prose`;
    const { subcommands, options } = parseHelp("thing", help);
    assert.deepEqual(subcommands, ["list", "drop", "keep"]);
    const byName = Object.fromEntries(options.map((o) => [o.long ?? `-${o.short}`, o]));
    assert.deepEqual(byName["config"], { long: "config", short: "c", value: { kind: "file" } });
    assert.deepEqual(byName["data-dir"], { long: "data-dir", value: { kind: "dir" } });
    assert.deepEqual(byName["output"], { long: "output", short: "o", value: { kind: "words", words: ["table", "json", "yaml"] } });
    assert.deepEqual(byName["level"], { long: "level", value: { kind: "words", words: ["full_access", "read_only", "deny"] } });
    assert.deepEqual(byName["at"], { long: "at", value: { kind: "none" } });
    assert.deepEqual(byName["watch"], { long: "watch", short: "w" });
    assert.deepEqual(byName["follow"], { long: "follow", short: "f" });
    assert.deepEqual(byName["batch"], { long: "batch", value: { kind: "file" } });
    assert.deepEqual(byName["json"], { long: "json" });
    assert.deepEqual(byName["help"], { long: "help", short: "h" });
    assert.equal(byName["not-an-option"], undefined);
  });
});

describe("vigil completion", () => {
  let specs: CommandSpec[];
  const spec = (name: string) => specs.find((s) => s.name === name)!;
  const longs = (name: string) => spec(name).options.map((o) => o.long);
  before(async () => {
    specs = await commandSpecs(COMMANDS);
  });

  it("covers every command of the table, with its summary", () => {
    assert.deepEqual(specs.map((s) => s.name), Object.keys(COMMANDS));
    for (const s of specs) assert.equal(s.summary, COMMANDS[s.name]!.summary);
  });

  it("the commands that talk to the agent complete their options and the connection options, never --token", () => {
    for (const name of ["status", "subjects", "subject", "signal", "enforcement", "audit"]) {
      for (const o of ["output", "addr", "token-file", "config", "help"]) assert.ok(longs(name).includes(o), `${name} --${o}`);
      assert.ok(!longs(name).includes("token"), `${name} offers no --token`);
      assert.deepEqual(spec(name).options.find((o) => o.long === "output")?.value, { kind: "words", words: ["table", "json", "yaml"] });
    }
    assert.deepEqual(spec("enforcement").subcommands, ["status", "resume", "failed", "retry"]);
    assert.deepEqual(spec("audit").subcommands, ["verify", "truncate", "tail"]);
    assert.deepEqual(spec("completion").subcommands, ["bash", "zsh", "fish"]);
    assert.ok(["watch", "access", "policy", "kind"].every((o) => longs("subjects").includes(o)));
    assert.deepEqual(spec("signal").options.find((o) => o.long === "status")?.value, { kind: "words", words: ["pass", "warn", "fail", "unknown"] });
    assert.ok(["follow", "lines", "subject", "type"].every((o) => longs("audit").includes(o)));
  });

  function bash(script: string, words: string[]): string[] {
    const dir = mkdtempSync(join(tmpdir(), "vigil-completion-"));
    writeFileSync(join(dir, "vigil.bash"), script);
    const line = `source ${join(dir, "vigil.bash")}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _vigil; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync("bash", ["--norc", "-c", line], { encoding: "utf8", cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean).sort();
  }

  it("bash: commands, subcommands, options and their values", () => {
    const script = bashScript(specs);
    assert.deepEqual(bash(script, ["vigil", "sta"]), ["status"]);
    assert.deepEqual(bash(script, ["vigil", "sub"]), ["subject", "subjects"]);
    assert.deepEqual(bash(script, ["vigil", "--v"]), ["--version"]);
    assert.deepEqual(bash(script, ["vigil", "enforcement", ""]), ["failed", "resume", "retry", "status"]);
    assert.deepEqual(bash(script, ["vigil", "audit", "t"]), ["tail", "truncate"]);
    assert.deepEqual(bash(script, ["vigil", "status", "-o", ""]), ["json", "table", "yaml"]);
    assert.deepEqual(bash(script, ["vigil", "signal", "frontend", "--status", "f"]), ["fail"]);
    assert.deepEqual(bash(script, ["vigil", "subjects", "--access", ""]), ["deny", "full_access", "read_only"]);
    assert.deepEqual(bash(script, ["vigil", "subjects", "--w"]), ["--watch"]);
    assert.deepEqual(bash(script, ["vigil", "status", "--to"]), ["--token-file"]);
    assert.deepEqual(bash(script, ["vigil", "completion", ""]), ["bash", "fish", "zsh"]);
    assert.deepEqual(bash(script, ["vigil", "status", "--addr", ""]), [], "a free value: nothing offered");
  });

  const zshAvailable = spawnSync("zsh", ["--version"]).status === 0;
  it("zsh: the script loads, registers itself and completes", { skip: zshAvailable ? false : "zsh is not installed (scripts/install-test-deps installs it)" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-completion-"));
    writeFileSync(join(dir, "_vigil"), zshScript(specs));
    assert.equal(spawnSync("zsh", ["-n", join(dir, "_vigil")]).status, 0, "syntax");
    // compsys's functions stand in as printers, so the logic runs outside a real completion.
    const run = (words: string[], current: number, prefix = "") =>
      spawnSync(
        "zsh",
        [
          "-f",
          "-c",
          `autoload -U compinit; compinit -u -D; source ${join(dir, "_vigil")}; print -r -- "registered=$_comps[vigil]";
compadd() { local a; for a in "$@"; do [[ $a == -- ]] || print -r -- "$a"; done }
_describe() { local -a list; list=(\${(P)4}); print -rl -- \${list%%:*} }
_files() { print -r -- "<files $*>" }
words=(${words.map((w) => `'${w}'`).join(" ")}); CURRENT=${current}; PREFIX='${prefix}'; _vigil`,
        ],
        { encoding: "utf8" },
      );
    const top = run(["vigil", ""], 2);
    assert.equal(top.status, 0, top.stderr);
    const lines = top.stdout.trim().split("\n");
    assert.equal(lines[0], "registered=_vigil");
    assert.deepEqual(lines.slice(1).sort(), [...Object.keys(COMMANDS), "--help", "--version"].sort());
    assert.deepEqual(run(["vigil", "status", "-o", ""], 4).stdout.trim().split("\n").slice(1), ["table", "json", "yaml"]);
    assert.deepEqual(run(["vigil", "enforcement", ""], 3).stdout.trim().split("\n").slice(1), ["status", "resume", "failed", "retry"]);
    assert.ok(run(["vigil", "subjects", "--"], 3, "--").stdout.split("\n").includes("--watch"));
    assert.deepEqual(run(["vigil", "run", "-c", ""], 4).stdout.trim().split("\n").slice(1), ["<files >"]);
  });

  const fishAvailable = spawnSync("fish", ["--version"]).status === 0;
  it("fish: completes commands, subcommands, options and values", { skip: fishAvailable ? false : "fish is not installed (scripts/install-test-deps installs it)" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-completion-"));
    writeFileSync(join(dir, "vigil.fish"), fishScript(specs));
    const complete = (line: string) => {
      const r = spawnSync("fish", ["--no-config", "-c", `source ${join(dir, "vigil.fish")}; complete -C '${line}'`], { encoding: "utf8", cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("\t")[0]!)
        .sort();
    };
    assert.deepEqual(complete("vigil sta"), ["status"]);
    assert.deepEqual(complete("vigil enforcement "), ["failed", "resume", "retry", "status"]);
    assert.deepEqual(complete("vigil status -o "), ["json", "table", "yaml"]);
    assert.deepEqual(complete("vigil signal x --status "), ["fail", "pass", "unknown", "warn"]);
    assert.ok(complete("vigil subjects --").includes("--watch"));
    assert.ok(!complete("vigil status --").includes("--token"));
  });
});
