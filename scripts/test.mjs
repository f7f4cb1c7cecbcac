// Runs the whole suite with Node's test runner (Node 24 strips the TypeScript types itself).
import { spawnSync } from "node:child_process";
import { globSync } from "node:fs";

const files = globSync(process.argv.length > 2 ? process.argv.slice(2) : ["test/**/*.test.ts"]).sort();
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=2", "--test-timeout=120000", ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);
