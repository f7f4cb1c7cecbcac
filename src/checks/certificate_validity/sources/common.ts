/**
 * What every certificate source shares: `SourceError`, a deadline that joins the caller's
 * AbortSignal with a timeout, a bounded file read, and PEM/DER splitting.
 *
 * Sources never parse certificates: they hand over the DER bytes they found (or, for a
 * malformed CERTIFICATE block, the bytes they read) and path validation reports CERT_MALFORMED.
 */
import fs from "node:fs";
import type { FileHandle } from "node:fs/promises";

/**
 * The certificate could not be obtained (file missing, handshake failed, secret absent, timeout).
 * The check maps it to CERT_SOURCE_UNAVAILABLE. `aborted` is set when the caller's signal fired
 * (the agent is stopping), as opposed to a failure or this source's own timeout.
 */
export class SourceError extends Error {
  readonly aborted: boolean;
  constructor(message: string, options: { cause?: unknown; aborted?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SourceError";
    this.aborted = options.aborted ?? false;
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
    if (this.signal.aborted) {
      work.catch(() => {});
      return Promise.reject(this.error());
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(this.error());
      this.signal.addEventListener("abort", onAbort, { once: true });
      work.then(
        (v) => {
          this.signal.removeEventListener("abort", onAbort);
          resolve(v);
        },
        (e: unknown) => {
          this.signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      );
    });
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
      if (st.size > maxBytes) throw new SourceError(`${what} ${path} is ${st.size} bytes, larger than the ${maxBytes} byte limit`);
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
      throw new SourceError(`${what} ${path} is larger than the ${maxBytes} byte limit`);
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new SourceError(`${what} ${path}: ${fsReason(err)}`, { cause: err });
    } finally {
      await fh.close().catch(() => {});
    }
  })();
  return deadline.race(work);
}

const BASE64_BODY = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Splits PEM or DER bytes into certificates (DER), in file order.
 *
 * - PEM: each `CERTIFICATE` block is base64-decoded. A block whose body is not valid base64, or a
 *   `BEGIN CERTIFICATE` without its END line, is returned as the raw bytes of the block, so the
 *   validator reports CERT_MALFORMED instead of the certificate silently vanishing. Other blocks
 *   (private keys, parameters) are never returned.
 * - DER: one certificate, or several concatenated when their outer SEQUENCE lengths tile the
 *   bytes exactly; otherwise the bytes as read.
 *
 * Returns [] for empty input and for PEM without any CERTIFICATE block.
 */
export function certificatesFromBytes(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 0) return [];
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
  if (!text.includes("-----BEGIN ")) return splitDer(bytes);
  // A linear scan (indexOf), not a lazy regex: a file of BEGIN lines without END lines would make
  // the regex rescan to the end for every one of them.
  const out: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const begin = text.indexOf("-----BEGIN ", at);
    if (begin < 0) break;
    const labelEnd = text.indexOf("-----", begin + 11);
    if (labelEnd < 0 || labelEnd - (begin + 11) > 64) break;
    const label = text.slice(begin + 11, labelEnd);
    const endMarker = `-----END ${label}-----`;
    const end = text.indexOf(endMarker, labelEnd + 5);
    if (end < 0) {
      // A certificate without its END line is returned raw, so it is reported as malformed.
      if (label === "CERTIFICATE") out.push(new Uint8Array(Buffer.from(text.slice(begin), "latin1")));
      break;
    }
    at = end + endMarker.length;
    if (label !== "CERTIFICATE") continue;
    const body = text.slice(labelEnd + 5, end).replace(/[\s]+/g, "");
    if (body.length > 0 && body.length % 4 === 0 && BASE64_BODY.test(body)) out.push(new Uint8Array(Buffer.from(body, "base64")));
    else out.push(new Uint8Array(Buffer.from(text.slice(begin, at), "latin1")));
  }
  return out;
}

function splitDer(bytes: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const size = derElementSize(bytes, at);
    if (size === undefined || parts.length >= 64) return [new Uint8Array(bytes)];
    parts.push(new Uint8Array(bytes.subarray(at, at + size)));
    at += size;
  }
  return parts;
}

/** Total size (header + content) of the SEQUENCE starting at `at`, when it fits in `bytes`. */
function derElementSize(bytes: Uint8Array, at: number): number | undefined {
  if (bytes[at] !== 0x30 || at + 2 > bytes.length) return undefined;
  const first = bytes[at + 1]!;
  let len: number;
  let header: number;
  if (first < 0x80) {
    len = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || at + 2 + n > bytes.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[at + 2 + i]!;
    header = 2 + n;
  }
  return at + header + len <= bytes.length ? header + len : undefined;
}
