import { out, EXIT_OK, UsageError, type Command } from "./args.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, follow, interruptSignal, parseRemote, type AgentClient } from "./remote.ts";
import { isoTime, serialize, serializeItem, table, type OutputFormat } from "./format.ts";
import type { SubjectSummary } from "../http/agent-api.ts";
import { ACCESS_LEVELS, SUBJECT_KINDS } from "../policy/model.ts";

const OWN = { access: { type: "string" }, policy: { type: "string" }, kind: { type: "string" }, watch: { type: "boolean", short: "w" } } as const;
/** The options `subjects` accepts (its help lists each). */
export const options = { ...REMOTE_OPTIONS, ...OWN } as const;

export const help = `Usage: vigil subjects [--access LEVEL] [--policy NAME] [--kind KIND] [-w | --watch]
                      [-o table|json|yaml] [--addr HOST:PORT] [--token-file FILE] [-c FILE]

Every subject the agent knows (GET /v1/subjects): its most restrictive access,
whether a covering policy has not decided it yet (pending), each policy's
decision and when it was made.

  --access LEVEL   only subjects at this access (${ACCESS_LEVELS.join("|")})
  --policy NAME    only subjects this policy covers
  --kind KIND      only subjects of this kind (${SUBJECT_KINDS.join("|")})
  -w, --watch      print the list again whenever a decision changes (until
                   Ctrl-C); -o json prints one JSON document per line
${REMOTE_HELP}`;

/** Audit entries after which the list may have changed. */
const CHANGES: ReadonlySet<string> = new Set(["decision", "subject_removed", "config_reloaded", "inventory_recovered"]);
/** Changes arriving within this long of each other are printed once. */
const SETTLE_MS = 150;

export const subjects: Command = async (argv) => {
  const { values, positionals, format, connect } = parseRemote(
    argv,
    OWN,
    true,
  );
  if (positionals.length > 0) throw new UsageError(`subjects takes no arguments (vigil subject ${positionals[0]} shows one)`);
  if (values.access !== undefined && !(ACCESS_LEVELS as readonly string[]).includes(values.access)) throw new UsageError(`--access must be one of ${ACCESS_LEVELS.join(", ")}`);
  if (values.kind !== undefined && !(SUBJECT_KINDS as readonly string[]).includes(values.kind)) throw new UsageError(`--kind must be one of ${SUBJECT_KINDS.join(", ")}`);
  const query = new URLSearchParams();
  for (const key of ["access", "policy", "kind"] as const) if (values[key] !== undefined) query.set(key, values[key]);
  const path = `/v1/subjects${query.size > 0 ? `?${query}` : ""}`;
  const client = await connect();
  if (!values.watch) {
    const listed = await list(client, path);
    out(format === "table" ? renderSubjects(listed.subjects) : serialize(format, listed));
    return EXIT_OK;
  }
  await watch(client, path, format);
  return EXIT_OK;
};

async function list(client: AgentClient, path: string): Promise<{ subjects: SubjectSummary[]; total: number }> {
  const { items, total } = await client.all<SubjectSummary>(path, "subjects");
  return { subjects: items, total };
}

/**
 * Prints the list, then again after every change the audit stream reports. The stream is opened
 * first, so a change made while the list is being read is not missed.
 */
async function watch(client: AgentClient, path: string, format: OutputFormat): Promise<void> {
  const failed = new AbortController();
  const signal = AbortSignal.any([interruptSignal(), failed.signal]);
  let failure: unknown;
  const tty = process.stdout.isTTY === true;
  let timer: NodeJS.Timeout | undefined;
  let printing = Promise.resolve();
  const print = (first: boolean) => {
    printing = printing.then(async () => {
      const listed = await list(client, path);
      if (signal.aborted) return;
      if (format !== "table") out(serializeItem(format, listed));
      else {
        const text = renderSubjects(listed.subjects);
        // A terminal gets the list redrawn in place; a pipe or file gets each version after the last.
        if (tty) process.stdout.write("\x1b[H\x1b[2J");
        else if (!first) out("");
        out(tty ? `${text}\n\n(${isoTime(Date.now())}; watching for changes, Ctrl-C to stop)` : text);
      }
    });
    return printing;
  };
  const printLater = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      print(false).catch((err: unknown) => {
        failure = err;
        failed.abort();
      });
    }, SETTLE_MS);
  };
  await follow(client, "/v1/audit/stream", signal, {
    // On a reconnect the list is printed again: what changed while the stream was down is in it.
    onOpen: (reopened) => print(!reopened),
    onEvent: (ev) => {
      const type = (JSON.parse(ev.data) as { type?: string }).type;
      if (type !== undefined && CHANGES.has(type)) printLater();
    },
  });
  clearTimeout(timer);
  await printing.catch(() => undefined);
  if (failure !== undefined) throw failure;
}

/** The human table of subjects. */
export function renderSubjects(subjects: readonly SubjectSummary[]): string {
  if (subjects.length === 0) return "no subjects";
  const rows = subjects.map((s) => {
    const decided = s.policies.map((p) => `${p.policy}=${p.access}`);
    const pending = s.pending.map((p) => `${p}=pending`);
    const latest = s.policies.reduce<string | undefined>((m, p) => (m === undefined || Date.parse(p.decided_at) > Date.parse(m) ? p.decided_at : m), undefined);
    return [s.id, s.kind, s.access, s.status, [...decided, ...pending].join(", ") || "-", isoTime(latest)];
  });
  return table(["id", "kind", "access", "status", "policies", "decided"], rows);
}
