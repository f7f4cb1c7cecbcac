/**
 * Every example validates and plans on a machine that has none of the target host's secret files,
 * kubeconfig or cluster (this one): through the real bin/vigil, `validate --offline` and `plan`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.ts";
import { ROOT, runCli } from "../helpers/agent-process.ts";

const EXAMPLES = join(ROOT, "config/examples");
const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
// Nothing of the agent's host here: no kubeconfig, no in-cluster service account.
const env = { KUBECONFIG: join(mkdtempSync(join(tmpdir(), "vigil-no-kube-")), "none"), KUBERNETES_SERVICE_HOST: "" };

/** A subject a policy of the example covers: a static one, else a stand-in of a kind its policies cover. */
async function subjectOf(file: string): Promise<string[]> {
  const cfg = await loadConfig(file, { offline: true });
  for (const inv of cfg.raw.inventories) {
    const first = inv.type === "static" ? (inv.subjects as { id: string }[] | undefined)?.[0] : undefined;
    if (first) return ["--subject", first.id];
  }
  const comm = cfg.raw.communication_policies[0];
  if (comm) return ["--subject", comm.source, "--kind", "workload"];
  const kinds = cfg.raw.identity_perimeter?.applies_to.kind;
  return ["--subject", "stand-in-1", "--kind", (Array.isArray(kinds) ? kinds[0] : kinds) ?? "user"];
}

test("there are examples to check", () => assert.ok(files.length >= 11, files.join(", ")));

for (const f of files) {
  test(`config/examples/${f}: validate --offline and plan work without the target host's secrets, kubeconfig or cluster`, async () => {
    const file = join(EXAMPLES, f);
    const valid = await runCli(["validate", "--offline", "--json", "-c", file], env);
    assert.equal(valid.code, 0, valid.stderr);
    const summary = JSON.parse(valid.stdout) as { valid: boolean; placeholders: { path: string; reference: string }[] };
    assert.equal(summary.valid, true);
    for (const p of summary.placeholders) assert.match(p.reference, /^\$\{(file|env):/, `${p.path} is a placeholder for a reference`);
    const planned = await runCli(["plan", "--json", "--access", "deny", "-c", file, ...(await subjectOf(file))], env);
    assert.equal(planned.code, 0, planned.stderr);
    const plan = JSON.parse(planned.stdout) as { policies: { actions: { calls: unknown[]; not_planned?: string }[] }[]; placeholders: unknown[] };
    assert.ok(plan.policies.length > 0, "a policy covers the subject planned for");
    for (const p of plan.policies) {
      for (const a of p.actions) {
        if (a.not_planned !== undefined) assert.match(a.not_planned, /placeholder/, "only a placeholder keeps an action from its plan");
        else assert.ok(a.calls.length > 0, "a planned action shows its calls");
      }
    }
    assert.deepEqual(plan.placeholders.length, summary.placeholders.length, "plan names the placeholders validate --offline does");
  });
}
