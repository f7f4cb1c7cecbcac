import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ERROR_CODES, HTTP_STATUS, TRANSIENT_CODES, VigilError, isTransient, type ErrorCode } from "../../src/errors.ts";
import { errorResponse } from "../../src/http/server.ts";
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

const errorRows = () =>
  [...read("docs/errors.md").matchAll(/^\| `(VIGIL_ERR_[A-Z_]+)` \| ([^|]+?) \|/gm)].map((m) => ({ code: m[1] as ErrorCode, status: m[2]! }));
const apiCodes = (Object.keys(HTTP_STATUS) as ErrorCode[]).filter((c) => HTTP_STATUS[c] !== null);

test("docs/errors.md gives each code the HTTP status the API answers it with, — when the API never does", () => {
  const rows = errorRows();
  assert.equal(rows.length, Object.keys(ERROR_CODES).length);
  for (const { code, status } of rows) assert.equal(status, String(HTTP_STATUS[code] ?? "—"), `${code}: status column`);
});

test("the API answers each code with its status from HTTP_STATUS, and anything else as a detail-free VIGIL_ERR_INTERNAL", () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const r = errorResponse(new VigilError(code, "detail /var/lib/vigil"));
    const status = HTTP_STATUS[code];
    if (status === null) assert.deepEqual([r.status, r.code, r.message], [500, "VIGIL_ERR_INTERNAL", "internal error"], code);
    else assert.deepEqual([r.status, r.code], [status, code], code);
  }
  const plain = errorResponse(new Error("sqlite: disk I/O error"));
  assert.deepEqual([plain.status, plain.code, plain.message], [500, "VIGIL_ERR_INTERNAL", "internal error"]);
});

test("every code the API server raises is an API code, and docs/api.md lists each API code with its status", () => {
  const server = read("src/http/server.ts");
  // Every error the server answers with on its own names a code with a status: no second vocabulary of bare strings.
  const raised = [...server.matchAll(/new HttpError\(\s*([^,]+),/g)].map((m) => m[1]!);
  assert.ok(raised.length > 10, "the server's own errors are found");
  for (const arg of raised) {
    const code = /^"(VIGIL_ERR_[A-Z_]+)"$/.exec(arg)?.[1] as ErrorCode | undefined;
    assert.ok(code !== undefined && apiCodes.includes(code), `HttpError(${arg}) names a code the API answers with`);
  }
  const api = read("docs/api.md");
  const listed = [...api.matchAll(/^\| (\d{3}) \| `(VIGIL_ERR_[A-Z_]+)` \|/gm)].map((m) => [m[2], Number(m[1])] as const);
  assert.deepEqual(new Map(listed), new Map(apiCodes.map((c) => [c, HTTP_STATUS[c]])));
  for (const [, code] of api.matchAll(/`(VIGIL_ERR_[A-Z_]+)`/g)) assert.ok(apiCodes.includes(code as ErrorCode), `docs/api.md names ${code}, which the API never returns`);
});

test("docs/errors.md names exactly the codes that are retried", () => {
  const paragraph = /Queued work[\s\S]*?Every other/.exec(read("docs/errors.md"))?.[0] ?? "";
  const named = [...paragraph.matchAll(/`(VIGIL_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
  assert.deepEqual(named.sort(), [...TRANSIENT_CODES].sort());
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) assert.equal(isTransient(new VigilError(code, "x")), TRANSIENT_CODES.has(code), code);
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
