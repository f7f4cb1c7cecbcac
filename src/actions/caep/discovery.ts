/**
 * What receivers fetch to trust the transmitter: the JWKS with the public signing keys and the
 * SSF 1.0 Transmitter Configuration Metadata. Pure functions of the issuer and the keys.
 *
 * No stream management endpoints are advertised: receivers are configured statically in
 * `providers.caep.receivers`, so configuration, status, subject and verification endpoints are
 * omitted (SSF 1.0 makes them optional).
 */
import type { PublicDocument } from "../../plugin/provider.ts";
import type { PublicJwk, SigningKey } from "./keys.ts";

export const JWKS_PATH = "/.well-known/jwks.json";
export const SSF_CONFIGURATION_PATH = "/.well-known/ssf-configuration";
/** RFC 8935 push delivery, as SSF names delivery methods. */
export const PUSH_DELIVERY_METHOD = "urn:ietf:rfc:8935";

export interface Jwks {
  readonly keys: readonly PublicJwk[];
}

/** SSF 1.0 Transmitter Configuration Metadata, the members this transmitter offers. */
export interface SsfConfiguration {
  readonly spec_version: "1_0";
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly delivery_methods_supported: readonly string[];
}

/** The JWKS: every configured key's public members (kty, kid, use, alg and the key's own), never a private one. */
export function jwksDocument(keys: readonly Pick<SigningKey, "jwk">[]): Jwks {
  return { keys: keys.map((k) => ({ ...k.jwk })) };
}

/** The URL of the JWKS under an issuer. */
export function jwksUri(issuer: string): string {
  return new URL(JWKS_PATH, issuer).href;
}

/** The metadata document served at `/.well-known/ssf-configuration`. */
export function ssfConfiguration(issuer: string): SsfConfiguration {
  return {
    spec_version: "1_0",
    // Exactly as configured: SSF requires it to equal the `iss` of the SETs.
    issuer,
    jwks_uri: jwksUri(issuer),
    delivery_methods_supported: [PUSH_DELIVERY_METHOD],
  };
}

/** Both documents, keyed by the path the agent serves them at. Bodies are rendered per request. */
export function caepPublicDocuments(issuer: string, keys: () => readonly Pick<SigningKey, "jwk">[]): Record<string, PublicDocument> {
  return {
    // application/json rather than application/jwk-set+json: what receivers' JWKS fetchers expect.
    [JWKS_PATH]: { contentType: "application/json", body: () => JSON.stringify(jwksDocument(keys())) },
    [SSF_CONFIGURATION_PATH]: { contentType: "application/json", body: () => JSON.stringify(ssfConfiguration(issuer)) },
  };
}
