/**
 * `vault:revoke_certificate`: revokes the subject's certificate in Vault's PKI secrets engine
 * (`POST /v1/<mount>/revoke`) and reads it back (`GET /v1/<mount>/cert/<serial>`) to verify that
 * Vault records a revocation time. Revocation is permanent: there is no revert, so this belongs
 * under `enforcement.deny` only.
 *
 * The serial comes from the decision's evidence when the certificate check reported the
 * certificate it saw, else from a template on the subject.
 */
import { z } from "zod";
import { errorMessage, isTransient } from "../../errors.ts";
import type { HttpResponse } from "../../http/client.ts";
import type { Action, ActionContext, ActionFactory, ActionOutcome, ActionRequest, PlannedCall } from "../contract.ts";
import type { ApiCall } from "../provider.ts";
import { jsonCall } from "../common/api-client.ts";
import { fromSubject, templateString } from "../common/input.ts";
import type { VaultClient } from "./client.ts";
import { normalizeSerial, serialFromEvidence } from "./serial.ts";

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

/** The serial to revoke, in Vault's form, and where it came from. */
export function certificateSerial(config: RevokeCertificateConfig, req: ActionRequest): { serial: string; from: "evidence" | "template" } {
  const evidence = config.evidence_check === false ? undefined : serialFromEvidence(req.decision.evidence, config.evidence_check);
  if (evidence !== undefined) return { serial: normalizeSerial(evidence), from: "evidence" };
  return { serial: normalizeSerial(fromSubject(config.serial, req.subject)), from: "template" };
}

interface VaultEnvelope {
  readonly data?: { readonly revocation_time?: unknown; readonly revocation_time_rfc3339?: unknown } | null;
  readonly warnings?: readonly string[] | null;
}

function revokedAt(body: VaultEnvelope | undefined): number {
  const t = Number(body?.data?.revocation_time ?? 0);
  return Number.isFinite(t) ? t : 0;
}

function calls(client: VaultClient, serial: string): { revoke: ApiCall; read: ApiCall } {
  return {
    revoke: jsonCall("POST", client.mountUrl("revoke"), { serial_number: serial }, {
      headers: client.callHeaders(),
      summary: `revoke certificate ${serial} in ${client.config.mount} (permanent; Vault answers 200 again if it is already revoked)`,
    }),
    read: { method: "GET", url: client.mountUrl(`cert/${serial}`), headers: client.callHeaders(), accept: [404], summary: `read certificate ${serial} back to verify its revocation_time` },
  };
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
      throw new Error("vault:revoke_certificate needs a vault provider: add providers.vault (or name one with `provider:`)");
    }
    const client = provider as VaultClient;

    const plan = (req: ActionRequest): PlannedCall[] => {
      const { revoke, read } = calls(client, certificateSerial(config, req).serial);
      return [client.describe(revoke), client.describe(read)];
    };

    const apply = async (req: ActionRequest): Promise<ActionOutcome> => {
      const { serial, from } = certificateSerial(config, req);
      const { revoke, read } = calls(client, serial);
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
