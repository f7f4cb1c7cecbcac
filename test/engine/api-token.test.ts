/**
 * The generated API token file is held to what a configured token must be. An empty file used to
 * make every start fail ("needs a non-empty bearer token"), and a group- or world-readable one, or a
 * token of three characters, was used as it was.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_TOKEN_FILE, generatedApiToken } from "../../src/engine/api-token.ts";
import { VigilError } from "../../src/errors.ts";
import { createLogger } from "../../src/telemetry/log.ts";
import { AgentProcess, tempConfig } from "../helpers/agent-process.ts";

const logger = createLogger({ level: "silent" });

function dataDir(): string {
  return mkdtempSync(join(tmpdir(), "vigil-token-"));
}

function plant(dir: string, content: string, mode = 0o600): string {
  const file = join(dir, API_TOKEN_FILE);
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
  return file;
}

function refused(dir: string, pattern: RegExp): void {
  assert.throws(
    () => generatedApiToken(dir, logger),
    (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_CONFIG_INVALID" && pattern.test(err.message),
  );
}

describe("the generated API token file", () => {
  it("is created with mode 0600 when missing, and read back on the next start", () => {
    const dir = dataDir();
    const token = generatedApiToken(dir, logger);
    assert.ok(token.length >= 16);
    const file = join(dir, API_TOKEN_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, "utf8"), token + "\n");
    assert.equal(generatedApiToken(dir, logger), token);
  });

  for (const [name, content] of [["empty", ""], ["only whitespace", " \n\n"]] as const) {
    it(`is regenerated when ${name}, with mode 0600 even if the empty file had a wider one`, () => {
      const dir = dataDir();
      const file = plant(dir, content, 0o644);
      const token = generatedApiToken(dir, logger);
      assert.ok(token.length >= 16);
      assert.equal(readFileSync(file, "utf8"), token + "\n");
      assert.equal(statSync(file).mode & 0o777, 0o600);
    });
  }

  for (const mode of [0o640, 0o604, 0o660, 0o622]) {
    it(`refuses a token file with mode ${mode.toString(8)} (group or others may have it) and leaves it as it is`, () => {
      const dir = dataDir();
      const file = plant(dir, "a-token-that-is-long-enough-0123\n", mode);
      refused(dir, new RegExp(`accessible to group or others \\(mode 0${mode.toString(8)}\\).*chmod 600`));
      assert.equal(readFileSync(file, "utf8"), "a-token-that-is-long-enough-0123\n");
      assert.equal(statSync(file).mode & 0o777, mode);
    });
  }

  it("refuses a token shorter than 16 characters without printing it", () => {
    const dir = dataDir();
    plant(dir, "short-tok\n");
    refused(dir, /holds a token of 9 characters; at least 16 are required/);
    assert.throws(() => generatedApiToken(dir, logger), (err: unknown) => !(err as Error).message.includes("short-tok"));
  });

  it("refuses a token on more than one line", () => {
    const dir = dataDir();
    plant(dir, "first-line-0123456789\nsecond-line-0123456789\n");
    refused(dir, /on one line/);
  });

  it("refuses a symbolic link and a directory", () => {
    const dir = dataDir();
    const elsewhere = join(dir, "elsewhere");
    writeFileSync(elsewhere, "a-token-that-is-long-enough-0123\n", { mode: 0o600 });
    symlinkSync(elsewhere, join(dir, API_TOKEN_FILE));
    refused(dir, /symbolic link/);
    const other = dataDir();
    mkdirSync(join(other, API_TOKEN_FILE));
    refused(other, /not a regular file/);
  });
});

describe("vigil run and the API token file", () => {
  const config = (d: string) => `
agent:
  data_dir: ${join(d, "var")}
  api: {listen: "127.0.0.1:0"}
  metrics: {listen: false}
inventories: [{type: static, subjects: [{id: u1, kind: user}]}]
`;

  it("exits 2 naming the file when it is readable by others", async () => {
    const { dir, file } = tempConfig(config);
    mkdirSync(join(dir, "var"));
    plant(join(dir, "var"), "a-token-that-is-long-enough-0123\n", 0o644);
    // Started means refused too late: stop it and fail.
    const outcome = await AgentProcess.start(file).then(
      async (agent) => {
        await agent.stop();
        return undefined;
      },
      (err: Error) => err,
    );
    assert.ok(outcome, "vigil started with a token file others can read");
    assert.match(outcome.message, /^vigil exited early with 2/);
    assert.ok(outcome.message.includes(join(dir, "var", API_TOKEN_FILE)) && /accessible to group or others/.test(outcome.message), outcome.message);
  });

  it("starts with an empty file, writing a fresh token that the API accepts", async (t) => {
    const { dir, file } = tempConfig(config);
    mkdirSync(join(dir, "var"));
    const tokenFile = plant(join(dir, "var"), "");
    const agent = await AgentProcess.start(file);
    t.after(() => agent.stop());
    const token = readFileSync(tokenFile, "utf8").trim();
    assert.ok(token.length >= 16);
    assert.equal((await agent.request("GET", "/v1/status", undefined, token)).status, 200);
  });
});
