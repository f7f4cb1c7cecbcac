import { loadOrExplain, parse, out, EXIT_OK, UsageError, type Command } from "./common.ts";
import { oneShot } from "./oneshot.ts";
import { defaultDecision } from "../policy/decide.ts";
import { transition } from "../engine/enforcer.ts";

/** The options `explain` accepts (its help lists each). */
export const options = { config: { type: "string", short: "c" }, json: { type: "boolean" } } as const;

export const help = `Usage: vigil explain <subject-id> [-c FILE] [--json]

Explains a subject's access: which policies cover it, each check's result and
risk, how they combine, the decision in force, and the actions a change would run.
Evaluates afresh (nothing is enforced or written), using the agent's stored
signals and history from agent.data_dir when present.

  -c, --config FILE   config file (default: config/vigil.yaml, or $VIGIL_CONFIG)
      --json          machine-readable output`;

export const explain: Command = async (argv) => {
  const { values, positionals } = parse(argv, options, true);
  const id = positionals[0];
  if (!id || positionals.length > 1) throw new UsageError("explain takes exactly one subject id");
  const config = await loadOrExplain(values.config);
  const run = await oneShot(config);
  try {
    const subject = run.index.get(id);
    if (!subject) throw new UsageError(`no inventory knows subject "${id}"`);
    const policies = run.runtime.policiesFor(subject);
    const report = [];
    for (const policy of policies) {
      const stored = await run.store.getState(policy.name, id);
      const [e] = await run.evaluate(policy.name, [id]);
      if (!e) continue;
      const d = e.state.decision;
      // A check that adds up parts (user_risk_score's computed score) lists them in its evidence.
      const results = await run.store.getResults([id], policy.checks);
      const contributionsOf = (check: string) => {
        const found = results.find((r) => r.check === check && (r.source ?? "pull") === "pull")?.evidence?.contributions;
        return Array.isArray(found) ? (found as { message?: unknown; weight?: unknown }[]) : undefined;
      };
      const from = stored?.enforced_access ?? "full_access";
      report.push({
        policy: policy.name,
        kind: policy.kind,
        ...(policy.edge ? { edge: policy.edge } : {}),
        checks: e.outcome.resolved.map((c) => {
          const contributions = contributionsOf(c.check);
          return { check: c.check, status: c.status, risk: c.risk, source: c.source, held: c.held, reasons: c.reasons, ...(contributions ? { contributions } : {}) };
        }),
        risk: d.risk,
        target: d.evidence.target,
        access: d.access,
        in_force_before: stored?.decision.access ?? null,
        exempt: d.exempt,
        reasons: d.reasons,
        actions_on_change: d.exempt ? [] : transition(run.runtime, policy, from, d.access, !stored || stored.enforced_generation === 0).map((t) => `${t.operation} ${t.bound.spec.name}`),
      });
    }
    if (values.json) {
      out(JSON.stringify({ subject, policies: report, ...(policies.length ? {} : { default: defaultDecision(id, config.default_security_rule, Date.now()) }) }, null, 2));
      return EXIT_OK;
    }
    out(`${subject.kind} ${subject.id}${subject.identity ? ` (${subject.identity})` : ""}`);
    if (policies.length === 0) out(`  no policy covers it: default_security_rule=${config.default_security_rule} → ${defaultDecision(id, config.default_security_rule, 0).access}`);
    for (const r of report) {
      out(`\npolicy ${r.policy} (${r.kind}${r.edge ? `: ${r.edge.source} → ${r.edge.destination}:${r.edge.port}` : ""})`);
      for (const c of r.checks) {
        out(`  ${c.check.padEnd(22)} ${c.status.padEnd(8)} risk ${c.risk.padEnd(6)} ${c.source}${c.held ? " (held)" : ""}${c.reasons.length ? "  " + c.reasons.map((x) => `${x.code}: ${x.message}`).join("; ") : ""}`);
        for (const part of c.contributions ?? []) out(`      +${String(part.weight).padStart(6)}  ${String(part.message)}`);
      }
      out(`  → risk ${r.risk} → ${r.target}; in force: ${r.access}${r.in_force_before ? ` (was ${r.in_force_before})` : ""}${r.exempt ? " [exempt: never enforced]" : ""}`);
      if (r.actions_on_change.length) out(`  actions: ${r.actions_on_change.join(", ")}`);
    }
    return EXIT_OK;
  } finally {
    await run.close();
  }
};
