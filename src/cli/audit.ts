import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { loadOrExplain, parse, out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./common.ts";
import { verifyAuditFile } from "../store/audit.ts";
import { openDatabase } from "../db/sqlite.ts";
import { auditHead } from "../store/embedded.ts";

export const help = `Usage: vigil audit verify [-c FILE | --data-dir DIR] [--json]

Checks the hash chain of the audit log (<data_dir>/audit.jsonl): a changed,
removed, reordered or malformed line, or a cut-off tail, is reported with its line
number. Exit 0 when intact, 1 when not, 2 on usage errors.`;

export const audit: Command = async (argv) => {
  const { values, positionals } = parse(argv, { config: { type: "string", short: "c" }, "data-dir": { type: "string" }, json: { type: "boolean" } }, true);
  if (positionals[0] !== "verify" || positionals.length > 1) throw new UsageError('audit takes one subcommand: "verify"');
  const dataDir = values["data-dir"] ? resolve(values["data-dir"]) : resolve((await loadOrExplain(values.config)).raw.agent.data_dir);
  const file = join(dataDir, "audit.jsonl");
  if (!existsSync(file)) throw new UsageError(`no audit log at ${file}`);
  let head: { seq: number; hash: string } | undefined;
  if (existsSync(join(dataDir, "vigil.db"))) {
    const db = openDatabase(dataDir);
    try {
      head = auditHead(db);
    } finally {
      db.close();
    }
  }
  const result = verifyAuditFile(file, head);
  if (values.json) out(JSON.stringify({ file, ...result }, null, 2));
  else {
    out(`${file}: ${result.entries} entries, ${result.ok ? "chain intact" : `${result.problems.length} problem(s)`}`);
    for (const p of result.problems) out(`  line ${p.line}: ${p.problem}`);
  }
  return result.ok ? EXIT_OK : EXIT_FAIL;
};
