/**
 * A token header (`X-Vault-Token`, `X-Consul-Token`) read from a file another process keeps fresh:
 * a Vault Agent auto-auth sink, or a Consul token a Vault Agent template renders from the Consul
 * secrets engine. The file is checked before every call and read again when it changed (sinks
 * replace it on each renewal or re-login), so a rotated token is used at once without a restart.
 *
 * Tokens read are not registered as global secrets: the list would grow with every rotation. The
 * API client masks the values a call sent in any error that call raises, and plans show the header
 * masked.
 */
import { readFile, stat } from "node:fs/promises";
import { MASK } from "../util/redact.ts";
import type { Authenticator } from "./api-call.ts";

export const VAULT_TOKEN_HEADER = "X-Vault-Token";

export class TokenFile implements Authenticator {
  readonly path: string;
  readonly header: string;
  #token: string | undefined;
  /** inode, size and mtime of the file the cached token came from. */
  #version = "";

  constructor(path: string, header: string = VAULT_TOKEN_HEADER) {
    this.path = path;
    this.header = header;
  }

  async headers(): Promise<Record<string, string>> {
    return { [this.header]: await this.token() };
  }

  planned(): Record<string, string> {
    return { [this.header]: MASK };
  }

  invalidate(): void {
    this.#token = undefined;
  }

  /** The current token. A missing or empty file throws an ordinary error, which the queue retries: the sink may be mid-rewrite. */
  async token(): Promise<string> {
    let version: string;
    try {
      const s = await stat(this.path, { bigint: true });
      version = `${s.ino}:${s.size}:${s.mtimeNs}`;
    } catch (err) {
      throw new Error(`token_file ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    if (this.#token !== undefined && version === this.#version) return this.#token;
    const text = (await readFile(this.path, "utf8")).trim();
    if (text === "") throw new Error(`token_file ${this.path} is empty`);
    if (/[\r\n\0]/.test(text)) throw new Error(`token_file ${this.path} holds more than one line`);
    this.#token = text;
    this.#version = version;
    return text;
  }
}
