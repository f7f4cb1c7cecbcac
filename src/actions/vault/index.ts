/** HashiCorp Vault: the `vault` provider and its PKI certificate revocation action. */
import { vaultProvider } from "./client.ts";
import { revokeCertificateAction } from "./revoke-certificate.ts";

export { VaultClient, vaultProvider, vaultProviderSchema, type VaultProviderConfig } from "./client.ts";
export { certificateSerial, revokeCertificateAction, revokeCertificateConfigSchema, type RevokeCertificateConfig } from "./revoke-certificate.ts";
export { certificateFromEvidence, normalizeSerial, pemFingerprint, serialFromEvidence } from "./serial.ts";

export const provider = vaultProvider;
export const actions = [revokeCertificateAction] as const;
