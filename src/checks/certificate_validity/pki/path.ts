/**
 * X.509 path building and validation (RFC 5280 §6, RFC 4158 for building): from the leaf through
 * the given intermediates to a trust anchor, trying several candidate issuers (same subject,
 * cross-signs), cutting loops, bounded in depth and work. The first path that fully validates wins;
 * otherwise the failure of the candidate that got furthest is reported.
 */

import { createHash } from "node:crypto";
import { CERT_REASONS, DEFAULT_KEY_POLICY, type CertReason, type KeyPolicy, type PathValidationInput, type PathValidationResult, type Purpose } from "../types.ts";
import { CertParseError, ParsedCert, summarize, type KeyInfo, type SignatureAlgorithm } from "./cert.ts";
import { checkNameConstraints, matchIdentity } from "./names.ts";
import { EKU_BY_NAME, EKU_NAME_BY_OID, KEY_USAGE_ALIASES, KEY_USAGE_NAMES, KNOWN_EXTENSIONS, OID } from "./oids.ts";

// ---------------------------------------------------------------------------------------------
// Parse cache: anchors and intermediates recur across validations (the same CA certificates for
// thousands of leaves), so they are parsed once and keep their public key and the signature checks
// already made. Keyed by the SHA-256 of the DER; bounded (least recently used goes first).

const CACHE_MAX = 2048;
const cache = new Map<string, ParsedCert>();

/** A ParsedCert for `der`, shared with earlier calls for the same bytes. Throws CertParseError. */
export function parseCached(der: Uint8Array): ParsedCert {
  const fp = createHash("sha256").update(der).digest("hex");
  const hit = cache.get(fp);
  if (hit) {
    cache.delete(fp);
    cache.set(fp, hit);
    return hit;
  }
  const cert = new ParsedCert(der, fp);
  cache.set(fp, cert);
  if (cache.size > CACHE_MAX) cache.delete(cache.keys().next().value!);
  return cert;
}

// ---------------------------------------------------------------------------------------------

/** Trust anchors, parsed once and indexed by subject name (and subject key identifier). */
export class TrustStore {
  readonly #list: ParsedCert[] = [];
  readonly #byFingerprint = new Map<string, ParsedCert>();
  readonly #bySubject = new Map<string, ParsedCert[]>();
  readonly #bySki = new Map<string, ParsedCert[]>();

