import { X509Certificate } from "node:crypto";
import { readFileSync, createReadStream, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { createInterface } from "node:readline";
import { isIP } from "node:net";
import { Worker } from "node:worker_threads";
import { parse, out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./args.ts";
import { createHttpClient, type HttpClient } from "../net/http.ts";
import { readPemOrDer } from "../plugin/x509/pem.ts";
import { verifyConfigSchema } from "../checks/certificate_validity/config.ts";
import { PemFiles } from "../checks/certificate_validity/pem-files.ts";
import type { ChainVerdict, VerifyConfig } from "../checks/certificate_validity/verify.ts";
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
  vigil cert verify --batch FILE|- [--jobs N] [any option above but LEAF, as the default of every line]

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
    const { fromTls } = await import("../checks/certificate_validity/sources/tls.ts");
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
  jobs: { type: "string" },
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
      const jobs = values.jobs === undefined ? undefined : Number(values.jobs);
      if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1 || jobs > 64)) throw new UsageError("--jobs must be an integer from 1 to 64");
      return await batch(values.batch, raw, config, await loadFiles(config.revocation.crl_files, config.revocation.max_crl_bytes), http, jobs);
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
    // Loaded here, not at start: with --batch over workers this process only reads and writes.
    const [{ createRevocationChecker, verifyChain }, { TrustStore }] = await Promise.all([import("../checks/certificate_validity/verify.ts"), import("../checks/certificate_validity/pki/path.ts")]);
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
  const url = new URL(import.meta.url.endsWith(".ts") ? "./cert-worker.ts" : "./cert-worker.js", import.meta.url);
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
