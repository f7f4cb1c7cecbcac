import { X509Certificate, createHash } from "node:crypto";
import { readFileSync, createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { isIP } from "node:net";
import { parse, out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./common.ts";
import { createHttpClient, type HttpClient } from "../net/http.ts";
import { readPemOrDer } from "../plugin/x509/pem.ts";
import { verifyConfigSchema } from "../checks/certificate_validity/config.ts";
import { PemFiles } from "../checks/certificate_validity/check.ts";
import { TrustStore } from "../checks/certificate_validity/pki/path.ts";
import { fromTls } from "../checks/certificate_validity/sources/tls.ts";
import { createRevocationChecker, verifyChain, type ChainVerdict, type VerifyConfig } from "../checks/certificate_validity/verify.ts";
import type { RevocationChecker } from "../checks/certificate_validity/revocation/index.ts";
import type { ExpectedIdentity } from "../checks/certificate_validity/types.ts";
import { errorMessage } from "../errors.ts";

export const help = `Usage:
  vigil cert inspect <file | host:port> [--servername NAME] [--json]
  vigil cert verify --roots FILE [--intermediates FILE] [--at RFC3339]
                    [--host NAME | --ip ADDR | --email ADDR | --spiffe ID]
                    [--purpose server|client|any] [--profile strict|rfc5280] [--max-depth N]
                    [--key-usage NAME]... [--eku NAME]... [--warn-before DURATION]
                    [--initial-policy OID]... [--require-explicit-policy]
                    [--inhibit-policy-mapping] [--inhibit-any-policy]
                    [--revocation prefer_ocsp|ocsp|crl|none] [--crl FILE]... [--hard-fail]
                    [--allow-private-urls] [--timeout DURATION] [--json] LEAF
  vigil cert verify --batch FILE|- [any option above but LEAF, as the default of every line]

inspect prints each certificate of a PEM/DER file, or the chain a TLS endpoint presents.

verify judges LEAF exactly as the certificate_validity check does, with the same defaults: the
options are the check's (purpose, profile, max_depth, key_usage, extended_key_usage, warn_before,
initial_policies, require_explicit_policy, inhibit_policy_mapping, inhibit_any_policy,
revocation.mode, revocation.crl_files, revocation.soft_fail, revocation.allow_private_urls,
revocation.timeout); --hard-fail is soft_fail false. Revocation follows the mode (default
prefer_ocsp: OCSP and CRLs the certificates name, local --crl files first), so it may go to the
network; --revocation none stays offline. Exit 0 valid (pass or warn), 1 invalid, 2 usage error.

--batch reads JSON lines {"id","leaf","intermediates":[PEM],"roots":[PEM],"at"?,"host"?,"ip"?,
"email"?,"spiffe"?,"purpose"?,"profile"?,"max_depth"?,"crls"?:[PEM],"key_usage"?,
"extended_key_usage"?} and writes one line per input {"id","valid","status","code"?,"reason"?,
"notes"?} as it goes. Exit 0 when all are valid, 1 otherwise.`;

export const cert: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === "inspect") return inspect(rest);
  if (sub === "verify") return verify(rest);
  throw new UsageError('cert takes a subcommand: "inspect" or "verify"');
};