  /** Throws CertParseError (naming the anchor's position) when an anchor cannot be parsed. */
  constructor(roots: readonly (Uint8Array | ParsedCert)[]) {
    roots.forEach((r, i) => {
      let c: ParsedCert;
      try {
        c = r instanceof ParsedCert ? r : parseCached(r);
      } catch (err) {
        if (err instanceof CertParseError) throw new CertParseError(`trust anchor #${i + 1}: ${err.message}`, { cause: err });
        throw err;
      }
      if (this.#byFingerprint.has(c.fingerprint)) return;
      this.#byFingerprint.set(c.fingerprint, c);
      this.#list.push(c);
      push(this.#bySubject, c.subject.key, c);
      if (c.subjectKeyId) push(this.#bySki, c.subjectKeyId, c);
    });
  }

  get size(): number {
    return this.#list.length;
  }

  /** The anchors' DER, in the order given (duplicates dropped). */
  anchors(): Uint8Array[] {
    return this.#list.map((c) => c.der);
  }

  /** Parsed anchors. */
  list(): readonly ParsedCert[] {
    return this.#list;
  }

  hasFingerprint(fingerprint: string): boolean {
    return this.#byFingerprint.has(fingerprint);
  }

  /** Anchors whose subject is `cert`'s issuer name. */
  issuersOf(cert: ParsedCert): readonly ParsedCert[] {
    return this.#bySubject.get(cert.issuer.key) ?? [];
  }

  /** Anchors with this subject key identifier (hex). */
  bySubjectKeyId(ski: string): readonly ParsedCert[] {
    return this.#bySki.get(ski) ?? [];
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

// ---------------------------------------------------------------------------------------------

export type ValidatePathInput = Omit<PathValidationInput, "roots"> & { readonly roots: readonly Uint8Array[] | TrustStore };

/** Signature checks one validation may spend on building (candidate issuers tried). */
const MAX_SIGNATURE_CHECKS = 100;
/** Complete candidate paths one validation may evaluate. */
const MAX_PATHS = 32;
/** How far beyond max_depth building goes, only to tell "too long" from "untrusted". */
const EXTRA_DEPTH = 8;

interface Failure {
  readonly code: CertReason;
  readonly reason: string;
}

interface Candidate extends Failure {
  /** 0 untrusted, 1 bad signature, 2 too long, 3 a rule failed on a complete path. */
  readonly rank: number;
  /** How far evaluation got on the path before failing. */
  readonly progress: number;
  readonly path: readonly ParsedCert[];
}

interface Ctx {
  readonly at: number;
  readonly purpose: Purpose;
  readonly policy: KeyPolicy;
  readonly purposeEku: string | undefined;
  readonly requiredEku: readonly string[];
  readonly requiredKu: readonly string[];
  readonly input: ValidatePathInput;
}

const PURPOSE_EKU: Readonly<Record<Purpose, string | undefined>> = { server: EKU_BY_NAME.serverAuth, client: EKU_BY_NAME.clientAuth, any: undefined };

const q = (c: ParsedCert): string => JSON.stringify(c.subject.text || "(empty subject)");

function fail(code: CertReason, reason: string): Failure {
  return { code, reason };
}

function result(valid: boolean, path: readonly ParsedCert[] | undefined, failure?: Failure): PathValidationResult {
  return {
    valid,
    ...(failure ? { code: failure.code, reason: failure.reason } : {}),
    ...(path ? { path: path.map((c) => summarize(c)), pathDer: path.map((c) => c.der) } : {}),
  };
}

/**
 * Validates `input.leaf` at `input.at`. Never throws for certificate content: a leaf that cannot be
 * parsed gives CERT_MALFORMED; intermediates that cannot be parsed are left out (CERT_MALFORMED
 * when no path is found without them). With `roots` as DER, a malformed anchor gives CERT_MALFORMED.
 */
export function validatePath(input: ValidatePathInput): PathValidationResult {
  let leaf: ParsedCert;
  try {
    leaf = new ParsedCert(input.leaf);
  } catch (err) {
    if (err instanceof CertParseError) return result(false, undefined, fail(CERT_REASONS.CERT_MALFORMED, `the certificate: ${err.message}`));
    throw err;
  }
  let store: TrustStore;
  try {
    store = input.roots instanceof TrustStore ? input.roots : new TrustStore(input.roots);
  } catch (err) {
    if (err instanceof CertParseError) return result(false, [leaf], fail(CERT_REASONS.CERT_MALFORMED, err.message));
    throw err;
  }

  // Options that are not about the certificate: unknown usage names fail closed as CERT_PURPOSE.
  const requiredEku: string[] = [];
  for (const e of input.extendedKeyUsage ?? []) {
    const oid = EKU_BY_NAME[e] ?? (/^\d+(\.\d+)+$/.test(e) ? e : undefined);
    if (!oid) return result(false, [leaf], fail(CERT_REASONS.CERT_PURPOSE, `unknown extendedKeyUsage ${JSON.stringify(e)}`));
    requiredEku.push(oid);
  }
  const requiredKu: string[] = [];
  for (const k of input.keyUsage ?? []) {
    const name = KEY_USAGE_ALIASES[k] ?? k;
    if (!(KEY_USAGE_NAMES as readonly string[]).includes(name)) return result(false, [leaf], fail(CERT_REASONS.CERT_PURPOSE, `unknown keyUsage ${JSON.stringify(k)}`));
    requiredKu.push(name);
  }
  const atMs = input.at.getTime();
  if (!Number.isFinite(atMs)) throw new RangeError("validatePath: `at` is not a valid date");
  const ctx: Ctx = {
    at: atMs,
    purpose: input.purpose,
    policy: input.keyPolicy ?? DEFAULT_KEY_POLICY,
    purposeEku: PURPOSE_EKU[input.purpose],
    requiredEku,
    requiredKu,
    input,
  };
  const maxDepth = input.maxDepth !== undefined && Number.isFinite(input.maxDepth) ? Math.max(1, Math.floor(input.maxDepth)) : 8;

  // A leaf that is itself a trust anchor (same DER) needs no path.
  if (store.hasFingerprint(leaf.fingerprint)) {
    const f = checkLeaf(leaf, ctx, true);
    return result(!f, [leaf], f);
  }

  // Intermediates: parsed (cached), anchors and duplicates dropped, indexed by subject.
  const bySubject = new Map<string, ParsedCert[]>();
  const malformed: string[] = [];
  const seenFp = new Set<string>([leaf.fingerprint]);
  input.intermediates.forEach((der, i) => {
    let c: ParsedCert;
    try {
      c = parseCached(der);
    } catch (err) {
      if (err instanceof CertParseError) {
        malformed.push(`intermediate #${i + 1}: ${err.message}`);
        return;
      }
      throw err;
    }
    if (seenFp.has(c.fingerprint) || store.hasFingerprint(c.fingerprint)) return;
    seenFp.add(c.fingerprint);
    push(bySubject, c.subject.key, c);
  });

  let best: Candidate | undefined;
  let deadEnd: readonly ParsedCert[] = [leaf];
  let leafFailure: Failure | null | undefined;
  const record = (c: Candidate) => {
    if (!best || c.rank > best.rank || (c.rank === best.rank && c.progress > best.progress)) best = c;
  };
  const budget = { signatures: 0, paths: 0 };
  const searchLimit = maxDepth + EXTRA_DEPTH;
  const onPath = new Set<string>();
  const pathKey = (c: ParsedCert) => `${c.subject.key}|${c.spkiHash}`;

  const candidatesFor = (cur: ParsedCert): { cert: ParsedCert; anchor: boolean }[] => {
    const anchors = rank(cur, store.issuersOf(cur), ctx.at);
    const inters = rank(cur, bySubject.get(cur.issuer.key) ?? [], ctx.at);
    return [...anchors.map((cert) => ({ cert, anchor: true })), ...inters.map((cert) => ({ cert, anchor: false }))];
  };

  /** Depth-first; returns a fully valid path, "stop" when out of budget, undefined when exhausted. */
  const search = (path: ParsedCert[]): ParsedCert[] | "stop" | undefined => {
    const cur = path[path.length - 1]!;
    const cands = candidatesFor(cur);
    let extended = false;
    for (const { cert, anchor } of cands) {
      if (onPath.has(cert.fingerprint) || (!anchor && onPath.has(pathKey(cert)))) continue;
      if (budget.signatures++ >= MAX_SIGNATURE_CHECKS) return "stop";
      const next = [...path, cert];
      if (!cur.isSignedBy(cert)) {
        record({
          rank: 1,
          progress: path.length,
          path: next,
          ...fail(CERT_REASONS.CERT_BAD_SIGNATURE, `the signature on ${q(cur)} does not verify with the key of ${anchor ? "trust anchor" : "intermediate"} ${q(cert)}`),
        });
        continue;
      }
      extended = true;
      if (anchor) {
        if (next.length > maxDepth) {
          record({ rank: 2, progress: -next.length, path: next, ...fail(CERT_REASONS.CERT_PATH_TOO_LONG, `the path to trust anchor ${q(cert)} has ${next.length} certificates, max_depth is ${maxDepth}`) });
          continue;
        }
        if (leafFailure === undefined) leafFailure = checkLeaf(leaf, ctx, false) ?? null;
        if (leafFailure) {
          record({ rank: 3, progress: 0, path: next, ...leafFailure });
          return "stop"; // the leaf's own problems are the same on every path
        }
        const f = checkPath(next, ctx);
        if (!f) return next;
        record({ rank: 3, path: next, ...f });
        if (++budget.paths >= MAX_PATHS) return "stop";
        continue;
      }
      if (next.length >= searchLimit) continue;
      onPath.add(cert.fingerprint);
      onPath.add(pathKey(cert));
      const r = search(next);
      onPath.delete(cert.fingerprint);
      onPath.delete(pathKey(cert));
      if (r) return r;
    }
    if (!extended && path.length > deadEnd.length) deadEnd = path;
    return undefined;
  };

  onPath.add(leaf.fingerprint);
  onPath.add(pathKey(leaf));
  const found = search([leaf]);
  if (Array.isArray(found)) return result(true, found);
  if (best) return result(false, best.rank >= 2 ? best.path : [leaf], best);

  if (malformed.length > 0) return result(false, [leaf], fail(CERT_REASONS.CERT_MALFORMED, `${malformed[0]} (and no path to a trust anchor without it)`));
  const end = deadEnd[deadEnd.length - 1]!;
  const via = deadEnd.length > 1 ? ` (path built to ${q(end)})` : "";
  const reason = end.selfIssued
    ? `${q(end)} is self-signed and not a trust anchor${via}`
    : `no trust anchor or intermediate has the subject ${JSON.stringify(end.issuer.text)}, issuer of ${q(end)}${via}; ${store.size} trust anchor${store.size === 1 ? "" : "s"}`;
  return result(false, [leaf], fail(CERT_REASONS.CERT_UNTRUSTED, reason));
}

/** Candidate issuers in preference order: AKID = SKI first, then without AKID/SKI, mismatches last; valid at `at` before not. */
function rank(child: ParsedCert, list: readonly ParsedCert[], at: number): readonly ParsedCert[] {
  if (list.length <= 1) return list;
  const akid = child.authorityKeyId;
  const score = (c: ParsedCert) => (akid && c.subjectKeyId ? (c.subjectKeyId === akid ? 0 : 4) : 2) + (c.notBefore <= at && at <= c.notAfter ? 0 : 1);
  return list
    .map((c, i) => ({ c, i, s: score(c) }))
    .sort((a, b) => a.s - b.s || a.i - b.i)
    .map((x) => x.c);
}

// ---------------------------------------------------------------------------------------------
// Rules

function validity(c: ParsedCert, at: number, role: string): Failure | undefined {
  if (at < c.notBefore) return fail(CERT_REASONS.CERT_NOT_YET_VALID, `${role} ${q(c)} is not valid before ${new Date(c.notBefore).toISOString()}`);
  if (at > c.notAfter) return fail(CERT_REASONS.CERT_EXPIRED, `${role} ${q(c)} expired at ${new Date(c.notAfter).toISOString()}`);
  return undefined;
}

function unknownCritical(c: ParsedCert, role: string): Failure | undefined {
  const unknown = c.criticalExtensionOids.filter((o) => !KNOWN_EXTENSIONS.has(o));
  if (unknown.length === 0) return undefined;
  return fail(CERT_REASONS.CERT_UNKNOWN_CRITICAL_EXTENSION, `${role} ${q(c)} has critical extension${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} this validator does not understand`);
}

/** OpenSSL / SEC names of the NIST curves, accepted in allowed_curves. */
const CURVE_ALIASES: Readonly<Record<string, string>> = { prime192v1: "P-192", secp192r1: "P-192", secp224r1: "P-224", prime256v1: "P-256", secp256r1: "P-256", secp384r1: "P-384", secp521r1: "P-521" };

/** Why key `k` fails policy `p`, or undefined. */
export function keyPolicyProblem(k: KeyInfo, p: KeyPolicy): string | undefined {
  switch (k.type) {
    case "rsa":
    case "rsa-pss":
      return (k.bits ?? 0) < p.min_rsa_bits ? `an RSA-${k.bits} key (minimum ${p.min_rsa_bits} bits)` : undefined;
    case "ec":
      return k.curve && p.allowed_curves.some((c) => (CURVE_ALIASES[c] ?? c) === k.curve) ? undefined : `an EC key on ${k.curve} (allowed: ${p.allowed_curves.join(", ") || "none"})`;
    case "ed25519":
      return p.allow_ed25519 ? undefined : "an Ed25519 key (not allowed)";
    case "ed448":
      return p.allowed_curves.includes("Ed448") ? undefined : "an Ed448 key (not allowed)";
    default:
      return `a ${k.type === "unknown" ? `key of algorithm ${k.oid}` : `${k.type.toUpperCase()} key`} (not allowed)`;
  }
}

/** Why signature algorithm `s` fails policy `p` (MD2/MD4/MD5 always; SHA-1 unless allow_sha1), or undefined. */
export function signatureAlgorithmProblem(s: SignatureAlgorithm, p: KeyPolicy): string | undefined {
  if (s.hash === "sha1") return p.allow_sha1 ? undefined : `a ${s.name} signature (SHA-1 is not allowed)`;
  // An allowlist: an algorithm we cannot name (e.g. md5WithRSA under its old OIW OID) is refused.
  if (ALLOWED_SIGNATURE_HASHES.has(s.hash)) return undefined;
  if (s.hash === "md5" || s.hash === "md4" || s.hash === "md2") return `a ${s.name} signature (MD2/MD4/MD5 are never accepted)`;
  return `a signature with algorithm ${s.oid}${s.name && s.name !== s.oid ? ` (${s.name})` : ""} that is not allowed`;
}

const ALLOWED_SIGNATURE_HASHES: ReadonlySet<string> = new Set(["sha224", "sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512", "intrinsic"]);

function keyAndAlgorithm(c: ParsedCert, ctx: Ctx, role: string, signed: boolean): Failure | undefined {
  const k = keyPolicyProblem(c.key, ctx.policy);
  if (k) return fail(CERT_REASONS.CERT_WEAK_KEY, `${role} ${q(c)} has ${k}`);
  const s = signed ? signatureAlgorithmProblem(c.signatureAlgorithm, ctx.policy) : undefined;
  if (s) return fail(CERT_REASONS.CERT_WEAK_KEY, `${role} ${q(c)} carries ${s}`);
  return undefined;
}

const ekuName = (oid: string) => EKU_NAME_BY_OID.get(oid) ?? oid;

/** The leaf's own rules (the same on every path): validity, extensions, key, purpose, identity. */
function checkLeaf(leaf: ParsedCert, ctx: Ctx, isAnchor: boolean): Failure | undefined {
  const role = "the certificate";
  const v = validity(leaf, ctx.at, role);
  if (v) return v;
  if (!isAnchor) {
    const u = unknownCritical(leaf, role);
    if (u) return u;
  }
  const k = keyAndAlgorithm(leaf, ctx, role, !isAnchor);
  if (k) return k;

  const ku = leaf.keyUsage;
  if (ku && ctx.purpose === "server" && !ku.includes("digitalSignature") && !ku.includes("keyEncipherment")) {
    return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} has keyUsage ${ku.join(", ") || "(none)"}: a TLS server needs digitalSignature or keyEncipherment`);
  }
  if (ku && ctx.purpose === "client" && !ku.includes("digitalSignature")) {
    return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} has keyUsage ${ku.join(", ") || "(none)"}: a TLS client needs digitalSignature`);
  }
  if (ku) {
    const missing = ctx.requiredKu.filter((n) => !ku.includes(n));
    if (missing.length) return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} lacks keyUsage ${missing.join(", ")} (has ${ku.join(", ") || "none"})`);
  }
  const eku = leaf.eku;
  if (eku && !eku.includes(OID.anyExtendedKeyUsage)) {
    const want = [...(ctx.purposeEku ? [ctx.purposeEku] : []), ...ctx.requiredEku];
    const missing = want.filter((o) => !eku.includes(o));
    if (missing.length) return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} lacks extendedKeyUsage ${missing.map(ekuName).join(", ")} (has ${eku.map(ekuName).join(", ") || "none"})`);
  }
  if (ctx.input.identity) {
    const why = matchIdentity(leaf, ctx.input.identity);
    if (why) return fail(CERT_REASONS.CERT_NAME_MISMATCH, why);
  }
  return undefined;
}

/** The rules on the issuers of a complete path (leaf first, anchor last; signatures already verified). */
function checkPath(path: readonly ParsedCert[], ctx: Ctx): (Failure & { progress: number }) | undefined {
  const n = path.length - 1;
  for (let i = 1; i <= n; i++) {
    const c = path[i]!;
    const anchor = i === n;
    const role = anchor ? "trust anchor" : "intermediate";
    const at = (step: number, f: Failure | undefined) => (f ? { ...f, progress: i * 10 + step } : undefined);

    const v = at(0, validity(c, ctx.at, role));
    if (v) return v;
    if (!anchor) {
      const u = at(1, unknownCritical(c, role));
      if (u) return u;
      const k = at(2, keyAndAlgorithm(c, ctx, role, true));
      if (k) return k;
    }
    // basicConstraints: an intermediate must assert cA; an anchor must not deny it.
    if (anchor ? c.basicConstraints?.cA === false : !c.isCA) {
      return at(3, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} is not a CA (basicConstraints ${c.basicConstraints ? "cA false" : "absent"}) but issued ${q(path[i - 1]!)}`));
    }
    if (c.keyUsage && !c.keyUsage.includes("keyCertSign")) {
      return at(4, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} has keyUsage ${c.keyUsage.join(", ") || "(none)"} without keyCertSign`));
    }
    const pathLen = c.pathLen;
    if (pathLen !== undefined) {
      let below = 0;
      for (let j = 1; j < i; j++) if (!path[j]!.selfIssued) below++;
      if (below > pathLen) {
        return at(5, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} has pathLenConstraint ${pathLen} but ${below} intermediate CA certificate${below === 1 ? "" : "s"} follow${below === 1 ? "s" : ""} it`));
      }
    }
    // extendedKeyUsage on an intermediate restricts what it may issue for (as OpenSSL, Go, NSS do).
    if (!anchor && c.eku && !c.eku.includes(OID.anyExtendedKeyUsage)) {
      const want = [...(ctx.purposeEku ? [ctx.purposeEku] : []), ...ctx.requiredEku];
      const missing = want.filter((o) => !c.eku!.includes(o));
      if (missing.length) return at(6, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} restricts extendedKeyUsage to ${c.eku.map(ekuName).join(", ")}, not ${missing.map(ekuName).join(", ")}`));
    }
    if (c.nameConstraints) {
      for (let j = 0; j < i; j++) {
        const sub = path[j]!;
        if (j > 0 && sub.selfIssued) continue; // RFC 5280 §6.1.3 (b): self-issued intermediates are exempt
        const why = checkNameConstraints(c, sub);
        if (why) return at(7, fail(CERT_REASONS.CERT_NAME_CONSTRAINTS, j === 0 ? why : `${why} (in intermediate ${q(sub)})`));
      }
    }
  }
  return undefined;
}
