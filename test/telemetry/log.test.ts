import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createLogger, formatLogLine } from "../../src/telemetry/log.ts";
import { registerSecret } from "../../src/util/redact.ts";
import { BIN, TOKEN, tempConfig } from "../helpers/agent-process.ts";
import { until } from "../helpers/wait.ts";

function capture(format: "json" | "text", color = false): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", format, color, stream: { write: (l: string) => void lines.push(l) } });
  return { logger, lines };
}

describe("text log format", () => {
  it("one line per entry: time, level, message, then the fields as key=value", () => {
    const line = formatLogLine('{"level":"info","time":"2026-11-24T10:02:11.204Z","service":"vigil","api":{"host":"127.0.0.1","port":7070},"policies":2,"dry_run":false,"data_dir":"/var/lib/vigil","msg":"vigil started"}');
    assert.equal(line, '2026-11-24T10:02:11.204Z INFO  vigil started api={"host":"127.0.0.1","port":7070} policies=2 dry_run=false data_dir=/var/lib/vigil\n');
  });

  it("quotes values that are not plain words, and colours the level only when asked", () => {
    const json = '{"level":"warn","time":"2026-11-24T10:02:11.204Z","msg":"slow","reason":"took 5 s","empty":""}';
    assert.equal(formatLogLine(json), '2026-11-24T10:02:11.204Z WARN  slow reason="took 5 s" empty=""\n');
    assert.equal(formatLogLine(json, true), '2026-11-24T10:02:11.204Z \x1b[33mWARN \x1b[0m slow reason="took 5 s" empty=""\n');
  });

  it("escapes control characters a subject id or reason could carry into the terminal", () => {
    const line = formatLogLine(JSON.stringify({ level: "info", time: "t", msg: "subject \x1b[2Jevil\u009b", subject: "a\x1bb" }));
    assert.ok(!/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(line), JSON.stringify(line));
    assert.match(line, /subject \\u001b\[2Jevil\\u009b subject="a\\u001bb"/);
  });

  it("a line that is not JSON passes through unchanged", () => {
    assert.equal(formatLogLine("not json\n"), "not json\n");
  });

  it("secrets stay scrubbed in text: registered values and secret-named keys", () => {
    const secret = "text-format-secret-0123456789";
    registerSecret(secret);
    const { logger, lines } = capture("text");
    logger.info({ header: `Bearer ${secret}`, token: "plain-token-value-xyz", nested: { password: "hunter2-hunter2" } }, `calling with ${secret}`);
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(secret), lines[0]);
    assert.ok(!lines[0]!.includes("plain-token-value-xyz"), lines[0]);
    assert.ok(!lines[0]!.includes("hunter2"), lines[0]);
    assert.match(lines[0]!, /^\S+Z INFO  calling with \S+ header=/);
  });

  it("json stays the default", () => {
    const { logger, lines } = capture("json");
    logger.info({ a: 1 }, "hello");
    assert.deepEqual(Object.keys(JSON.parse(lines[0]!)).sort(), ["a", "level", "msg", "service", "time"]);
  });
});

