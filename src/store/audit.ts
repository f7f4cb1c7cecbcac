import { createHash, createHmac, hash as oneShotHash, timingSafeEqual } from "node:crypto";
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { scrub } from "../util/redact.ts";
import { canonicalJSON, canonicalJSONWith } from "../util/canonical-json.ts";
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

/**
 * The secret that keys the chain. A keyed line carries `key_id` (which key, never the key) and its
 * `hash` is HMAC-SHA256 under the key, so only a holder of the key can write a line that verifies:
 * a rewrite of the file (and of the head recorded in the database) by someone who can only reach
 * `data_dir` no longer passes `vigil audit verify`. The key lives outside `data_dir`.
 */
export interface AuditKey {
  readonly secret: Buffer;
  /** First 16 hex digits of sha256 over a fixed label and the key: names the key without revealing it. */
  readonly id: string;
  /** HMAC-SHA256 of `text` under the key, hex. */
  mac(text: string): string;
}

/** Builds an `AuditKey` from key material (at least 32 bytes). */
export function auditKey(secret: string | Buffer): AuditKey {
  const bytes = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (bytes.length < 32) throw new VigilError("VIGIL_ERR_CONFIG_INVALID", "the audit key must be at least 32 bytes");
  // HMAC (RFC 2104) written out with one-shot hashes: H((K ^ opad) || H((K ^ ipad) || text)). Every
  // line of a first pass is MACed, and two one-shot calls cost a third less than copying prepared
  // hash states (~2 against ~3 µs a line; a fresh createHmac per line took ~12 µs).
  const block = Buffer.alloc(64);
  (bytes.length > 64 ? createHash("sha256").update(bytes).digest() : bytes).copy(block);
  const ipad = Buffer.from(block.map((b) => b ^ 0x36));
  // The inner input (ipad, then the text) and the outer one (opad, then the inner digest), reused
  // from line to line as mac() is synchronous: no buffer is allocated per line.
  let inner = Buffer.allocUnsafe(4096);
  ipad.copy(inner);
  const outer = Buffer.alloc(96);
  Buffer.from(block.map((b) => b ^ 0x5c)).copy(outer);
  return {
    secret: bytes,
    id: createHash("sha256").update("vigil audit key id\n").update(bytes).digest("hex").slice(0, 16),
    mac: (text) => {
      // A UTF-16 code unit takes at most 3 bytes in UTF-8. A line too long for the kept buffer gets
      // one of its own, kept for the next lines when it is not outsized.
      const need = 64 + text.length * 3;
      let input = inner;
      if (need > input.length) {
        input = Buffer.allocUnsafe(need);
        ipad.copy(input);
        if (need <= 65_536) inner = input;
      }
      const n = input.write(text, 64, "utf8");
      oneShotHash("sha256", input.subarray(0, 64 + n), "buffer").copy(outer, 64);
      return oneShotHash("sha256", outer, "hex");
    },
  };
}

/** `hash` of a line: HMAC-SHA256 under the key for keyed lines, plain sha256 for lines written without a key. */
function chainHash(key: AuditKey | undefined, prev: string, canon: string): string {
  const text = `${prev}\n${canon}`;
  return key ? key.mac(text) : oneShotHash("sha256", text);
}

/** sha256 hex of `prev + "\n" + canonicalJSON(entry without hash)` (HMAC-SHA256 under `key` for keyed lines). */
export function entryHash(entry: Readonly<Record<string, unknown>>, key?: AuditKey): string {
  const { hash: _hash, ...rest } = entry;
  return chainHash(key, String(entry["prev"]), canonicalJSON(rest));
}

/** A checkpoint of the chain head as shipped off the host (syslog or HTTP). */
export interface AuditCheckpoint {
  readonly type: "vigil_audit_checkpoint";
  readonly seq: number;
  readonly hash: string;
  readonly ts: string;
  readonly host: string;
  readonly data_dir: string;
  readonly key_id: string;
  /** HMAC-SHA256 under the audit key over the canonical JSON of the other fields. */
  readonly mac: string;
}

/** Signs a checkpoint of `head`. */
export function signCheckpoint(key: AuditKey, head: AuditHead, at: { ts: string; host: string; data_dir: string }): AuditCheckpoint {
  const body = { type: "vigil_audit_checkpoint" as const, seq: head.seq, hash: head.hash, ts: at.ts, host: at.host, data_dir: at.data_dir, key_id: key.id };
  return { ...body, mac: createHmac("sha256", key.secret).update(canonicalJSON(body)).digest("hex") };
}

