/**
 * `vigil audit tail`: the newest audit entries from the running agent, and with `--follow` every
 * entry as it is written (GET /v1/audit/stream). One line per entry, the same with and without
 * `--follow`, so a follow reads like the listing it continues.
 */
import { out, EXIT_OK, UsageError } from "./args.ts";
import { REMOTE_HELP, follow, interruptSignal, parseRemote } from "./remote.ts";
import { compact, duration, isoTime, serialize, serializeItem } from "./format.ts";
import type { AuditEntry } from "../store/contract.ts";

export const tailHelp = `       vigil audit tail [-n N] [-f] [--subject ID] [--type TYPE]
                        [-o table|json|yaml] [--addr HOST:PORT] [--token-file FILE] [-c FILE]`;

export const tailOptionsHelp = `tail: the newest entries of the running agent's audit log, oldest first; with
--follow it then prints every entry as it is written until Ctrl-C, resuming
after a lost connection without gaps or repeats (GET /v1/audit/stream).
With -o json it prints {"entries": [...]}, or with --follow one JSON object per
line; with -o yaml one document per entry.

  -n, --lines N     entries to show first (default 10, at most 1000)
  -f, --follow      keep printing entries as they are written
  --subject ID      only entries about this subject
  --type TYPE       only entries of this type (decision, signal, action, ...)
${REMOTE_HELP}`;

/** The options of `audit tail` besides the ones every command talking to the agent takes. */
export const TAIL_OPTIONS = { lines: { type: "string", short: "n" }, follow: { type: "boolean", short: "f" }, subject: { type: "string" }, type: { type: "string" } } as const;

const DEFAULT_LINES = 10;
/** Fixed column widths, so lines printed as they arrive line up with the ones before. */
const W = { seq: 6, type: 20, subject: 20 };

export async function tail(argv: string[]): Promise<number> {
  const { values, positionals, format, connect } = parseRemote(
    argv,
    TAIL_OPTIONS,
    true,
  );
  if (positionals.length > 0) throw new UsageError("audit tail takes no arguments");
  const n = values.lines === undefined ? DEFAULT_LINES : Number(values.lines);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new UsageError("-n must be a whole number from 0 to 1000");
  const filter = new URLSearchParams();
  if (values.subject !== undefined) filter.set("subject", values.subject);
  if (values.type !== undefined) filter.set("type", values.type);
  const client = await connect();

  // The head of the whole log first: entries written between the two reads are then followed, not lost.
  const head = values.follow ? ((await client.get<{ entries: AuditEntry[] }>("/v1/audit?limit=1")).entries[0]?.seq ?? 0) : 0;
  const newest = n === 0 ? [] : (await client.get<{ entries: AuditEntry[] }>(`/v1/audit?${new URLSearchParams([...filter, ["limit", String(n)]])}`)).entries;
  if (!values.follow) {
    out(format === "table" ? auditRows(newest) : serialize(format, { entries: newest }));
    return EXIT_OK;
  }
  const print = (e: AuditEntry) => out(format === "table" ? auditLine(e) : serializeItem(format, e));
  if (format === "table") out(auditHeader());
  for (const e of newest) print(e);
  const after = Math.max(head, newest.at(-1)?.seq ?? 0);
  await follow(client, `/v1/audit/stream?${new URLSearchParams([...filter, ["after", String(after)]])}`, interruptSignal(), {
    onEvent: (ev) => print(JSON.parse(ev.data) as AuditEntry),
  });
  return EXIT_OK;
}

/** Entries as lines under a header; the subject column can be left out (a subject's own view). */
export function auditRows(entries: readonly AuditEntry[], opts: { subject?: boolean } = {}): string {
  if (entries.length === 0) return "no audit entries";
  return [auditHeader(opts), ...entries.map((e) => auditLine(e, opts))].join("\n");
}

export function auditHeader(opts: { subject?: boolean } = {}): string {
  return columns("TIME", "SEQ", "TYPE", opts.subject === false ? undefined : "SUBJECT", "DETAIL");
}

/** One entry on one line: time, seq, type, subject and what happened. */
export function auditLine(e: AuditEntry, opts: { subject?: boolean } = {}): string {
  const subject = typeof e["subject"] === "string" ? e["subject"] : "-";
  return columns(isoTime(e.ts), String(e.seq), e.type, opts.subject === false ? undefined : subject, auditDetail(e));
}

function columns(time: string, seq: string, type: string, subject: string | undefined, detail: string): string {
  const cells = [time.padEnd(20), seq.padStart(W.seq), type.padEnd(W.type), ...(subject === undefined ? [] : [subject.padEnd(W.subject)]), detail];
  return cells.join("  ").trimEnd();
}

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined);

/** What an entry says, in a few words; entries of other types show their fields. */
export function auditDetail(e: AuditEntry): string {
  const f = e as Record<string, unknown>;
  const reasons = Array.isArray(f["reasons"]) ? (f["reasons"] as { code?: unknown; message?: unknown }[]) : [];
  const reasonCodes = reasons.map((r) => str(r.code)).filter((c): c is string => c !== undefined);
  switch (e.type) {
    case "decision":
      return [
        `${str(f["policy"])}: ${str(f["previous_access"]) ?? "-"} → ${str(f["access"])} (risk ${str(f["risk"])}${str(f["trigger"]) ? `, ${str(f["trigger"])}` : ""})`,
        reasonCodes.length > 0 ? reasonCodes.join(", ") : undefined,
        f["exempt"] === true ? "exempt" : undefined,
      ]
        .filter(Boolean)
        .join(" ");
    case "signal":
      return [
        `${str(f["check"])}=${str(f["status"])}`,
        str(f["risk"]) ? `risk ${str(f["risk"])}` : undefined,
        typeof f["ttl_ms"] === "number" ? `for ${duration(f["ttl_ms"])}` : undefined,
        `from ${str(f["source"]) ?? "api"}`,
        str(f["reason"]) ? `: ${str(f["reason"])}` : undefined,
      ]
        .filter(Boolean)
        .join(" ")
        .replace(" : ", ": ");
    case "action":
    case "action_failed":
    case "action_planned":
    case "action_superseded":
    case "action_redriven":
    case "enforcement_skipped": {
      const what = `${str(f["policy"])}: ${str(f["operation"]) ?? ""} ${str(f["action"]) ?? ""}${str(f["action_type"]) ? ` (${str(f["action_type"])})` : ""}`.replace(/\s+/g, " ");
      const rest =
        e.type === "action"
          ? `${str(f["outcome"])}${f["verified"] === true ? ", verified" : ""}`
          : e.type === "action_failed"
            ? `after ${str(f["attempts"])} attempt(s): ${str(f["error"])}`
            : e.type === "enforcement_skipped"
              ? str(f["reason"])
              : e.type === "action_superseded"
                ? `access is now ${str(f["current_access"])}`
                : undefined;
      return rest ? `${what} — ${rest}` : what;
    }
    case "enforcement_paused":
      return `${str(f["policy"])}: paused after ${str(f["max_actions"])} actions in ${typeof f["window_ms"] === "number" ? duration(f["window_ms"]) : "?"}`;
    case "enforcement_resumed":
      return `${str(f["policy"])}: resumed by ${str(f["by"])}`;
    default: {
      const skip = new Set(["type", "seq", "ts", "prev", "hash", "key_id", "subject"]);
      return compact(Object.fromEntries(Object.entries(f).filter(([k]) => !skip.has(k))), 160);
    }
  }
}
