/**
 * The running half of certificate_validity, loaded on the first run so an agent without this
 * check never loads the ASN.1, TLS and revocation code.
 */
import { readFile, glob, stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Check } from "../../plugin/check.ts";
import type { CheckRunContext, PluginContext } from "../../plugin/context.ts";
import type { CheckResult, Subject } from "../../policy/model.ts";
import { errorMessage } from "../../errors.ts";
import { gather, KubernetesSources, SourceError } from "./sources/index.ts";
import { splitPem } from "./pki/cert.ts";
import { validatePath, TrustStore } from "./pki/path.ts";
import { RevocationChecker } from "./revocation/index.ts";
import { evaluateCertificate } from "./evaluate.ts";
import { CERT_REASONS, type PathValidationResult, type RevocationResult } from "./types.ts";
import { CertificateMetrics } from "./metrics.ts";
import { expectedIdentity, type CertificateValidityConfig } from "./config.ts";

/** The subject carries no identity while match_identity asks for one. */
class IdentityMissing extends Error {}

/**
 * PEM files named by patterns (globs allowed), re-read only when the set of files or their
 * modification time or size changes: checks run once per batch and policy, and the trust bundle,
 * intermediates and CRLs rotate rarely.
 */
class PemFiles {
  readonly #patterns: readonly string[];
  readonly #baseDir: string;
  #stamp: string | undefined;
  #ders: Uint8Array[] = [];

  constructor(patterns: readonly string[], baseDir: string) {
    this.#patterns = patterns;
    this.#baseDir = baseDir;
  }

  /** The certificates or CRLs (DER), and whether they changed since the last call. */
  async load(): Promise<{ ders: Uint8Array[]; changed: boolean }> {
    const files: string[] = [];
    for (const pattern of this.#patterns) {
      const matched: string[] = [];
      for await (const f of glob(resolve(this.#baseDir, pattern))) matched.push(f);
      files.push(...(matched.length > 0 ? matched.sort() : [resolve(this.#baseDir, pattern)]));
    }
    const stats = await Promise.all(files.map((f) => stat(f)));
    const stamp = files.map((f, i) => `${f}:${stats[i]!.mtimeMs}:${stats[i]!.size}`).join("\n");
    if (stamp === this.#stamp) return { ders: this.#ders, changed: false };
    const ders: Uint8Array[] = [];
    for (const f of files) ders.push(...splitPem(await readFile(f)));
    this.#ders = ders;
    this.#stamp = stamp;
    return { ders, changed: true };
  }
}

export function createCertificateCheck(config: CertificateValidityConfig, ctx: PluginContext): Check {
  {
    const metrics = new CertificateMetrics(ctx.meter);
    const roots = new PemFiles(config.trust_bundle, ctx.configDir);
    const extra = new PemFiles(config.intermediates, ctx.configDir);
    const crlFiles = new PemFiles(config.revocation.crl_files, ctx.configDir);
    let store: TrustStore | undefined;
    const revocationFor = (local: Uint8Array[]) =>
      new RevocationChecker(
        {
          mode: config.revocation.mode,
          soft_fail: config.revocation.soft_fail,
          allow_private_urls: config.revocation.allow_private_urls,
          timeout_ms: config.revocation.timeout,
          max_ocsp_bytes: config.revocation.max_ocsp_bytes,
          max_crl_bytes: config.revocation.max_crl_bytes,
          crls: local,
        },
        { http: ctx.http, clock: ctx.clock, logger: ctx.logger },
      );
    let revocation: RevocationChecker | undefined;
    // Owned by this check: its API server clients end with it (reload, agent stop).
    const kubernetes = new KubernetesSources(ctx.http);
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

    /**
     * Every link but the anchor: a revoked intermediate revokes what it issued. The worst answer
     * wins (revoked, then unknown); the earliest valid_until bounds them all.
     */
    async function revocationOfPath(path: readonly Uint8Array[], stapled: Uint8Array | undefined, signal: AbortSignal): Promise<RevocationResult> {
      let out: RevocationResult | undefined;
      for (let i = 0; i + 1 < path.length; i++) {
        const r = await revocation!.check(path[i]!, path[i + 1]!, { ...(i === 0 && stapled ? { stapled } : {}), signal });
        const here = i === 0 ? r : { ...r, ...(r.reason ? { reason: `chain[${i}]: ${r.reason}` } : { reason: `chain[${i}]` }) };
        if (r.status === "revoked") return here;
        const until = Math.min(out?.valid_until ?? Infinity, r.valid_until ?? Infinity);
        const worse = !out || (r.status === "unknown" && out.status !== "unknown") ? here : out;
        out = { ...worse, ...(Number.isFinite(until) ? { valid_until: until } : {}) };
      }
      return out ?? { status: "not_checked" };
    }

    async function checkOne(subject: Subject, store: TrustStore, intermediates: Uint8Array[], run: CheckRunContext): Promise<CheckResult> {
      const now = run.clock.now();
      let origin: string | undefined;
      let validation: PathValidationResult | undefined;
      let rev: RevocationResult | undefined;
      let gatherError: { code: "CERT_SOURCE_UNAVAILABLE" | "CERT_MALFORMED"; message: string } | undefined;
      try {
        const got = await gather(config.source, subject, { kubernetes, configDir: ctx.configDir, signal: run.signal });
        origin = got.gathered.origin;
        const chain = got.gathered.chain.flatMap((c) => splitPem(c));
        const [leaf, ...rest] = chain;
        if (!leaf) throw new SourceError("the source returned no certificate");
        const identity = config.match_identity ? expectedIdentity(subject) : undefined;
        if (config.match_identity && !identity) {
          throw new IdentityMissing(`subject "${subject.id}" has no identity to match the certificate against; give it one, or set match_identity: false`);
        }
        validation = validatePath({
          leaf,
          // Trust comes from trust_bundle only: a bundle that sits next to the SVID can be written
          // by whoever writes the SVID, so its certificates may help build a path but never anchor one.
          intermediates: [...rest, ...(got.bundle ?? []), ...intermediates],
          roots: store,
          at: new Date(now),
          purpose: config.purpose,
          extendedKeyUsage: config.extended_key_usage,
          keyUsage: config.key_usage,
          maxDepth: config.max_depth,
          ...(identity ? { identity } : {}),
          keyPolicy: config.key_policy,
        });
        if (validation.valid && config.revocation.mode !== "none" && validation.pathDer && validation.pathDer.length > 1) {
          rev = await revocationOfPath(validation.pathDer, got.gathered.stapledOcsp, run.signal);
        }
      } catch (err) {
        if (err instanceof IdentityMissing) {
          validation = { valid: false, code: CERT_REASONS.CERT_NAME_MISMATCH, reason: err.message };
        } else {
          const malformed = (err as Error).name === "CertParseError";
          gatherError = { code: malformed ? CERT_REASONS.CERT_MALFORMED : CERT_REASONS.CERT_SOURCE_UNAVAILABLE, message: errorMessage(err) };
        }
      }
      const verdict = evaluateCertificate({
        ...(gatherError ? { gatherError } : {}),
        ...(validation ? { validation } : {}),
        ...(rev ? { revocation: rev } : {}),
        ...(origin ? { origin } : {}),
        now,
        warnBeforeMs: config.warn_before,
        softFail: config.revocation.soft_fail,
      });
      if (verdict.status === "fail" || verdict.status === "unknown") metrics.error(verdict.reasons[0]?.code ?? "unknown");
      const leaf = validation?.path?.[0];
      if (leaf) metrics.observe(subject.id, leaf.serial, Date.parse(leaf.not_after), now, rev?.status ?? "not_checked");
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