/** The checkpoint's (seq, hash) when its MAC verifies under `key`; otherwise why not. */
export function openCheckpoint(key: AuditKey, raw: unknown): { ok: true; head: AuditHead } | { ok: false; reason: string } {
  if (raw === null || typeof raw !== "object") return { ok: false, reason: "not a JSON object" };
  const { mac, ...body } = raw as Record<string, unknown>;
  if (body["type"] !== "vigil_audit_checkpoint") return { ok: false, reason: "not a vigil_audit_checkpoint" };
  if (body["key_id"] !== key.id) return { ok: false, reason: `signed with key id ${String(body["key_id"])}, not ${key.id}` };
  if (typeof mac !== "string" || !safeEqualHex(createHmac("sha256", key.secret).update(canonicalJSON(body)).digest("hex"), mac)) return { ok: false, reason: "its signature does not verify" };
  if (!Number.isSafeInteger(body["seq"]) || typeof body["hash"] !== "string") return { ok: false, reason: "no seq or hash" };
  return { ok: true, head: { seq: body["seq"] as number, hash: body["hash"] } };
}

/**
 * Chains events onto `head`: each line is the event plus `seq`, `ts`, `prev` (and `key_id` when
 * keyed) in canonical JSON, with its `hash` appended. Pure, so every store writes the same lines.
 * Returns the entries, the lines (without newline) and the new head.
 */
export function chainEvents(events: readonly AuditEvent[], head: AuditHead, key: AuditKey | undefined, now: number): { entries: AuditEntry[]; lines: string[]; head: AuditHead } {
  const ts = new Date(now).toISOString();
  let seq = head.seq;
  let prev = head.hash;
  const entries: AuditEntry[] = [];
  const lines: string[] = [];
  for (const event of events) {
    seq += 1;
    // Serialise once: the hash covers exactly these canonical bytes, and the line is the same
    // text with the hash appended (readers parse it, so key order on the line does not matter).
    // Secrets never reach the log: registered secret values are scrubbed from the canonical text
    // (inside JSON strings, so it stays valid JSON and re-canonicalises to the same bytes).
    const chain = key ? { key_id: key.id, seq, ts, prev } : { seq, ts, prev };
    const raw = canonicalJSONWith(event, chain);
    const canon = scrub(raw);
    const hash = chainHash(key, prev, canon);
    lines.push(`${canon.slice(0, -1)},"hash":"${hash}"}`);
    entries.push((canon === raw ? { ...event, ...chain, hash } : { ...(JSON.parse(canon) as AuditEvent), hash }) as AuditEntry);
    prev = hash;
  }
  return { entries, lines, head: { seq, hash: prev } };
}

/** Where an appended line sits in the file, for the audit index. */
export interface AuditLineRef {
  readonly seq: number;
  readonly offset: number;
  readonly length: number;
  readonly type: string;
  readonly subject: string | null;
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
  readonly #key: AuditKey | undefined;
  #fd: number | undefined;
  #seq = 0;
  #hash = GENESIS_HASH;
  /** Bytes of whole lines in the file: a failed write is cut back to this. */
  #size = 0;
  #lastKeyId: string | null = null;

  /** Without `key` the chain is plain sha256 (tests, tools); the agent always keys it. */
  constructor(path: string, options: { clock?: Clock; key?: AuditKey } = {}) {
    this.#path = path;
    this.#clock = options.clock ?? systemClock;
    this.#key = options.key;
  }

  get key(): AuditKey | undefined {
    return this.#key;
  }

