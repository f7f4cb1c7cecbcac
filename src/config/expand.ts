import { isAbsolute, resolve } from "node:path";
import { registerSecret } from "../util/redact.ts";
import type { ConfigIssue } from "../errors.ts";
import { keyPath } from "../util/key-path.ts";
import { readFileCappedSync } from "../util/read-capped.ts";

/** Largest file a `${file:…}` reference reads: 4 MiB, as for the config itself. */
const MAX_REF_BYTES = 4 * 1024 * 1024;

const REF_RE = /\$\{(env|file):([^}]+)\}/g;

/**
 * Replaces `${env:NAME}` and `${file:/path}` in every string of a parsed YAML tree.
 * Expanded values are registered as secrets so no log line or error can print them.
 * `$${` stands for a literal `${`. Problems are collected, not thrown, so all are reported at once.
 */
export interface ExpandOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly baseDir: string;
  /** YAML line of a key path, for the issues. */
  readonly locate?: (path: readonly (string | number)[]) => number | undefined;
  /**
   * Offline (`vigil validate --offline`, `vigil plan`): a reference that cannot be resolved here (a
   * secret file of the target host, an environment variable set only there) is recorded through this
   * and replaced by the text it returns, instead of being a problem. Absent: it is a problem.
   */
  readonly placeholder?: (reference: string, reason: string, path: (string | number)[]) => string;
}

export function expandReferences(tree: unknown, options: ExpandOptions, issues: ConfigIssue[], path: (string | number)[] = []): unknown {
  if (typeof tree === "string") return expandString(tree, options, issues, path);
  if (Array.isArray(tree)) return tree.map((v, i) => expandReferences(v, options, issues, [...path, i]));
  if (tree !== null && typeof tree === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tree)) {
      // An assignment to `__proto__` would set the prototype, and the schema would read its keys as if written here.
      if (k === "__proto__") {
        issues.push({ path: keyPath([...path, k]), message: "__proto__ is not allowed as a key", line: options.locate?.([...path, k]) });
        continue;
      }
      out[k] = expandReferences(v, options, issues, [...path, k]);
    }
    return out;
  }
  return tree;
}

function expandString(text: string, options: ExpandOptions, issues: ConfigIssue[], path: (string | number)[]): string {
  if (!text.includes("${")) return text;
  const escaped = text.split("$${");
  return escaped
    .map((part) =>
      part.replace(REF_RE, (match: string, kind: string, arg: string) => {
        const problems: ConfigIssue[] = [];
        const value = kind === "env" ? (Object.hasOwn(options.env, arg) ? options.env[arg] : undefined) : readRef(arg, options, problems, path);
        if (value === undefined) {
          if (kind === "env") problems.push({ path: keyPath(path), message: `environment variable ${arg} is not set`, line: options.locate?.(path) });
          // Not registered as a secret: a placeholder is shown as what it is.
          if (options.placeholder) return options.placeholder(match, problems.map((p) => p.message).join("; "), path);
          issues.push(...problems);
          return "";
        }
        registerSecret(value);
        return value;
      }),
    )
    .join("${");
}

function readRef(file: string, options: ExpandOptions, issues: ConfigIssue[], path: (string | number)[]): string | undefined {
  const full = isAbsolute(file) ? file : resolve(options.baseDir, file);
  try {
    const buf = readFileCappedSync(full, MAX_REF_BYTES);
    if (buf === undefined) {
      issues.push({ path: keyPath(path), message: `${full} is larger than ${MAX_REF_BYTES} bytes (4 MiB), the most a \${file:…} reference reads`, line: options.locate?.(path) });
      return undefined;
    }
    // Secret files conventionally end with a newline that is not part of the secret.
    return buf.toString("utf8").replace(/\r?\n$/, "");
  } catch (err) {
    issues.push({ path: keyPath(path), message: `cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, line: options.locate?.(path) });
    return undefined;
  }
}

