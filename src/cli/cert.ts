import { createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync, createReadStream, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { isIP } from "node:net";
import { Worker } from "node:worker_threads";
import { parse, out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./args.ts";
import { createHttpClient, type HttpClient } from "../net/http.ts";
import { CERTIFICATE_LABELS, readPemOrDer } from "../plugin/x509/pem.ts";
import { ParsedCertificate } from "../plugin/x509/certificate.ts";
import { ParsedCrl } from "../plugin/x509/crl.ts";
import { EKU_NAME_BY_OID } from "../plugin/x509/oids.ts";
import { verifyConfigSchema } from "../checks/certificate_validity/config.ts";
import { PemFiles } from "../checks/certificate_validity/pem-files.ts";
import type { ChainVerdict, VerifyConfig } from "../checks/certificate_validity/verify.ts";
import type { ExpectedIdentity } from "../checks/certificate_validity/types.ts";
import { errorMessage } from "../errors.ts";

export const help = `Usage:
  vigil cert inspect [--servername NAME] [--json] FILE | HOST:PORT
  vigil cert verify --roots FILE [--intermediates FILE] [--at RFC3339]
                    [--host NAME | --ip ADDR | --email ADDR | --spiffe ID]
                    [--purpose server|client|any] [--profile strict|rfc5280] [--max-depth N]
                    [--key-usage NAME]... [--eku NAME]... [--warn-before DURATION]
                    [--initial-policy OID]... [--require-explicit-policy]
                    [--inhibit-policy-mapping] [--inhibit-any-policy]
                    [--revocation prefer_ocsp|ocsp|crl|none] [--crl FILE]... [--hard-fail]
                    [--allow-private-urls] [--timeout DURATION] [--servername NAME] [--json]
                    LEAF | HOST:PORT
  vigil cert verify --batch FILE|- [--jobs N] [any option above but LEAF, as the default of every line]

inspect prints each certificate of a PEM/DER file, or the chain a TLS endpoint presents (SNI
--servername, default the host). Names are RFC 4514 strings (most significant RDN last, as the
check's evidence and the API write them), key usage and extended key usage by name, fingerprints
SHA-256 of the DER in lower-case hex (what sha256sum prints for the DER file).

verify judges LEAF (a PEM/DER file, or the chain HOST:PORT presents) exactly as the
certificate_validity check does, with the same defaults: the options are the check's (purpose,
profile, max_depth, key_usage, extended_key_usage, warn_before, initial_policies,
require_explicit_policy, inhibit_policy_mapping, inhibit_any_policy, revocation.mode,
revocation.crl_files, revocation.soft_fail, revocation.allow_private_urls, revocation.timeout);
--hard-fail is soft_fail false. Revocation follows the mode (default prefer_ocsp: OCSP and CRLs
the certificates name, local --crl files first), so it may go to the network; --revocation none
stays offline.

Exit codes, the same for both: 0 the certificates were read (inspect) or LEAF is valid, pass or
warn (verify); 1 a certificate does not parse (CERT_MALFORMED) or LEAF is invalid (the reason
code is printed); 2 usage: a bad option, a file that cannot be read ("cannot read"), an endpoint
that cannot be reached ("cannot connect"), or a file that holds something else where certificates
are expected (a CRL, a key or a CSR, named as such; a certificate given as --crl likewise).

--batch reads JSON lines {"id","leaf","intermediates":[PEM],"roots":[PEM],"at"?,"host"?,"ip"?,
"email"?,"spiffe"?,"purpose"?,"profile"?,"max_depth"?,"crls"?:[PEM],"key_usage"?,
"extended_key_usage"?,"initial_policies"?,"require_explicit_policy"?,"inhibit_policy_mapping"?,
"inhibit_any_policy"?} and writes one line per input {"id","valid","status","code"?,"reason"?,
"notes"?} in input order as it goes. Files of 4 MiB and more are judged by worker threads, one per
CPU (at most 4; --jobs N sets the number, 1 keeps it in this process). Exit 0 when all are valid,
1 otherwise.`;

export const cert: Command = async (argv) => {
  const [sub, ...rest] = argv;
  if (sub === "inspect") return inspect(rest);
  if (sub === "verify") return verify(rest);
  throw new UsageError('cert takes a subcommand: "inspect" or "verify"');
};

/** How inspect and verify show a certificate: the same names, order and forms as the check's evidence and the API. */
function describe(der: Uint8Array) {
  const c = new ParsedCertificate(der);
  const aia = c.authorityInfoAccess;
  return {
    // RFC 4514: most significant RDN last (`CN=svc, O=Example`), as the check's evidence and `cert verify`.
    subject: c.subject.text,
    issuer: c.issuer.text,
    serial: c.serial,
    not_before: isoOrEmpty(c.notBefore),
    not_after: isoOrEmpty(c.notAfter),
    sans: c.sanStrings,
    ca: c.isCA,
    key: [c.key.type, c.key.bits, c.key.curve].filter((p) => p !== undefined).join(" "),
    key_usage: c.keyUsage ?? [],
    extended_key_usage: (c.eku ?? []).map((oid) => EKU_NAME_BY_OID.get(oid) ?? oid),
    info_access: [...(aia?.ocsp ?? []).map((u) => `OCSP - URI:${u}`), ...(aia?.caIssuers ?? []).map((u) => `CA Issuers - URI:${u}`)],
    // Lower-case hex without separators: as the check's evidence, the API and `sha256sum` of the DER print it.
    fingerprint_sha256: c.fingerprint,
  };
}

function isoOrEmpty(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : "";
}

/** A file name or `host:port` (`[v6]:port`). */
const HOST_PORT = /^(\[[0-9a-f:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/i;

/**
 * The certificates of a file or of the chain a TLS endpoint presents, for inspect and verify alike:
 * a file that is not there is "cannot read" (exit 2, as a missing --roots file), an endpoint that
 * cannot be reached "cannot connect" (exit 2), and a file of another kind (a CRL, a key, a CSR) is
 * named as such (exit 2). A file that holds certificates that do not parse is left to the caller.
 */
async function certificatesOf(target: string, servername: string | undefined): Promise<{ origin: string; ders: Uint8Array[]; stapledOcsp?: Uint8Array; malformed?: string }> {
  let bytes: Buffer | undefined;
  let readError: string | undefined;
  try {
    bytes = readFileSync(target);
  } catch (err) {
    readError = (err as NodeJS.ErrnoException).code ?? errorMessage(err);
  }
  const hostPort = HOST_PORT.exec(target);
  if (bytes === undefined && hostPort && readError === "ENOENT") {
    const { fromTls } = await import("../checks/certificate_validity/sources/tls.ts");
    try {
      const got = await fromTls({ host: hostPort[1]!.replace(/^\[|\]$/g, ""), port: Number(hostPort[2]), ...(servername ? { servername } : {}), timeoutMs: 10_000 }, AbortSignal.timeout(15_000));
      return { origin: got.origin, ders: [...got.chain], ...(got.stapledOcsp ? { stapledOcsp: got.stapledOcsp } : {}) };
    } catch (err) {
      throw new UsageError(`cannot connect to ${target}: ${errorMessage(err)}`);
    }
  }
  if (bytes === undefined) throw new UsageError(`cannot read ${target}: ${readError}`);
  const kind = notACertificate(bytes);
  if (kind) throw new UsageError(`${target} holds ${kind}, not a certificate`);
  try {
    return { origin: `file:${target}`, ders: readPemOrDer(bytes, { labels: CERTIFICATE_LABELS }) };
  } catch (err) {
    return { origin: `file:${target}`, ders: [], malformed: errorMessage(err) };
  }
}

const PEM_KINDS: readonly (readonly [RegExp, string])[] = [
  [/^X509 CRL$/, "a CRL"],
  [/PRIVATE KEY$/, "a private key"],
  [/PUBLIC KEY$/, "a public key"],
  [/CERTIFICATE REQUEST$/, "a certificate signing request"],
];

/**
 * What the bytes hold when it is something other than certificates (`a CRL`, `a private key`, …);
 * undefined when they hold a certificate, or nothing recognisable (then the certificate reader says
 * why it cannot read them).
 */
export function notACertificate(bytes: Uint8Array): string | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString("latin1");
  if (text.includes("-----BEGIN ")) {
    const labels = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]{1,64})-----/g)].map((m) => m[1]!);
    if (labels.some((l) => CERTIFICATE_LABELS.includes(l))) return undefined;
    for (const l of labels) for (const [re, kind] of PEM_KINDS) if (re.test(l)) return kind;
    return labels.length > 0 ? `a PEM block "${labels[0]}"` : undefined;
  }
  if (buf[0] !== 0x30) return undefined;
  try {
    new ParsedCertificate(buf);
    return undefined;
  } catch {
    // not a certificate: which DER structure is it?
  }
  try {
    new ParsedCrl(buf);
    return "a CRL";
  } catch {
    // not a CRL either
  }
  for (const type of ["pkcs8", "sec1", "pkcs1"] as const) {
    try {
      createPrivateKey({ key: buf, format: "der", type });
      return "a private key";
    } catch {
      // try the next key encoding
    }
  }
  try {
    createPublicKey({ key: buf, format: "der", type: "spki" });
    return "a public key";
  } catch {
    return undefined;
  }
}