function describe(der: Uint8Array) {
  const c = new X509Certificate(der);
  const key = c.publicKey.asymmetricKeyDetails ?? {};
  return {
    subject: c.subject.replace(/\n/g, ", "),
    issuer: c.issuer.replace(/\n/g, ", "),
    serial: c.serialNumber.toLowerCase(),
    not_before: c.validFromDate.toISOString(),
    not_after: c.validToDate.toISOString(),
    sans: c.subjectAltName?.split(", ") ?? [],
    ca: c.ca,
    key: `${c.publicKey.asymmetricKeyType}${key.modulusLength ? ` ${key.modulusLength}` : ""}${key.namedCurve ? ` ${key.namedCurve}` : ""}`,
    extended_key_usage: c.keyUsage ?? [],
    info_access: c.infoAccess?.split("\n").filter(Boolean) ?? [],
    fingerprint_sha256: c.fingerprint256,
  };
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: "boolean" }, servername: { type: "string" } }, true);
  const target = positionals[0];
  if (!target || positionals.length > 1) throw new UsageError("inspect takes one file or host:port");
  let ders: Uint8Array[];
  let origin = target;
  const hostPort = /^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/i.exec(target);
  let exists = true;
  try {
    readFileSync(target, { flag: "r" });
  } catch {
    exists = false;
  }
  if (!exists && hostPort) {
    const got = await fromTls({ host: hostPort[1]!.replace(/^\[|\]$/g, ""), port: Number(hostPort[2]), ...(values.servername ? { servername: values.servername } : {}), timeoutMs: 10_000 }, AbortSignal.timeout(15_000));
    ders = [...got.chain];
    origin = got.origin;
  } else {
    ders = readPemOrDer(readFileSync(target));
  }
  const certs = ders.map(describe);
  if (values.json) out(JSON.stringify({ origin, certificates: certs }, null, 2));
  else {
    certs.forEach((c, i) => {
      out(`${i === 0 ? "certificate" : `chain[${i}]`}: ${c.subject}`);
      out(`  issuer      ${c.issuer}`);
      out(`  serial      ${c.serial}`);
      out(`  valid       ${c.not_before} → ${c.not_after}`);
      if (c.sans.length) out(`  SANs        ${c.sans.join(", ")}`);
      out(`  key         ${c.key}${c.ca ? "   (CA)" : ""}`);
      if (c.extended_key_usage.length) out(`  EKU         ${c.extended_key_usage.join(", ")}`);
      for (const a of c.info_access) out(`  AIA         ${a}`);
      out(`  SHA-256     ${c.fingerprint_sha256}`);
    });
  }
  return EXIT_OK;
}

function identityOf(o: { host?: string | undefined; ip?: string | undefined; email?: string | undefined; spiffe?: string | undefined }): ExpectedIdentity | undefined {
  const given = [o.host, o.ip, o.email, o.spiffe].filter((v) => v !== undefined);
  if (given.length > 1) throw new UsageError("give at most one of --host, --ip, --email, --spiffe");
  if (o.host !== undefined) return { dns: o.host };
  if (o.ip !== undefined) {
    if (!isIP(o.ip)) throw new UsageError(`--ip ${o.ip} is not an IP address`);
    return { ip: o.ip };
  }
  if (o.email !== undefined) return { email: o.email };
  if (o.spiffe !== undefined) return { uri: o.spiffe };
  return undefined;
}

function parseAt(at: string | undefined, flag: string): number {
  if (at === undefined) return Date.now();
  const t = Date.parse(at);
  if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(at)) throw new UsageError(`${flag} must be an RFC 3339 time, got "${at}"`);
  return t;
}

