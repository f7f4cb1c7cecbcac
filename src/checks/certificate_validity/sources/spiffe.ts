/**
 * An X.509-SVID as the SPIFFE helper / agent writes it to disk: `svid.pem` (the SVID chain, leaf
 * first), `bundle.pem` (the trust domain's bundle: the roots the SVID should chain to) and
 * `svid_key.pem`.
 *
 * The bundle is returned beside the GatheredCertificate (which has no field for it) so the check
 * can use it as trust anchors. When `keyPath` is given the key must match the leaf: the helper
 * rewrites the three files one after the other, and a key from another rotation means the workload
 * cannot use its SVID. The key is only compared, never returned or quoted.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { GatheredCertificate } from "../types.ts";
import { certificatesFromBytes, Deadline, readFileCapped, SourceError } from "./common.ts";
import { MAX_CERT_FILE_BYTES } from "./files.ts";

export const DEFAULT_SPIFFE_TIMEOUT_MS = 5_000;

export interface SpiffeSourceOptions {
  /** The SVID chain (PEM or DER), leaf first. */
  readonly svidPath: string;
  /** The trust bundle (PEM or DER). */
  readonly bundlePath?: string;
  /** The SVID's private key (PEM or DER); when given it must match the leaf. */
  readonly keyPath?: string;
  /** Whole-gather deadline. Default 5000. */
  readonly timeoutMs?: number;
}

export interface SpiffeGathered {
  readonly gathered: GatheredCertificate;
  /** The trust bundle's certificates (DER); empty when no bundle was asked for. */
  readonly bundle: Uint8Array[];
}

function keyMatches(leaf: Uint8Array, keyBytes: Buffer): boolean | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(leaf);
  } catch {
    return undefined; // a malformed leaf is the validator's to report
  }
  try {
    const pem = keyBytes.toString("latin1").includes("-----BEGIN ");
    const key = pem ? createPrivateKey(keyBytes) : createPrivateKey({ key: keyBytes, format: "der", type: "pkcs8" });
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

export async function fromSpiffeSvid(options: SpiffeSourceOptions, signal?: AbortSignal): Promise<SpiffeGathered> {
  const { svidPath, bundlePath, keyPath } = options;
  if (typeof svidPath !== "string" || svidPath === "" || svidPath.includes("\0")) throw new SourceError(`SPIFFE source: invalid svid path ${JSON.stringify(svidPath)}`);
  const deadline = new Deadline(signal, options.timeoutMs ?? DEFAULT_SPIFFE_TIMEOUT_MS, `reading SVID ${svidPath}`);
  const chain = certificatesFromBytes(await readFileCapped(svidPath, MAX_CERT_FILE_BYTES, deadline, "SVID file"));
  if (chain.length === 0) throw new SourceError(`SVID file ${svidPath} holds no certificate`);

  let bundle: Uint8Array[] = [];
  if (bundlePath !== undefined) {
    bundle = certificatesFromBytes(await readFileCapped(bundlePath, MAX_CERT_FILE_BYTES, deadline, "SPIFFE bundle file"));
    if (bundle.length === 0) throw new SourceError(`SPIFFE bundle file ${bundlePath} holds no certificate`);
  }
  if (keyPath !== undefined) {
    const key = await readFileCapped(keyPath, 64 * 1024, deadline, "SVID key file");
    if (keyMatches(chain[0]!, key) === false) throw new SourceError(`SVID key ${keyPath} does not match the certificate in ${svidPath} (unreadable, or from another rotation)`);
  }
  return { gathered: { chain, origin: `spiffe:${svidPath}` }, bundle };
}