async function inspect(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, INSPECT_OPTIONS, true);
  const target = positionals[0];
  if (!target || positionals.length > 1) throw new UsageError("inspect takes one file or host:port");
  const { origin, ders, malformed } = await certificatesOf(target, values.servername);
  let certs: ReturnType<typeof describe>[];
  try {
    if (malformed !== undefined) throw new Error(malformed);
    certs = ders.map(describe);
  } catch (err) {
    // As verify reports a certificate that does not parse: CERT_MALFORMED, exit 1.
    process.stderr.write(`vigil: ${target}: CERT_MALFORMED: ${errorMessage(err)}\n`);
    return EXIT_FAIL;
  }
  if (values.json) out(JSON.stringify({ origin, certificates: certs }, null, 2));
  else {
    certs.forEach((c, i) => {
      out(`${i === 0 ? "certificate" : `chain[${i}]`}: ${c.subject}`);
      out(`  issuer      ${c.issuer}`);
      out(`  serial      ${c.serial}`);
      out(`  valid       ${c.not_before} → ${c.not_after}`);
      if (c.sans.length) out(`  SANs        ${c.sans.join(", ")}`);
      out(`  key         ${c.key}${c.ca ? "   (CA)" : ""}`);
      if (c.key_usage.length) out(`  key usage   ${c.key_usage.join(", ")}`);
      if (c.extended_key_usage.length) out(`  EKU         ${c.extended_key_usage.join(", ")}`);
      for (const a of c.info_access) out(`  AIA         ${a}`);
      out(`  SHA-256     ${c.fingerprint_sha256}`);
    });
  }
  return EXIT_OK;
}

