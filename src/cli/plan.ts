import { loadOrExplain, parse, out, EXIT_OK, UsageError, cliContext, type Command } from "./common.ts";
import { Runtime } from "../engine/runtime.ts";
import { SubjectIndex } from "../engine/subjects.ts";
import { idempotencyKey, transition } from "../engine/enforcer.ts";
import { ACCESS_LEVELS, type AccessLevel, type Decision } from "../policy/model.ts";
import { redact } from "../util/redact.ts";

/** The options `plan` accepts (its help lists each). */
export const options = {
  config: { type: "string", short: "c" },
  subject: { type: "string" },
  access: { type: "string" },
  from: { type: "string" },
  json: { type: "boolean" },
} as const;

export const help = `Usage: vigil plan --subject ID --access LEVEL [--from LEVEL] [-c FILE] [--json]

Prints the exact calls every configured action would make if SUBJECT's access
moved to LEVEL (full_access, read_only or deny): method, URL, headers with secrets
masked, and body. Nothing is sent.

  --subject ID        subject id from the inventories
  --access LEVEL      the access level to plan for
  --from LEVEL        the level being left (default: full_access)
  -c, --config FILE   config file (default: config/vigil.yaml, or $VIGIL_CONFIG)
  --json              machine-readable output`;

export const plan: Command = async (argv) => {
  const { values } = parse(argv, options);
  if (!values.subject) throw new UsageError("plan needs --subject");
  const isLevel = (v: string | undefined): v is AccessLevel => (ACCESS_LEVELS as readonly string[]).includes(v ?? "");
  if (!isLevel(values.access)) throw new UsageError(`--access must be one of ${ACCESS_LEVELS.join(", ")}`);
  if (values.from !== undefined && !isLevel(values.from)) throw new UsageError(`--from must be one of ${ACCESS_LEVELS.join(", ")}`);
  const to: AccessLevel = values.access;
  const from: AccessLevel = values.from ?? "full_access";
  const config = await loadOrExplain(values.config);
  const ctx = cliContext(config);
  const runtime = new Runtime(config, ctx);
  try {
    const index = new SubjectIndex(runtime.inventories, ctx.logger);
    await index.refresh();
    const subject = index.get(values.subject);
    if (!subject) throw new UsageError(`no inventory knows subject "${values.subject}"`);
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
          return { action: bound.spec.name, type: bound.spec.type, operation, dry_run: bound.spec.dry_run ?? policy.dry_run, calls: redact(bound.action.plan(req)) };
        }),
      };
    });
    const result = { subject: subject.id, from, access: to, policies };
    if (values.json) out(JSON.stringify(result, null, 2));
    else {
      out(`${subject.id}: ${from} → ${to}`);
      if (policies.length === 0) out("  no policy covers this subject; nothing would be enforced");
      for (const p of policies) {
        out(`policy ${p.policy}${p.dry_run ? " (dry-run)" : ""}`);
        if (p.actions.length === 0) out("  no actions configured for this change");
        for (const a of p.actions) {
          out(`  ${a.operation} ${a.action}${a.dry_run ? " (dry-run)" : ""}`);
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
