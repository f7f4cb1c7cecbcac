/**
 * How vigil reaches an Okta org, shared by the Okta actions' provider (`providers.okta`) and the
 * Okta sources of inventories and checks: the org URL and its credentials, either an SSWS API
 * token or an OAuth 2.0 service app signing `private_key_jwt` client assertions. Messages never
 * quote a token or a key.
 */
import { createPrivateKey } from "node:crypto";
import { z } from "zod";

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** Why `text` cannot be an Okta URL, or undefined. Plain http is accepted for loopback only, so local test servers work. */
function urlProblem(text: string): string | undefined {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return "expected an https URL";
  }
  if (u.protocol !== "https:" && !(u.protocol === "http:" && isLoopback(u.hostname))) return "must use https (http is accepted only for a loopback address)";
  if (u.username || u.password) return "must not contain credentials";
  if (u.search || u.hash) return "must not contain a query or fragment";
  return undefined;
}

/** An https URL (http to loopback only) without credentials, query or fragment. */
export const oktaHttpsUrl = () =>
  z.string().superRefine((s, ctx) => {
    const problem = urlProblem(s);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** `org_url`: the org's origin, e.g. `https://example.okta.com`. */
export const oktaOrgUrl = () =>
  oktaHttpsUrl()
    .refine((s) => !URL.canParse(s) || new URL(s).pathname.replace(/\/+$/, "") === "", { error: "expected the org URL without a path, like https://example.okta.com" })
    .transform((s) => new URL(s).origin);

/** Why a PEM cannot sign Okta client assertions, or undefined. Never quotes the key. */
function privateKeyProblem(pem: string): string | undefined {
  let key;
  try {
    key = createPrivateKey(pem);
  } catch {
    return "expected a PEM private key (-----BEGIN PRIVATE KEY----- …)";
  }
  if (key.asymmetricKeyType === "rsa") {
    return (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048 ? "RSA keys must have at least 2048 bits" : undefined;
  }
  // The shared signer uses ES256 for EC keys, which is only correct on P-256.
  if (key.asymmetricKeyType === "ec") return key.asymmetricKeyDetails?.namedCurve === "prime256v1" ? undefined : "EC keys must be on the P-256 curve";
  return `unsupported key type ${key.asymmetricKeyType ?? "unknown"} (use RSA or EC P-256)`;
}

const noLineBreaks = (s: string) => !/[\r\n\0]/.test(s);

export const sswsAuthSchema = z
  .object({
    type: z.literal("ssws"),
    /** The API token, sent as `Authorization: SSWS <token>`. Required; use `${file:…}` or `${env:…}`. */
    token: z.string().min(1).refine(noLineBreaks, { error: "must not contain line breaks" }),
  })
  .strict();

/** An OAuth scope name such as `okta.users.read`. */
export const oktaScope = () => z.string().regex(/^[A-Za-z0-9_.:-]+$/, { error: "expected a scope name like okta.users.manage" });

/** The service-app block; `defaultScopes` are requested when `scopes` is not set. */
export const oauthAuthSchema = (defaultScopes: readonly string[]) =>
  z
    .object({
      type: z.literal("oauth"),
      /** Client ID of the API service app. Required. */
      client_id: z.string().min(1).refine(noLineBreaks, { error: "must not contain line breaks" }),
      /** PEM private key (RSA ≥ 2048 bits, or EC P-256) whose public key is registered with the app. Required; use `${file:…}`. */
      private_key: z.string().superRefine((pem, ctx) => {
        const problem = privateKeyProblem(pem);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
      /** `kid` of the public key registered with the app. Default: none (Okta then tries the app's keys). */
      key_id: z.string().min(1).refine(noLineBreaks, { error: "must not contain line breaks" }).optional(),
      /** Scopes requested with the token (the default depends on who uses the block). */
      scopes: z.array(oktaScope()).min(1).default([...defaultScopes]),
      /** Token endpoint of the org authorization server. Default `<org_url>/oauth2/v1/token`. */
      token_url: oktaHttpsUrl().optional(),
    })
    .strict();

/** `auth:` — `{type: ssws, token}` or `{type: oauth, client_id, private_key, key_id?, scopes?, token_url?}`. */
export const oktaAuthSchema = (defaultScopes: readonly string[]) => z.discriminatedUnion("type", [sswsAuthSchema, oauthAuthSchema(defaultScopes)]);

export type OktaAuth = z.output<ReturnType<typeof oktaAuthSchema>>;
