import { out, EXIT_OK, UsageError, type Command } from "./args.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, parseRemote, type AgentClient } from "./remote.ts";
import { fields, list, serialize } from "./format.ts";
import type { AgentStatus } from "../http/agent-api.ts";
import type { SubjectDetailView } from "../http/views.ts";
import { CHECK_STATUSES, RISK_LEVELS } from "../policy/model.ts";
import { parseDuration } from "../util/duration.ts";

const OWN = { check: { type: "string" }, status: { type: "string" }, risk: { type: "string" }, ttl: { type: "string" }, reason: { type: "string" }, wait: { type: "boolean" } } as const;
/** The options `signal` accepts (its help lists each). */
export const options = { ...REMOTE_OPTIONS, ...OWN } as const;

export const help = `Usage: vigil signal SUBJECT --check CHECK --status ${CHECK_STATUSES.join("|")}
                    [--risk ${RISK_LEVELS.join("|")}] [--ttl DURATION] [--reason TEXT] [--wait]
                    [-o table|json|yaml] [--addr HOST:PORT] [--token-file FILE] [-c FILE]

Pushes a check result for SUBJECT to the agent (POST /v1/signals): it is
recorded, audited and evaluated at once under every policy covering SUBJECT
that verifies CHECK, and any change of access is enforced. A fail denies;
a pass later restores.

  --check CHECK      the check the result is for (a policy covering SUBJECT must verify it)
  --status STATUS    ${CHECK_STATUSES.join("|")}
  --risk LEVEL       overrides the risk the status implies (${RISK_LEVELS.join("|")})
  --ttl DURATION     how long the result stands, e.g. 1h (default: the check's ttl; at most 30d)
  --reason TEXT      why, for the audit log and the decision's reasons (at most 1024 characters)
  --wait             wait until the agent has evaluated it and carried out what it caused,
                     then print the subject's access
${REMOTE_HELP}`;

/** How long --wait waits for the agent to finish what the signal set off. */
const WAIT_MS = 60_000;

export const signal: Command = async (argv) => {
  const { values, positionals, format, connect } = parseRemote(
    argv,
    OWN,
    true,
  );
  if (positionals.length !== 1) throw new UsageError("signal takes one subject id");
  const subject = positionals[0]!;
  if (values.check === undefined) throw new UsageError("signal needs --check");
  if (values.status === undefined || !(CHECK_STATUSES as readonly string[]).includes(values.status)) throw new UsageError(`--status must be one of ${CHECK_STATUSES.join(", ")}`);
  if (values.risk !== undefined && !(RISK_LEVELS as readonly string[]).includes(values.risk)) throw new UsageError(`--risk must be one of ${RISK_LEVELS.join(", ")}`);
  if (values.ttl !== undefined && !((parseDuration(values.ttl) ?? 0) > 0)) throw new UsageError(`--ttl must be a duration like 30s, 5m or 1h, not "${values.ttl}"`);
  const body = {
    subject,
    check: values.check,
    status: values.status,
    ...(values.risk === undefined ? {} : { risk: values.risk }),
    ...(values.ttl === undefined ? {} : { ttl: values.ttl }),
    ...(values.reason === undefined ? {} : { reason: values.reason }),
  };
  const client = await connect();
  const accepted = await client.post<{ accepted: boolean; id: string; policies: string[] }>("/v1/signals", body);
  let access: Pick<SubjectDetailView, "access" | "status" | "pending"> | undefined;
  if (values.wait) {
    await idle(client);
    const d = await client.get<SubjectDetailView>(`/v1/subjects/${encodeURIComponent(subject)}`);
    access = { access: d.access, status: d.status, pending: d.pending };
  }
  if (format !== "table") out(serialize(format, { ...accepted, ...(access ? { subject: { id: subject, ...access } } : {}) }));
  else {
    out(
      fields([
        ["Accepted", `signal ${accepted.id}: ${values.check}=${values.status} for ${subject}`],
        ["Evaluated by", list(accepted.policies)],
        ["Access", access ? `${access.access}${access.status === "pending" ? ` (pending: ${list(access.pending)})` : ""}` : undefined],
      ]),
    );
  }
  return EXIT_OK;
};

/** Waits until the agent reports nothing ready or running: the signal's evaluation and its actions have had their turn. */
async function idle(client: AgentClient): Promise<void> {
  const end = Date.now() + WAIT_MS;
  for (;;) {
    const s = await client.get<AgentStatus>("/v1/status");
    if (s.idle) return;
    // Not a usage problem (exit 2): the signal is in; only the wait ran out (exit 1).
    if (Date.now() > end) throw new Error(`the agent was still busy after ${WAIT_MS / 1000}s; the signal was accepted and is being worked on`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
