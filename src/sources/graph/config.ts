/**
 * The app registration vigil signs in as to Microsoft Graph (OAuth 2.0 client credentials against the
 * Microsoft identity platform), shared by everything that reads or writes Graph: the `entra` provider
 * of the actions, and the sources (Intune devices, Entra users) of checks and inventories. National
 * clouds change both URLs.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { z } from "zod";
import type { ClientAuth } from "../../net/oauth.ts";
import { baseUrl } from "../common/config.ts";

/** Object ids of directory objects (users, groups, devices) and application ids are GUIDs. */
export const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
/** Multi-tenant aliases: the client credentials grant needs the one tenant the app acts in. */
const TENANT_ALIASES = ["common", "organizations", "consumers"];

export const DEFAULT_LOGIN_URL = "https://login.microsoftonline.com";
export const DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0";

function pemKey(text: string): KeyObject | undefined {
  try {
    return createPrivateKey(text);
  } catch {
    return undefined;
  }
}

function pemCertificate(text: string): X509Certificate | undefined {
  try {
    return new X509Certificate(text);
  } catch {
    return undefined;
  }
}

/**
 * `auth:` either `{client_secret}` (sent as `client_secret_post`) or `{certificate, private_key}`
 * (a `private_key_jwt` client assertion whose `x5t` names the certificate uploaded to the app
 * registration, which Entra calls a certificate credential). Messages never quote the values.
 */
export const entraAuthSchema = z
  .object({
    /** Client secret of the app registration. Use `${file:…}` or `${env:…}`. */
    client_secret: z.string().min(1).optional(),
    /** PEM certificate uploaded to the app registration (Certificates & secrets). With `private_key`. */
    certificate: z.string().min(1).optional(),
    /** PEM private key (RSA, unencrypted) of `certificate`. Use `${file:…}`. */
    private_key: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    const secret = a.client_secret !== undefined;
    const cert = a.certificate !== undefined || a.private_key !== undefined;
    if (secret === cert) {
      ctx.addIssue({ code: "custom", message: "set either client_secret, or certificate and private_key" });
      return;
    }
    if (!cert) return;
    if (a.certificate === undefined || a.private_key === undefined) {
      const missing = a.certificate === undefined ? "certificate" : "private_key";
      ctx.addIssue({ code: "custom", path: [missing], message: missing === "certificate" ? "private_key needs the certificate registered for it" : "certificate needs its private_key" });
      return;
    }
    const x509 = pemCertificate(a.certificate);
    const key = pemKey(a.private_key);
    if (!x509) ctx.addIssue({ code: "custom", path: ["certificate"], message: "not a PEM X.509 certificate" });
    if (!key) ctx.addIssue({ code: "custom", path: ["private_key"], message: "not an unencrypted PEM private key" });
    if (!x509 || !key) return;
    // Entra signs and checks certificate credentials with RSA (RS256).
    if (key.asymmetricKeyType !== "rsa") ctx.addIssue({ code: "custom", path: ["private_key"], message: `Entra certificate credentials need an RSA key, not ${key.asymmetricKeyType ?? "this key type"}` });
    else if (!x509.checkPrivateKey(key)) ctx.addIssue({ code: "custom", path: ["private_key"], message: "does not belong to the certificate" });
  });

export type EntraAuth = z.output<typeof entraAuthSchema>;

/**
 * The keys that name a Graph app registration and where Graph lives, as `providers.entra` and every
 * Graph source spell them, so one block can be copied (or YAML-anchored) between them.
 */
export const graphAppShape = {
  /** Directory (tenant) id: a GUID, or a verified domain such as `contoso.onmicrosoft.com`. Required. */
  tenant_id: z
    .string()
    .refine((s) => GUID_RE.test(s) || DOMAIN_RE.test(s), { error: "expected the tenant's GUID or a verified domain name" })
    .refine((s) => !TENANT_ALIASES.includes(s.toLowerCase()), { error: "name the tenant itself: client credentials do not work with common/organizations/consumers" }),
  /** Application (client) id of the app registration: a GUID. Required. */
  client_id: z.string().regex(GUID_RE, { error: "expected the application (client) id, a GUID" }),
  /** `{client_secret}` or `{certificate, private_key}`. Required. */
  auth: entraAuthSchema,
  /** Microsoft identity platform authority; the token URL is `<login_url>/<tenant_id>/oauth2/v2.0/token`. Default `https://login.microsoftonline.com`. */
  login_url: baseUrl().default(DEFAULT_LOGIN_URL),
  /** Microsoft Graph base URL, version included; the token scope is `<origin>/.default`. Default `https://graph.microsoft.com/v1.0`. */
  graph_url: baseUrl().default(DEFAULT_GRAPH_URL),
};

/** A Graph app registration after validation. */
export interface GraphApp {
  readonly tenant_id: string;
  readonly client_id: string;
  readonly auth: EntraAuth;
  readonly login_url: string;
  readonly graph_url: string;
}

/** `<login_url>/<tenant>/oauth2/v2.0/token`. */
export function tokenUrlFor(loginUrl: string, tenant: string): string {
  return `${loginUrl}/${encodeURIComponent(tenant)}/oauth2/v2.0/token`;
}

/** The `.default` scope of the Graph deployment `graph_url` points at (national clouds have their own origin). */
export function scopeFor(graphUrl: string): string {
  return `${new URL(graphUrl).origin}/.default`;
}

/** The client authentication an app registration's `auth` block asks for. */
export function clientAuth(auth: EntraAuth): ClientAuth {
  if (auth.client_secret !== undefined) return { method: "client_secret_post", client_secret: auth.client_secret };
  // The schema guarantees both halves of a certificate credential are present.
  return { method: "private_key_jwt", private_key: auth.private_key!, certificate: auth.certificate! };
}
