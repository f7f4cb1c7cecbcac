import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadConfigText } from "../../src/config/load.ts";
import { loadBuiltins } from "../../src/actions/registry.ts";
import { loadInventories } from "../../src/inventories/registry.ts";
import { SOURCE_TYPES } from "../../src/sources/device/model.ts";

const { actions: builtinActions, providers: builtinProviders } = await loadBuiltins();
const builtinInventories = await loadInventories();

const EXAMPLES = new URL("../../config/examples/", import.meta.url);

function privateKeyPem(rsa: boolean): string {
  const { privateKey } = rsa ? generateKeyPairSync("rsa", { modulusLength: 2048 }) : generateKeyPairSync("ec", { namedCurve: "P-256" });
  return privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

test("every example in config/examples validates", async () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 2);
  // ${file:…} secrets point at paths that exist on a real host; give every one a stand-in here
  // (a real private key where the name says PEM, since providers parse their keys at load time).
  const secrets = mkdtempSync(join(tmpdir(), "vigil-examples-"));
  const providerTypes = new Set<string>();
  const actionTypes = new Set<string>();
  const deviceSources = new Set<string>();
  const inventoryTypes = new Set<string>();
  for (const f of files) {
    let text = readFileSync(new URL(f, EXAMPLES), "utf8");
    for (const m of text.matchAll(/\$\{file:([^}]+)\}/g)) {
      const original = m[1]!;
      const standIn = join(secrets, f, original.replace(/^\/+/, ""));
      mkdirSync(dirname(standIn), { recursive: true });
      const pem = /\.pem$|key$/i.test(original);
      const rsa = /rsa|rs256|ps256/i.test(original);
      writeFileSync(standIn, pem ? privateKeyPem(rsa) : "example-secret-0123456789abcdef\n");
      text = text.replaceAll(`\${file:${original}}`, `\${file:${standIn}}`);
    }
    const cfg = await loadConfigText(text, join(EXAMPLES.pathname, f));
    assert.ok(cfg.policies.length > 0, f);
    for (const p of Object.values(cfg.providers)) providerTypes.add(p.type);
    for (const c of Object.values(cfg.checks)) if (c.type === "device_compliance" && c.pull) for (const s of (c.config as { sources: { type: string }[] }).sources) deviceSources.add(s.type);
    for (const i of cfg.inventories) inventoryTypes.add(i.type);
    for (const p of cfg.policies) for (const level of ["full_access", "read_only", "deny"] as const) for (const a of p.actions[level]) actionTypes.add(a.type);
  }
  // One complete example per provider, and every built-in action shown in one.
  assert.deepEqual([...builtinProviders.map((p) => p.type)].filter((t) => !providerTypes.has(t)), [], "providers without an example");
  assert.deepEqual([...builtinActions.map((a) => a.type)].filter((t) => !actionTypes.has(t)), [], "actions without an example");
  // One complete example per device_compliance source, and every built-in inventory shown in one.
  assert.deepEqual(SOURCE_TYPES.filter((t) => !deviceSources.has(t)), [], "device sources without an example");
  assert.deepEqual(builtinInventories.map((i) => i.type).filter((t) => !inventoryTypes.has(t)), [], "inventories without an example");
});
