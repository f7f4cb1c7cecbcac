/**
 * `vigil cert verify --batch`: one JSON line in, one verdict line out, judged by the check's own
 * verifyChain. Lines are judged in this process, or — for large files — by worker threads
 * (cert-worker.ts) that each run a BatchJudge, with the answers written back in input order.
 */
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { TrustStore } from "../checks/certificate_validity/pki/path.ts";
import type { RevocationChecker } from "../checks/certificate_validity/revocation/index.ts";
import type { ExpectedIdentity } from "../checks/certificate_validity/types.ts";
import { createRevocationChecker, verifyChain, type VerifyConfig } from "../checks/certificate_validity/verify.ts";
import { errorMessage } from "../errors.ts";
import type { HttpClient } from "../net/http.ts";
import { readPemOrDer } from "../plugin/x509/pem.ts";

interface BatchLine {
  id?: unknown;
  leaf?: unknown;
  intermediates?: unknown;
  roots?: unknown;
  at?: unknown;
  host?: unknown;
  ip?: unknown;
  email?: unknown;
  spiffe?: unknown;
  purpose?: unknown;
  profile?: unknown;
  max_depth?: unknown;
  crls?: unknown;
  key_usage?: unknown;
  extended_key_usage?: unknown;
  initial_policies?: unknown;
  require_explicit_policy?: unknown;
  inhibit_policy_mapping?: unknown;
  inhibit_any_policy?: unknown;
}

/** A problem with the line itself (not with a certificate): reported as BAD_INPUT. */
class BadInput extends Error {}

const optString = (v: unknown, field: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new BadInput(`${field} must be a string`);
  return v;
};

function batchAt(at: string): number {
  const t = Date.parse(at);
  if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(at)) throw new BadInput(`at must be an RFC 3339 time, got "${at}"`);
  return t;
}

function identityOf(o: BatchLine): ExpectedIdentity | undefined {
  const host = optString(o.host, "host");
  const ip = optString(o.ip, "ip");
  const email = optString(o.email, "email");
  const spiffe = optString(o.spiffe, "spiffe");
  if ([host, ip, email, spiffe].filter((v) => v !== undefined).length > 1) throw new BadInput("give at most one of host, ip, email, spiffe");
  if (host !== undefined) return { dns: host };
  if (ip !== undefined) {
    if (!isIP(ip)) throw new BadInput(`ip ${ip} is not an IP address`);
    return { ip };
  }
  if (email !== undefined) return { email };
  if (spiffe !== undefined) return { uri: spiffe };
  return undefined;
}

/** A bounded cache (inventories share a few roots, option sets and CRL sets). */
function memo<V>(max: number): (key: string, make: () => V) => V {
  const m = new Map<string, V>();
  return (key, make) => {
    let v = m.get(key);
    if (v === undefined) {
      v = make();
      if (m.size >= max) m.delete(m.keys().next().value!);
      m.set(key, v);
    }
    return v;
  };
}

const digest = (v: unknown) => createHash("sha256").update(JSON.stringify(v)).digest("hex");

export interface Judged {
  readonly line: string;
  readonly valid: boolean;
}

/** Judges batch lines against one base configuration (the command line's options). */
export class BatchJudge {
  readonly #baseRaw: Record<string, unknown>;
  readonly #base: VerifyConfig;
  readonly #baseCrls: readonly Uint8Array[];
  readonly #http: HttpClient;
  // Every line is judged at its own time: the revocation checkers read this clock.
  #now = Date.now();
  readonly #clock = { now: () => this.#now };
  readonly #stores = memo<TrustStore>(64);
  readonly #configs = memo<VerifyConfig>(64);
  readonly #checkers = memo<RevocationChecker>(64);
  // The same roots and intermediates come on every line: their PEM is decoded once.
  readonly #pem = memo<Uint8Array[]>(256);

