import { loadOrExplain, parse, out, placeholderLines, EXIT_OK, UsageError, cliContext, type Command } from "./common.ts";
import { Runtime } from "../engine/runtime.ts";
import { SubjectIndex } from "../engine/subjects.ts";
import { idempotencyKey, transition } from "../engine/enforcer.ts";
import { ACCESS_LEVELS, SUBJECT_KINDS, type AccessLevel, type Decision, type Subject, type SubjectKind } from "../policy/model.ts";
import { redact, scrub } from "../util/redact.ts";
import { createLogger } from "../telemetry/log.ts";
import { VigilError, errorMessage } from "../errors.ts";
import type { PlannedCall } from "../net/api-call.ts";

/** The options `plan` accepts (its help lists each). */
export const options = {
  config: { type: "string", short: "c" },
  subject: { type: "string" },
  access: { type: "string" },
  from: { type: "string" },
  kind: { type: "string" },
  json: { type: "boolean" },
} as const;

export const help = `Usage: vigil plan --subject ID --access LEVEL [--from LEVEL] [--kind KIND] [-c FILE] [--json]

Prints the exact calls every configured action would make if SUBJECT's access
moved to LEVEL (full_access, read_only or deny): method, URL, headers with secrets
masked, and body. Nothing is sent.

Plans are made wherever the config is, a workstation or CI included: a \${file:…}
or \${env:…} secret not available here is a placeholder (listed; it would be
masked anyway), and so are a kubeconfig or in-cluster service account and a CA
file that exist only where the agent runs. An action whose settings hold a
placeholder its own checks refuse (a private key, say) is listed as not planned.

  --subject ID        subject id from the inventories
  --access LEVEL      the access level to plan for
  --from LEVEL        the level being left (default: full_access)
  --kind KIND         when no inventory here lists SUBJECT (one reads a file or a
                      service only the agent's host reaches): plan for a stand-in
                      subject of this kind (workload|user|device|session) whose
                      attributes show as <attributes.NAME>
  -c, --config FILE   config file (default: config/vigil.yaml, or $VIGIL_CONFIG)
  --json              machine-readable output`;

