/**
 * The transmitter's signing keys: PEM private keys checked against their JWS algorithm, the public
 * JWK each one publishes, and JWS signatures made with them.
 *
 * Signing is synchronous (node:crypto) because `plan()` is synchronous and must show the exact SET
 * body that `apply` sends; jose 6 only signs asynchronously through WebCrypto.
 */
import { constants, createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";
import { VigilError } from "../../errors.ts";

/** JWS algorithms a key may sign with. */
export const SIGNING_ALGS = ["ES256", "RS256", "PS256", "EdDSA"] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** The public members of a JWK, the only ones the JWKS ever holds. */
export interface PublicJwk {
  readonly kty: "EC" | "RSA" | "OKP";
  readonly kid: string;
  readonly use: "sig";
  readonly alg: SigningAlg;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly n?: string;
  readonly e?: string;
}

/** A loaded signing key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly privateKey: KeyObject;
  readonly jwk: PublicJwk;
}

const MIN_RSA_BITS = 2048;

function parse(pem: string): KeyObject | string {
  if (/ENCRYPTED/.test(pem)) return "encrypted private keys are not supported; store the key unencrypted and protect the file instead";
  try {
    return createPrivateKey({ key: pem, format: "pem" });
  } catch {
    return "not a readable PEM private key (PKCS#8, SEC1 or PKCS#1)";
  }
}

function mismatch(key: KeyObject, alg: SigningAlg): string | undefined {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  switch (alg) {
    case "ES256":
      return type === "ec" && details.namedCurve === "prime256v1" ? undefined : `${alg} needs an EC P-256 key, got ${describe(key)}`;
    case "RS256":
    case "PS256":
      if (type !== "rsa") return `${alg} needs an RSA key, got ${describe(key)}`;
      return (details.modulusLength ?? 0) >= MIN_RSA_BITS ? undefined : `${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits, got ${details.modulusLength} bits`;
    case "EdDSA":
      return type === "ed25519" || type === "ed448" ? undefined : `${alg} needs an Ed25519 or Ed448 key, got ${describe(key)}`;
  }
}

function describe(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return `${key.asymmetricKeyType ?? "an unknown"} key${curve ? ` on ${curve}` : ""}`;
}

/** Why `pem` cannot sign with `alg`, or undefined when it can. Never quotes the key. */
export function keyProblem(pem: string, alg: SigningAlg): string | undefined {
  const key = parse(pem);
  return typeof key === "string" ? key : mismatch(key, alg);
}

/** The public JWK of a private key, with only the members a verifier needs. */
export function publicJwk(privateKey: KeyObject, kid: string, alg: SigningAlg): PublicJwk {
  const full = createPublicKey(privateKey).export({ format: "jwk" });
  const base = { kid, use: "sig" as const, alg };
  switch (full.kty) {
    case "EC":
      return { kty: "EC", ...base, crv: full.crv!, x: full.x!, y: full.y! };
    case "RSA":
      return { kty: "RSA", ...base, n: full.n!, e: full.e! };
    case "OKP":
      return { kty: "OKP", ...base, crv: full.crv!, x: full.x! };
    default:
      throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `key ${kid}: unsupported key type ${String(full.kty)}`);
  }
}

/** Loads a configured key; throws a message naming the kid (never the key) when it cannot sign with `alg`. */
export function loadSigningKey(kid: string, alg: SigningAlg, pem: string): SigningKey {
  const key = parse(pem);
  const problem = typeof key === "string" ? key : mismatch(key, alg);
  if (problem !== undefined || typeof key === "string") throw new VigilError("VIGIL_ERR_CONFIG_INVALID", `caep key ${kid}: ${problem}`);
  return { kid, alg, privateKey: key, jwk: publicJwk(key, kid, alg) };
}

/** The JWS signature (RFC 7515/7518/8037) of `signingInput` with `key`, base64url. */
export function jwsSignature(key: SigningKey, signingInput: string): string {
  const data = Buffer.from(signingInput, "ascii");
  let signature: Buffer;
  switch (key.alg) {
    case "ES256":
      // JWS wants the raw r||s pair, not DER.
      signature = sign("sha256", data, { key: key.privateKey, dsaEncoding: "ieee-p1363" });
      break;
    case "RS256":
      signature = sign("sha256", data, key.privateKey);
      break;
    case "PS256":
      signature = sign("sha256", data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      break;
    case "EdDSA":
      signature = sign(null, data, key.privateKey);
      break;
  }
  return signature.toString("base64url");
}
