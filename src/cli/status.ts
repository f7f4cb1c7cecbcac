import { out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./args.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, parseRemote } from "./remote.ts";
import { fields, isoTime, list, relative, serialize, table } from "./format.ts";
import type { AccessCounts, AgentStatus } from "../http/agent-api.ts";

const OWN = {} as const;
/** The options `status` accepts (its help lists each). */
export const options = { ...REMOTE_OPTIONS, ...OWN } as const;

export const help = `Usage: vigil status [-o table|json|yaml] [--addr HOST:PORT] [--token-file FILE] [-c FILE]

The running agent at a glance (GET /v1/status): whether it is ready and why not,
version, mode and dry-run, subjects by access overall and per policy (pending:
not decided yet), policies whose enforcement is paused, unreconciled
enforcement, the work queue and whether it is idle.
Exit 0 when the agent is ready, 1 when it is not or cannot be reached.

${REMOTE_HELP}`;

export const status: Command = async (argv) => {
  const { positionals, format, connect } = parseRemote(argv, OWN, true);
  if (positionals.length > 0) throw new UsageError("status takes no arguments");
  const client = await connect();
  const s = await client.get<AgentStatus>("/v1/status");
  out(format === "table" ? renderStatus(s, client.base, Date.now()) : serialize(format, s));
  return s.ready ? EXIT_OK : EXIT_FAIL;
};

function counts(c: AccessCounts): string {
  return `${c.total} (${c.full_access} full_access, ${c.read_only} read_only, ${c.deny} deny, ${c.pending} pending)`;
}

/** The human view of GET /v1/status. */
export function renderStatus(s: AgentStatus, base: string, now: number): string {
  const q = s.queue;
  const oldest = s.unreconciled.oldest_failed_at;
  const head = fields([
    ["Agent", `${base} — ${s.ready ? "ready" : `not ready: ${list(s.reasons)}`}`],
    ["Version", s.version],
    ["Mode", `${s.mode}${s.dry_run ? ", dry-run (actions are planned, not sent)" : ""}`],
    ["Subjects", counts(s.subjects)],
    ["Paused", s.paused.length === 0 ? "none" : `${list(s.paused)} (vigil enforcement resume)`],
    [
      "Unreconciled",
      s.unreconciled.total === 0 ? "none" : `${s.unreconciled.total}, oldest failed ${isoTime(oldest)}${oldest ? ` (${relative(oldest, now)})` : ""} (vigil enforcement failed)`,
    ],
    ["Queue", `${q.waiting} waiting, ${q.active} active, ${q.delayed} delayed, ${q.failed} failed — ${s.idle ? "idle" : "busy"}`],
  ]);
  if (s.policies.length === 0) return `${head}\n\nno policies`;
  const rows = s.policies.map((p) => [p.name, String(p.subjects.total), String(p.subjects.full_access), String(p.subjects.read_only), String(p.subjects.deny), String(p.subjects.pending), p.paused ? "paused" : "active"]);
  return `${head}\n\n${table(["policy", "subjects", "full_access", "read_only", "deny", "pending", "enforcement"], rows)}`;
}