/** The check's verification options, from flags (as the config file would spell them), and parsed: the same schema, so the same defaults. */
function configFrom(v: Record<string, unknown>, crlFiles: string[]): { raw: Record<string, unknown>; config: VerifyConfig } {
  const int = (x: unknown, flag: string) => {
    if (x === undefined) return undefined;
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer`);
    return n;
  };
  const raw = {
    ...(v.purpose !== undefined ? { purpose: v.purpose } : {}),
    ...(v.profile !== undefined ? { profile: v.profile } : {}),
    ...(v["max-depth"] !== undefined ? { max_depth: int(v["max-depth"], "--max-depth") } : {}),
    ...(v["key-usage"] !== undefined ? { key_usage: v["key-usage"] } : {}),
    ...(v.eku !== undefined ? { extended_key_usage: v.eku } : {}),
    ...(v["warn-before"] !== undefined ? { warn_before: v["warn-before"] } : {}),
    ...(v["initial-policy"] !== undefined ? { initial_policies: v["initial-policy"] } : {}),
    ...(v["require-explicit-policy"] ? { require_explicit_policy: true } : {}),
    ...(v["inhibit-policy-mapping"] ? { inhibit_policy_mapping: true } : {}),
    ...(v["inhibit-any-policy"] ? { inhibit_any_policy: true } : {}),
    revocation: {
      ...(v.revocation !== undefined ? { mode: v.revocation } : {}),
      ...(v["hard-fail"] ? { soft_fail: false } : {}),
      ...(v["allow-private-urls"] ? { allow_private_urls: true } : {}),
      ...(v.timeout !== undefined ? { timeout: v.timeout } : {}),
      crl_files: crlFiles,
    },
  };
  const r = verifyConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new UsageError(`${i.path.join(".") || "options"}: ${i.message}`);
  }
  return { raw, config: r.data };
}

const OPTIONS = {
  roots: { type: "string", multiple: true },
  intermediates: { type: "string", multiple: true },
  at: { type: "string" },
  host: { type: "string" },
  ip: { type: "string" },
  email: { type: "string" },
  spiffe: { type: "string" },
  purpose: { type: "string" },
  profile: { type: "string" },
  "max-depth": { type: "string" },
  "key-usage": { type: "string", multiple: true },
  eku: { type: "string", multiple: true },
  "warn-before": { type: "string" },
  "initial-policy": { type: "string", multiple: true },
  "require-explicit-policy": { type: "boolean" },
  "inhibit-policy-mapping": { type: "boolean" },
  "inhibit-any-policy": { type: "boolean" },
  revocation: { type: "string" },
  crl: { type: "string", multiple: true },
  "hard-fail": { type: "boolean" },
  "allow-private-urls": { type: "boolean" },
  timeout: { type: "string" },
  batch: { type: "string" },
  json: { type: "boolean" },
} as const;

/** PEM/DER files read as the check reads trust_bundle, intermediates and crl_files. */
async function loadFiles(patterns: readonly string[], maxBytes?: number): Promise<Uint8Array[]> {
  if (patterns.length === 0) return [];
  try {
    return (await new PemFiles(patterns, process.cwd(), maxBytes).load()).ders;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === "string" && code.startsWith("E")) throw new UsageError(`cannot read ${(err as NodeJS.ErrnoException).path ?? patterns.join(", ")}: ${code}`);
    throw err;
  }
}

function validOf(v: ChainVerdict["verdict"]): boolean {
  return v.status === "pass" || v.status === "warn";
}

async function verify(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, true);
  const { raw, config } = configFrom(values, values.crl ?? []);
  const http = createHttpClient({ userAgent: "vigil-cli" });
  try {
    if (values.batch !== undefined) {
      if (positionals.length > 0) throw new UsageError("--batch takes no leaf file");
      return await batch(values.batch, raw, config, await loadFiles(config.revocation.crl_files, config.revocation.max_crl_bytes), http);
    }
    const leafFile = positionals[0];
    if (!leafFile || positionals.length > 1) throw new UsageError("verify takes one leaf certificate file (or --batch)");
    if (!values.roots) throw new UsageError("verify needs --roots");
    const at = parseAt(values.at, "--at");
    const identity = identityOf(values);
    const [roots, intermediates, crls] = await Promise.all([loadFiles(values.roots), loadFiles(values.intermediates ?? []), loadFiles(config.revocation.crl_files, config.revocation.max_crl_bytes)]);
    let leafBytes: Buffer;
    try {
      leafBytes = readFileSync(leafFile);
    } catch (err) {
      throw new UsageError(`cannot read ${leafFile}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    let result: ChainVerdict | { error: string };
    try {
      const [leaf, ...presented] = readPemOrDer(leafBytes);
      const revocation = createRevocationChecker(config, crls, { http, clock: { now: () => at } });
      result = await verifyChain({ leaf: leaf!, intermediates: [...presented, ...intermediates], store: new TrustStore(roots), at, ...(identity ? { identity } : {}), origin: `file:${leafFile}` }, config, revocation);
    } catch (err) {
      result = { error: errorMessage(err) };
    }
    if ("error" in result) {
      if (values.json) out(JSON.stringify({ valid: false, status: "fail", code: "CERT_MALFORMED", reason: result.error }, null, 2));
      else out(`${leafFile}: CERT_MALFORMED: ${result.error}`);
      return EXIT_FAIL;
    }
    const v = result.verdict;
    const valid = validOf(v);
    const first = v.reasons[0];
    if (values.json) {
      out(JSON.stringify({ valid, status: v.status, ...(valid ? (v.reasons.length ? { notes: v.reasons } : {}) : { code: first?.code, reason: first?.message }), path: result.validation.path, ...(result.revocation ? { revocation: result.revocation } : {}) }, null, 2));
    } else if (valid) {
      const chain = result.validation.path ? ` (${result.validation.path.map((c) => c.subject).join(" ← ")})` : "";
      out(`${leafFile}: OK${v.status === "warn" ? " (warn)" : ""}${chain}`);
      for (const r of v.reasons) out(`  note ${r.code}: ${r.message}`);
    } else out(`${leafFile}: ${first?.code}: ${first?.message}`);
    return valid ? EXIT_OK : EXIT_FAIL;
  } finally {
    await http.close();
  }
}

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
}

