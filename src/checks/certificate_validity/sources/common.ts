/**
 * What every certificate source shares: `SourceError`, a deadline that joins the caller's
 * AbortSignal with a timeout, a bounded file read, and PEM/DER splitting (the shared reader's
 * lenient form, src/plugin/x509/pem.ts).
 *
 * Sources never parse certificates: they hand over the DER bytes they found (or, for a
 * malformed CERTIFICATE block, the bytes they read) and path validation reports CERT_MALFORMED.
 */
import fs from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { raceAbort } from "../../../util/abort.ts";

export { certificatesFromBytes } from "../../../plugin/x509/pem.ts";

/**
 * The certificate could not be obtained (file missing, handshake failed, secret absent, timeout).
 * The check maps it to CERT_SOURCE_UNAVAILABLE. `aborted` is set when the caller's signal fired
 * (the agent is stopping), as opposed to a failure or this source's own timeout.
 */
export class SourceError extends Error {
  readonly aborted: boolean;
  /** What was read cannot be a certificate (a file past the size limit): the check says CERT_MALFORMED. */
  readonly malformed: boolean;
  constructor(message: string, options: { cause?: unknown; aborted?: boolean; malformed?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SourceError";
    this.aborted = options.aborted ?? false;
    this.malformed = options.malformed ?? false;
  }
}

export function errorText(err: unknown): string {
  const { code, reason } = (err ?? {}) as { code?: unknown; reason?: unknown };
  // OpenSSL errors carry a short `reason` ("tlsv13 alert certificate required") beside a long message.
  if (typeof code === "string" && typeof reason === "string" && reason !== "") return `${code} (${reason})`;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === "string" && !code.startsWith("VIGIL_") && !message.includes(code) ? `${code} ${message}` : message;
}

/** The caller's signal joined with a timeout; `error()` says which of the two fired. */
export class Deadline {
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly #caller: AbortSignal | undefined;
  readonly #what: string;
  readonly #start = performance.now();

  constructor(caller: AbortSignal | undefined, timeoutMs: number, what: string) {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new SourceError(`${what}: timeout must be a positive number of milliseconds, got ${timeoutMs}`);
    const timeout = AbortSignal.timeout(timeoutMs);
    this.signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    this.timeoutMs = timeoutMs;
    this.#caller = caller;
    this.#what = what;
  }

  /** Milliseconds left before the timeout (never below 0). */
  remaining(): number {
    return Math.max(0, this.timeoutMs - (performance.now() - this.#start));
  }

  error(): SourceError {
    if (this.#caller?.aborted) return new SourceError(`${this.#what}: aborted`, { cause: this.#caller.reason, aborted: true });
    return new SourceError(`${this.#what}: timed out after ${this.timeoutMs} ms`);
  }

  check(): void {
    if (this.signal.aborted) throw this.error();
  }

  /** Settles with `work`, or rejects with `error()` as soon as the deadline fires (the work is then left to finish on its own). */
  race<T>(work: Promise<T>): Promise<T> {
    return raceAbort(work, this.signal, () => this.error());
  }
}

function fsReason(err: unknown): string {
  switch ((err as { code?: unknown } | null)?.code) {
    case "ENOENT":
      return "not found";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    case "ENOTDIR":
      return "a path component is not a directory";
    case "ELOOP":
      return "too many symbolic links";
    default:
      return errorText(err);
  }
}

// O_NONBLOCK: opening a FIFO must not hang a libuv thread; the handle is then checked to be a regular file.
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/**
 * Reads a regular file of at most `maxBytes`. Anything else (missing, unreadable, a directory, a
 * device, a FIFO, too large) is a SourceError whose message starts with `what path`.
 */
export async function readFileCapped(path: string, maxBytes: number, deadline: Deadline, what: string): Promise<Buffer> {
  deadline.check();
  const work = (async () => {
    let fh: FileHandle;
    try {
      fh = await fs.promises.open(path, OPEN_FLAGS);
    } catch (err) {
      throw new SourceError(`${what} ${path}: ${fsReason(err)}`, { cause: err });
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new SourceError(`${what} ${path} is not a regular file`);
      if (st.size > maxBytes) throw new SourceError(`${what} ${path} is ${st.size} bytes, larger than the ${maxBytes} byte limit`, { malformed: true });
      // Read up to one byte past the cap: a file growing after stat (or lying about its size) is caught too.
      let buf = Buffer.alloc(Math.min(maxBytes + 1, Math.max(st.size + 1, 4096)));
      let used = 0;
      for (;;) {
        if (deadline.signal.aborted) throw deadline.error();
        if (used === buf.length) {
          if (buf.length > maxBytes) break;
          const bigger = Buffer.alloc(Math.min(maxBytes + 1, buf.length * 2));
          buf.copy(bigger, 0, 0, used);
          buf = bigger;
        }
        const { bytesRead } = await fh.read(buf, used, buf.length - used, null);
        if (bytesRead === 0) return buf.subarray(0, used);
        used += bytesRead;
      }
      throw new SourceError(`${what} ${path} is larger than the ${maxBytes} byte limit`, { malformed: true });
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new SourceError(`${what} ${path}: ${fsReason(err)}`, { cause: err });
    } finally {
      await fh.close().catch(() => {});
    }
  })();
  return deadline.race(work);
}
