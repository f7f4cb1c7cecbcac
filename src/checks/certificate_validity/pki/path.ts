/**
 * X.509 path building and validation (RFC 5280 §6, RFC 4158 for building): from the leaf through
 * the given intermediates to a trust anchor, trying several candidate issuers (same subject,
 * cross-signs), cutting loops, bounded in depth and work. The first path that fully validates wins;
 * otherwise the failure of the candidate that got furthest is reported.
 *
 * Under the `strict` profile (the default) every certificate of the path is also held to the rules
 * of profile.ts; `rfc5280` validates as RFC 5280 §6 alone.
 */

import { CertParseError, ParsedCertificate, parseCached } from "../../../plugin/x509/certificate.ts";
import { EKU_BY_NAME, EKU_NAME_BY_OID, KEY_USAGE_ALIASES, KEY_USAGE_NAMES, OID } from "../../../plugin/x509/oids.ts";
import type { SignatureAlgorithm } from "../../../plugin/x509/signature.ts";
import { CERT_REASONS, DEFAULT_KEY_POLICY, type KeyPolicy, type PathValidationInput, type PathValidationResult, type Profile, type Purpose } from "../types.ts";
import { checkNameConstraints, matchIdentity } from "./names.ts";
import { processPolicies } from "./policy.ts";
import { anchorProfileProblem, fail, intermediateProfileProblem, keyPolicyProblem, leafProfileProblem, q, timeProblem, unknownCritical, type Failure } from "./profile.ts";

export { keyPolicyProblem } from "./profile.ts";

/** Trust anchors, parsed once and indexed by subject name (and subject key identifier). */
export class TrustStore {
  readonly #list: ParsedCertificate[] = [];
  readonly #byFingerprint = new Map<string, ParsedCertificate>();
  readonly #bySubject = new Map<string, ParsedCertificate[]>();
  readonly #bySki = new Map<string, ParsedCertificate[]>();

