import { loadOrExplain, parse, out, EXIT_OK, EXIT_FAIL, type Command } from "./common.ts";
import { oneShot } from "./oneshot.ts";
import { defaultDecision } from "../policy/decide.ts";
import type { Decision } from "../policy/model.ts";
import { scrub } from "../util/redact.ts";

/** The options `check` accepts (its help lists each). */
export const options = { config: { type: "string", short: "c" }, json: { type: "boolean" }, "no-state": { type: "boolean" } } as const;

export const help = `Usage: vigil check [-c FILE] [--json] [--no-state]

Runs one evaluation pass over every subject and prints the decisions. Nothing is
enforced or written. Results pushed to a running agent (signals) and its decision
history are read from agent.data_dir when present (--no-state ignores them).

Exit 0 when every subject has full_access, 1 when any is downgraded or when an
inventory fails or lists no subject (nothing verified is not a pass), 2 on a bad
config or usage. Usable as a CI gate. Exempt subjects (break-glass: decided, never
enforced) are marked [exempt] and not counted as downgraded.

  -c, --config FILE   config file (default: config/vigil.yaml)
      --json          one JSON object per decision, one per line
      --no-state      ignore the agent's stored results and history`;

export const check: Command = async (argv) => {
  const { values } = parse(argv, options);
  const config = await loadOrExplain(values.config);
  const run = await oneShot(config, { seed: !values["no-state"] });
  try {
    const broken = run.index.status().filter((s) => s.failing || s.subjects === 0);
    for (const s of broken) process.stderr.write(`vigil: inventory ${s.label} ${s.failing ? `failed: ${scrub(s.error ?? "")}` : "lists no subject"}\n`);
    const decisions: Decision[] = [];
    const covered = new Set<string>();
    for (const policy of run.runtime.policies) {
      const ids = [...run.index.all()].filter((s) => run.runtime.covers(policy, s)).map((s) => s.id);
      ids.forEach((id) => covered.add(id));
      for (const e of await run.evaluate(policy.name, ids)) decisions.push(e.state.decision);
    }
    for (const s of run.index.all()) {
      if (!covered.has(s.id)) decisions.push(defaultDecision(s.id, config.default_security_rule, Date.now()));
    }
    for (const d of decisions) {
      if (values.json) out(JSON.stringify({ policy: d.policy, subject: d.subject, access: d.access, risk: d.risk, reasons: d.reasons, exempt: d.exempt }));
      else out(`${d.access.padEnd(11)} ${d.risk.padEnd(6)} ${d.policy} / ${d.subject}${d.reasons.length ? "  — " + d.reasons.map((r) => r.code).join(", ") : ""}${d.exempt ? "  [exempt: never enforced]" : ""}`);
    }
    // An exempt subject (break-glass) keeps its access whatever the decision says: it is shown, not counted.
    const downgraded = decisions.filter((d) => d.access !== "full_access" && !d.exempt);
    const exempt = decisions.filter((d) => d.exempt).length;
    if (!values.json) out(`${decisions.length} decision(s), ${downgraded.length} downgraded${exempt > 0 ? `, ${exempt} exempt (decided, never enforced)` : ""}`);
    return downgraded.length === 0 && broken.length === 0 ? EXIT_OK : EXIT_FAIL;
  } finally {
    await run.close();
  }
};
