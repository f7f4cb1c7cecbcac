/**
 * A token read from a file another process keeps fresh: a Vault Agent auto-auth sink, a Consul token
 * a Vault Agent template renders, a Kubernetes service account token the kubelet rotates, a
 * kubeconfig `tokenFile`. The file's inode, size and modification time are checked before a use and
 * the file is read again when they changed (sinks replace it on each renewal or re-login, the
 * kubelet swaps a symlink), so a rotated token is used without a restart.
 *
 * When the file is missing or empty (a writer that truncates or deletes before it writes again) the
 * error is a transient `UpstreamError`: the queue retries and by then the new token is there. A file
 * that can never give a token (unreadable, not a regular file, too large, several lines) is a
 * permanent `VIGIL_ERR_CONFIG_READ`.
 *
 * A failed re-read after a good one: the token read last is used for `staleGraceMs` more (default 0,
 * i.e. not at all), unless `invalidate()` dropped it because the server refused it. Vault and Consul
 * keep 0: their sinks revoke the old token when they write a new one, and Vault answers a revoked token
 * with 403, which fails the job for good, while the transient error lets the queue wait for the new
 * file. Kubernetes sets a grace (see kubernetes.ts): a replaced service account token stays valid
 * well past its replacement, and a refused one comes back as 401, which drops it.
 *
 * Tokens read are not registered as global secrets: the list would grow with every rotation. The
 * API client masks the values a call sent in any error that call raises, and plans show the header
 * masked.
 */
import fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { UpstreamError, VigilError } from "../errors.ts";
import { MASK } from "../util/redact.ts";
import type { Authenticator } from "./api-call.ts";

export const VAULT_TOKEN_HEADER = "X-Vault-Token";
/** A token (a JWT with many claims included) is far smaller; a larger file is the wrong file. */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

export interface TokenFileOptions {
  /** The header `headers()` sends the token in. Default `X-Vault-Token`. */
  readonly header?: string;
  /** How messages name the file, e.g. the config key. Default `token_file`. */
  readonly label?: string;
  /** The file is checked at most this often; in between the token read last is used. Default 0: before every use. */
  readonly recheckMs?: number;
  /** How long after the file last gave the token a failed re-read may still use it (see the module comment). Default 0. */
  readonly staleGraceMs?: number;
  /** Clock for the intervals above (tests). Default `Date.now`. */
  readonly now?: () => number;
}

interface Held {
  readonly value: string;
  /** inode, size and mtime of the file the token came from. */
  readonly version: string;
  /** When the file was last found to hold this token. */
  confirmedAt: number;
}

export class TokenFile implements Authenticator {
  readonly path: string;
  readonly header: string;
  readonly label: string;
  readonly #recheckMs: number;
  readonly #staleGraceMs: number;
  readonly #now: () => number;
  #held: Held | undefined;
  /** Concurrent callers share one check of the file. */
  #pending: Promise<string> | undefined;

  constructor(path: string, options: TokenFileOptions = {}) {
    this.path = path;
    this.header = options.header ?? VAULT_TOKEN_HEADER;
    this.label = options.label ?? "token_file";
    this.#recheckMs = options.recheckMs ?? 0;
    this.#staleGraceMs = options.staleGraceMs ?? 0;
    this.#now = options.now ?? Date.now;
  }

  async headers(): Promise<Record<string, string>> {
    return { [this.header]: await this.token() };
  }

  planned(): Record<string, string> {
    return { [this.header]: MASK };
  }

  /** The server refused the token: the next use reads the file, and a failure then is reported. */
  invalidate(): void {
    this.#held = undefined;
  }

  /** The current token. */
  token(): Promise<string> {
    const held = this.#held;
    if (held !== undefined && this.#recheckMs > 0 && this.#now() - held.confirmedAt < this.#recheckMs) return Promise.resolve(held.value);
    const pending = (this.#pending ??= this.#check().finally(() => {
      if (this.#pending === pending) this.#pending = undefined;
    }));
    return pending;
  }

