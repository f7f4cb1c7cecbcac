/** Trust bundles, intermediates and CRL files on disk, for the check and for `vigil cert verify`. */
import { readFile, glob, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { readPemOrDer } from "../../plugin/x509/pem.ts";

/** What fs.glob reads as more than a literal path: wildcards, classes, braces, extglobs, escapes. */
const GLOB_SYNTAX = /[*?[\]{}()!+@\\]/;

/**
 * PEM files named by patterns (globs allowed), re-read only when the set of files or their
 * modification time or size changes: checks run once per batch and policy, and the trust bundle,
 * intermediates and CRLs rotate rarely. `vigil cert verify` reads its --roots, --intermediates and
 * --crl files with the same class, so both read them the same way.
 */
export class PemFiles {
  readonly #patterns: readonly string[];
  readonly #baseDir: string;
  readonly #maxBytes: number | undefined;
  #stamp: string | undefined;
  #ders: Uint8Array[] = [];

  /** `maxBytes`: largest element (CRLs may be larger than certificates). */
  constructor(patterns: readonly string[], baseDir: string, maxBytes?: number) {
    this.#patterns = patterns;
    this.#baseDir = baseDir;
    this.#maxBytes = maxBytes;
  }

  /** The certificates or CRLs (DER), and whether they changed since the last call. */
  async load(): Promise<{ ders: Uint8Array[]; changed: boolean }> {
    const files: string[] = [];
    for (const pattern of this.#patterns) {
      // A plain path names itself whether or not it exists (stat says when not): no need to load
      // and run the glob matcher, which is most of the cost of a small file source.
      if (!GLOB_SYNTAX.test(pattern)) {
        files.push(resolve(this.#baseDir, pattern));
        continue;
      }
      const matched: string[] = [];
      for await (const f of glob(resolve(this.#baseDir, pattern))) matched.push(f);
      files.push(...(matched.length > 0 ? matched.sort() : [resolve(this.#baseDir, pattern)]));
    }
    const stats = await Promise.all(files.map((f) => stat(f)));
    const stamp = files.map((f, i) => `${f}:${stats[i]!.mtimeMs}:${stats[i]!.size}`).join("\n");
    if (stamp === this.#stamp) return { ders: this.#ders, changed: false };
    const ders: Uint8Array[] = [];
    for (const f of files) ders.push(...readPemOrDer(await readFile(f), { maxBytes: this.#maxBytes }));
    this.#ders = ders;
    this.#stamp = stamp;
    return { ders, changed: true };
  }
}