describe("the JSON logger", () => {
  it("writes level, time, service, the fields and the message, in that order, one line each", () => {
    const { logger, lines } = capture("json");
    logger.info({ subject: "alice", n: 2 }, "denied");
    logger.warn("only a message");
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^\{"level":"info","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","service":"vigil","subject":"alice","n":2,"msg":"denied"\}\n$/);
    assert.deepEqual(JSON.parse(lines[1]!).msg, "only a message");
  });

  it("a field named __proto__ (from a parsed body) is written as a field, its secret-named keys masked", () => {
    const { logger, lines } = capture("json");
    logger.warn(JSON.parse('{"body": {"__proto__": {"password": "hunter2-not-logged", "x": 1}}}') as object, "odd body");
    assert.equal(lines[0]!.includes("hunter2"), false);
    assert.deepEqual(JSON.parse(lines[0]!).body, JSON.parse('{"__proto__": {"password": "[REDACTED]", "x": 1}}'));
  });

  it("drops entries below its level, and follows a change of level", () => {
    const { logger, lines } = capture("json");
    logger.trace("not shown at debug");
    logger.level = "error";
    logger.warn("not shown at error");
    logger.error("shown");
    assert.deepEqual(lines.map((l) => JSON.parse(l).msg), ["shown"]);
    assert.throws(() => (logger.level = "loud" as never), /unknown log level/);
  });

  it("an Error, alone or as err, is serialized with its code and cause; alone it gives the message", () => {
    const { logger, lines } = capture("json");
    const err = Object.assign(new Error("boom", { cause: new Error("deeper") }), { code: "E_X" });
    logger.error(err);
    logger.error({ err }, "while doing it");
    const [a, b] = lines.map((l) => JSON.parse(l));
    assert.deepEqual(a.err, { type: "Error", message: "boom", code: "E_X", cause: "deeper" });
    assert.equal(a.msg, "boom");
    assert.deepEqual(b.err, a.err);
    assert.equal(b.msg, "while doing it");
  });

  it("a child's lines carry its bindings; cycles and BigInts do not throw", () => {
    const { logger, lines } = capture("json");
    const cyclic: Record<string, unknown> = { id: 1n };
    cyclic["self"] = cyclic;
    logger.child({ policy: "p1", token: "child-binding-token-value" }).info({ cyclic, at: new Date(0) }, "x");
    const line = JSON.parse(lines[0]!);
    assert.equal(line.policy, "p1");
    assert.ok(!lines[0]!.includes("child-binding-token-value"), "secret-named bindings are masked");
    assert.deepEqual(line.cyclic, { id: "1", self: "[Circular]" });
    assert.equal(line.at, "1970-01-01T00:00:00.000Z");
  });
});

describe("agent.log_format on a real vigil run", () => {
  const config = (format: string) => (dir: string) => `
agent:
  data_dir: ${join(dir, "var")}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: false}
  log_format: ${format}
inventories: [{type: static, subjects: [{id: carol, kind: user, attributes: {mfa: true, device_managed: true}}]}]
identity_perimeter: {require_location_check: false}
`;

  async function firstLines(args: string[], env: NodeJS.ProcessEnv, done: (out: string) => boolean): Promise<string> {
    // Its own process group, stopped as a whole: script(1) does not pass SIGTERM on to the agent it started.
    const child = spawn(args[0]!, args.slice(1), { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
    try {
      await until(() => done(out), 15_000);
    } finally {
      const exited = once(child, "exit");
      process.kill(-child.pid!, "SIGTERM");
      await exited;
    }
    return out;
  }

  it("text: readable lines, no JSON", async () => {
    const { file } = tempConfig(config("text"));
    const out = await firstLines([process.execPath, BIN, "run", "-c", file], {}, (o) => o.includes("vigil started"));
    const started = out.split("\n").find((l) => l.includes("vigil started"))!;
    assert.match(started, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  vigil started api=\{"host":"127\.0\.0\.1","port":\d+\} /);
    assert.ok(!out.split("\n").some((l) => l.startsWith("{")), "no JSON lines");
    assert.ok(!out.includes(TOKEN), "the token never appears");
  });

  it("auto: JSON when stdout is not a terminal, text on a terminal", async () => {
    const { file } = tempConfig(config("auto"));
    const piped = await firstLines([process.execPath, BIN, "run", "-c", file], {}, (o) => o.includes("vigil started"));
    assert.equal(JSON.parse(piped.split("\n").find((l) => l.includes("vigil started"))!).msg, "vigil started");
    // script(1) gives the agent a pseudo-terminal as its stdout.
    let tty: string;
    try {
      tty = await firstLines(["script", "-qfec", `${process.execPath} ${BIN} run -c ${file}`, "/dev/null"], { NO_COLOR: "1" }, (o) => o.includes("vigil started"));
    } finally {
      // script(1) starts the agent in a session of its own and may die before passing SIGTERM on:
      // stop whatever still runs this config, and wait until it has gone.
      spawnSync("pkill", ["-TERM", "-f", file]);
      await until(() => spawnSync("pgrep", ["-f", file]).status === 1, 15_000);
    }
    const started = tty.split(/\r?\n/).find((l) => l.includes("vigil started"))!;
    assert.match(started, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  vigil started api=/, JSON.stringify(started));
  });
});
