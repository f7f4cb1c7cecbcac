/**
 * Certificates from files on disk (PEM or DER).
 *
 * Order and the leaf rule: the `paths` entries are taken in the order given; a glob entry expands
 * to its matches sorted by name (code-unit order). Across that list the first certificate found is
 * the leaf and every other certificate is a candidate intermediate. So the leaf is the first
 * certificate of the first file, where "first file" means the first entry, or for a glob the match
 * whose name sorts first. Files holding no CERTIFICATE block (a key beside the certificate matched
 * by `*.pem`) are skipped; a file listed twice is read once.
 *
 * Limits: each file at most 1 MiB and a regular file (no devices, FIFOs or directories); a glob may
 * match at most 64 files (more is a SourceError, as a too-wide glob is a configuration mistake);
 * a literal path that does not exist, and a glob that matches nothing, are SourceErrors.
 * A CERTIFICATE block that does not decode is returned as read: the validator reports it malformed.
 */
import fs from "node:fs";
import path from "node:path";
import type { GatheredCertificate } from "../types.ts";
import { certificatesFromBytes, Deadline, errorText, readFileCapped, SourceError } from "./common.ts";

export const MAX_CERT_FILE_BYTES = 1024 * 1024;
export const MAX_GLOB_MATCHES = 64;
export const DEFAULT_FILE_TIMEOUT_MS = 5_000;

export interface FileSourceOptions {
  /** Files or globs (`*`, `?`, `[..]`, `{a,b}`, `**`); relative ones resolve against `baseDir`. */
  readonly paths: readonly string[];
  readonly baseDir: string;
  /** Whole-gather deadline. Default 5000. */
  readonly timeoutMs?: number;
}

const GLOB = /[*?[{]/;

async function expandGlob(pattern: string, baseDir: string, deadline: Deadline): Promise<string[]> {
  const matches: string[] = [];
  const it = fs.promises.glob(pattern, { cwd: baseDir })[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await deadline.race(it.next());
      if (next.done) break;
      matches.push(path.resolve(baseDir, next.value));
      if (matches.length > MAX_GLOB_MATCHES) throw new SourceError(`glob ${pattern} matches more than ${MAX_GLOB_MATCHES} files`);
    }
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(`glob ${pattern}: ${errorText(err)}`, { cause: err });
  } finally {
    void it.return?.()?.catch(() => {});
  }
  return matches.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function isRegularFile(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).isFile();
  } catch {
    return false;
  }
}

export async function fromFiles(options: FileSourceOptions, signal?: AbortSignal): Promise<GatheredCertificate> {
  const paths = options.paths;
  if (!Array.isArray(paths) || paths.length === 0) throw new SourceError("file source: no paths given");
  const deadline = new Deadline(signal, options.timeoutMs ?? DEFAULT_FILE_TIMEOUT_MS, "file source");
  const files: string[] = [];
  const seen = new Set<string>();
  for (const entry of paths) {
    if (typeof entry !== "string" || entry === "" || entry.includes("\0")) throw new SourceError(`file source: invalid path ${JSON.stringify(entry)}`);
    let found: string[];
    if (GLOB.test(entry)) {
      const matches = await expandGlob(entry, options.baseDir, deadline);
      found = [];
      for (const m of matches) if (await deadline.race(isRegularFile(m))) found.push(m);
      if (found.length === 0) throw new SourceError(`glob ${entry} matches no file`);
    } else {
      found = [path.resolve(options.baseDir, entry)];
    }
    for (const f of found) {
      if (seen.has(f)) continue;
      seen.add(f);
      files.push(f);
    }
  }

  const chain: Uint8Array[] = [];
  let origin: string | undefined;
  for (const file of files) {
    const certs = certificatesFromBytes(await readFileCapped(file, MAX_CERT_FILE_BYTES, deadline, "certificate file"));
    if (certs.length === 0) continue;
    origin ??= `file:${file}`;
    chain.push(...certs);
  }
  if (origin === undefined) throw new SourceError(`no certificate in ${files.join(", ")}`);
  return { chain, origin };
}
