import { out, EXIT_OK, UsageError, type Command } from "./args.ts";
import { REMOTE_HELP, REMOTE_OPTIONS, parseRemote } from "./remote.ts";
import { compact, fields, isoTime, isoTimes, list, relative, serialize, table } from "./format.ts";
import { auditRows } from "./audit-tail.ts";
import type { SubjectDetailView } from "../http/views.ts";
import type { AuditEntry } from "../store/contract.ts";

const OWN = { audit: { type: "string", short: "n" } } as const;
/** The options `subject` accepts (its help lists each). */
export const options = { ...REMOTE_OPTIONS, ...OWN } as const;

export const help = `Usage: vigil subject ID [-n N] [-o table|json|yaml] [--addr HOST:PORT] [--token-file FILE] [-c FILE]

One subject (GET /v1/subjects/ID): its access, each policy's decision with the
reasons and evidence behind it, its latest check results, and its most recent
audit entries (GET /v1/audit?subject=ID). Exit 1 when no inventory knows it.

  -n, --audit N    audit entries to show (default 10, at most 1000; 0 for none)
${REMOTE_HELP}`;

const DEFAULT_AUDIT = 10;

export const subject: Command = async (argv) => {
  const { values, positionals, format, connect } = parseRemote(argv, OWN, true);
  if (positionals.length !== 1) throw new UsageError("subject takes one subject id (vigil subjects lists them)");
  const id = positionals[0]!;
  const n = values.audit === undefined ? DEFAULT_AUDIT : Number(values.audit);
  if (!Number.isInteger(n) || n < 0 || n > 1000) throw new UsageError("-n must be a whole number from 0 to 1000");
  const client = await connect();
  const detail = await client.get<SubjectDetailView>(`/v1/subjects/${encodeURIComponent(id)}`);
  const audit = n === 0 ? [] : (await client.get<{ entries: AuditEntry[] }>(`/v1/audit?subject=${encodeURIComponent(id)}&limit=${n}`)).entries;
  out(format === "table" ? renderSubject(detail, audit, Date.now()) : serialize(format, { ...detail, audit }));
  return EXIT_OK;
};

/** The human view of one subject. */
export function renderSubject(d: SubjectDetailView, audit: readonly AuditEntry[], now: number): string {
  const s = d.subject;
  const labels = Object.entries(s.labels ?? {}).map(([k, v]) => `${k}=${v}`);
  const attributes = Object.keys(s.attributes ?? {}).length === 0 ? undefined : compact(s.attributes, 200);
  const parts = [
    fields([
      ["Subject", `${s.id} (${s.kind})`],
      ["Identity", s.identity],
      ["Labels", labels.length === 0 ? undefined : list(labels)],
      ["Attributes", attributes],
      ["Access", `${d.access}${d.status === "pending" ? ` (pending: ${list(d.pending)} not decided yet)` : ""}`],
    ]),
  ];
  parts.push(
    d.decisions.length === 0
      ? "Decisions: none yet"
      : "Decisions:\n" +
          d.decisions
            .map((dec) => {
              const lines = [`  ${dec.policy}: ${dec.access} (risk ${dec.risk}, generation ${dec.generation}, decided ${isoTime(dec.decided_at)}, ${relative(dec.decided_at, now)})${dec.exempt ? " exempt: not enforced" : ""}`];
              for (const r of dec.reasons) lines.push(`    ${r.code}: ${r.message}`);
              if (Object.keys(dec.evidence ?? {}).length > 0) lines.push(`    evidence: ${compact(isoTimes(dec.evidence), 300)}`);
              return lines.join("\n");
            })
            .join("\n"),
  );
  if (d.results.length > 0) {
    const rows = d.results.map((r) => [
      r.check,
      r.status,
      r.risk ?? "-",
      r.source === "push" ? `signal${r.stream ? ` ${r.stream}` : ""}` : "check",
      isoTime(r.observed_at),
      `${isoTime(r.expires_at)}${Date.parse(r.expires_at) < now ? " (expired)" : ""}`,
      r.reasons.map((x) => `${x.code}: ${x.message}`).join("; ") || "-",
    ]);
    parts.push("Check results:\n" + indent(table(["check", "status", "risk", "from", "observed", "expires", "reasons"], rows)));
  }
  if (audit.length > 0) parts.push("Recent audit entries:\n" + indent(auditRows(audit, { subject: false })));
  return parts.join("\n\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
