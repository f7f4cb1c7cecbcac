/**
 * The one PEM/DER reader: certificate files, trust bundles, CRLs, Kubernetes secrets, SVIDs, the
 * Vault action's certificates and `vigil cert` input all go through it.
 *
 * Input is PEM text (blocks with any text around them) or DER (one element, or several
 * concatenated). The scan is linear (indexOf, never a regex that rescans), every element is capped
 * at `MAX_ELEMENT_BYTES`, and the number of elements at `MAX_ELEMENTS`.
 */
import { Buffer } from "node:buffer";
import { asBuffer, DerError, readTlv, TAG } from "./der.ts";

/** Largest certificate or PEM block accepted (DER bytes); a CRL may be larger (see `maxBytes`). */
export const MAX_ELEMENT_BYTES = 1024 * 1024;
/** Most elements one input may hold. */
export const MAX_ELEMENTS = 4096;

export const CERTIFICATE_LABELS: readonly string[] = ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"];
export const CRL_LABELS: readonly string[] = ["X509 CRL"];

/**
 * The input is not a certificate, CRL or bundle of them. Callers map it to CERT_MALFORMED. A kind
 * of DerError: what does not decode is, to every caller, input that is not the DER it should be.
 */
export class CertParseError extends DerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    this.name = "CertParseError";
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

interface Block {
  readonly label: string;
  /** The text between the BEGIN and END lines; undefined when the END line is missing. */
  readonly body: string | undefined;
  /** The block's text, BEGIN to END (or to the end of input). */
  readonly text: string;
}

/** PEM blocks in order; a BEGIN without its END is the last block (its body undefined). */
function scan(text: string): { blocks: Block[]; sawBegin: boolean } {
  const blocks: Block[] = [];
  let at = 0;
  let sawBegin = false;
  for (;;) {
    const begin = text.indexOf("-----BEGIN ", at);
    if (begin < 0) break;
    const labelEnd = text.indexOf("-----", begin + 11);
    if (labelEnd < 0 || labelEnd - (begin + 11) > 64) break;
    sawBegin = true;
    const label = text.slice(begin + 11, labelEnd);
    const endMarker = `-----END ${label}-----`;
    const end = text.indexOf(endMarker, labelEnd + 5);
    if (end < 0) {
      blocks.push({ label, body: undefined, text: text.slice(begin) });
      break;
    }
    at = end + endMarker.length;
    blocks.push({ label, body: text.slice(labelEnd + 5, end), text: text.slice(begin, at) });
    if (blocks.length > MAX_ELEMENTS) throw new CertParseError(`more than ${MAX_ELEMENTS} PEM blocks`);
  }
  return { blocks, sawBegin };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** One block's DER, or why it has none. `verbatim` skips the check that the body is one DER element. */
function decodeBlock(b: Block, maxBytes: number, verbatim = false): { der: Buffer } | { error: string } {
  if (b.body === undefined) return { error: `truncated PEM: "-----BEGIN ${b.label}-----" has no END line` };
  if (b.body.length > maxBytes * 1.4 + 4096) return { error: `PEM block ${b.label} exceeds ${maxBytes} bytes` };
  if (b.body.includes(":")) return { error: `PEM block ${b.label} carries headers (encrypted?)` };
  const b64 = b.body.replace(/[\r\n\t ]+/g, "");
  const der = Buffer.from(b64, "base64");
  // The decoder skips what is not base64 (and takes the URL alphabet's - and _): output shorter than
  // the text implies means there was some, without a regular expression over the whole body.
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  if (b64.length % 4 !== 0 || der.length !== (b64.length / 4) * 3 - pad || b64.includes("-") || b64.includes("_") || (pad && !BASE64.test(b64.slice(-4)))) {
    return { error: `PEM block ${b.label} is not valid base64` };
  }
  if (der.length === 0) return { error: `PEM block ${b.label} is empty` };
  if (der.length > maxBytes) return { error: `PEM block ${b.label} exceeds ${maxBytes} bytes` };
  if (verbatim) return { der };
  try {
    const t = readTlv(der, 0);
    if (t.tag !== TAG.SEQUENCE) return { error: `PEM block ${b.label}: not a DER SEQUENCE` };
    // OpenSSL's TRUSTED CERTIFICATE appends its auxiliary trust data after the certificate.
    if (t.end !== der.length && b.label !== "TRUSTED CERTIFICATE") return { error: `PEM block ${b.label}: trailing data after the DER element` };
    return { der: der.subarray(0, t.end) };
  } catch (err) {
    return { error: `PEM block ${b.label}: ${(err as Error).message}` };
  }
}

/** Concatenated DER elements, each a SEQUENCE of at most `maxBytes`. Throws DerError. */
function splitDer(buf: Buffer, maxBytes: number): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const t = readTlv(buf, pos);
    if (t.tag !== TAG.SEQUENCE) throw new DerError(`element at offset ${pos} is not a SEQUENCE`);
    if (t.end - t.start > maxBytes) throw new DerError(`element at offset ${pos} exceeds ${maxBytes} bytes`);
    if (out.length >= MAX_ELEMENTS) throw new DerError(`more than ${MAX_ELEMENTS} elements`);
    out.push(buf.subarray(t.start, t.end));
    pos = t.end;
  }
  return out;
}

