import { out, EXIT_OK, UsageError, type Command } from "./args.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, parseRemote } from "./remote.ts";
import { compact, duration, isoTime, list, relative, serialize, table } from "./format.ts";
import type { EnforcementStatus, FailedEnforcement, RetryEnforcementResult } from "../http/agent-api.ts";

const OWN = { policy: { type: "string" }, all: { type: "boolean" } } as const;
/** The options `enforcement` accepts (its help lists each). */
export const options = { ...REMOTE_OPTIONS, ...OWN } as const;

export const help = `Usage: vigil enforcement status  [--policy NAME]
       vigil enforcement resume  [--policy NAME]
       vigil enforcement failed  [--policy NAME]
       vigil enforcement retry   ID... | --all [--policy NAME]
       (each also takes [-o table|json|yaml] [--addr HOST:PORT] [--token-file FILE] [-c FILE])

status: the blast-radius guard of each policy (GET /v1/enforcement): paused or
not, actions in the current window and the limit.

resume: lifts a paused guard (POST /v1/enforcement/resume) and sends the
actions that waited; every paused policy, or only --policy NAME.

failed: enforcement that ran out of attempts and is not in effect yet
(GET /v1/enforcement/failed), oldest failure first, with the last error and
when vigil re-drives it next.

retry: re-drives failed enforcement now, whatever its backoff
(POST /v1/enforcement/failed/retry): the items named by ID (from "failed"), or
--all of them (of --policy NAME, when given).

  --policy NAME   only this policy
  --all           retry: every failed item
${REMOTE_HELP}`;

const SUBCOMMANDS = ["status", "resume", "failed", "retry"] as const;

export const enforcement: Command = async (argv) => {
  const { values, positionals, format, connect } = parseRemote(argv, OWN, true);
  const [sub, ...ids] = positionals;
  if (!(SUBCOMMANDS as readonly (string | undefined)[]).includes(sub)) throw new UsageError(`enforcement takes a subcommand: ${SUBCOMMANDS.join(", ")}`);
  if (sub !== "retry" && ids.length > 0) throw new UsageError(`enforcement ${sub} takes no arguments`);
  if (sub !== "retry" && values.all) throw new UsageError("--all is an option of enforcement retry");
  if (sub === "retry" && (ids.length > 0) === (values.all === true)) throw new UsageError("enforcement retry takes the ids to retry, or --all");
  if (sub === "retry" && ids.length > 0 && values.policy !== undefined) throw new UsageError("--policy narrows --all; with ids it is not used");
  const client = await connect();
  const now = Date.now();

  if (sub === "status") {
    const { policies } = await client.get<{ policies: EnforcementStatus[] }>("/v1/enforcement");
    const shown = values.policy === undefined ? policies : policies.filter((p) => p.policy === values.policy);
    if (values.policy !== undefined && shown.length === 0) throw new UsageError(`no policy "${values.policy}"; policies: ${list(policies.map((p) => p.policy))}`);
    out(format === "table" ? renderGuards(shown, now) : serialize(format, { policies: shown }));
    return EXIT_OK;
  }
  if (sub === "resume") {
    const { resumed } = await client.post<{ resumed: string[] }>("/v1/enforcement/resume", values.policy === undefined ? {} : { policy: values.policy });
    out(format === "table" ? (resumed.length === 0 ? "nothing was paused" : `resumed: ${list(resumed)}`) : serialize(format, { resumed }));
    return EXIT_OK;
  }
  if (sub === "failed") {
    const { items, total } = await client.all<FailedEnforcement>(`/v1/enforcement/failed${values.policy === undefined ? "" : `?policy=${encodeURIComponent(values.policy)}`}`, "items");
    out(format === "table" ? renderFailed(items, now) : serialize(format, { items, total }));
    return EXIT_OK;
  }
  const result = await client.post<RetryEnforcementResult>("/v1/enforcement/failed/retry", ids.length > 0 ? { ids } : { all: true, ...(values.policy === undefined ? {} : { policy: values.policy }) });
  if (format !== "table") out(serialize(format, result));
  else {
    const lines = [`retried: ${result.retried.length === 0 ? "none" : list(result.retried)}`];
    if (result.in_progress.length > 0) lines.push(`already being retried: ${list(result.in_progress)}`);
    if (result.not_failed.length > 0) lines.push(`nothing to retry (achieved, superseded or unknown): ${list(result.not_failed)}`);
    out(lines.join("\n"));
  }
  return EXIT_OK;
};

export function renderGuards(policies: readonly EnforcementStatus[], now: number): string {
  if (policies.length === 0) return "no policies";
  const rows = policies.map((p) => [
    p.policy,
    p.paused ? `paused since ${isoTime(p.paused_at)} (${relative(p.paused_at, now)})` : "active",
    `${p.recent_actions}/${p.max_actions}`,
    duration(p.window_ms),
  ]);
  return table(["policy", "enforcement", "actions", "window"], rows);
}

export function renderFailed(items: readonly FailedEnforcement[], now: number): string {
  if (items.length === 0) return "no failed enforcement";
  const rows = items.map((i) => [
    i.id,
    i.policy,
    i.subject,
    `${i.operation} ${i.action} (${i.action_type})`,
    i.access,
    String(i.attempts),
    i.status === "retrying" ? "retrying now" : `${isoTime(i.next_retry_at)} (${relative(i.next_retry_at, now)})`,
    i.last_error === null ? "-" : compact(i.last_error, 80),
  ]);
  return table(["id", "policy", "subject", "action", "access", "attempts", "next retry", "last error"], rows);
}
