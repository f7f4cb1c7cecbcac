/**
 * A transmitter's signing keys, from its `jwks_uri`: fetched once and kept, refreshed when they grow
 * old, and fetched again when a SET names a `kid` the set does not hold, at most once per
 * `minRefreshMs` however many such SETs arrive (a flood of made-up kids costs one request a minute).
 *
 * Only public keys that can verify an allowed algorithm are kept: RSA of at least 2048 bits (the CAEP
 * interoperability profile's floor), EC P-256/384/521 and Ed25519/Ed448. Private members a careless
 * JWKS publishes are dropped, never imported.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { UpstreamError, VigilError, errorMessage } from "../../errors.ts";
import type { HttpClient } from "../../net/http.ts";
import type { Clock } from "../../util/clock.ts";
import type { SetAlgorithm } from "./config.ts";
import type { CryptoKey, JWK } from "jose";

/** Largest JWKS document read. */
const MAX_JWKS_BYTES = 256 * 1024;
/** Most keys kept from one JWKS. */
const MAX_KEYS = 100;
const MIN_RSA_BITS = 2048;
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = { RSA: ["kty", "n", "e"], EC: ["kty", "crv", "x", "y"], OKP: ["kty", "crv", "x"] };
const EC_CURVES: Readonly<Record<string, string>> = { ES256: "P-256", ES384: "P-384", ES512: "P-521" };

export interface VerificationKey {
  readonly kid: string | undefined;
  /** The JWK's own `alg`, when it names one: the key is then used for nothing else. */
  readonly alg: string | undefined;
  readonly kty: string;
  readonly crv: string | undefined;
  /** The public members only. */
  readonly jwk: Readonly<Record<string, unknown>>;
  /** Imported once per algorithm: WebCrypto keys are bound to one. */
  readonly imported: Map<string, Promise<CryptoKey>>;
}

/** Why a key cannot be chosen: `unknown_kid` after a refresh, or the header names none and the set is ambiguous. */
export class KeyNotFound extends Error {
  readonly reason: "unknown_kid" | "no_kid" | "alg_mismatch";
  constructor(reason: "unknown_kid" | "no_kid" | "alg_mismatch", message: string) {
    super(message);
    this.name = "KeyNotFound";
    this.reason = reason;
  }
}

/** The key as jose verifies with it, imported for `alg` once. */
export function cryptoKey(k: VerificationKey, alg: string): Promise<CryptoKey> {
  let p = k.imported.get(alg);
  if (p === undefined) {
    p = import("jose").then(({ importJWK }) => importJWK({ ...k.jwk, alg } as JWK, alg) as Promise<CryptoKey>);
    k.imported.set(alg, p);
  }
  return p;
}

/** Does `k` verify `alg`? */
export function fits(k: Pick<VerificationKey, "alg" | "kty" | "crv">, alg: string): boolean {
  if (k.alg !== undefined && k.alg !== alg) return false;
  if (alg.startsWith("RS") || alg.startsWith("PS")) return k.kty === "RSA";
  if (alg.startsWith("ES")) return k.kty === "EC" && k.crv === EC_CURVES[alg];
  if (alg === "EdDSA") return k.kty === "OKP" && (k.crv === "Ed25519" || k.crv === "Ed448");
  return false;
}

/** The usable keys of a JWKS document; the others with why they were left out. */
export function parseJwks(doc: unknown, algorithms: readonly SetAlgorithm[]): { keys: VerificationKey[]; skipped: string[] } {
  if (doc === null || typeof doc !== "object" || !Array.isArray((doc as { keys?: unknown }).keys)) throw new Error("not a JWK Set (no keys array)");
  const keys: VerificationKey[] = [];
  const skipped: string[] = [];
  for (const [i, raw] of ((doc as { keys: unknown[] }).keys).slice(0, MAX_KEYS).entries()) {
    const jwk = raw as Record<string, unknown> | null;
    const name = jwk && typeof jwk.kid === "string" ? `kid ${jwk.kid.slice(0, 64)}` : `key #${i}`;
    if (jwk === null || typeof jwk !== "object" || typeof jwk.kty !== "string") {
      skipped.push(`${name}: not a JWK`);
      continue;
    }
    const members = PUBLIC_MEMBERS[jwk.kty];
    if (members === undefined) {
      skipped.push(`${name}: key type ${jwk.kty.slice(0, 16)} cannot verify a SET`);
      continue;
    }
    if (jwk.use !== undefined && jwk.use !== "sig") {
      skipped.push(`${name}: use is not sig`);
      continue;
    }
    const pub: Record<string, unknown> = {};
    for (const m of members) pub[m] = jwk[m];
    let key: KeyObject;
    try {
      key = createPublicKey({ key: pub as JsonWebKey, format: "jwk" });
    } catch (err) {
      skipped.push(`${name}: ${errorMessage(err)}`);
      continue;
    }
    if (jwk.kty === "RSA" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) {
      skipped.push(`${name}: RSA key of ${key.asymmetricKeyDetails?.modulusLength} bits, fewer than ${MIN_RSA_BITS}`);
      continue;
    }
    const entry: VerificationKey = {
      kid: typeof jwk.kid === "string" && jwk.kid !== "" ? jwk.kid : undefined,
      alg: typeof jwk.alg === "string" ? jwk.alg : undefined,
      kty: jwk.kty,
      crv: typeof jwk.crv === "string" ? jwk.crv : undefined,
      jwk: pub,
      imported: new Map(),
    };
    if (!algorithms.some((a) => fits(entry, a))) {
      skipped.push(`${name}: fits none of the accepted algorithms (${algorithms.join(", ")})`);
      continue;
    }
    keys.push(entry);
  }
  return { keys, skipped };
}

