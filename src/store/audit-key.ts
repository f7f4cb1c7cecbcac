import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative, isAbsolute } from "node:path";
import { VigilError, errorMessage } from "../errors.ts";
import { auditKey, type AuditKey } from "./audit.ts";

/**
 * Where the audit key is generated when `agent.audit.key` is unset: `$XDG_CONFIG_HOME/vigil/audit.key`,
 * else `~/.config/vigil/audit.key`. Outside `data_dir` on purpose: whoever can rewrite the log there
 * must not find the key beside it.
 */
export function defaultAuditKeyPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env["XDG_CONFIG_HOME"] || join(homedir(), ".config");
  return join(base, "vigil", "audit.key");
}

export interface ResolvedAuditKey {
  readonly key: AuditKey;
  /** `agent.audit.key`, or the key file's path. */
  readonly source: string;
  /** The key file was created just now. */
  readonly generated: boolean;
}

/**
 * The audit key: `agent.audit.key` when configured, else the default key file. With `create`, a
 * missing key file is generated (32 random bytes, hex, mode 0600); without it (verify), a missing
 * file yields undefined. A key file others can read is refused, like an SSH key.
 */
export function resolveAuditKey(options: { configured?: string | undefined; dataDir: string; create: boolean; env?: NodeJS.ProcessEnv }): ResolvedAuditKey | undefined {
  if (options.configured !== undefined) return { key: auditKey(options.configured), source: "agent.audit.key", generated: false };
  const path = defaultAuditKeyPath(options.env);
  const inside = relative(options.dataDir, path);
  if (!inside.startsWith("..") && !isAbsolute(inside)) {
    throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `the default audit key file ${path} would be inside data_dir ${options.dataDir}; set agent.audit.key to a key kept elsewhere`);
  }
  let generated = false;
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw keyError(path, err);
    if (!options.create) return undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, randomBytes(32).toString("hex") + "\n", { mode: 0o600, flag: "wx" });
      generated = true;
    } catch (e) {
      // Another process generated it first: use theirs.
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw keyError(path, e);
    }
    text = read(path);
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret.length < 32) throw new VigilError("VIGIL_ERR_CONFIG_READ", `audit key file ${path} holds fewer than 32 characters`);
  return { key: auditKey(secret), source: path, generated };
}

function read(path: string): string {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new VigilError("VIGIL_ERR_CONFIG_READ", `audit key file ${path} is readable by others (mode ${mode.toString(8)}); run chmod 600 ${path}`);
  }
  return readFileSync(path, "utf8");
}

function keyError(path: string, err: unknown): VigilError {
  if (err instanceof VigilError) return err;
  return new VigilError("VIGIL_ERR_CONFIG_READ", `cannot read or create the audit key file ${path}: ${errorMessage(err)}`, { cause: err });
}