const looksLikeDer = (buf: Buffer) => buf.length > 0 && buf[0] === 0x30;

export interface ReadOptions {
  /** PEM labels to keep; other blocks (keys, parameters) are skipped. Default certificates and CRLs. */
  readonly labels?: readonly string[];
  /** Largest element (DER bytes). Default 1 MiB. */
  readonly maxBytes?: number;
  /** PEM bodies as decoded, without requiring each to be one DER element (fingerprints of what was sent). */
  readonly verbatim?: boolean;
}

/**
 * PEM or DER → DER list, strictly: throws CertParseError when nothing usable is found, a wanted
 * block is truncated, not base64, empty, oversized, or not one DER element.
 */
export function readPemOrDer(input: Uint8Array | string, options: ReadOptions = {}): Uint8Array[] {
  const labels = options.labels ?? [...CERTIFICATE_LABELS, ...CRL_LABELS];
  const maxBytes = options.maxBytes ?? MAX_ELEMENT_BYTES;
  let derError: string | undefined;
  if (typeof input !== "string" && !options.verbatim) {
    const buf = asBuffer(input);
    if (looksLikeDer(buf)) {
      try {
        return splitDer(buf, maxBytes);
      } catch (err) {
        derError = (err as Error).message;
      }
    }
  }
  const text = typeof input === "string" ? input : asBuffer(input).toString("latin1");
  const { blocks, sawBegin } = scan(text);
  const out: Uint8Array[] = [];
  for (const b of blocks) {
    if (b.body !== undefined && !labels.includes(b.label)) continue;
    if (b.body === undefined && !labels.includes(b.label)) throw new CertParseError(`truncated PEM: "-----BEGIN ${b.label}-----" has no END line`);
    const d = decodeBlock(b, maxBytes, options.verbatim);
    if ("error" in d) throw new CertParseError(d.error);
    out.push(d.der);
  }
  if (out.length > 0) return out;
  if (derError !== undefined) throw new CertParseError(`malformed DER: ${derError}`);
  if (sawBegin) throw new CertParseError(`no ${labels.join(" / ")} PEM block found`);
  throw new CertParseError('neither PEM nor DER: no "-----BEGIN" line and no DER SEQUENCE');
}

/** The first element with one of `labels` (PEM) or the DER element itself; throws CertParseError. */
export function readOne(input: Uint8Array | string, labels: readonly string[], maxBytes = MAX_ELEMENT_BYTES): Uint8Array {
  return readPemOrDer(input, { labels, maxBytes })[0]!;
}

/**
 * Certificates from bytes a source read, leniently: a CERTIFICATE block that does not decode, and
 * DER that does not split into elements, are returned as read so that validation reports the
 * certificate malformed instead of it silently vanishing. Blocks of other labels are skipped;
 * empty input and PEM without certificates give [].
 */
export function certificatesFromBytes(bytes: Uint8Array): Uint8Array[] {
  const buf = asBuffer(bytes);
  if (buf.length === 0) return [];
  const text = buf.toString("latin1");
  if (!text.includes("-----BEGIN ")) {
    try {
      return splitDer(buf, MAX_ELEMENT_BYTES).map((d) => new Uint8Array(d));
    } catch {
      return [new Uint8Array(buf)];
    }
  }
  let blocks: Block[];
  try {
    blocks = scan(text).blocks;
  } catch {
    return [new Uint8Array(buf)];
  }
  const out: Uint8Array[] = [];
  for (const b of blocks) {
    if (!CERTIFICATE_LABELS.includes(b.label)) continue;
    const d = decodeBlock(b, MAX_ELEMENT_BYTES);
    out.push(new Uint8Array("der" in d ? d.der : Buffer.from(b.text, "latin1")));
  }
  return out;
}

/** PEM text of one DER element. */
export function toPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = asBuffer(der).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.replace(/.{64}/g, "$&\n").replace(/\n$/, "")}\n-----END ${label}-----\n`;
}
