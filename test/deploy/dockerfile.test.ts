// Static checks of the Dockerfile (no Docker engine needed), plus hadolint when it is installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DOCKERFILE = `${ROOT}Dockerfile`;

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Splits a Dockerfile into instructions (continuations joined, comments dropped) grouped by stage. */
function parseDockerfile(text: string): { global: Instruction[]; stages: Stage[] } {
  const instructions: Instruction[] = [];
  let pending: { parts: string[]; line: number } | undefined;
  text.split("\n").forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith("#") || (trimmed === "" && !pending)) return; // comments may sit inside continuations
    const continues = /\\\s*$/.test(raw);
    const body = continues ? raw.replace(/\\\s*$/, "") : raw;
    pending ??= { parts: [], line: i + 1 };
    pending.parts.push(body.trim());
    if (!continues) {
      const joined = pending.parts.filter((p) => p !== "").join(" ");
      const m = /^(\S+)\s*(.*)$/.exec(joined);
      if (m) instructions.push({ keyword: (m[1] ?? "").toUpperCase(), args: m[2] ?? "", line: pending.line });
      pending = undefined;
    }
  });
  const global: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(ins.args);
      assert.ok(m, `line ${ins.line}: cannot parse FROM ${ins.args}`);
      stages.push({ from: m[1] ?? "", name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      global.push(ins);
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { global, stages };
}

const TEXT = readFileSync(DOCKERFILE, "utf8");
const { stages } = parseDockerfile(TEXT);
const final = stages.at(-1);
const stageNames = new Set(stages.map((s) => s.name).filter((n): n is string => n !== undefined));
const all = stages.flatMap((s) => s.instructions);
const of = (stage: Stage | undefined, keyword: string) => stage?.instructions.filter((i) => i.keyword === keyword) ?? [];

test("multi-stage build on node:24-bookworm-slim", () => {
  assert.ok(stages.length >= 2, "at least a build and a runtime stage");
  for (const s of stages) assert.match(s.from, /^node:24[-.\w]*-bookworm-slim(@sha256:[0-9a-f]{64})?$/, `FROM ${s.from}`);
});

test("no `latest` and no untagged base images", () => {
  for (const s of stages) {
    if (stageNames.has(s.from)) continue; // FROM an earlier stage
    const ref = s.from.split("@")[0] ?? "";
    const tag = /:([^/:]+)$/.exec(ref)?.[1];
    assert.ok(tag, `FROM ${s.from} has no tag (means latest)`);
    assert.notEqual(tag, "latest", `FROM ${s.from}`);
  }
  assert.doesNotMatch(TEXT.replace(/^\s*#.*$/gm, ""), /:latest\b/);
});

test("no ADD of remote URLs", () => {
  for (const ins of all.filter((i) => i.keyword === "ADD")) {
    assert.doesNotMatch(ins.args, /(https?|ftp):\/\/|git@|\.git\b/, `line ${ins.line}: ADD ${ins.args}`);
  }
});

test("dependencies come from the lockfile with npm ci; the runtime gets the bundle and only its external packages", () => {
  const build = stages[0];
  const runs = of(build, "RUN").map((i) => i.args);
  const ci = runs.findIndex((r) => /\bnpm ci\b/.test(r));
  const bundle = runs.findIndex((r) => /\bnpm run bundle -- --node-modules \/runtime\b/.test(r));
  assert.ok(ci >= 0, "npm ci");
  assert.ok(bundle > ci, "npm run bundle -- --node-modules /runtime after npm ci");
  assert.doesNotMatch(all.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n"), /\bnpm install\b/, "npm install would ignore the lockfile");
  assert.ok(of(build, "COPY").some((i) => /package-lock\.json/.test(i.args)), "the lockfile is copied before npm ci");
  // The bundle step asserts what must never reach the runtime tree, and its size.
  const step = runs[bundle] ?? "";
  for (const pkg of ["node", "typescript", "esbuild", ".bin"]) assert.match(step, new RegExp(`test ! -e /runtime/node_modules/${pkg.replace(".", "\\.")}\\b`), `asserts node_modules/${pkg} is absent`);
  assert.match(step, /du -sm \/runtime\/node_modules .*-lt 30\b/, "asserts the runtime node_modules stays under 30 MB");
  // What the runtime stage takes from the build: the bundle and the gathered tree, never the
  // build's whole node_modules (dev dependencies, the `node` package's own Node binary), src/ or dist/.
  const fromBuild = of(final, "COPY").filter((i) => i.args.includes("--from=build")).map((i) => i.args.replace(/^--from=build\s+/, ""));
  assert.deepEqual(fromBuild.sort(), ["/app/dist/bundle ./dist/bundle", "/runtime/node_modules ./node_modules"]);
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { devDependencies?: Record<string, string>; dependencies?: Record<string, string> };
  for (const dev of ["node", "esbuild", "typescript"]) {
    assert.ok(pkg.devDependencies?.[dev], `${dev} is a dev dependency`);
    assert.equal(pkg.dependencies?.[dev], undefined, `${dev} must not be a runtime dependency`);
  }
});

test("the runtime stage runs as a non-root user", () => {
  const users = of(final, "USER");
  assert.ok(users.length > 0, "final stage sets USER");
  const user = (users.at(-1)?.args ?? "").trim();
  const [name = "", group] = user.split(":");
  assert.ok(!["root", "0", ""].includes(name), `USER ${user}`);
  assert.ok(group === undefined || !["root", "0"].includes(group), `USER ${user}`);
  assert.equal(name, "65532", "numeric uid so Kubernetes runAsNonRoot can verify it");
});

test("runtime layout, entrypoint, ports, volume and environment", () => {
  assert.equal(of(final, "WORKDIR").at(-1)?.args, "/app");
  // The bundle's entry (scripts/bundle.ts), the file `npm run bundle` writes.
  assert.equal(of(final, "ENTRYPOINT").at(-1)?.args, '["node", "/app/dist/bundle/vigil.mjs"]');
  const exposed = of(final, "EXPOSE").flatMap((i) => i.args.split(/\s+/));
  assert.ok(exposed.includes("7070") && exposed.includes("9464"), `EXPOSE ${exposed.join(" ")}`);
  assert.ok(of(final, "VOLUME").some((i) => i.args.includes("/var/lib/vigil")), "VOLUME /var/lib/vigil");
  // A configuration mounted over /etc/vigil/vigil.yaml that keeps vigil's default data_dir ./var
  // (relative to the config file: /etc/vigil/var) must land in the volume too.
  assert.ok(of(final, "RUN").some((i) => /ln -s \/var\/lib\/vigil \/etc\/vigil\/var\b/.test(i.args)), "/etc/vigil/var -> /var/lib/vigil");
  assert.ok(of(final, "ENV").some((i) => /\bNODE_ENV=production\b/.test(i.args)), "NODE_ENV=production");
  assert.doesNotMatch(TEXT, /VIGIL_DATA_DIR/, "the data dir comes from the config, not an env var");
});

test("the default command runs the image's own configuration, not the demo that needs its demo PKI", () => {
  assert.equal(of(final, "CMD").at(-1)?.args, '["run", "-c", "/etc/vigil/vigil.yaml"]');
  assert.ok(of(final, "COPY").some((i) => i.args === "deploy/docker/vigil.yaml /etc/vigil/vigil.yaml"), "COPY deploy/docker/vigil.yaml /etc/vigil/vigil.yaml");
  assert.ok(!all.some((i) => i.keyword === "COPY" && /(^|\s)(\/app\/)?config\b/.test(i.args)), "config/ (the demo and its examples) stays out of the image");
  // What the image's configuration says (test/deploy/configs.test.ts runs it): reachable through
  // published ports, state in the volume, secrets from the environment.
  const config = parse(readFileSync(`${ROOT}deploy/docker/vigil.yaml`, "utf8")) as { agent: { data_dir: string; api: { listen: string; token: string }; metrics: { listen: string }; audit: { key: string } } };
  assert.deepEqual(
    [config.agent.api.listen, config.agent.metrics.listen, config.agent.data_dir, config.agent.api.token, config.agent.audit.key],
    ["0.0.0.0:7070", "0.0.0.0:9464", "/var/lib/vigil", "${env:VIGIL_API_TOKEN}", "${env:VIGIL_AUDIT_KEY}"],
  );
  // vigil's own default stays loopback: only the image opens up.
  const defaults = parse(readFileSync(`${ROOT}config/vigil.yaml`, "utf8")) as { agent: { api: { listen: string } } };
  assert.equal(defaults.agent.api.listen, "127.0.0.1:7070");
});

test("base image pinned by the digest of its index, the same in both stages and in the base.digest label", () => {
  const external = stages.filter((s) => !stageNames.has(s.from));
  const digests = new Set(external.map((s) => /@(sha256:[0-9a-f]{64})$/.exec(s.from)?.[1]));
  assert.equal(digests.size, 1, `FROM lines: ${external.map((s) => s.from).join(", ")}`);
  const [digest] = [...digests];
  assert.ok(digest, "every FROM carries @sha256:<64 hex digits>");
  assert.match(labels()["org.opencontainers.image.base.digest"] ?? "", new RegExp(`^${digest}$`));
  assert.match(TEXT, /docs\/operations\.md/, "the Dockerfile points at the documented update path");
  assert.match(readFileSync(`${ROOT}docs/operations.md`, "utf8"), /imagetools inspect node:24-bookworm-slim/, "docs/operations.md says how to update the digest");
});

/** LABEL key="value" pairs of the final stage, with ARG defaults substituted. */
function labels(): Record<string, string> {
  const args = new Map(of(final, "ARG").map((i) => { const [k, v = ""] = i.args.split("="); return [k!, v.replace(/^"|"$/g, "")]; }));
  const out: Record<string, string> = {};
  for (const ins of of(final, "LABEL")) {
    for (const [, k, v] of ins.args.matchAll(/([\w.-]+)="([^"]*)"/g)) out[k!] = v!.replace(/\$\{(\w+)\}/g, (_m, name: string) => args.get(name) ?? "");
  }
  return out;
}

test("OCI image labels, the version being package.json's", () => {
  const l = labels();
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string; license: string };
  assert.equal(l["org.opencontainers.image.title"], "vigil");
  assert.equal(l["org.opencontainers.image.version"], pkg.version);
  assert.equal(l["org.opencontainers.image.licenses"], pkg.license);
  for (const key of ["description", "revision", "created", "base.name"]) assert.ok(`org.opencontainers.image.${key}` in l, key);
  assert.match(TEXT, /--build-arg REVISION=/, "the build command shows how to fill revision and created");
});

test("HEALTHCHECK probes /healthz with node", () => {
  const hc = of(final, "HEALTHCHECK");
  assert.equal(hc.length, 1, "exactly one HEALTHCHECK in the final stage");
  const args = hc[0]?.args ?? "";
  assert.doesNotMatch(args, /^NONE\b/i);
  assert.match(args, /CMD \["node",/);
  assert.match(args, /http:\/\/127\.0\.0\.1:7070\/healthz/);
  assert.match(args, /--timeout=\d+s/);
});

test(".dockerignore keeps the host's node_modules, dist and secrets out of the context", () => {
  const lines = readFileSync(`${ROOT}.dockerignore`, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  assert.equal(lines[0], "*", "allow-list: ignore everything first");
  for (const needed of ["package.json", "package-lock.json", "tsconfig.json", "scripts/bundle.ts", "src/", "deploy/docker/vigil.yaml"]) {
    assert.ok(lines.includes(`!${needed}`), `!${needed}`);
  }
  // Every file the Dockerfile copies from the context is let in (a COPY of an ignored path fails the build).
  const fromContext = all.filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from=")).flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  for (const src of fromContext) assert.ok(lines.includes(`!${src.replace(/^\.\//, "")}`) || lines.includes(`!${src.replace(/^\.\//, "")}/`), `COPY ${src}: not let in by .dockerignore`);
  assert.ok(!lines.some((l) => /^!(node_modules|dist|\.git|var)\b/.test(l)));
});

const hasHadolint = spawnSync("hadolint", ["--version"], { stdio: "ignore" }).status === 0;
test(
  "hadolint finds nothing",
  { skip: hasHadolint ? false : "hadolint is not on PATH (not packaged in Debian; get the static binary from github.com/hadolint/hadolint/releases) — skipping the lint, static checks above still ran" },
  () => {
    const r = spawnSync("hadolint", ["--no-color", DOCKERFILE], { encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  },
);