  /** Throws CertParseError (naming the anchor's position) when an anchor cannot be parsed. */
  constructor(roots: readonly (Uint8Array | ParsedCertificate)[]) {
    roots.forEach((r, i) => {
      let c: ParsedCertificate;
      try {
        c = r instanceof ParsedCertificate ? r : parseCached(r);
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
  list(): readonly ParsedCertificate[] {
    return this.#list;
  }

  hasFingerprint(fingerprint: string): boolean {
    return this.#byFingerprint.has(fingerprint);
  }

  /** Anchors whose subject is `cert`'s issuer name. */
  issuersOf(cert: ParsedCertificate): readonly ParsedCertificate[] {
    return this.#bySubject.get(cert.issuer.key) ?? [];
  }

  /** Anchors whose subject is `key` (a DistinguishedName key). */
  bySubject(key: string): readonly ParsedCertificate[] {
    return this.#bySubject.get(key) ?? [];
  }

  /** Anchors with this subject key identifier (hex). */
  bySubjectKeyId(ski: string): readonly ParsedCertificate[] {
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

/** What a validation found, beyond the verdict: the parsed path, for revocation and evidence. */
export interface PathValidationDetail extends PathValidationResult {
  /** Leaf → anchor, parsed, when a path was found. */
  readonly certificates?: readonly ParsedCertificate[];
  /** Certificates that were offered (intermediates, presented chain) and parsed: revocation looks for CRL signers among them. */
  readonly pool?: readonly ParsedCertificate[];
}

/** Signature checks one validation may spend on building (candidate issuers tried). */
const MAX_SIGNATURE_CHECKS = 100;
/** Complete candidate paths one validation may evaluate. */
const MAX_PATHS = 32;
/** How far beyond max_depth building goes, only to tell "too long" from "untrusted". */
const EXTRA_DEPTH = 8;

interface Candidate extends Failure {
  /** 0 untrusted, 1 bad signature, 2 too long, 3 a rule failed on a complete path. */
  readonly rank: number;
  /** How far evaluation got on the path before failing. */
  readonly progress: number;
  readonly path: readonly ParsedCertificate[];
}

interface Ctx {
  /** Evaluation time, truncated to the second: RFC 5280 validity has one-second granularity. */
  readonly at: number;
  readonly purpose: Purpose;
  readonly policy: KeyPolicy;
  readonly profile: Profile;
  readonly purposeEku: string | undefined;
  readonly requiredEku: readonly string[];
  readonly requiredKu: readonly string[];
  readonly input: ValidatePathInput;
  /** The key policy as a cache key. */
  readonly policyKey: string;
}

const PURPOSE_EKU: Readonly<Record<Purpose, string | undefined>> = { server: OID.kpServerAuth, client: OID.kpClientAuth, any: undefined };

function result(valid: boolean, path: readonly ParsedCertificate[] | undefined, failure?: Failure, pool?: readonly ParsedCertificate[]): PathValidationDetail {
  return {
    valid,
    ...(failure ? { code: failure.code, reason: failure.reason } : {}),
    ...(path ? { path: path.map((c) => c.summary), pathDer: path.map((c) => c.der), certificates: path } : {}),
    ...(pool ? { pool } : {}),
  };
}

/**
 * Validates `input.leaf` at `input.at`. Never throws for certificate content: a leaf that cannot be
 * parsed gives CERT_MALFORMED; intermediates that cannot be parsed are left out (CERT_MALFORMED
 * when no path is found without them). With `roots` as DER, a malformed anchor gives CERT_MALFORMED.
 */
export function validatePath(input: ValidatePathInput): PathValidationDetail {
  let leaf: ParsedCertificate;
  try {
    leaf = new ParsedCertificate(input.leaf);
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
    at: Math.floor(atMs / 1000) * 1000,
    purpose: input.purpose,
    policy: input.keyPolicy ?? DEFAULT_KEY_POLICY,
    profile: input.profile ?? "strict",
    purposeEku: PURPOSE_EKU[input.purpose],
    requiredEku,
    requiredKu,
    input,
    policyKey: JSON.stringify(input.keyPolicy ?? DEFAULT_KEY_POLICY),
  };
  const maxDepth = input.maxDepth !== undefined && Number.isFinite(input.maxDepth) ? Math.max(1, Math.floor(input.maxDepth)) : 8;

  // A leaf that is itself a trust anchor (same DER) needs no path.
  if (store.hasFingerprint(leaf.fingerprint)) {
    const f = checkLeaf(leaf, ctx, true);
    return result(!f, [leaf], f);
  }

  // Intermediates: parsed (cached), anchors and duplicates dropped, indexed by subject.
  const bySubject = new Map<string, ParsedCertificate[]>();
  const pool: ParsedCertificate[] = [];
  const malformed: string[] = [];
  const seenFp = new Set<string>([leaf.fingerprint]);
  input.intermediates.forEach((der, i) => {
    let c: ParsedCertificate;
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
    pool.push(c);
    push(bySubject, c.subject.key, c);
  });

  let best: Candidate | undefined;
  let deadEnd: readonly ParsedCertificate[] = [leaf];
  let leafFailure: Failure | null | undefined;
  const record = (c: Candidate) => {
    if (!best || c.rank > best.rank || (c.rank === best.rank && c.progress > best.progress)) best = c;
  };
  const budget = { signatures: 0, paths: 0 };
  const searchLimit = maxDepth + EXTRA_DEPTH;
  const onPath = new Set<string>();
  const pathKey = (c: ParsedCertificate) => `${c.subject.key}|${c.spkiHash}`;

  const candidatesFor = (cur: ParsedCertificate): { cert: ParsedCertificate; anchor: boolean }[] => {
    const anchors = rank(cur, store.issuersOf(cur), ctx.at);
    const inters = rank(cur, bySubject.get(cur.issuer.key) ?? [], ctx.at);
    return [...anchors.map((cert) => ({ cert, anchor: true })), ...inters.map((cert) => ({ cert, anchor: false }))];
  };

  /** Depth-first; returns a fully valid path, "stop" when out of budget, undefined when exhausted. */
  const search = (path: ParsedCertificate[]): ParsedCertificate[] | "stop" | undefined => {
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
  if (Array.isArray(found)) return result(true, found, undefined, pool);
  if (best) return result(false, best.rank >= 2 ? best.path : [leaf], best, pool);

  if (malformed.length > 0) return result(false, [leaf], fail(CERT_REASONS.CERT_MALFORMED, `${malformed[0]} (and no path to a trust anchor without it)`), pool);
  const end = deadEnd[deadEnd.length - 1]!;
  const via = deadEnd.length > 1 ? ` (path built to ${q(end)})` : "";
  const reason = end.selfIssued
    ? `${q(end)} is self-signed and not a trust anchor${via}`
    : `no trust anchor or intermediate has the subject ${JSON.stringify(end.issuer.text)}, issuer of ${q(end)}${via}; ${store.size} trust anchor${store.size === 1 ? "" : "s"}`;
  return result(false, [leaf], fail(CERT_REASONS.CERT_UNTRUSTED, reason), pool);
}

/** Candidate issuers in preference order: AKID = SKI first, then without AKID/SKI, mismatches last; valid at `at` before not. */
function rank(child: ParsedCertificate, list: readonly ParsedCertificate[], at: number): readonly ParsedCertificate[] {
  if (list.length <= 1) return list;
  const akid = child.authorityKeyId;
  const score = (c: ParsedCertificate) => (akid && c.subjectKeyId ? (c.subjectKeyId === akid ? 0 : 4) : 2) + (c.notBefore <= at && at <= c.notAfter ? 0 : 1);
  return list
    .map((c, i) => ({ c, i, s: score(c) }))
    .sort((a, b) => a.s - b.s || a.i - b.i)
    .map((x) => x.c);
}

// ---------------------------------------------------------------------------------------------
// Rules

function validity(c: ParsedCertificate, at: number, role: string): Failure | undefined {
  if (at < c.notBefore) return fail(CERT_REASONS.CERT_NOT_YET_VALID, `${role} ${q(c)} is not valid before ${new Date(c.notBefore).toISOString()}`);
  if (at > c.notAfter) return fail(CERT_REASONS.CERT_EXPIRED, `${role} ${q(c)} expired at ${new Date(c.notAfter).toISOString()}`);
  return undefined;
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

function keyAndAlgorithm(c: ParsedCertificate, ctx: Ctx, role: string, signed: boolean): Failure | undefined {
  const k = keyPolicyProblem(c, ctx.policy, ctx.profile);
  if (k) return fail(CERT_REASONS.CERT_WEAK_KEY, `${role} ${q(c)} has ${k}`);
  const s = signed ? signatureAlgorithmProblem(c.signatureAlgorithm, ctx.policy) : undefined;
  if (s) return fail(CERT_REASONS.CERT_WEAK_KEY, `${role} ${q(c)} carries ${s}`);
  return undefined;
}

const ekuName = (oid: string) => EKU_NAME_BY_OID.get(oid) ?? oid;

/** The leaf's own rules (the same on every path): encoding, validity, extensions, key, purpose, identity. */
function checkLeaf(leaf: ParsedCertificate, ctx: Ctx, isAnchor: boolean): Failure | undefined {
  const role = "the certificate";
  const strict = ctx.profile === "strict";
  const t = timeProblem(leaf, role, ctx.profile);
  if (t) return t;
  const v = validity(leaf, ctx.at, role);
  if (v) return v;
  if (!isAnchor || strict) {
    const u = unknownCritical(leaf, role);
    if (u) return u;
  }
  const k = keyAndAlgorithm(leaf, ctx, role, !isAnchor);
  if (k) return k;
  if (strict) {
    const p = leafProfileProblem(leaf, isAnchor || leaf.selfIssued);
    if (p) return p;
  }

  const ku = leaf.keyUsage;
  if (ku && ctx.purpose === "server" && !ku.includes("digitalSignature") && !ku.includes("keyEncipherment")) {
    return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} has keyUsage ${ku.join(", ") || "(none)"}: a TLS server needs digitalSignature or keyEncipherment`);
  }
  if (ku && ctx.purpose === "client" && !ku.includes("digitalSignature")) {
    return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} has keyUsage ${ku.join(", ") || "(none)"}: a TLS client needs digitalSignature`);
  }
  if (ku) {
    const missing = ctx.requiredKu.filter((n) => !(ku as readonly string[]).includes(n));
    if (missing.length) return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} lacks keyUsage ${missing.join(", ")} (has ${ku.join(", ") || "none"})`);
  }
  const eku = leaf.eku;
  const want = [...(ctx.purposeEku ? [ctx.purposeEku] : []), ...ctx.requiredEku];
  if (strict) {
    // Strict: the EKU must be there and name the purpose; anyExtendedKeyUsage names none.
    if (!eku) return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} has no extendedKeyUsage (the strict profile requires one${want.length ? ` with ${want.map(ekuName).join(", ")}` : ""})`);
    const missing = want.filter((o) => !eku.includes(o));
    if (missing.length) return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} lacks extendedKeyUsage ${missing.map(ekuName).join(", ")} (has ${eku.map(ekuName).join(", ")}; anyExtendedKeyUsage does not stand in for a purpose)`);
  } else if (eku && !eku.includes(OID.anyExtendedKeyUsage)) {
    const missing = want.filter((o) => !eku.includes(o));
    if (missing.length) return fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(leaf)} lacks extendedKeyUsage ${missing.map(ekuName).join(", ")} (has ${eku.map(ekuName).join(", ") || "none"})`);
  }
  if (ctx.input.identity) {
    const why = matchIdentity(leaf, ctx.input.identity);
    if (why) return fail(CERT_REASONS.CERT_NAME_MISMATCH, why);
  }
  return undefined;
}

/**
 * An issuer's rules that depend on nothing but the certificate, its role and the options: the same
 * CA certificates close thousands of paths, so they are judged once per options (`before` the
 * validity check, `after` it, in the order checkPath reports).
 */
const ownRulesMemo = new WeakMap<ParsedCertificate, Map<string, { before?: Failure; after?: Failure }>>();

function ownRules(c: ParsedCertificate, anchor: boolean, ctx: Ctx): { before?: Failure; after?: Failure } {
  const key = `${anchor ? "a" : "i"}|${ctx.profile}|${ctx.policyKey}`;
  let byKey = ownRulesMemo.get(c);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const role = anchor ? "trust anchor" : "intermediate";
  const strict = ctx.profile === "strict";
  const before = (anchor && strict ? anchorProfileProblem(c, ctx.policy) : undefined) ?? timeProblem(c, role, ctx.profile);
  const after = anchor ? undefined : (unknownCritical(c, role) ?? keyAndAlgorithm(c, ctx, role, true) ?? (strict ? intermediateProfileProblem(c) : undefined));
  const out = { ...(before ? { before } : {}), ...(after ? { after } : {}) };
  if (!byKey) ownRulesMemo.set(c, (byKey = new Map()));
  if (byKey.size < 16) byKey.set(key, out);
  return out;
}

/** The rules on the issuers of a complete path (leaf first, anchor last; signatures already verified). */
function checkPath(path: readonly ParsedCertificate[], ctx: Ctx): (Failure & { progress: number }) | undefined {
  const n = path.length - 1;
  const strict = ctx.profile === "strict";
  for (let i = 1; i <= n; i++) {
    const c = path[i]!;
    const anchor = i === n;
    const role = anchor ? "trust anchor" : "intermediate";
    const at = (step: number, f: Failure | undefined) => (f ? { ...f, progress: i * 20 + step } : undefined);

    const own = ownRules(c, anchor, ctx);
    if (own.before) return at(1, own.before);
    const v = at(2, validity(c, ctx.at, role));
    if (v) return v;
    if (own.after) return at(5, own.after);
    // basicConstraints: an intermediate must assert cA; an anchor must not deny it.
    if (anchor ? c.basicConstraints?.cA === false : !c.isCA) {
      return at(6, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} is not a CA (basicConstraints ${c.basicConstraints ? "cA false" : "absent"}) but issued ${q(path[i - 1]!)}`));
    }
    if (c.keyUsage && !c.keyUsage.includes("keyCertSign")) {
      return at(7, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} has keyUsage ${c.keyUsage.join(", ") || "(none)"} without keyCertSign`));
    }
    // Strict: the issued certificate's authorityKeyIdentifier names this key.
    const child = path[i - 1]!;
    if (strict && child.authorityKeyId !== undefined && c.subjectKeyId !== undefined && child.authorityKeyId !== c.subjectKeyId) {
      return at(8, fail(CERT_REASONS.CERT_BAD_EXTENSION, `the authorityKeyIdentifier of ${q(child)} does not match the subjectKeyIdentifier of its issuer ${q(c)}`));
    }
    const pathLen = c.pathLen;
    if (pathLen !== undefined) {
      let below = 0;
      for (let j = 1; j < i; j++) if (!path[j]!.selfIssued) below++;
      if (below > pathLen) {
        return at(9, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} has pathLenConstraint ${pathLen} but ${below} intermediate CA certificate${below === 1 ? "" : "s"} follow${below === 1 ? "s" : ""} it`));
      }
    }
    // extendedKeyUsage on an intermediate restricts what it may issue for (as OpenSSL, Go, NSS do).
    if (!anchor && c.eku && !c.eku.includes(OID.anyExtendedKeyUsage)) {
      const want = [...(ctx.purposeEku ? [ctx.purposeEku] : []), ...ctx.requiredEku];
      const missing = want.filter((o) => !c.eku!.includes(o));
      if (missing.length) return at(10, fail(CERT_REASONS.CERT_PURPOSE, `${role} ${q(c)} restricts extendedKeyUsage to ${c.eku.map(ekuName).join(", ")}, not ${missing.map(ekuName).join(", ")}`));
    }
    if (c.nameConstraints) {
      for (let j = 0; j < i; j++) {
        const sub = path[j]!;
        if (j > 0 && sub.selfIssued) continue; // RFC 5280 §6.1.3 (b): self-issued intermediates are exempt
        const why = checkNameConstraints(c, sub, strict);
        if (why) return at(11, fail(CERT_REASONS.CERT_NAME_CONSTRAINTS, j === 0 ? why : `${why} (in intermediate ${q(sub)})`));
      }
    }
  }
  const policies = processPolicies(path, {
    ...(ctx.input.initialPolicies ? { initialPolicies: ctx.input.initialPolicies } : {}),
    ...(ctx.input.requireExplicitPolicy ? { requireExplicitPolicy: true } : {}),
    ...(ctx.input.inhibitPolicyMapping ? { inhibitPolicyMapping: true } : {}),
    ...(ctx.input.inhibitAnyPolicy ? { inhibitAnyPolicy: true } : {}),
  });
  if (policies.problem) return { ...fail(CERT_REASONS.CERT_POLICY, policies.problem), progress: (n + 1) * 20 };
  return undefined;
}
