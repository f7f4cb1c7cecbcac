/**
 * certificate_validity: is the certificate each subject presents valid right now, issued under
 * the trust anchors we expect, for the identity the policy names, and not revoked?
 *
 * gather (sources/, revocation/: I/O) → validate (pki/: pure) → evaluate (evaluate.ts: pure).
 */
import type { Check, CheckFactory } from "../../plugin/check.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { CERT_REASONS } from "./types.ts";
import { certificateValidityConfigSchema, type CertificateValidityConfig } from "./config.ts";
import { yieldToLoop } from "../../util/yield.ts";

export { certificateValidityConfigSchema, expectedIdentity, type CertificateValidityConfig } from "./config.ts";

export const certificateValidityCheck: CheckFactory<CertificateValidityConfig> = {
  type: "certificate_validity",
  description: "X.509 path validation (RFC 5280, strict CA/B Forum profile by default), identity match, expiry and OCSP/CRL revocation of each subject's certificate.",
  configSchema: certificateValidityConfigSchema,
  reasons: Object.values(CERT_REASONS).map((code) => ({ code, doc: `see docs/checks.md (certificate_validity: ${code})` })),
  create(config: CertificateValidityConfig, ctx: PluginContext): Check {
    let impl: Promise<Check> | undefined;
    return {
      run: async (subjects, run) => (await (impl ??= loadImplementation().then((m) => m.createCertificateCheck(config, ctx)))).run(subjects, run),
      // Nothing to close when the check never ran.
      stop: async () => {
        if (impl !== undefined) await (await impl).stop?.();
      },
    };
  },
};

/**
 * The implementation, loaded on the first run in parts with a turn of the event loop before each:
 * the ASN.1 and X.509 modules, then the rest. In one go the load held the loop for ~20 ms right after
 * start (the default config's first pass), and a request that came in meanwhile (the first
 * `/readyz`) waited for all of it, and so did the other policies' first evaluations; in parts the
 * loop turns every 7–20 ms (BENCHMARKS.md, section 22).
 */
async function loadImplementation(): Promise<typeof import("./check.ts")> {
  await yieldToLoop();
  await import("../../plugin/x509/certificate.ts");
  await yieldToLoop();
  return import("./check.ts");
}
