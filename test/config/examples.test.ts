import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigText } from "../../src/config/load.ts";

const EXAMPLES = new URL("../../config/examples/", import.meta.url);

test("every example in config/examples validates", async () => {
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 2);
  // ${file:…} secrets point at paths that exist on a real host; give them stand-ins here.
  const secrets = mkdtempSync(join(tmpdir(), "vigil-examples-"));
  writeFileSync(join(secrets, "api-token"), "example-token-0123456789abcdef\n");
  writeFileSync(join(secrets, "webhook-secret"), "example-webhook-secret-0123456789\n");
  for (const f of files) {
    const text = readFileSync(new URL(f, EXAMPLES), "utf8").replaceAll("/run/credentials/vigil.service", secrets);
    const cfg = await loadConfigText(text, join(EXAMPLES.pathname, f));
    assert.ok(cfg.policies.length > 0, f);
  }
});
