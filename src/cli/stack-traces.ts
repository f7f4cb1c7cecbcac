import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * Stack traces of the bundle (dist/bundle/*.mjs) in terms of src/: each frame in a bundle file is
 * mapped through that file's source map, which is read and parsed on the first stack that needs it.
 *
 * Node's own source map support (`--enable-source-maps`) reads and keeps the map of every module as
 * it is loaded, whether or not a stack trace ever needs it: about 4 MB of an idle agent's memory and
 * ~10 ms of its start-up for maps that are rarely read (BENCHMARKS.md, section 18). The frames are
 * written as Node writes them with its support on (lib/internal/source_map/prepare_stack_trace.js):
 * `at name (src/file.ts:line:column)`, the name restored from the map's names where minifying
 * shortened it. Passing `--enable-source-maps` still gets Node's own; `--no-enable-source-maps`
 * turns mapping off.
 */
export function mapBundleStackTraces(bundleDirUrl: string): void {
  const maps = new Map<string, SourceMap | null>();
  const mapFor = (file: string | null | undefined): SourceMap | null => {
    if (!file || !file.startsWith(bundleDirUrl)) return null;
    let map = maps.get(file);
    if (map === undefined) {
      try {
        const payload = JSON.parse(readFileSync(fileURLToPath(`${file}.map`), "utf8")) as ConstructorParameters<typeof SourceMap>[0];
        // Sources are relative to the map; stack frames name them by absolute path, as Node does.
        map = new SourceMap({ ...payload, sources: payload.sources.map((s) => new URL(s, `${file}.map`).href) });
      } catch {
        map = null;
      }
      maps.set(file, map);
    }
    return map;
  };
  Error.prepareStackTrace = (error: unknown, trace: NodeJS.CallSite[]): string => {
    const head = errorHead(error);
    const frames = trace.map((site, i) => {
      try {
        const map = mapFor(site.getFileName());
        if (map) return `\n    at ${frame(map, site, trace[i + 1])}`;
      } catch {
        // An unmappable frame is shown as it is.
      }
      return `\n    at ${String(site)}`;
    });
    return head + frames.join("");
  };
}

function errorHead(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  // Node's own errors show their code, as Node writes them.
  if (typeof code === "string" && code.startsWith("ERR_") && !("status" in error)) return `${error.name} [${code}]: ${error.message}`;
  return Error.prototype.toString.call(error);
}

function frame(map: SourceMap, site: NodeJS.CallSite, caller: NodeJS.CallSite | undefined): string {
  const entry = map.findEntry((site.getLineNumber() ?? 0) - 1, (site.getColumnNumber() ?? 0) - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
  if (entry.originalSource === undefined || entry.originalLine === undefined || entry.originalColumn === undefined) return String(site);
  const source = entry.originalSource.startsWith("file://") ? fileURLToPath(entry.originalSource) : entry.originalSource;
  const prefix = site.isAsync() ? "async " : site.isConstructor() ? "new " : "";
  const typeName = site.getTypeName();
  const name = originalName(map, site, caller) || site.getFunctionName() || site.getMethodName() || "<anonymous>";
  return `${prefix}${typeName !== null && typeName !== "global" ? `${typeName}.` : ""}${name} (${source}:${entry.originalLine + 1}:${entry.originalColumn + 1})`;
}

/** The enclosing function's name in the source, else the name at the caller's call site (as Node does). */
function originalName(map: SourceMap, site: NodeJS.CallSite, caller: NodeJS.CallSite | undefined): string | undefined {
  const s = site as NodeJS.CallSite & { getEnclosingLineNumber?: () => number | null; getEnclosingColumnNumber?: () => number | null };
  if (s.getEnclosingLineNumber && s.getEnclosingColumnNumber) {
    const enclosing = map.findEntry((s.getEnclosingLineNumber() ?? 0) - 1, (s.getEnclosingColumnNumber() ?? 0) - 1) as { name?: string };
    if (enclosing.name) return enclosing.name;
  }
  if (caller && caller.getFileName() === site.getFileName()) {
    return (map.findEntry((caller.getLineNumber() ?? 0) - 1, (caller.getColumnNumber() ?? 0) - 1) as { name?: string }).name;
  }
  return undefined;
}
