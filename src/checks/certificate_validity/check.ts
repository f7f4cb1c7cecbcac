/**
 * The running half of certificate_validity, loaded on the first run so an agent without this
 * check never loads the ASN.1, TLS and revocation code.
 */
import type { Check } from "../../plugin/check.ts";
import type { CheckRunContext, PluginContext } from "../../plugin/context.ts";
import type { CheckResult, Subject } from "../../policy/model.ts";
import { errorMessage } from "../../errors.ts";
import { readPemOrDer } from "../../plugin/x509/pem.ts";
import { gather, KubernetesConnections, SourceError } from "./sources/index.ts";
import { PemFiles } from "./pem-files.ts";
import { TrustStore } from "./pki/path.ts";
import type { RevocationChecker } from "./revocation/index.ts";
import { evaluateCertificate, type CertVerdict } from "./evaluate.ts";
import { CERT_REASONS } from "./types.ts";
import { CertificateMetrics } from "./metrics.ts";
import { expectedIdentity, type CertificateValidityConfig } from "./config.ts";
import { createRevocationChecker, verifyChain, type ChainVerdict } from "./verify.ts";

/** The subject carries no identity while match_identity asks for one. */
class IdentityMissing extends Error {}

export function createCertificateCheck(config: CertificateValidityConfig, ctx: PluginContext): Check {
  {
    const metrics = new CertificateMetrics(ctx.meter);
    const roots = new PemFiles(config.trust_bundle, ctx.configDir);
    const extra = new PemFiles(config.intermediates, ctx.configDir);
    const crlFiles = new PemFiles(config.revocation.crl_files, ctx.configDir, config.revocation.max_crl_bytes);
    let store: TrustStore | undefined;
    const revocationFor = (local: Uint8Array[]) => createRevocationChecker(config, local, { http: ctx.http, clock: ctx.clock, logger: ctx.logger });
    let revocation: RevocationChecker | undefined;
    // Owned by this check: its API server clients end with it (reload, agent stop).
    const kubernetes = new KubernetesConnections(ctx.http);
    return {
      async run(subjects: readonly Subject[], run: CheckRunContext): Promise<CheckResult[]> {
        // Anchors, intermediates and local CRLs rotate on disk: pick up changes, rebuild only then.
        const [anchors, { ders: intermediates }, crls] = await Promise.all([roots.load(), extra.load(), crlFiles.load()]);
        if (!store || anchors.changed) store = new TrustStore(anchors.ders);
        if (!revocation || crls.changed) revocation = revocationFor(crls.ders);
        const trust = store;
        const results: CheckResult[] = [];
        let next = 0;
        const worker = async () => {
          while (next < subjects.length && !run.signal.aborted) {
            const subject = subjects[next++]!;
            results.push(await checkOne(subject, trust, intermediates, run));
          }
        };
        await Promise.all(Array.from({ length: Math.min(config.concurrency, subjects.length) }, worker));
        metrics.prune(run.clock.now() - 3 * run.ttlMs);
        return results;
      },
      stop: () => kubernetes.close(),
    };

    async function checkOne(subject: Subject, store: TrustStore, intermediates: Uint8Array[], run: CheckRunContext): Promise<CheckResult> {
      const now = run.clock.now();
      let origin: string | undefined;
      let verified: ChainVerdict | undefined;
      let verdict: CertVerdict;
      try {
        const got = await gather(config.source, subject, { kubernetes, configDir: ctx.configDir, signal: run.signal });
        origin = got.gathered.origin;
        const chain = got.gathered.chain.flatMap((c) => readPemOrDer(c));
        const [leaf, ...rest] = chain;
        if (!leaf) throw new SourceError("the source returned no certificate");
        const identity = config.match_identity ? expectedIdentity(subject) : undefined;
        if (config.match_identity && !identity) {
          throw new IdentityMissing(`subject "${subject.id}" has no identity to match the certificate against; give it one, or set match_identity: false`);
        }
        verified = await verifyChain(
          {
            leaf,
            // Trust comes from trust_bundle only: a bundle that sits next to the SVID can be written
            // by whoever writes the SVID, so its certificates may help build a path but never anchor one.
            intermediates: [...rest, ...(got.bundle ?? []), ...intermediates],
            store,
            at: now,
            ...(identity ? { identity } : {}),
            ...(got.gathered.stapledOcsp ? { stapledOcsp: got.gathered.stapledOcsp } : {}),
            origin,
            signal: run.signal,
          },
          config,
          revocation,
        );
        verdict = verified.verdict;
      } catch (err) {
        const evaluate = (e: Parameters<typeof evaluateCertificate>[0]) => evaluateCertificate(e);
        const base = { ...(origin ? { origin } : {}), now, warnBeforeMs: config.warn_before, softFail: config.revocation.soft_fail };
        if (err instanceof IdentityMissing) {
          verdict = evaluate({ ...base, validation: { valid: false, code: CERT_REASONS.CERT_NAME_MISMATCH, reason: err.message } });
        } else {
          const malformed = (err as Error).name === "CertParseError" || (err instanceof SourceError && err.malformed);
          verdict = evaluate({ ...base, gatherError: { code: malformed ? CERT_REASONS.CERT_MALFORMED : CERT_REASONS.CERT_SOURCE_UNAVAILABLE, message: errorMessage(err) } });
        }
      }
      if (verdict.status === "fail" || verdict.status === "unknown") metrics.error(verdict.reasons[0]?.code ?? "unknown");
      const leaf = verified?.validation.path?.[0];
      if (leaf) metrics.observe(subject.id, leaf.serial, Date.parse(leaf.not_after), now, verified?.revocation?.status ?? "not_checked");
      else metrics.forget(subject.id);
      const expires = Math.min(now + run.ttlMs, verdict.valid_until ?? Number.POSITIVE_INFINITY);
      return {
        check: "certificate_validity",
        subject: subject.id,
        status: verdict.status,
        reasons: verdict.reasons,
        evidence: verdict.evidence,
        observed_at: now,
        expires_at: expires,
        ...(verdict.next_run_at !== undefined ? { next_run_at: verdict.next_run_at } : {}),
        source: "pull",
      };
    }
  }
}
