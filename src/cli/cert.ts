import { createHash, X509Certificate } from "node:crypto";
import { readFileSync, createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { isIP } from "node:net";
import { parse, out, EXIT_OK, EXIT_FAIL, UsageError, type Command } from "./common.ts";
import { splitPem } from "../checks/certificate_validity/pki/cert.ts";
import { validatePath, TrustStore } from "../checks/certificate_validity/pki/path.ts";
import { checkLocalCrls } from "../checks/certificate_validity/revocation/crl.ts";
import { fromTls } from "../checks/certificate_validity/sources/tls.ts";
import type { ExpectedIdentity, PathValidationResult, Purpose } from "../checks/certificate_validity/types.ts";

export const help = `Usage:
  vigil cert inspect <file | host:port> [--servername NAME] [--json]
  vigil cert verify --roots FILE [--intermediates FILE] [--at RFC3339]
                    [--host NAME | --ip ADDR | --email ADDR | --spiffe ID]
                    [--purpose server|client] [--max-depth N] [--crl FILE]... LEAF
  vigil cert verify --batch FILE|-

inspect prints each certificate of a PEM/DER file, or the chain a TLS endpoint presents.
verify validates LEAF (RFC 5280 path to --roots, validity at --at, key usage and extended key
usage for --purpose, name constraints, key policy, identity, and revocation against --crl files).
Exit 0 valid, 1 invalid, 2 usage error.

--batch reads JSON lines {"id","leaf","intermediates":[PEM],"roots":[PEM],"at"?,"host"?,"ip"?,
"email"?,"spiffe"?,"purpose"?,"max_depth"?,"crls"?:[PEM],"key_usage"?,"extended_key_usage"?} and writes
one line per input {"id","valid","code"?,"reason"?} as it goes. Exit 0 when all are valid, 1 otherwise.`;

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
    ders = splitPem(readFileSync(target));
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

const PURPOSES = new Set(["server", "client", "any"]);

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

function parseAt(at: string | undefined): Date {
  if (at === undefined) return new Date();
  const t = Date.parse(at);
  if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(at)) throw new UsageError(`--at must be an RFC 3339 time, got "${at}"`);
  return new Date(t);
}

/** Validation plus local CRLs: one verdict. */
function verifyOne(input: {
  leaf: Uint8Array;
  intermediates: Uint8Array[];
  roots: TrustStore;
  at: Date;
  purpose: Purpose;
  identity: ExpectedIdentity | undefined;
  maxDepth: number;
  crls: Uint8Array[];
  keyUsage?: string[];
  extendedKeyUsage?: string[];
}): PathValidationResult {
  const result = validatePath({
    leaf: input.leaf,
    intermediates: input.intermediates,
    roots: input.roots,
    at: input.at,
    purpose: input.purpose,
    maxDepth: input.maxDepth,
    ...(input.identity ? { identity: input.identity } : {}),
    ...(input.keyUsage ? { keyUsage: input.keyUsage } : {}),
    ...(input.extendedKeyUsage ? { extendedKeyUsage: input.extendedKeyUsage } : {}),
  });
  if (!result.valid || input.crls.length === 0 || !result.pathDer) return result;
  for (let i = 0; i + 1 < result.pathDer.length; i++) {
    const rev = checkLocalCrls(result.pathDer[i]!, result.pathDer[i + 1]!, input.crls, input.at.getTime());
    if (rev.status === "revoked") return { ...result, valid: false, code: "CERT_REVOKED", reason: `${i === 0 ? "the certificate" : `chain[${i}]`} is revoked${rev.revoked_at ? ` since ${rev.revoked_at}` : ""}` };
  }
  return result;
}

