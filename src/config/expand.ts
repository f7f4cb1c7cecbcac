import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { registerSecret } from "../util/redact.ts";
import type { ConfigIssue } from "../errors.ts";
import { keyPath } from "../util/key-path.ts";

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
}

export function expandReferences(tree: unknown, options: ExpandOptions, issues: ConfigIssue[], path: (string | number)[] = []): unknown {
  if (typeof tree === "string") return expandString(tree, options, issues, path);
  if (Array.isArray(tree)) return tree.map((v, i) => expandReferences(v, options, issues, [...path, i]));
  if (tree !== null && typeof tree === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(tree)) out[k] = expandReferences(v, options, issues, [...path, k]);
    return out;
  }
  return tree;
}

function expandString(text: string, options: ExpandOptions, issues: ConfigIssue[], path: (string | number)[]): string {
  if (!text.includes("${")) return text;
  const escaped = text.split("$${");
  return escaped
    .map((part) =>
      part.replace(REF_RE, (_match, kind: string, arg: string) => {
        const value = kind === "env" ? options.env[arg] : readRef(arg, options, issues, path);
        if (value === undefined) {
          if (kind === "env") issues.push({ path: keyPath(path), message: `environment variable ${arg} is not set`, line: options.locate?.(path) });
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
    // Secret files conventionally end with a newline that is not part of the secret.
    return readFileSync(full, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    issues.push({ path: keyPath(path), message: `cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, line: options.locate?.(path) });
    return undefined;
  }
}

