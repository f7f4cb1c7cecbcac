/**
 * `vault:revoke_certificate`: revokes the subject's certificate in Vault's PKI secrets engine
 * (`POST /v1/<mount>/revoke`) and reads it back (`GET /v1/<mount>/cert/<serial>`) to verify that
 * Vault records a revocation time. Revocation is permanent: there is no revert, so this belongs
 * under `enforcement.deny` only.
 *
 * The serial comes from the decision's evidence when the certificate check reported the
 * certificate it saw, else from a template on the subject. A serial from the evidence that comes with
 * the certificate's fingerprint is revoked only after `GET /v1/<mount>/cert/<serial>` shows Vault
 * holds that very certificate: a presented certificate can carry any serial.
 */
import { z } from "zod";
import { errorMessage, isTransient, VigilError } from "../../errors.ts";
import type { HttpResponse } from "../../net/http.ts";
import type { Action, ActionContext, ActionFactory, ActionOutcome, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { jsonCall } from "../../plugin/api-client.ts";
import { fromSubject, inputError, templateString } from "../common/input.ts";
import type { VaultClient } from "./client.ts";
import { certificateFromEvidence, normalizeSerial, pemFingerprint } from "./serial.ts";

export const DEFAULT_SERIAL_TEMPLATE = "{{attributes.certificate_serial}}";

export const revokeCertificateConfigSchema = z
  .object({
    /** Serial when the evidence has none: a template on the subject. Default `{{attributes.certificate_serial}}`. */
    serial: templateString().default(DEFAULT_SERIAL_TEMPLATE),
    /**
     * Name of the certificate check whose evidence carries the serial (`checks.<name>`), or `false`
     * to use only the `serial` template. Default `certificate_validity`.
     */
    evidence_check: z.union([z.string().regex(/^[a-z][a-z0-9_]*$/, { error: "check names are snake_case" }), z.literal(false)]).default("certificate_validity"),
  })
  .strict();

/** The validated `vault:revoke_certificate` entry. */
export type RevokeCertificateConfig = z.output<typeof revokeCertificateConfigSchema>;

/**
 * The serial to revoke, in Vault's form, where it came from and, for a serial from the evidence, the
 * fingerprint of the certificate the check saw (when it reported one).
 */
export function certificateSerial(config: RevokeCertificateConfig, req: ActionRequest): { serial: string; from: "evidence" | "template"; fingerprint?: string } {
  const evidence = config.evidence_check === false ? undefined : certificateFromEvidence(req.decision.evidence, config.evidence_check);
  if (evidence !== undefined) return { serial: normalizeSerial(evidence.serial), from: "evidence", ...(evidence.fingerprint ? { fingerprint: evidence.fingerprint } : {}) };
  return { serial: normalizeSerial(fromSubject(config.serial, req.subject)), from: "template" };
}

interface VaultEnvelope {
  readonly data?: { readonly revocation_time?: unknown; readonly revocation_time_rfc3339?: unknown; readonly certificate?: unknown } | null;
  readonly warnings?: readonly string[] | null;
}

function revokedAt(body: VaultEnvelope | undefined): number {
  const t = Number(body?.data?.revocation_time ?? 0);
  return Number.isFinite(t) ? t : 0;
}

function calls(client: VaultClient, serial: string, fingerprint: string | undefined): { match?: ApiCall; revoke: ApiCall; read: ApiCall } {
  return {
    ...(fingerprint
      ? { match: { method: "GET", url: client.mountUrl(`cert/${serial}`), headers: client.callHeaders(), accept: [404], summary: `read certificate ${serial} first: revoke only if it is the certificate the check saw (SHA-256 ${fingerprint})` } }
      : {}),
    revoke: jsonCall("POST", client.mountUrl("revoke"), { serial_number: serial }, {
      headers: client.callHeaders(),
      summary: `revoke certificate ${serial} in ${client.config.mount} (permanent; Vault answers 200 again if it is already revoked)`,
    }),
    read: { method: "GET", url: client.mountUrl(`cert/${serial}`), headers: client.callHeaders(), accept: [404], summary: `read certificate ${serial} back to verify its revocation_time` },
  };
}

/**
 * A serial from the evidence is what a certificate presented to the check said, and anyone can mint
 * a certificate carrying the serial of one Vault issued to someone else. Revoke only when Vault holds
 * that very certificate under the serial.
 */
async function checkSameCertificate(client: VaultClient, call: ApiCall, serial: string, fingerprint: string, signal: AbortSignal | undefined): Promise<void> {
  const res = await client.send(call, signal);
  if (res.status === 404) throw inputError(`vault:revoke_certificate: ${client.config.mount} holds no certificate with serial ${serial}, the one the check saw (SHA-256 ${fingerprint}); not revoking`);
  const pem = res.json<VaultEnvelope>()?.data?.certificate;
  const held = typeof pem === "string" ? pemFingerprint(pem) : undefined;
  if (held !== fingerprint) {
    throw inputError(`vault:revoke_certificate: the certificate ${client.config.mount} issued with serial ${serial} (SHA-256 ${held ?? "unreadable"}) is not the one the check saw (SHA-256 ${fingerprint}); not revoking`);
  }
}

export const revokeCertificateAction: ActionFactory<RevokeCertificateConfig> = {
  type: "vault:revoke_certificate",
  description: "Revoke the subject's certificate in a Vault PKI mount by serial (permanent; use under deny only).",
  requiredPermissions: ['path "<mount>/revoke" { capabilities = ["update"] }', 'path "<mount>/cert/*" { capabilities = ["read"] }'],
  example: { type: "vault:revoke_certificate", serial: DEFAULT_SERIAL_TEMPLATE, evidence_check: "certificate_validity" },
  configSchema: revokeCertificateConfigSchema,
  revertible: false,
  provider: "vault",
  create(config: RevokeCertificateConfig, ctx: ActionContext): Action {
    const provider = ctx.provider;
    if (!provider || provider.type !== "vault" || !("mountUrl" in provider)) {
      throw new VigilError("VIGIL_ERR_CONFIG_INVALID", "vault:revoke_certificate needs a vault provider: add providers.vault (or name one with `provider:`)");
    }
    const client = provider as VaultClient;

    const plan = (req: ActionRequest): PlannedCall[] => {
      const { serial, fingerprint } = certificateSerial(config, req);
      const { match, revoke, read } = calls(client, serial, fingerprint);
      return [...(match ? [client.describe(match)] : []), client.describe(revoke), client.describe(read)];
    };

    const apply = async (req: ActionRequest): Promise<ActionOutcome> => {
      const { serial, from, fingerprint } = certificateSerial(config, req);
      const { match, revoke, read } = calls(client, serial, fingerprint);
      if (match && fingerprint) await checkSameCertificate(client, match, serial, fingerprint, req.signal);
      const answer = (await client.send(revoke, req.signal)).json<VaultEnvelope>();
      let res: HttpResponse | undefined;
      let readError: string | undefined;
      try {
        res = await client.send(read, req.signal);
      } catch (err) {
        // The revocation stands; a token that may revoke but not read (403) must not turn it into a failed job.
        if (isTransient(err)) throw err;
        readError = errorMessage(err);
      }
      const cert = res === undefined || res.status === 404 ? undefined : res.json<VaultEnvelope>();
      const at = revokedAt(cert) || revokedAt(answer);
      const warnings = (answer?.warnings ?? []).filter((w) => typeof w === "string").slice(0, 3);
      return {
        verified: revokedAt(cert) > 0,
        detail: {
          serial,
          serial_from: from,
          ...(fingerprint ? { fingerprint_sha256: fingerprint } : {}),
          mount: client.config.mount,
          ...(at > 0 ? { revoked_at: new Date(at * 1000).toISOString() } : {}),
          ...(res?.status === 404 ? { certificate: "not found in the mount" } : {}),
          ...(readError ? { verify_error: readError } : {}),
          // e.g. "certificate with serial … already expired; refusing to add to CRL"
          ...(warnings.length ? { warnings } : {}),
        },
      };
    };

    return { plan, apply };
  },
};