export const plan: Command = async (argv) => {
  const { values } = parse(argv, options);
  if (!values.subject) throw new UsageError("plan needs --subject");
  const isLevel = (v: string | undefined): v is AccessLevel => (ACCESS_LEVELS as readonly string[]).includes(v ?? "");
  if (!isLevel(values.access)) throw new UsageError(`--access must be one of ${ACCESS_LEVELS.join(", ")}`);
  if (values.from !== undefined && !isLevel(values.from)) throw new UsageError(`--from must be one of ${ACCESS_LEVELS.join(", ")}`);
  if (values.kind !== undefined && !(SUBJECT_KINDS as readonly string[]).includes(values.kind)) throw new UsageError(`--kind must be one of ${SUBJECT_KINDS.join(", ")}`);
  const to: AccessLevel = values.access;
  const from: AccessLevel = values.from ?? "full_access";
  // A plan sends nothing and masks every secret: it needs none of them, so it never fails for want of one.
  const config = await loadOrExplain(values.config, { offline: true });
  const notes: string[] = [];
  const ctx = { ...cliContext(config, noteLogger(notes)), planOnly: true };
  const runtime = new Runtime(config, ctx);
  try {
    const index = new SubjectIndex(runtime.inventories, ctx.logger);
    await index.refresh();
    // Each inventory that cannot be read here has said so in a note already (the index warns).
    const unavailable = index.status().filter((s) => s.failing);
    let subject = index.get(values.subject);
    let standingIn = false;
    if (!subject) {
      if (values.kind === undefined) {
        const why = unavailable.length > 0 ? ` (${unavailable.length} inventor${unavailable.length === 1 ? "y" : "ies"} cannot be read here)` : "";
        throw new UsageError(`no inventory knows subject "${values.subject}"${why}; give --kind to plan for a stand-in subject of that kind`);
      }
      subject = standIn(values.subject, values.kind as SubjectKind);
      standingIn = true;
      notes.push(`subject ${values.subject} is not listed by any inventory read here: planned for a stand-in ${values.kind} whose attributes show as <attributes.NAME>`);
    }
    const now = Date.now();
    const policies = runtime.policiesFor(subject).map((policy) => {
      const generation = 0;
      const decision: Decision = { policy: policy.name, subject: subject.id, access: to, risk: to === "full_access" ? "low" : to === "read_only" ? "medium" : "high", reasons: [], generation, decided_at: now, evidence: {}, exempt: false };
      return {
        policy: policy.name,
        dry_run: policy.dry_run,
        actions: transition(runtime, policy, from, to, from === to).map(({ bound, operation }) => {
          const key = idempotencyKey(policy.name, subject.id, generation, bound.spec.name, operation);
          const req = { decision, subject, previous_access: from, operation, idempotency_key: key, action: { name: bound.spec.name, type: bound.spec.type }, ...(policy.edge ? { edge: policy.edge } : {}) };
          const shown = { action: bound.spec.name, type: bound.spec.type, operation, dry_run: bound.spec.dry_run ?? policy.dry_run };
          let calls: PlannedCall[];
          try {
            calls = redact(bound.action.plan(req));
          } catch (err) {
            // Only a plugin an offline load could not make, or an action that refuses a stand-in's
            // placeholder attribute as its target, is left out, and says why; anything else is the plan's failure.
            const message = errorMessage(err);
            if (standingIn && message.includes("<attributes.")) {
              return { ...shown, calls: [], not_planned: scrub(`its target is a stand-in's placeholder attribute, which the real subject fills in: ${message}`) };
            }
            if (config.placeholders.length === 0 || !(err instanceof VigilError) || err.code !== "VIGIL_ERR_CONFIG_INVALID") throw err;
            return { ...shown, calls: [], not_planned: scrub(message) };
          }
          return { ...shown, calls };
        }),
      };
    });
    const result = { subject: subject.id, from, access: to, policies, placeholders: config.placeholders, notes };
    if (values.json) out(JSON.stringify(result, null, 2));
    else {
      for (const line of placeholderLines(config)) out(line.trimStart());
      for (const n of notes) out(`note: ${n}`);
      out(`${subject.id}: ${from} → ${to}`);
      if (policies.length === 0) out("  no policy covers this subject; nothing would be enforced");
      for (const p of policies) {
        out(`policy ${p.policy}${p.dry_run ? " (dry-run)" : ""}`);
        if (p.actions.length === 0) out("  no actions configured for this change");
        for (const a of p.actions) {
          out(`  ${a.operation} ${a.action}${a.dry_run ? " (dry-run)" : ""}${"not_planned" in a ? `: not planned, ${a.not_planned}` : ""}`);
          for (const c of a.calls) out(`    ${c.method} ${c.url}${c.summary ? `  # ${c.summary}` : ""}${c.body === undefined ? "" : `\n      ${JSON.stringify(c.body)}`}`);
        }
      }
    }
    return EXIT_OK;
  } finally {
    await runtime.stop();
    await ctx.http.close();
  }
};

/** A logger whose warnings and errors become notes of the plan (a kubeconfig not found here, say). */
function noteLogger(notes: string[]) {
  const write = (line: string) => {
    if (line.trim() === "") return;
    try {
      const msg = (JSON.parse(line) as { msg?: unknown }).msg;
      if (typeof msg === "string") notes.push(msg);
    } catch {
      notes.push(line.trim());
    }
  };
  return createLogger({ level: "warn", stream: { write }, format: "json" });
}

/**
 * A subject no inventory here lists, for a plan: the id given (also as its identity), the kind
 * given, no labels, and attributes that show as `<attributes.NAME>` wherever an action's template
 * reads one, so the plan names what the real subject would fill in.
 */
function standIn(id: string, kind: SubjectKind): Subject {
  const attributes = new Proxy({} as Record<string, unknown>, {
    get: (target, key) => (typeof key === "string" && !(key in Object.prototype) ? `<attributes.${key}>` : Reflect.get(target, key)),
    has: (_target, key) => typeof key === "string",
    getOwnPropertyDescriptor: (_target, key) => (typeof key === "string" ? { value: `<attributes.${key}>`, writable: false, enumerable: false, configurable: true } : undefined),
  });
  return { id, kind, identity: id, attributes, labels: {} };
}
