/** `providers.caep`: the transmitter's issuer, signing keys and statically configured receivers. */
import { z } from "zod";
import { circuitSchema } from "../../plugin/circuit.ts";
import { templateString } from "../common/input.ts";
import { keyProblem, SIGNING_ALGS } from "./keys.ts";
import { SUBJECT_FORMATS } from "./subject.ts";
import { callTimeout } from "../../plugin/schema.ts";

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const KID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

const issuerSchema = z.string().superRefine((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected an https URL" });
    return;
  }
  if (u.protocol !== "https:") ctx.addIssue({ code: "custom", message: "the issuer must use https (SSF 1.0)" });
  if (u.username || u.password) ctx.addIssue({ code: "custom", message: "the issuer may not hold credentials" });
  // The agent serves /.well-known/ssf-configuration and /.well-known/jwks.json at the root of its
  // API listener, which is where SSF discovery looks for an issuer without a path.
  if (u.pathname !== "/" || u.search || u.hash || s.includes("?") || s.includes("#")) {
    ctx.addIssue({ code: "custom", message: "the issuer must be an origin without path, query or fragment, like https://vigil.example.com" });
  }
});

const endpointSchema = z.string().superRefine((s, ctx) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected an https URL" });
    return;
  }
  // RFC 8935 requires TLS; plain http only reaches this host (a local relay, tests).
  const ok = u.protocol === "https:" || (u.protocol === "http:" && LOOPBACK_HOSTS.test(u.hostname));
  if (!ok) ctx.addIssue({ code: "custom", message: "expected an https URL (http only for localhost)" });
  if (u.username || u.password) ctx.addIssue({ code: "custom", message: "put credentials in `authorization`, not in the URL" });
  if (u.hash) ctx.addIssue({ code: "custom", message: "the endpoint may not have a fragment" });
});

const headerValue = z
  .string()
  .min(1)
  .refine((v) => !/[\r\n\0]/.test(v), { error: "header values may not contain CR, LF or NUL" });

/** `subject:` of a receiver: which RFC 9493 identifier it knows subjects by. */
export const subjectSchema = z
  .object({
    /** RFC 9493 format: email, opaque, iss_sub, did, uri, phone_number or account. Default `email`. */
    format: z.enum(SUBJECT_FORMATS).default("email"),
    /**
     * Template of the identifier value. Default per format: email `{{attributes.email}}`, opaque and
     * iss_sub `{{id}}`, did `{{attributes.did}}`, uri `{{identity}}`, phone_number
     * `{{attributes.phone_number}}`, account `acct:{{attributes.email}}`.
     */
    from: templateString().optional(),
    /** The issuer an `iss_sub` subject belongs to (e.g. the IdP's issuer). Required for iss_sub, refused otherwise. */
    iss: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.format === "iss_sub" && !s.iss) ctx.addIssue({ code: "custom", path: ["iss"], message: "iss_sub subjects need iss" });
    if (s.format !== "iss_sub" && s.iss !== undefined) ctx.addIssue({ code: "custom", path: ["iss"], message: "only iss_sub subjects take iss" });
  })
  .prefault({});

/** One SET receiver (RFC 8935 push endpoint). */
export const receiverSchema = z
  .object({
    /** Name that actions pick receivers by. Required; letters, digits, `_ . -`. */
    name: z.string().regex(NAME_RE, { error: "letters, digits, _ . - only (at most 64)" }),
    /** Push endpoint URL the SETs are POSTed to. Required; https (http only for localhost). */
    endpoint: endpointSchema,
    /** `aud` of the SETs: a string or a list. Default the endpoint's origin. */
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** Value of the `Authorization` header the receiver requires (SSF `authorization_header`). Default none. Secret. */
    authorization: headerValue.optional(),
    /** How the receiver identifies subjects. Default `{format: email}`. */
    subject: subjectSchema,
  })
  .strict();

/** One signing key. */
export const keySchema = z
  .object({
    /** Key ID, published in the JWKS and sent as the JWS `kid`. Required. */
    kid: z.string().regex(KID_RE, { error: "letters, digits, _ . : - only (at most 128)" }),
    /** JWS algorithm: ES256 (EC P-256), RS256 or PS256 (RSA ≥ 2048 bits), EdDSA (Ed25519/Ed448). Default ES256. */
    alg: z.enum(SIGNING_ALGS).default("ES256"),
    /** The private key, unencrypted PEM. Required; use `${file:…}`. Secret. */
    private_key: z.string().min(1),
  })
  .strict()
  .superRefine((k, ctx) => {
    const problem = keyProblem(k.private_key, k.alg);
    if (problem) ctx.addIssue({ code: "custom", path: ["private_key"], message: problem });
  });

export const caepProviderSchema = z
  .object({
    /** The transmitter's issuer: `iss` of every SET and the origin receivers fetch the SSF metadata and JWKS from. Required; an https origin. */
    issuer: issuerSchema,
    /** Signing keys, all published in the JWKS (keep the old key listed while receivers move to a new one). Required, at least one. */
    keys: z.array(keySchema).min(1),
    /**
     * `kid` of the key that signs. Default the first key. Not named `signing_key`: the loader treats
     * `*_key` values as secrets and would mask the kid (and any text containing it) everywhere.
     */
    signing_kid: z.string().optional(),
    /** Receivers, configured statically (no SSF stream management). Required, at least one. */
    receivers: z.array(receiverSchema).min(1),
    /** Circuit breaker over all receivers of this provider. Default 5 failures, 30s, up to 5m. */
    circuit: circuitSchema,
    /** Deadline per push, as a duration, at most 5m. Default `10s`. */
    timeout: callTimeout(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const kids = new Set<string>();
    c.keys.forEach((k, i) => {
      if (kids.has(k.kid)) ctx.addIssue({ code: "custom", path: ["keys", i, "kid"], message: `kid "${k.kid}" is used twice` });
      kids.add(k.kid);
    });
    if (c.signing_kid !== undefined && !kids.has(c.signing_kid)) {
      ctx.addIssue({ code: "custom", path: ["signing_kid"], message: `no key has kid "${c.signing_kid}"; known: ${[...kids].join(", ")}` });
    }
    const names = new Set<string>();
    const authByEndpoint = new Map<string, string | undefined>();
    c.receivers.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: "custom", path: ["receivers", i, "name"], message: `receiver name "${r.name}" is used twice` });
      names.add(r.name);
      // The Authorization header is chosen by endpoint, so receivers sharing one must share it too.
      if (authByEndpoint.has(r.endpoint) && authByEndpoint.get(r.endpoint) !== r.authorization) {
        ctx.addIssue({ code: "custom", path: ["receivers", i, "authorization"], message: "receivers with the same endpoint must use the same authorization" });
      }
      authByEndpoint.set(r.endpoint, r.authorization);
    });
  });

/** The validated `providers.caep` entry; `timeout` and circuit durations in milliseconds. */
export type CaepProviderConfig = z.output<typeof caepProviderSchema>;
export type ReceiverConfig = CaepProviderConfig["receivers"][number];
