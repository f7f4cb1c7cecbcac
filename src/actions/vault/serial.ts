/**
 * Certificate serial numbers as Vault's PKI engine names them: lower-case hex bytes joined by
 * colons, without leading zero bytes (Vault formats `big.Int.Bytes()`), e.g. `39:dd:2e:90`.
 */
import { createHash } from "node:crypto";
import { readPemOrDer } from "../../plugin/x509/pem.ts";
import { inputError } from "../common/input.ts";

/** RFC 5280 §4.1.2.2: conforming CAs use at most 20 octets. */
const MAX_SERIAL_BYTES = 20;

/**
 * Accepts `39:dd:2e`, `39-DD-2E`, `39dd2e`, `0x39dd2e` or a single-digit group (`1:2a`), and
 * returns Vault's form. Anything else is a permanent input error: revoking a guessed serial is
 * worse than not revoking.
 */
export function normalizeSerial(raw: string): string {
  const text = raw.trim().toLowerCase().replace(/^0x/, "");
  let hex: string;
  if (/[:-]/.test(text)) {
    const groups = text.split(/[:-]/);
    if (!groups.every((g) => /^[0-9a-f]{1,2}$/.test(g))) throw inputError(`certificate serial ${JSON.stringify(raw)} is not hex bytes separated by ":" or "-"`);
    hex = groups.map((g) => g.padStart(2, "0")).join("");
  } else {
    if (!/^[0-9a-f]+$/.test(text)) throw inputError(`certificate serial ${JSON.stringify(raw)} is not hexadecimal`);
    hex = text.length % 2 === 1 ? `0${text}` : text;
  }
  while (hex.length > 2 && hex.startsWith("00")) hex = hex.slice(2);
  if (/^0+$/.test(hex)) throw inputError(`certificate serial ${JSON.stringify(raw)} is zero`);
  if (hex.length / 2 > MAX_SERIAL_BYTES) throw inputError(`certificate serial ${JSON.stringify(raw)} is longer than ${MAX_SERIAL_BYTES} bytes`);
  return hex.match(/../g)!.join(":");
}

function record(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * The serial the named certificate check reported, from a decision's evidence: the check's own
 * evidence (`serial`, as certificate_validity writes it) under `checks.<check>` or `<check>`, with
 * or without an `evidence` wrapper. Undefined when the check left none.
 */
export function serialFromEvidence(evidence: Readonly<Record<string, unknown>>, check: string): string | undefined {
  return certificateFromEvidence(evidence, check)?.serial;
}

/**
 * The serial the named certificate check reported and, when it reported one beside it, the SHA-256
 * fingerprint of that certificate (lower-case hex, colons dropped). Undefined when the check left no serial.
 */
export function certificateFromEvidence(evidence: Readonly<Record<string, unknown>>, check: string): { serial: string; fingerprint?: string } | undefined {
  const places = [record(record(evidence["checks"])?.[check]), record(evidence[check])];
  for (const place of places) {
    for (const holder of [record(place?.["evidence"]), place]) {
      const serial = holder?.["serial"];
      if (typeof serial === "string" && serial.trim() !== "") {
        const raw = holder?.["fingerprint_sha256"];
        const fingerprint = typeof raw === "string" ? raw.toLowerCase().replace(/[:\s]/g, "") : "";
        return { serial, ...(/^[0-9a-f]{64}$/.test(fingerprint) ? { fingerprint } : {}) };
      }
    }
  }
  return undefined;
}

/** SHA-256 (lower-case hex) of the DER of the first certificate in `pem`, or undefined when it holds none. */
export function pemFingerprint(pem: string): string | undefined {
  let der: Uint8Array | undefined;
  try {
    der = readPemOrDer(pem, { labels: ["CERTIFICATE"], verbatim: true })[0];
  } catch {
    return undefined;
  }
  return der === undefined ? undefined : createHash("sha256").update(der).digest("hex");
}
