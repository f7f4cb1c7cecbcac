import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { scrub } from "../util/redact.ts";
import { canonicalJSON } from "../util/canonical-json.ts";
import { VigilError, errorMessage } from "../errors.ts";
import { systemClock, type Clock } from "../util/clock.ts";
import type { AuditEntry, AuditEvent, AuditQuery } from "./contract.ts";

/** `prev` of the first line. */
export const GENESIS_HASH = "0".repeat(64);

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;
const HASH_RE = /^[0-9a-f]{64}$/;

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

/** sha256 hex of `prev + "\n" + canonicalJSON(entry without hash)`. */
export function entryHash(entry: Readonly<Record<string, unknown>>): string {
  const { hash: _hash, ...rest } = entry;
  return createHash("sha256").update(`${String(entry["prev"])}\n${canonicalJSON(rest)}`).digest("hex");
}

/**
 * The hash-chained, append-only audit log (`audit.jsonl`). Each line is the event plus `seq`, `ts`,
 * `prev` (hash of the previous line) and `hash`; a line is written in canonical JSON.
 *
 * Writes go straight to the file descriptor (no buffering), so an appended batch survives a process crash.
 */
export class AuditLog {
  readonly #path: string;
  readonly #clock: Clock;
  #fd: number | undefined;
  #seq = 0;
  #hash = GENESIS_HASH;

  constructor(path: string, options: { clock?: Clock } = {}) {
    this.#path = path;
    this.#clock = options.clock ?? systemClock;
  }

  get path(): string {
    return this.#path;
  }

