// Runs the whole suite with Node's test runner (Node 24 strips the TypeScript types itself).
import { spawnSync } from "node:child_process";
import { globSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const files = globSync(process.argv.length > 2 ? process.argv.slice(2) : ["test/**/*.test.ts"]).sort();
// Agents started by the tests generate their audit key under $XDG_CONFIG_HOME: keep it out of the real home.
const configHome = mkdtempSync(join(tmpdir(), "vigil-test-config-"));
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=2", "--test-timeout=120000", ...files], { stdio: "inherit", env: { ...process.env, XDG_CONFIG_HOME: configHome } });
rmSync(configHome, { recursive: true, force: true });
process.exit(result.status ?? 1);