export interface JwksOptions {
  readonly http: HttpClient;
  readonly clock: Clock;
  readonly algorithms: readonly SetAlgorithm[];
  /** Hostile-URL guard for the fetch; undefined for a URL the operator configured. */
  readonly untrusted: { allowPrivate: boolean } | undefined;
  readonly timeoutMs: number;
  /** Least time between two fetches. Default 60 s. */
  readonly minRefreshMs?: number;
  /** Keys older than this are fetched again before use (the old ones stay if that fails). Default 1 h. */
  readonly maxAgeMs?: number;
  /** Called after each fetch with the keys left out, for the log. */
  readonly onSkipped?: (skipped: readonly string[]) => void;
}

export class JwksCache {
  readonly #o: JwksOptions;
  #url: string | undefined;
  #keys: VerificationKey[] | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptedAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  #lastError: string | undefined;
  /** Fetches made; tests read it to see the rate limit work. */
  fetches = 0;

  constructor(options: JwksOptions) {
    this.#o = options;
  }

  /** Sets where the keys live (after discovery); a new URL drops the keys of the old one. */
  setUrl(url: string): void {
    if (url === this.#url) return;
    this.#url = url;
    this.#keys = undefined;
    this.#fetchedAt = Number.NEGATIVE_INFINITY;
    this.#attemptedAt = Number.NEGATIVE_INFINITY;
  }

  get url(): string | undefined {
    return this.#url;
  }

  /** Keys are held (they may be old). */
  get loaded(): boolean {
    return this.#keys !== undefined;
  }

  /** Why the last fetch failed, while no keys are held or the last refresh failed. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Fetches now (sharing a fetch already under way). Throws when it fails. `signal` (the bring-up's) ends it at stop. */
  refresh(signal?: AbortSignal): Promise<void> {
    this.#pending ??= this.#fetch(signal).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /**
   * The key for a SET header. Throws `KeyNotFound` (the SET is refused as `invalid_key`), or a
   * transient `VigilError` when no keys could ever be fetched (the transmitter should try again).
   */
  async key(kid: string | undefined, alg: string): Promise<VerificationKey> {
    const now = this.#o.clock.now();
    const minRefresh = this.#o.minRefreshMs ?? 60_000;
    if (this.#keys === undefined || now - this.#fetchedAt > (this.#o.maxAgeMs ?? 3_600_000)) {
      if (this.#keys === undefined || now - this.#attemptedAt >= minRefresh) await this.refresh().catch(() => undefined);
    }
    if (this.#keys === undefined) {
      throw new VigilError("VIGIL_ERR_UPSTREAM_TRANSIENT", `the transmitter's keys are not available${this.#lastError ? `: ${this.#lastError}` : ""}`);
    }
    const found = this.#pick(kid, alg);
    if (found) return found;
    if (kid !== undefined && now - this.#attemptedAt >= minRefresh) {
      // A kid we have not seen: the transmitter may have rotated its keys.
      await this.refresh().catch(() => undefined);
      const again = this.#pick(kid, alg);
      if (again) return again;
    }
    if (kid === undefined) throw new KeyNotFound("no_kid", "the SET names no kid and the transmitter's key set does not have exactly one key for its algorithm");
    if (this.#keys.some((k) => k.kid === kid)) throw new KeyNotFound("alg_mismatch", `key ${kid.slice(0, 64)} cannot verify ${alg}`);
    throw new KeyNotFound("unknown_kid", `no key with kid ${kid.slice(0, 64)} in the transmitter's key set`);
  }

  #pick(kid: string | undefined, alg: string): VerificationKey | undefined {
    const keys = this.#keys ?? [];
    if (kid !== undefined) return keys.find((k) => k.kid === kid && fits(k, alg));
    const usable = keys.filter((k) => fits(k, alg));
    return usable.length === 1 ? usable[0] : undefined;
  }

  async #fetch(signal?: AbortSignal): Promise<void> {
    const url = this.#url;
    if (url === undefined) throw new VigilError("VIGIL_ERR_UPSTREAM_TRANSIENT", "the transmitter's jwks_uri is not known yet");
    this.#attemptedAt = this.#o.clock.now();
    this.fetches++;
    try {
      const res = await this.#o.http.request({
        method: "GET",
        url,
        headers: { Accept: "application/json, application/jwk-set+json" },
        timeoutMs: this.#o.timeoutMs,
        maxResponseBytes: MAX_JWKS_BYTES,
        ...(this.#o.untrusted ? { untrusted: this.#o.untrusted } : {}),
        ...(signal ? { signal } : {}),
      });
      const { keys, skipped } = parseJwks(res.json(), this.#o.algorithms);
      if (skipped.length > 0) this.#o.onSkipped?.(skipped);
      this.#keys = keys;
      this.#fetchedAt = this.#o.clock.now();
      this.#lastError = undefined;
    } catch (err) {
      this.#lastError = errorMessage(err);
      if (err instanceof VigilError) throw err;
      throw new UpstreamError(false, `JWKS at ${url}: ${errorMessage(err)}`, { cause: err });
    }
  }
}