  /** Sequence number and hash of the last line written (seq 0 and the genesis hash for an empty log). */
  get head(): AuditHead {
    return { seq: this.#seq, hash: this.#hash };
  }

  get isOpen(): boolean {
    return this.#fd !== undefined;
  }

  /**
   * Opens the file for appending and recovers the chain head from its last line (reading backwards
   * from the end, not the whole file). A torn last line (a crash mid-write) is terminated and left in
   * place for `verifyAuditFile` to report; the chain continues from the last well-formed line.
   */
  open(): { head: AuditHead; repairedTail: boolean } {
    if (this.#fd !== undefined) return { head: this.head, repairedTail: false };
    let fd: number | undefined;
    let repairedTail = false;
    try {
      fd = openSync(this.#path, "a", 0o600);
      const size = fstatSync(fd).size;
      let seq = 0;
      let hash = GENESIS_HASH;
      if (size > 0) {
        const rfd = openSync(this.#path, "r");
        try {
          const last = Buffer.alloc(1);
          readFully(rfd, last, size - 1);
          if (last[0] !== NEWLINE) {
            writeAll(fd, Buffer.from("\n"));
            repairedTail = true;
          }
          let found: AuditEntry | undefined;
          for (const text of backwardLines(rfd, size)) {
            if (text === "") continue;
            found = parseEntry(text);
            if (found) break;
          }
          if (!found) {
            throw new VigilError("VIGIL_ERR_AUDIT_CORRUPT", `${this.#path} has content but no well-formed audit line to continue the chain from`, {
              details: { path: this.#path },
            });
          }
          seq = found.seq;
          hash = found.hash;
        } finally {
          closeSync(rfd);
        }
      }
      this.#fd = fd;
      this.#seq = seq;
      this.#hash = hash;
      return { head: this.head, repairedTail };
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      if (err instanceof VigilError) throw err;
      throw new VigilError("VIGIL_ERR_STORE", `cannot open the audit log ${this.#path}: ${errorMessage(err)}`, { cause: err, details: { path: this.#path } });
    }
  }

  /** Chains and writes the events with a single write; returns the entries as written. */
  append(events: readonly AuditEvent[]): AuditEntry[] {
    if (this.#fd === undefined) throw new VigilError("VIGIL_ERR_STORE", `the audit log ${this.#path} is not open`);
    if (events.length === 0) return [];
    const ts = new Date(this.#clock.now()).toISOString();
    let seq = this.#seq;
    let prev = this.#hash;
    const entries: AuditEntry[] = [];
    const lines: string[] = [];
    for (const event of events) {
      seq += 1;
      // Serialise once: the hash covers exactly these canonical bytes, and the line is the same
      // text with the hash appended (readers parse it, so key order on the line does not matter).
      // Secrets never reach the log: registered secret values are scrubbed from the canonical text
      // (inside JSON strings, so it stays valid JSON and re-canonicalises to the same bytes).
      const raw = canonicalJSON({ ...event, seq, ts, prev });
      const canon = scrub(raw);
      const hash = createHash("sha256").update(`${prev}\n${canon}`).digest("hex");
      lines.push(`${canon.slice(0, -1)},"hash":"${hash}"}`);
      const body = canon === raw ? { ...event, seq, ts, prev } : (JSON.parse(canon) as AuditEvent);
      entries.push({ ...body, hash } as AuditEntry);
      prev = hash;
    }
    try {
      writeAll(this.#fd, Buffer.from(lines.join("\n") + "\n", "utf8"));
    } catch (err) {
      throw new VigilError("VIGIL_ERR_STORE", `cannot append to the audit log ${this.#path}: ${errorMessage(err)}`, { cause: err });
    }
    this.#seq = seq;
    this.#hash = prev;
    return entries;
  }

  /**
   * Entries matching the query, oldest first. With `after`, the first `limit` entries after that seq
   * (a cursor to page forward); without it, the newest `limit` entries. Reads line by line.
   */
  read(query: AuditQuery = {}): AuditEntry[] {
    const limit = query.limit ?? 100;
    if (limit <= 0) return [];
    const matches = (e: AuditEntry): boolean =>
      (query.type === undefined || e.type === query.type) && (query.subject === undefined || e["subject"] === query.subject);
    const out: AuditEntry[] = [];
    try {
      if (query.after !== undefined) {
        const after = query.after;
        for (const { text } of forwardLines(this.#path)) {
          const e = parseEntry(text);
          if (!e || e.seq <= after || !matches(e)) continue;
          out.push(e);
          if (out.length >= limit) break;
        }
        return out;
      }
      const rfd = openSync(this.#path, "r");
      try {
        for (const text of backwardLines(rfd, fstatSync(rfd).size)) {
          const e = text === "" ? undefined : parseEntry(text);
          if (!e || !matches(e)) continue;
          out.push(e);
          if (out.length >= limit) break;
        }
      } finally {
        closeSync(rfd);
      }
      return out.reverse();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new VigilError("VIGIL_ERR_STORE", `cannot read the audit log ${this.#path}: ${errorMessage(err)}`, { cause: err });
    }
  }

  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    closeSync(fd);
  }
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly entries: number;
  readonly problems: { line: number; problem: string }[];
}

/**
 * Checks the whole chain, reading line by line: every line well-formed, `hash` matching its content,
 * `seq` increasing by one and `prev` equal to the previous line's hash. With `expectedHead` (recorded
 * outside the file), also that the file ends exactly at that entry, which catches a truncated tail.
 */
export function verifyAuditFile(path: string, expectedHead?: AuditHead): AuditVerification {
  const problems: { line: number; problem: string }[] = [];
  let entries = 0;
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;
  let lastLine = 0;
  let resync = false;
  let headHash: string | undefined;
  try {
    for (const { text, line, terminated } of forwardLines(path)) {
      lastLine = line;
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        raw = undefined;
      }
      const entry = raw === undefined ? undefined : asEntry(raw);
      if (!entry) {
        problems.push({ line, problem: terminated ? "malformed line (not a well-formed audit entry)" : "malformed last line without a newline (torn write?)" });
        // The next well-formed line is taken as is, so that one bad line is reported once.
        resync = true;
        continue;
      }
      entries += 1;
      const actual = entryHash(entry as unknown as Record<string, unknown>);
      if (actual !== entry.hash) problems.push({ line, problem: `hash mismatch: seq ${entry.seq} was changed after it was written` });
      if (!resync) {
        if (entry.seq !== lastSeq + 1) {
          problems.push({ line, problem: `seq ${entry.seq} follows seq ${lastSeq} (expected ${lastSeq + 1}): a line was removed, reordered or inserted` });
        }
        if (entry.prev !== lastHash) {
          problems.push({ line, problem: `prev does not match the hash of the previous entry: the chain is broken before seq ${entry.seq}` });
        }
      }
      resync = false;
      if (expectedHead && entry.seq === expectedHead.seq) headHash = entry.hash;
      lastSeq = entry.seq;
      lastHash = entry.hash;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      problems.push({ line: lastLine, problem: `cannot read ${path}: ${errorMessage(err)}` });
    }
  }
  if (expectedHead && expectedHead.seq > 0) {
    if (lastSeq < expectedHead.seq) {
      problems.push({
        line: lastLine,
        problem: `the log ends at seq ${lastSeq} but the recorded head is seq ${expectedHead.seq}: the tail was truncated`,
      });
    } else if (headHash === undefined) {
      problems.push({ line: lastLine, problem: `the recorded head seq ${expectedHead.seq} is not in the log` });
    } else if (headHash !== expectedHead.hash) {
      problems.push({ line: lastLine, problem: `the entry at the recorded head seq ${expectedHead.seq} has a different hash than recorded` });
    } else if (lastSeq > expectedHead.seq) {
      problems.push({
        line: lastLine,
        problem: `the log continues past the recorded head seq ${expectedHead.seq} to seq ${lastSeq}: lines were appended outside vigil, or vigil stopped between writing the log and recording its head`,
      });
    }
  }
  return { ok: problems.length === 0, entries, problems };
}

function parseEntry(text: string): AuditEntry | undefined {
  try {
    return asEntry(JSON.parse(text));
  } catch {
    return undefined;
  }
}

function asEntry(raw: unknown): AuditEntry | undefined {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const e = raw as Record<string, unknown>;
  if (!Number.isSafeInteger(e["seq"]) || (e["seq"] as number) < 1) return undefined;
  if (typeof e["hash"] !== "string" || !HASH_RE.test(e["hash"])) return undefined;
  if (typeof e["prev"] !== "string" || !HASH_RE.test(e["prev"])) return undefined;
  if (typeof e["ts"] !== "string" || typeof e["type"] !== "string") return undefined;
  return raw as AuditEntry;
}

function readFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
}

/** Lines of a file from the start, without their newline, reading in chunks. */
function* forwardLines(path: string): Generator<{ text: string; line: number; terminated: boolean }> {
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.alloc(CHUNK);
    let pending: Buffer[] = [];
    let line = 0;
    let position = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, position);
      if (n === 0) break;
      position += n;
      let start = 0;
      let idx = chunk.indexOf(NEWLINE, 0);
      while (idx !== -1 && idx < n) {
        const piece = chunk.subarray(start, idx);
        const text = pending.length > 0 ? Buffer.concat([...pending, piece]).toString("utf8") : piece.toString("utf8");
        pending = [];
        line += 1;
        yield { text, line, terminated: true };
        start = idx + 1;
        idx = chunk.indexOf(NEWLINE, start);
      }
      if (start < n) pending.push(Buffer.from(chunk.subarray(start, n)));
    }
    if (pending.length > 0) {
      line += 1;
      yield { text: Buffer.concat(pending).toString("utf8"), line, terminated: false };
    }
  } finally {
    closeSync(fd);
  }
}

/** Lines of the first `size` bytes of a file, last first, without their newline (a trailing newline yields ""). */
function* backwardLines(fd: number, size: number): Generator<string> {
  let position = size;
  let carry: Buffer = Buffer.alloc(0);
  while (position > 0) {
    const length = Math.min(CHUNK, position);
    position -= length;
    const chunk = Buffer.alloc(length);
    readFully(fd, chunk, position);
    const buf = carry.length > 0 ? Buffer.concat([chunk, carry]) : chunk;
    let end = buf.length;
    let idx = buf.lastIndexOf(NEWLINE, end - 1);
    while (idx !== -1) {
      yield buf.subarray(idx + 1, end).toString("utf8");
      end = idx;
      idx = idx > 0 ? buf.lastIndexOf(NEWLINE, idx - 1) : -1;
    }
    carry = buf.subarray(0, end);
  }
  if (size > 0) yield carry.toString("utf8");
}