  /** `key_id` of the last line (null: written without a key; undefined: empty log). */
  get lastKeyId(): string | null | undefined {
    return this.#seq === 0 ? undefined : this.#lastKeyId;
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
      let keyId: string | null = null;
      let end = size;
      if (size > 0) {
        const rfd = openSync(this.#path, "r");
        try {
          const last = Buffer.alloc(1);
          readFully(rfd, last, size - 1);
          if (last[0] !== NEWLINE) {
            writeAll(fd, Buffer.from("\n"));
            end += 1;
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
          keyId = typeof found["key_id"] === "string" ? found["key_id"] : null;
        } finally {
          closeSync(rfd);
        }
      }
      this.#fd = fd;
      this.#seq = seq;
      this.#hash = hash;
      this.#size = end;
      this.#lastKeyId = keyId;
      return { head: this.head, repairedTail };
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      if (err instanceof VigilError) throw err;
      throw new VigilError("VIGIL_ERR_STORE", `cannot open the audit log ${this.#path}: ${errorMessage(err)}`, { cause: err, details: { path: this.#path } });
    }
  }

  /** Chains and writes the events with a single write; returns the entries as written. */
  append(events: readonly AuditEvent[]): AuditEntry[] {
    return this.appendWithRefs(events).entries;
  }

  /** As `append`, also telling where each line landed (for the audit index). */
  appendWithRefs(events: readonly AuditEvent[]): { entries: AuditEntry[]; refs: AuditLineRef[] } {
    if (this.#fd === undefined) throw new VigilError("VIGIL_ERR_STORE", `the audit log ${this.#path} is not open`);
    if (events.length === 0) return { entries: [], refs: [] };
    const key = this.#key;
    const { entries, lines, head } = chainEvents(events, this.head, key, this.#clock.now());
    const { seq, hash: prev } = head;
    const refs: AuditLineRef[] = [];
    let offset = this.#size;
    for (const [i, line] of lines.entries()) {
      const entry = entries[i]!;
      const length = Buffer.byteLength(line, "utf8") + 1;
      const subject = entry["subject"];
      refs.push({ seq: entry.seq, offset, length, type: entry.type, subject: typeof subject === "string" ? subject : null });
      offset += length;
    }
    const buf = Buffer.from(lines.join("\n") + "\n", "utf8");
    try {
      writeAll(this.#fd, buf);
    } catch (err) {
      // A full disk can leave part of the batch in the file. Cut it back to the last whole line, so
      // the next append continues a clean chain instead of writing after a torn line.
      try {
        ftruncateSync(this.#fd, this.#size);
      } catch {
        // The torn bytes stay; open() terminates a torn line and verify reports it.
      }
      throw new VigilError("VIGIL_ERR_STORE", `cannot append to the audit log ${this.#path}: ${errorMessage(err)}`, { cause: err });
    }
    this.#size += buf.length;
    this.#seq = seq;
    this.#hash = prev;
    this.#lastKeyId = key ? key.id : null;
    return { entries, refs };
  }

  /** Reads the line at a known place (from the audit index); undefined when it is not a well-formed entry. */
  readAt(offset: number, length: number): AuditEntry | undefined {
    const rfd = openSync(this.#path, "r");
    try {
      const buf = Buffer.alloc(length);
      readFully(rfd, buf, offset);
      return parseEntry(buf.toString("utf8").replace(/\n$/, ""));
    } finally {
      closeSync(rfd);
    }
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

/** What `verifyAudit` checked and found. */
export interface AuditReport extends AuditVerification {
  /** Lines whose HMAC was checked under the key. */
  readonly keyed: number;
  /** Lines written without a key (before the log was keyed); vouched for by a keyed `audit_keyed` entry or reported. */
  readonly unkeyed: number;
  /** Id of the key verified with, or null. */
  readonly key_id: string | null;
  /** Last entry of the file. */
  readonly file_head: AuditHead;
  /** Entries past the recorded head that verify under the key: the head write after them failed (a full disk), nothing more. */
  readonly past_head: number;
  /** External checkpoints compared with the log, and how many matched. */
  readonly checkpoints: { readonly checked: number; readonly matched: number };
  /** What was checked, in words, for the operator. */
  readonly checked: readonly string[];
}

export interface VerifyOptions {
  /** The head recorded outside the file (the state database). */
  readonly head?: AuditHead | undefined;
  /** Verify keyed lines' HMACs; without it, keyed lines are reported as unverifiable. */
  readonly key?: AuditKey | undefined;
  /** (seq, hash) pairs anchored outside the host (the checkpoint sink); each must be in the log. */
  readonly checkpoints?: readonly AuditHead[];
}

/**
 * Checks the whole chain, reading line by line: every line well-formed and written in canonical JSON
 * (so no duplicate key can show one reader one value and another reader another), `hash` matching its
 * content (an HMAC under the key for keyed lines), `seq` increasing by one and `prev` equal to the
 * previous line's hash. With a recorded head, also that the file ends exactly there, which catches a
 * truncated tail; with checkpoints, that each anchored (seq, hash) is in the log.
 */
export function verifyAudit(path: string, options: VerifyOptions = {}): AuditReport {
  return verifyAuditLines(forwardLines(path), path, options);
}

/** One line of an audit log as `verifyAuditLines` reads it: its text, 1-based number, and whether a newline ended it. */
export interface AuditLineText {
  readonly text: string;
  readonly line: number;
  readonly terminated: boolean;
}

/**
 * `verifyAudit` over lines from anywhere (the file, or the lines cluster mode keeps in Redis). A
 * missing source (`ENOENT` thrown by the iterator) reads as an empty log; any other read error is a
 * problem naming `label`.
 */
export function verifyAuditLines(lines: Iterable<AuditLineText>, label: string, options: VerifyOptions = {}): AuditReport {
  const v = auditVerifier(label, options);
  try {
    for (const l of lines) v.line(l);
  } catch (err) {
    v.fail(err);
  }
  return v.finish();
}

/** Verifies an audit log fed one line at a time (from a source read asynchronously, such as Redis). */
export interface AuditVerifier {
  line(l: AuditLineText): void;
  /** Reading the source failed; `ENOENT` reads as the end of an empty log. */
  fail(err: unknown): void;
  finish(): AuditReport;
}

export function auditVerifier(label: string, options: VerifyOptions = {}): AuditVerifier {
  const g = verifyLines(label, options);
  g.next();
  let report: AuditReport | undefined;
  const feed = (item: AuditLineText | { error: unknown } | undefined) => {
    if (report) return;
    const r = g.next(item);
    if (r.done) report = r.value;
  };
  return {
    line: (l) => feed(l),
    fail: (error) => feed({ error }),
    finish: () => {
      feed(undefined);
      return report!;
    },
  };
}

/** The verification itself: takes lines through `yield` until it gets undefined (the end) or an error. */
function* verifyLines(label: string, options: VerifyOptions): Generator<undefined, AuditReport, AuditLineText | { error: unknown } | undefined> {
  const { head: expectedHead, key } = options;
  const problems: { line: number; problem: string }[] = [];
  const anchors = new Map<number, string>();
  for (const c of options.checkpoints ?? []) anchors.set(c.seq, c.hash);
  let matched = 0;
  let entries = 0;
  let keyed = 0;
  let unkeyed = 0;
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;
  let lastLine = 0;
  let resync = false;
  let headHash: string | undefined;
  let pastHead = 0;
  let pastHeadBad = false;
  /** Unkeyed lines not yet vouched for by a keyed `audit_keyed` entry: first line number and count. */
  let loose: { line: number; count: number } | undefined;
  let seenKeyed = false;
  for (;;) {
    const item = yield;
    if (item === undefined) break;
    if ("error" in item) {
      if ((item.error as NodeJS.ErrnoException).code !== "ENOENT") problems.push({ line: lastLine, problem: `cannot read ${label}: ${errorMessage(item.error)}` });
      break;
    }
    {
      const { text, line, terminated } = item;
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
        if (expectedHead && lastSeq >= expectedHead.seq) pastHeadBad = true;
        continue;
      }
      entries += 1;
      const before = problems.length;
      const { hash: _hash, ...rest } = entry as unknown as Record<string, unknown>;
      const canon = canonicalJSON(rest);
      if (text !== `${canon.slice(0, -1)},"hash":"${entry.hash}"}`) {
        const dup = duplicateKey(text);
        problems.push({
          line,
          problem: dup !== undefined ? `duplicate key "${dup}": readers would disagree on its value` : "not in the canonical form vigil writes (keys reordered, whitespace or escapes changed)",
        });
      }
      const keyId = entry["key_id"];
      if (typeof keyId === "string") {
        if (loose && !(entry.type === "audit_keyed" && vouches(entry, lastSeq, lastHash))) {
          problems.push({ line: loose.line, problem: `${loose.count} unkeyed line(s) from line ${loose.line} on are not vouched for by a keyed audit_keyed entry: forged, or written without the key` });
        }
        loose = undefined;
        seenKeyed = true;
        if (!key) problems.push({ line, problem: `seq ${entry.seq} is keyed (key id ${keyId}) but no audit key was given to verify it` });
        else if (keyId !== key.id) problems.push({ line, problem: `seq ${entry.seq} was written with key id ${keyId}, not the configured key ${key.id}` });
        else {
          keyed += 1;
          if (!safeEqualHex(chainHash(key, entry.prev, canon), entry.hash)) problems.push({ line, problem: `hash mismatch: seq ${entry.seq} was changed after it was written (its HMAC does not verify)` });
        }
      } else {
        unkeyed += 1;
        if (chainHash(undefined, entry.prev, canon) !== entry.hash) problems.push({ line, problem: `hash mismatch: seq ${entry.seq} was changed after it was written` });
        if (key) {
          if (seenKeyed) problems.push({ line, problem: `seq ${entry.seq} is not keyed but follows keyed lines: written without the key` });
          else loose = loose ? { line: loose.line, count: loose.count + 1 } : { line, count: 1 };
        }
      }
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
      if (expectedHead && entry.seq > expectedHead.seq) {
        pastHead += 1;
        if (problems.length > before || typeof keyId !== "string" || !key) pastHeadBad = true;
      }
      const anchored = anchors.get(entry.seq);
      if (anchored !== undefined) {
        if (anchored === entry.hash) matched += 1;
        else problems.push({ line, problem: `seq ${entry.seq} differs from the external checkpoint: the log was rewritten` });
      }
      lastSeq = entry.seq;
      lastHash = entry.hash;
    }
  }
  if (loose) problems.push({ line: loose.line, problem: `${loose.count} unkeyed line(s) from line ${loose.line} on and no keyed line: forged, or written without the key` });
  let explainedPastHead = 0;
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
      if (pastHeadBad) {
        problems.push({
          line: lastLine,
          problem: `the log continues past the recorded head seq ${expectedHead.seq} to seq ${lastSeq}: lines were appended outside vigil, or vigil stopped between writing the log and recording its head`,
        });
      } else explainedPastHead = pastHead;
    }
  }
  for (const [seq] of anchors) {
    if (seq > lastSeq) problems.push({ line: lastLine, problem: `the external checkpoint at seq ${seq} is past the end of the log (seq ${lastSeq}): the tail was truncated` });
  }
  const checked = [
    "every line is a well-formed entry in canonical JSON (no duplicate keys)",
    "seq increases by one and prev links each line to the one before",
    key ? `the HMAC-SHA256 of every keyed line under key id ${key.id}` : "sha256 hashes only (no audit key given: keyed lines cannot be checked)",
    ...(unkeyed > 0 && key ? [`${unkeyed} line(s) written before the log was keyed, vouched for by a keyed audit_keyed entry`] : []),
    expectedHead ? `the log ends at the head recorded in the state database (seq ${expectedHead.seq})` : "no recorded head to compare the end of the log with",
    ...(explainedPastHead > 0 ? [`${explainedPastHead} keyed entry(ies) past the recorded head verify under the key (a failed head write; the agent records it at its next start)`] : []),
    ...(anchors.size > 0 ? [`${anchors.size} external checkpoint(s)`] : []),
  ];
  return {
    ok: problems.length === 0,
    entries,
    problems,
    keyed,
    unkeyed,
    key_id: key?.id ?? null,
    file_head: { seq: lastSeq, hash: lastHash },
    past_head: explainedPastHead,
    checkpoints: { checked: anchors.size, matched },
    checked,
  };
}

/**
 * `verifyAudit` in its original shape: the chain, and with `expectedHead` (recorded outside the file)
 * also that the file ends exactly at that entry, which catches a truncated tail.
 */
export function verifyAuditFile(path: string, expectedHead?: AuditHead, key?: AuditKey): AuditVerification {
  const r = verifyAudit(path, { head: expectedHead, key });
  return { ok: r.ok, entries: r.entries, problems: r.problems };
}

/**
 * Checks the lines after `from` (the recorded head) the way `open` must before adopting them: each
 * well-formed, canonical, chained from `from`, and keyed under `key` (plain sha256 without a key).
 * Returns their refs for the index, or a reason they are not explained.
 */
export function verifyTail(path: string, from: AuditHead, key: AuditKey | undefined, startOffset = 0): { ok: true; refs: AuditLineRef[] } | { ok: false; reason: string; count: number } {
  const refs: AuditLineRef[] = [];
  let prev = from.hash;
  let seq = from.seq;
  let count = 0;
  let bad: string | undefined;
  for (const { text, offset, length } of linesWithOffsets(path, startOffset)) {
    if (text === "") continue;
    const entry = parseEntry(text);
    if (entry && entry.seq <= from.seq && bad === undefined) continue;
    count += 1;
    if (bad !== undefined) continue;
    if (!entry) {
      bad = "a malformed line";
      continue;
    }
    const { hash: _hash, ...rest } = entry as unknown as Record<string, unknown>;
    const canon = canonicalJSON(rest);
    const keyId = entry["key_id"];
    if (text !== `${canon.slice(0, -1)},"hash":"${entry.hash}"}`) bad = `seq ${entry.seq} is not in canonical form`;
    else if (entry.seq !== seq + 1 || entry.prev !== prev) bad = `seq ${entry.seq} does not continue the chain from seq ${seq}`;
    else if (key && keyId !== key.id) bad = `seq ${entry.seq} is not keyed with the configured key`;
    else if (!key && keyId !== undefined) bad = `seq ${entry.seq} is keyed but no key was given`;
    else if (!safeEqualHex(chainHash(key, entry.prev, canon), entry.hash)) bad = `seq ${entry.seq} does not verify`;
    else {
      const subject = entry["subject"];
      refs.push({ seq: entry.seq, offset, length, type: entry.type, subject: typeof subject === "string" ? subject : null });
      seq = entry.seq;
      prev = entry.hash;
    }
  }
  return bad === undefined ? { ok: true, refs } : { ok: false, reason: bad, count };
}

/** Index refs of every well-formed line from `startOffset` (catching the audit index up with the file). */
export function lineRefs(path: string, startOffset = 0): AuditLineRef[] {
  const refs: AuditLineRef[] = [];
  for (const { text, offset, length } of linesWithOffsets(path, startOffset)) {
    const entry = text === "" ? undefined : parseEntry(text);
    if (!entry) continue;
    const subject = entry["subject"];
    refs.push({ seq: entry.seq, offset, length, type: entry.type, subject: typeof subject === "string" ? subject : null });
  }
  return refs;
}

/** Byte offset just past the line holding `seq` (where lines past it begin), or undefined. */
export function offsetAfter(path: string, seq: number): number | undefined {
  for (const { text, offset, length } of linesWithOffsets(path, 0)) {
    const entry = text === "" ? undefined : parseEntry(text);
    if (entry?.seq === seq) return offset + length;
  }
  return seq === 0 ? 0 : undefined;
}

function vouches(entry: AuditEntry, lastSeq: number, lastHash: string): boolean {
  const legacy = entry["legacy_head"] as { seq?: unknown; hash?: unknown } | undefined;
  return !!legacy && legacy.seq === lastSeq && legacy.hash === lastHash;
}

function safeEqualHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The first key that appears twice in one object of a JSON text (which JSON.parse would silently collapse). */
export function duplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = stack[stack.length - 1];
        if (keys?.has(key)) return key;
        keys?.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{") {
      stack.push(new Set());
      expectKey = true;
    } else if (c === "[") stack.push(null);
    else if (c === "}" || c === "]") {
      stack.pop();
      expectKey = false;
    } else if (c === ",") expectKey = stack[stack.length - 1] != null;
  }
  return undefined;
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

/** Lines from `startOffset` with their byte offset and length (newline included). */
function* linesWithOffsets(path: string, startOffset: number): Generator<{ text: string; offset: number; length: number }> {
  const fd = openSync(path, "r");
  try {
    const chunk = Buffer.alloc(CHUNK);
    let pending: Buffer[] = [];
    let pendingLength = 0;
    let lineStart = startOffset;
    let position = startOffset;
    for (;;) {
      const n = readSync(fd, chunk, 0, CHUNK, position);
      if (n === 0) break;
      position += n;
      let start = 0;
      let idx = chunk.indexOf(NEWLINE, 0);
      while (idx !== -1 && idx < n) {
        const piece = chunk.subarray(start, idx);
        const text = pending.length > 0 ? Buffer.concat([...pending, piece]).toString("utf8") : piece.toString("utf8");
        const length = pendingLength + piece.length + 1;
        pending = [];
        pendingLength = 0;
        yield { text, offset: lineStart, length };
        lineStart += length;
        start = idx + 1;
        idx = chunk.indexOf(NEWLINE, start);
      }
      if (start < n) {
        pending.push(Buffer.from(chunk.subarray(start, n)));
        pendingLength += n - start;
      }
    }
    if (pending.length > 0) yield { text: Buffer.concat(pending).toString("utf8"), offset: lineStart, length: pendingLength };
  } finally {
    closeSync(fd);
  }
}
