import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ERROR_CODES } from "../../src/errors.ts";
import { builtinChecks } from "../../src/checks/registry.ts";
import { loadBuiltins } from "../../src/actions/registry.ts";

const { actions: builtinActions, providers: builtinProviders } = await loadBuiltins();
import { configJsonSchema } from "../../src/config/json-schema.ts";
import { DECISION_REASONS } from "../../src/policy/decide.ts";
import { ENGINE_REASONS } from "../../src/engine/evaluator.ts";

const read = (p: string) => readFileSync(new URL(`../../${p}`, import.meta.url), "utf8");

test("every error code is documented in docs/errors.md and every documented code exists", () => {
  const doc = read("docs/errors.md");
  const documented = [...doc.matchAll(/^\| `(VIGIL_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
  assert.equal(new Set(documented).size, documented.length, "codes are unique");
});

test("every reason code of the built-in checks and the engine is documented in docs/checks.md", () => {
  const doc = read("docs/checks.md");
  const codes = [...builtinChecks.flatMap((c) => c.reasons.map((r) => r.code)), ...Object.values(DECISION_REASONS), ...Object.values(ENGINE_REASONS)];
  for (const code of codes) assert.ok(doc.includes("`" + code + "`"), `${code} is documented`);
});

test("config/schema.json is generated from the current schema (run npm run schema)", () => {
  assert.deepEqual(JSON.parse(read("config/schema.json")), JSON.parse(JSON.stringify(configJsonSchema())));
});

test("docs/actions.md lists every action with every permission it needs, and each provider has its page", () => {
  const doc = read("docs/actions.md");
  for (const a of builtinActions) {
    assert.ok(doc.includes("`" + a.type + "`"), `${a.type} is documented`);
    for (const p of a.requiredPermissions) assert.ok(doc.includes("`" + p.replace(/\|/g, "\\|") + "`"), `${a.type}: permission "${p}" is documented`);
  }
  for (const a of builtinActions.filter((x) => x.provider)) {
    const folder = a.type.split(":")[0]!;
    assert.ok(read(`docs/actions/${folder}.md`).includes(a.type), `docs/actions/${folder}.md covers ${a.type}`);
  }
  for (const p of builtinProviders) assert.ok(read(`docs/actions/${p.type}.md`).includes(`providers.${p.type}`), `docs/actions/${p.type}.md documents providers.${p.type}`);
});