const pems = (v: unknown, field: string): Uint8Array[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new TypeError(`${field} must be an array of PEM strings`);
  return v.flatMap((p: string) => readPemOrDer(p));
};
const optString = (v: unknown, field: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new TypeError(`${field} must be a string`);
  return v;
};

function batchAt(at: string): number {
  const t = Date.parse(at);
  if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(at)) throw new TypeError(`at must be an RFC 3339 time, got "${at}"`);
  return t;
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

const keyOf = (v: unknown) => (v === undefined ? "" : createHash("sha256").update(JSON.stringify(v)).digest("hex"));

async function batch(source: string, baseRaw: Record<string, unknown>, base: VerifyConfig, baseCrls: Uint8Array[], http: HttpClient): Promise<number> {
  const input = source === "-" ? process.stdin : createReadStream(source);
  const lines = createInterface({ input, crlfDelay: Infinity });
  // Every line is judged at its own time: the revocation checkers read this clock.
  let now = Date.now();
  const clock = { now: () => now };
  const stores = memo<TrustStore>(64);
  const configs = memo<VerifyConfig>(64);
  const checkers = memo<RevocationChecker>(64);
  const configFor = (o: BatchLine): VerifyConfig => {
    const over = { purpose: o.purpose, profile: o.profile, max_depth: o.max_depth, key_usage: o.key_usage, extended_key_usage: o.extended_key_usage };
    if (Object.values(over).every((x) => x === undefined)) return base;
    return configs(JSON.stringify(over), () => {
      const r = verifyConfigSchema.safeParse({ ...baseRaw, ...Object.fromEntries(Object.entries(over).filter(([, x]) => x !== undefined)) });
      if (!r.success) {
        const i = r.error.issues[0]!;
        throw new TypeError(`${i.path.join(".")}: ${i.message}`);
      }
      return r.data;
    });
  };
  let allValid = true;
  let buffer = "";
  const flush = () => {
    if (buffer) process.stdout.write(buffer);
    buffer = "";
  };
  for await (const raw of lines) {
    if (raw.trim() === "") continue;
    let id: unknown = null;
    let line: string;
    try {
      const o = JSON.parse(raw) as BatchLine;
      id = o.id ?? null;
      // Input fields first, so a bad line is reported as bad input rather than as a bad certificate.
      const at = o.at === undefined ? Date.now() : batchAt(optString(o.at, "at")!);
      if (typeof o.leaf !== "string") throw new TypeError("leaf must be a PEM string");
      const config = configFor(o);
      const identity = identityOf({ host: optString(o.host, "host"), ip: optString(o.ip, "ip"), email: optString(o.email, "email"), spiffe: optString(o.spiffe, "spiffe") });
      const [leaf, ...presented] = readPemOrDer(o.leaf);
      if (!leaf) throw new TypeError("leaf holds no certificate");
      const store = stores(keyOf(o.roots ?? []), () => new TrustStore(pems(o.roots, "roots")));
      const revocation = checkers(`${keyOf(o.crls)}\n${keyOf(config.revocation)}`, () => createRevocationChecker(config, [...baseCrls, ...pems(o.crls, "crls")], { http, clock }));
      now = at;
      const r = await verifyChain({ leaf, intermediates: [...presented, ...pems(o.intermediates, "intermediates")], store, at, ...(identity ? { identity } : {}) }, config, revocation);
      const v = r.verdict;
      const valid = validOf(v);
      if (!valid) allValid = false;
      line = JSON.stringify(valid ? { id, valid: true, status: v.status, ...(v.reasons.length ? { notes: v.reasons.map((x) => x.code) } : {}) } : { id, valid: false, status: v.status, code: v.reasons[0]?.code, reason: v.reasons[0]?.message });
    } catch (err) {
      allValid = false;
      const code = err instanceof SyntaxError || err instanceof TypeError || err instanceof UsageError ? "BAD_INPUT" : "CERT_MALFORMED";
      line = JSON.stringify({ id, valid: false, code, reason: errorMessage(err) });
    }
    buffer += line + "\n";
    if (buffer.length > 64 * 1024) flush();
  }
  flush();
  return allValid ? EXIT_OK : EXIT_FAIL;
}