  async #check(): Promise<string> {
    const held = this.#held;
    const now = this.#now();
    try {
      const { version, text } = await readIfChanged(this.path, this.label, held?.version);
      if (text === undefined && held !== undefined) {
        held.confirmedAt = now;
        return held.value;
      }
      const value = (text ?? "").trim();
      if (value === "") throw new UpstreamError(true, `${this.label} ${this.path} is empty`);
      if (/[\r\n\0]/.test(value)) throw new VigilError("VIGIL_ERR_CONFIG_READ", `${this.label} ${this.path} holds more than one line`);
      // A token dropped by invalidate() while this read ran is not brought back by it: the read is newer.
      this.#held = { value, version, confirmedAt: now };
      return value;
    } catch (err) {
      const current = this.#held;
      if (this.#staleGraceMs > 0 && current !== undefined && current === held && now - current.confirmedAt <= this.#staleGraceMs) return current.value;
      throw err;
    }
  }
}

/**
 * The file's contents, or `text: undefined` when its version is still `known`. Errors name the file
 * as `<label> <path>`: missing is transient, anything else that cannot change by waiting is permanent.
 */
async function readIfChanged(path: string, label: string, known: string | undefined): Promise<{ version: string; text: string | undefined }> {
  let fh: FileHandle;
  try {
    fh = await fs.promises.open(path, OPEN_FLAGS);
  } catch (err) {
    throw fileError(label, path, err);
  }
  try {
    const st = await fh.stat({ bigint: true });
    const version = `${st.ino}:${st.size}:${st.mtimeNs}`;
    if (version === known) return { version, text: undefined };
    if (!st.isFile()) throw new VigilError("VIGIL_ERR_CONFIG_READ", `${label} ${path} is not a regular file`);
    const buf = await readCapped(fh, MAX_TOKEN_FILE_BYTES);
    if (buf === undefined) throw new VigilError("VIGIL_ERR_CONFIG_READ", `${label} ${path} is larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
    return { version, text: buf.toString("utf8") };
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw fileError(label, path, err);
  } finally {
    await fh.close().catch(() => {});
  }
}

// O_NONBLOCK: opening a FIFO must not hang a libuv thread; the handle is then checked to be a regular file.
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/**
 * Reads a small local file the configuration names (a kubeconfig, a CA or key file). Failures name
 * `<label> <path>`: missing, unreadable or too large is `VIGIL_ERR_CONFIG_READ`; an I/O error that may
 * pass (EIO, EMFILE) is transient.
 */
export async function readSmallFile(path: string, label: string, maxBytes: number): Promise<Buffer> {
  let fh: FileHandle;
  try {
    fh = await fs.promises.open(path, OPEN_FLAGS);
  } catch (err) {
    throw fileError(label, path, err, false);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new VigilError("VIGIL_ERR_CONFIG_READ", `${label} ${path} is not a regular file`);
    const buf = await readCapped(fh, maxBytes);
    if (buf === undefined) throw new VigilError("VIGIL_ERR_CONFIG_READ", `${label} ${path} is larger than ${maxBytes} bytes`);
    return buf;
  } catch (err) {
    if (err instanceof VigilError) throw err;
    throw fileError(label, path, err, false);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** At most `maxBytes`, read to the end (a file growing after stat, or lying about its size, is caught too); undefined when larger. */
async function readCapped(fh: FileHandle, maxBytes: number): Promise<Buffer | undefined> {
  const buf = Buffer.alloc(maxBytes + 1);
  let used = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, used, buf.length - used, null);
    if (bytesRead === 0) return buf.subarray(0, used);
    used += bytesRead;
    if (used > maxBytes) return undefined;
  }
}

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: "not found",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a path component is not a directory",
  ELOOP: "too many symbolic links",
};

/**
 * A failed open or read. A missing file is transient when it holds a token another process rewrites
 * (`missingIsTransient`), and a configuration problem otherwise; permission and path problems stay until
 * someone fixes them; anything else (EIO, EMFILE) may pass.
 */
export function fileError(label: string, path: string, err: unknown, missingIsTransient = true): VigilError {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const reason = code !== undefined && REASONS[code] ? `${REASONS[code]} (${code})` : `${code ?? ""} ${err instanceof Error ? err.message : String(err)}`.trim();
  const message = `${label} ${path}: ${reason}`;
  if (code === "ENOENT") return missingIsTransient ? new UpstreamError(true, message, { cause: err }) : new VigilError("VIGIL_ERR_CONFIG_READ", message, { cause: err });
  if (code !== undefined && REASONS[code]) return new VigilError("VIGIL_ERR_CONFIG_READ", message, { cause: err });
  return new UpstreamError(true, message, { cause: err });
}