const INSPECT_OPTIONS = { json: { type: "boolean" }, servername: { type: "string" } } as const;

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
  jobs: { type: "string" },
  servername: { type: "string" },
  json: { type: "boolean" },
} as const;

/**
 * Names a file given where certificates (or CRLs) are expected that holds something else: a CRL as
 * --roots, a key as --intermediates, a certificate as --crl. Globs are left to the reader. A file
 * that cannot be read is "cannot read", as for the leaf.
 */
function checkKinds(patterns: readonly string[], flag: string, want: "certificate" | "crl"): void {
  for (const file of patterns) {
    if (/[*?[\]{}]/.test(file)) continue;
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
    }
    if (want === "certificate") {
      const kind = notACertificate(bytes);
      if (kind) throw new UsageError(`${flag} ${file} holds ${kind}, not a certificate`);
    } else if (notACertificate(bytes) === undefined && isCertificate(bytes)) {
      throw new UsageError(`${flag} ${file} holds a certificate, not a CRL`);
    }
  }
}

function isCertificate(bytes: Buffer): boolean {
  try {
    return readPemOrDer(bytes, { labels: CERTIFICATE_LABELS }).some((der) => {
      try {
        new ParsedCertificate(der);
        return true;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

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
      const jobs = values.jobs === undefined ? undefined : Number(values.jobs);
      if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1 || jobs > 64)) throw new UsageError("--jobs must be an integer from 1 to 64");
      return await batch(values.batch, raw, config, await loadFiles(config.revocation.crl_files, config.revocation.max_crl_bytes), http, jobs);
    }
    const leafFile = positionals[0];
    if (!leafFile || positionals.length > 1) throw new UsageError("verify takes one leaf certificate file or host:port (or --batch)");
    if (!values.roots) throw new UsageError("verify needs --roots");
    const at = parseAt(values.at, "--at");
    const identity = identityOf(values);
    checkKinds(values.roots, "--roots", "certificate");
    checkKinds(values.intermediates ?? [], "--intermediates", "certificate");
    checkKinds(config.revocation.crl_files, "--crl", "crl");
    const [roots, intermediates, crls] = await Promise.all([loadFiles(values.roots), loadFiles(values.intermediates ?? []), loadFiles(config.revocation.crl_files, config.revocation.max_crl_bytes)]);
    const leafInput = await certificatesOf(leafFile, values.servername);
    // Loaded here, not at start: with --batch over workers this process only reads and writes.
    const [{ createRevocationChecker, verifyChain }, { TrustStore }] = await Promise.all([import("../checks/certificate_validity/verify.ts"), import("../checks/certificate_validity/pki/path.ts")]);
    let result: ChainVerdict | { error: string };
    try {
      if (leafInput.malformed !== undefined) throw new Error(leafInput.malformed);
      const [leaf, ...presented] = leafInput.ders;
      const revocation = createRevocationChecker(config, crls, { http, clock: { now: () => at } });
      result = await verifyChain(
        { leaf: leaf!, intermediates: [...presented, ...intermediates], store: new TrustStore(roots), at, ...(identity ? { identity } : {}), ...(leafInput.stapledOcsp ? { stapledOcsp: leafInput.stapledOcsp } : {}), origin: leafInput.origin },
        config,
        revocation,
      );
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

/** Input this large is worth the start-up of worker threads. */
const PARALLEL_MIN_BYTES = 4 * 1024 * 1024;
/** Lines per message to a worker, and chunks in flight per worker. */
const CHUNK_LINES = 128;
const IN_FLIGHT = 3;
/** Young generation of a batch worker (V8's default is 16 to 32 MiB on 64-bit). */
const YOUNG_GENERATION_MB = 96;

async function batch(source: string, baseRaw: Record<string, unknown>, base: VerifyConfig, baseCrls: Uint8Array[], http: HttpClient, jobs: number | undefined): Promise<number> {
  let size = 0;
  if (source !== "-") {
    try {
      size = statSync(source).size;
    } catch (err) {
      throw new UsageError(`cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }
  const workers = jobs ?? (size >= PARALLEL_MIN_BYTES ? Math.min(4, availableParallelism()) : 1);
  const input = source === "-" ? process.stdin : createReadStream(source);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let allValid = true;
  let buffer = "";
  const write = (text: string) => {
    buffer += text;
    if (buffer.length > 64 * 1024) flush();
  };
  const flush = () => {
    if (buffer) process.stdout.write(buffer);
    buffer = "";
  };
  if (workers <= 1) {
    const { BatchJudge } = await import("./cert-batch.ts");
    const judge = new BatchJudge(baseRaw, base, baseCrls, http);
    for await (const raw of lines) {
      if (raw.trim() === "") continue;
      const r = await judge.judge(raw);
      if (!r.valid) allValid = false;
      write(r.line + "\n");
    }
    flush();
    return allValid ? EXIT_OK : EXIT_FAIL;
  }
  allValid = await parallel(lines, workers, { baseRaw, base, crls: baseCrls }, write);
  flush();
  return allValid ? EXIT_OK : EXIT_FAIL;
}

/** Chunks of lines to `count` workers, answers written in input order. Resolves to "all valid". */
async function parallel(lines: AsyncIterable<string>, count: number, setup: { baseRaw: Record<string, unknown>; base: VerifyConfig; crls: Uint8Array[] }, write: (text: string) => void): Promise<boolean> {
  // Beside this file with its extension: src/ (.ts), dist/ (.js) or the bundle (.mjs).
  const url = new URL(`./cert-worker${/\.[cm]?[jt]s$/.exec(import.meta.url)?.[0] ?? ".js"}`, import.meta.url);
  // Every line makes short-lived garbage (JSON, PEM, DER views): a larger young generation than
  // V8's default scavenges it less often, about a sixth less CPU per line.
  const pool = Array.from({ length: count }, () => ({ worker: new Worker(url, { workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } }), busy: 0 }));
  const done = new Map<number, { out: string; valid: boolean }>();
  let nextToWrite = 0;
  let sent = 0;
  let allValid = true;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  for (const w of pool) {
    w.worker.on("message", (m: { seq: number; out: string; valid: boolean }) => {
      w.busy--;
      done.set(m.seq, m);
      for (let r = done.get(nextToWrite); r; r = done.get(nextToWrite)) {
        done.delete(nextToWrite++);
        write(r.out);
        if (!r.valid) allValid = false;
      }
      wake?.();
    });
    w.worker.on("error", (err) => {
      failure ??= err;
      wake?.();
    });
  }
  const settle = () => new Promise<void>((resolve) => (wake = resolve));
  const send = async (chunk: string[]) => {
    while (!failure && pool.every((w) => w.busy >= IN_FLIGHT)) await settle();
    if (failure) throw failure;
    const w = pool.reduce((a, b) => (b.busy < a.busy ? b : a));
    w.busy++;
    w.worker.postMessage({ seq: sent++, lines: chunk });
  };
  try {
    let chunk: string[] = [];
    for await (const raw of lines) {
      if (raw.trim() === "") continue;
      chunk.push(raw);
      if (chunk.length >= CHUNK_LINES) {
        await send(chunk);
        chunk = [];
      }
    }
    if (chunk.length) await send(chunk);
    while (!failure && nextToWrite < sent) await settle();
    if (failure) throw failure;
    return allValid;
  } finally {
    for (const w of pool) w.worker.postMessage("close");
    await Promise.all(pool.map((w) => new Promise<void>((resolve) => (w.worker.threadId === -1 ? resolve() : w.worker.once("exit", () => resolve())))));
  }
}

/** The options `cert` accepts, over inspect and verify (its help lists each). */
export const options = { ...INSPECT_OPTIONS, ...OPTIONS } as const;