async function verify(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      roots: { type: "string" },
      intermediates: { type: "string" },
      at: { type: "string" },
      host: { type: "string" },
      ip: { type: "string" },
      email: { type: "string" },
      spiffe: { type: "string" },
      purpose: { type: "string" },
      "max-depth": { type: "string" },
      crl: { type: "string", multiple: true },
      batch: { type: "string" },
      json: { type: "boolean" },
    },
    true,
  );
  if (values.batch !== undefined) return batch(values.batch);
  const leafFile = positionals[0];
  if (!leafFile || positionals.length > 1) throw new UsageError("verify takes one leaf certificate file (or --batch)");
  if (!values.roots) throw new UsageError("verify needs --roots");
  const purpose = (values.purpose ?? "any") as Purpose;
  if (!PURPOSES.has(purpose)) throw new UsageError("--purpose must be server or client");
  const maxDepth = values["max-depth"] === undefined ? 8 : Number(values["max-depth"]);
  if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new UsageError("--max-depth must be a positive integer");
  const read = (f: string) => {
    try {
      return readFileSync(f);
    } catch (err) {
      throw new UsageError(`cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  };
  let result: PathValidationResult;
  try {
    const [leaf, ...presented] = splitPem(read(leafFile));
    if (!leaf) throw new Error("no certificate in the leaf file");
    result = verifyOne({
      leaf,
      intermediates: [...presented, ...(values.intermediates ? splitPem(read(values.intermediates)) : [])],
      roots: new TrustStore(splitPem(read(values.roots))),
      at: parseAt(values.at),
      purpose,
      identity: identityOf(values),
      maxDepth,
      crls: (values.crl ?? []).flatMap((f) => splitPem(read(f))),
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    result = { valid: false, code: "CERT_MALFORMED", reason: (err as Error).message };
  }
  if (values.json) out(JSON.stringify({ valid: result.valid, code: result.code, reason: result.reason, path: result.path }, null, 2));
  else out(result.valid ? `${leafFile}: OK${result.path ? ` (${result.path.map((c) => c.subject).join(" ← ")})` : ""}` : `${leafFile}: ${result.code}: ${result.reason}`);
  return result.valid ? EXIT_OK : EXIT_FAIL;
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
  max_depth?: unknown;
  crls?: unknown;
  key_usage?: unknown;
  extended_key_usage?: unknown;
}

const pems = (v: unknown, field: string): Uint8Array[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) throw new TypeError(`${field} must be an array of PEM strings`);
  return v.flatMap((p: string) => splitPem(p));
};
const optString = (v: unknown, field: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new TypeError(`${field} must be a string`);
  return v;
};

function batchAt(at: string): Date {
  const t = Date.parse(at);
  if (Number.isNaN(t) || !/^\d{4}-\d\d-\d\dT/.test(at)) throw new TypeError(`at must be an RFC 3339 time, got "${at}"`);
  return new Date(t);
}

async function batch(source: string): Promise<number> {
  const input = source === "-" ? process.stdin : createReadStream(source);
  const lines = createInterface({ input, crlfDelay: Infinity });
  // Inventories share a few roots: build each trust store once (bounded).
  const stores = new Map<string, TrustStore>();
  const storeFor = (roots: unknown): TrustStore => {
    const key = createHash("sha256").update(JSON.stringify(roots ?? [])).digest("hex");
    let s = stores.get(key);
    if (!s) {
      s = new TrustStore(pems(roots, "roots"));
      if (stores.size >= 64) stores.delete(stores.keys().next().value!);
      stores.set(key, s);
    }
    return s;
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
      const at = o.at === undefined ? new Date() : batchAt(optString(o.at, "at")!);
      if (typeof o.leaf !== "string") throw new TypeError("leaf must be a PEM string");
      const [leaf, ...presented] = splitPem(o.leaf);
      if (!leaf) throw new TypeError("leaf holds no certificate");
      const purpose = (optString(o.purpose, "purpose") ?? "any") as Purpose;
      if (!PURPOSES.has(purpose)) throw new TypeError("purpose must be server or client");
      const r = verifyOne({
        leaf,
        intermediates: [...presented, ...pems(o.intermediates, "intermediates")],
        roots: storeFor(o.roots),
        at,
        purpose,
        identity: identityOf({ host: optString(o.host, "host"), ip: optString(o.ip, "ip"), email: optString(o.email, "email"), spiffe: optString(o.spiffe, "spiffe") }),
        maxDepth: o.max_depth === undefined ? 8 : Number(o.max_depth),
        crls: pems(o.crls, "crls"),
        ...(Array.isArray(o.key_usage) ? { keyUsage: o.key_usage.map(String) } : {}),
        ...(Array.isArray(o.extended_key_usage) ? { extendedKeyUsage: o.extended_key_usage.map(String) } : {}),
      });
      if (!r.valid) allValid = false;
      line = JSON.stringify(r.valid ? { id, valid: true } : { id, valid: false, code: r.code, reason: r.reason });
    } catch (err) {
      allValid = false;
      const code = err instanceof SyntaxError ? "BAD_INPUT" : err instanceof TypeError || err instanceof UsageError ? "BAD_INPUT" : "CERT_MALFORMED";
      line = JSON.stringify({ id, valid: false, code, reason: (err as Error).message });
    }
    buffer += line + "\n";
    if (buffer.length > 64 * 1024) flush();
  }
  flush();
  return allValid ? EXIT_OK : EXIT_FAIL;
}