  constructor(baseRaw: Record<string, unknown>, base: VerifyConfig, baseCrls: readonly Uint8Array[], http: HttpClient) {
    this.#baseRaw = baseRaw;
    this.#base = base;
    this.#baseCrls = baseCrls;
    this.#http = http;
  }

  #pems(v: unknown, field: string): Uint8Array[] {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new BadInput(`${field} must be an array of PEM strings`);
    return v.flatMap((p: string) => this.#pem(p, () => readPemOrDer(p)));
  }

  async #configFor(o: BatchLine): Promise<VerifyConfig> {
    const over = {
      purpose: o.purpose,
      profile: o.profile,
      max_depth: o.max_depth,
      key_usage: o.key_usage,
      extended_key_usage: o.extended_key_usage,
      initial_policies: o.initial_policies,
      require_explicit_policy: o.require_explicit_policy,
      inhibit_policy_mapping: o.inhibit_policy_mapping,
      inhibit_any_policy: o.inhibit_any_policy,
    };
    if (Object.values(over).every((x) => x === undefined)) return this.#base;
    // The schema (zod) is loaded only by batches whose lines set options of their own.
    const { verifyConfigSchema } = await import("../checks/certificate_validity/config.ts");
    return this.#configs(JSON.stringify(over), () => {
      const r = verifyConfigSchema.safeParse({ ...this.#baseRaw, ...Object.fromEntries(Object.entries(over).filter(([, x]) => x !== undefined)) });
      if (!r.success) {
        const i = r.error.issues[0]!;
        throw new BadInput(`${i.path.join(".")}: ${i.message}`);
      }
      return r.data;
    });
  }

  /** One input line → one output line. Never throws. */
  async judge(raw: string): Promise<Judged> {
    let id: unknown = null;
    try {
      let o: BatchLine;
      try {
        o = JSON.parse(raw) as BatchLine;
      } catch (err) {
        throw new BadInput(errorMessage(err));
      }
      if (o === null || typeof o !== "object") throw new BadInput("a line must be a JSON object");
      id = o.id ?? null;
      // Input fields first, so a bad line is reported as bad input rather than as a bad certificate.
      const at = o.at === undefined ? Date.now() : batchAt(optString(o.at, "at")!);
      if (typeof o.leaf !== "string") throw new BadInput("leaf must be a PEM string");
      const config = await this.#configFor(o);
      const identity = identityOf(o);
      const roots = Array.isArray(o.roots) ? o.roots : [];
      const store = this.#stores(roots.length === 1 && typeof roots[0] === "string" ? roots[0] : digest(roots), () => new TrustStore(this.#pems(o.roots, "roots")));
      const intermediates = this.#pems(o.intermediates, "intermediates");
      const crls = o.crls === undefined ? "" : digest(o.crls);
      const revocation = this.#checkers(config === this.#base && crls === "" ? "" : `${crls}\n${digest(config.revocation)}`, () =>
        createRevocationChecker(config, [...this.#baseCrls, ...this.#pems(o.crls, "crls")], { http: this.#http, clock: this.#clock }),
      );
      const [leaf, ...presented] = readPemOrDer(o.leaf);
      this.#now = at;
      const r = await verifyChain({ leaf: leaf!, intermediates: [...presented, ...intermediates], store, at, ...(identity ? { identity } : {}) }, config, revocation);
      const v = r.verdict;
      const valid = v.status === "pass" || v.status === "warn";
      return {
        valid,
        line: JSON.stringify(valid ? { id, valid: true, status: v.status, ...(v.reasons.length ? { notes: v.reasons.map((x) => x.code) } : {}) } : { id, valid: false, status: v.status, code: v.reasons[0]?.code, reason: v.reasons[0]?.message }),
      };
    } catch (err) {
      const code = err instanceof BadInput ? "BAD_INPUT" : "CERT_MALFORMED";
      return { valid: false, line: JSON.stringify({ id, valid: false, code, reason: errorMessage(err) }) };
    }
  }
}
