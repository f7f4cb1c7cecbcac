/**
 * Every command's --help lists every option the command accepts, and names no option it does not:
 * the options come from the same table the command parses its arguments with (`options` of each
 * module, returned by the command table's `load()`).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { COMMANDS } from "../../src/cli/commands.ts";

/** `--help` is every command's (parse() adds it); `--version` is vigil's own, named in `version`'s help. */
const GLOBAL = new Set(["help", "version"]);

const longFlags = (help: string) => new Set([...help.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
const shortFlags = (help: string) => new Set([...help.matchAll(/(?<![\w-])-([a-zA-Z])(?![\w-])/g)].map((m) => m[1]!));

for (const [name, entry] of Object.entries(COMMANDS)) {
  test(`vigil ${name} --help lists every option it accepts, and only those`, async () => {
    const { help, options } = await entry.load();
    const longs = longFlags(help);
    const shorts = shortFlags(help);
    for (const [option, def] of Object.entries(options)) {
      assert.ok(longs.has(option), `${name}: --${option} is accepted but its help does not list it`);
      if (def.short !== undefined) assert.ok(shorts.has(def.short), `${name}: -${def.short} (--${option}) is accepted but its help does not list it`);
    }
    for (const flag of longs) assert.ok(Object.hasOwn(options, flag) || GLOBAL.has(flag), `${name}: its help names --${flag}, which it does not accept`);
    const acceptedShorts = new Set([...Object.values(options).map((d) => d.short), "h"]);
    for (const s of shorts) assert.ok(acceptedShorts.has(s), `${name}: its help names -${s}, which it does not accept`);
  });
}

test("the help check catches an option missing from a help text", () => {
  assert.deepEqual([...longFlags("Usage: vigil x [-c FILE] [--json]")], ["json"]);
  assert.deepEqual([...shortFlags("Usage: vigil x [-c FILE] [--json] until Ctrl-C")], ["c"]);
});
