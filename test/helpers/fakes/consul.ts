/**
 * A local Consul HTTP API for the intention endpoints, holding Consul's contract:
 * - `X-Consul-Token` checked against known tokens: unknown → 403 `ACL not found`; a token without
 *   `intentions` rights on the destination → 403 `Permission denied: token with AccessorID '…' lacks
 *   permission 'intention:write' on "api"`; no token → the anonymous token, which has none.
 * - `PUT|GET /v1/connect/intentions/exact?source=&destination=`: both parameters required; `ns` and
 *   `partition` refused by Consul CE ("… are a Consul Enterprise feature"); `dc` must be known.
 * - PUT body: JSON with exactly one of `Action` and `Permissions`, `SourceType` consul, permissions
 *   with Action allow|deny and a non-empty `HTTP` match, valid unique methods, L7 only for an
 *   http-like destination protocol (500, as Consul reports it). Errors are plain text, like Consul.
 * - GET answers the stored intention, 404 `Intention not found` when there is none.
 * Faults (429 with Retry-After, 500, 503) come from `api.fail()`.
 */
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";

export interface ConsulToken {
  readonly accessor: string;
  /** Destination services (or "*") the token has `intentions = "write"` on; write includes read. */
  readonly write?: readonly string[];
  /** Destination services (or "*") the token may only read intentions of. */
  readonly read?: readonly string[];
}

export interface StoredIntention {
  SourceNS: string;
  SourcePartition: string;
  SourceName: string;
  DestinationNS: string;
  DestinationPartition: string;
  DestinationName: string;
  SourceType: string;
  Action: string;
  Permissions?: unknown[];
  Description: string;
  Precedence: number;
  CreateIndex: number;
  ModifyIndex: number;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"]);
const BODY_KEYS = new Set([
  "ID", "Description", "SourcePeer", "SourceSamenessGroup", "SourceNS", "SourcePartition", "SourceName", "DestinationNS", "DestinationPartition",
  "DestinationName", "SourceType", "Action", "Permissions", "Precedence", "CreateIndex", "ModifyIndex", "CreatedAt", "UpdatedAt", "JWT",
]);
const HTTP_KEYS = new Set(["PathExact", "PathPrefix", "PathRegex", "Header", "Methods"]);

const text = (status: number, body: string, headers: Record<string, string> = {}): FakeReply => ({ status, body, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });

class Reject extends Error {
  readonly reply: FakeReply;
  constructor(reply: FakeReply) {
    super(String(reply.body));
    this.reply = reply;
  }
}

export class FakeConsul {
  readonly api = new FakeApi();
  /** Secret → token. Empty with `acl: false`. */
  readonly tokens = new Map<string, ConsulToken>();
  readonly intentions = new Map<string, StoredIntention>();
  /** Destination protocol from service-defaults; Consul's default is tcp. */
  readonly protocols = new Map<string, string>();
  readonly datacenter: string;
  readonly enterprise: boolean;
  readonly acl: boolean;
  #index = 10;

  constructor(options: { acl?: boolean; enterprise?: boolean; datacenter?: string } = {}) {
    this.acl = options.acl ?? true;
    this.enterprise = options.enterprise ?? false;
    this.datacenter = options.datacenter ?? "dc1";
    this.api.authenticate = (req) => {
      if (!this.acl) return undefined;
      const secret = req.headers["x-consul-token"];
      if (secret !== undefined && !this.tokens.has(secret)) return text(403, "ACL not found");
      return undefined;
    };
    const path = /^\/v1\/connect\/intentions\/exact$/;
    this.api.route("PUT", path, (req) => this.#guard(() => this.#put(req)));
    this.api.route("GET", path, (req) => this.#guard(() => this.#get(req)));
  }

  start(): Promise<string> {
    return this.api.start();
  }

  stop(): Promise<void> {
    return this.api.stop();
  }

  /** Key of the intention source → destination in the default (or given) namespace and partition. */
  static key(source: string, destination: string, ns = "default", partition = "default"): string {
    return `${partition}/${ns}/${source}>${partition}/${ns}/${destination}`;
  }

  get(source: string, destination: string, ns?: string, partition?: string): StoredIntention | undefined {
    return this.intentions.get(FakeConsul.key(source, destination, ns, partition));
  }

  /** Stores an intention as if an operator had written it. */
  seed(source: string, destination: string, fields: { Action?: string; Permissions?: unknown[]; Description?: string }): void {
    this.#store({ ap: "default", ns: "default", name: source }, { ap: "default", ns: "default", name: destination }, fields);
  }

  #guard(fn: () => FakeReply): FakeReply {
    try {
      return fn();
    } catch (err) {
      if (err instanceof Reject) return err.reply;
      throw err;
    }
  }

  #scope(req: FakeRequest): { ns: string; ap: string } {
    const ns = req.query.get("ns") ?? "";
    const ap = req.query.get("partition") ?? "";
    if (!this.enterprise && ns) throw new Reject(text(400, 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature'));
    if (!this.enterprise && ap) throw new Reject(text(400, 'Invalid query parameter: "partition" - Partitions are a Consul Enterprise feature'));
    const dc = req.query.get("dc");
    if (dc && dc !== this.datacenter) throw new Reject(text(500, "No path to datacenter"));
    return { ns: ns || "default", ap: ap || "default" };
  }

  #names(req: FakeRequest): { source: { ap: string; ns: string; name: string }; destination: { ap: string; ns: string; name: string } } {
    const scope = this.#scope(req);
    const parse = (what: "source" | "destination") => {
      const all = req.query.getAll(what);
      if (all.length !== 1 || all[0] === "") throw new Reject(text(400, `required query parameter '${what}' not set`));
      const raw = all[0]!;
      const parts = raw.split("/");
      if (raw.startsWith("peer:")) throw new Reject(text(400, `${what} ${JSON.stringify(raw)} is invalid: cannot specify a peer here`));
      if (parts.length > 3) throw new Reject(text(400, `${what} ${JSON.stringify(raw)} is invalid: input can contain at most two '/'`));
      if (!this.enterprise && parts.length > 1) {
        throw new Reject(text(400, 'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature'));
      }
      const name = parts[parts.length - 1]!;
      const ns = parts.length >= 2 ? parts[parts.length - 2]! : scope.ns;
      const ap = parts.length === 3 ? parts[0]! : scope.ap;
      if (name.includes("*") && name !== "*") throw new Reject(text(500, "Name: wildcard character '*' cannot be used with partial values"));
      return { ap, ns, name };
    };
    return { source: parse("source"), destination: parse("destination") };
  }

  /** Consul authorizes intention reads and writes on the destination service. */
  #authorize(req: FakeRequest, destination: string, access: "read" | "write"): void {
    if (!this.acl) return;
    const secret = req.headers["x-consul-token"];
    const token = secret === undefined ? undefined : this.tokens.get(secret);
    const covers = (list: readonly string[] | undefined) => (list ?? []).some((s) => s === "*" || s === destination);
    const ok = access === "write" ? covers(token?.write) : covers(token?.write) || covers(token?.read);
    if (ok) return;
    const who = token ? `token with AccessorID '${token.accessor}'` : "anonymous token";
    throw new Reject(text(403, `Permission denied: ${who} lacks permission 'intention:${access}' on ${JSON.stringify(destination)}`));
  }

  #put(req: FakeRequest): FakeReply {
    const { source, destination } = this.#names(req);
    this.#authorize(req, destination.name, "write");
    let body: unknown;
    try {
      body = JSON.parse(req.body);
    } catch (err) {
      return text(400, `Request decode failed: ${(err as Error).message}`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) return text(400, "Request decode failed: expected a JSON object");
    const b = body as Record<string, unknown>;
    for (const k of Object.keys(b)) if (!BODY_KEYS.has(k)) return text(400, `Request decode failed: 1 error(s) decoding:\n\n* '' has invalid keys: ${k}`);
    const problem = this.#validate(b);
    if (problem) return text(400, problem);
    if (Array.isArray(b["Permissions"]) && b["Permissions"].length > 0) {
      const proto = this.protocols.get(destination.name) ?? "tcp";
      if (!["http", "http2", "grpc"].includes(proto)) {
        // Consul reports this graph validation failure as an RPC error: 500.
        return text(500, `service ${JSON.stringify(destination.name)} has protocol ${JSON.stringify(proto)}, which is incompatible with L7 intentions permissions`);
      }
    }
    this.#store(source, destination, b as { Action?: string; Permissions?: unknown[]; Description?: string });
    return { status: 200, body: true };
  }

  #validate(b: Record<string, unknown>): string | undefined {
    const perms = b["Permissions"];
    if (perms !== undefined && perms !== null && !Array.isArray(perms)) return "Request decode failed: Permissions: expected a list";
    const list = (perms ?? []) as unknown[];
    const action = b["Action"];
    if (list.length === 0 && action !== "allow" && action !== "deny") return "Sources[0].Action must be set to 'allow' or 'deny'";
    if (list.length > 0 && action !== undefined && action !== "") return "Sources[0].Action must be omitted if Permissions are specified";
    if (b["SourceType"] !== undefined && b["SourceType"] !== "" && b["SourceType"] !== "consul") return "Sources[0].Type must be set to 'consul'";
    if (typeof b["Description"] === "string" && b["Description"].length > 512) return "Sources[0].Description exceeds maximum length 512";
    for (const [j, p] of list.entries()) {
      const prefix = `Sources[0].Permissions[${j}]`;
      if (p === null || typeof p !== "object") return `Request decode failed: ${prefix}: expected an object`;
      const perm = p as Record<string, unknown>;
      if (perm["Action"] !== "allow" && perm["Action"] !== "deny") return `${prefix}.Action must be set to 'allow' or 'deny'`;
      const http = perm["HTTP"] as Record<string, unknown> | undefined | null;
      if (!http || typeof http !== "object") return `${prefix}.HTTP is required`;
      for (const k of Object.keys(http)) if (!HTTP_KEYS.has(k)) return `Request decode failed: ${prefix}.HTTP has invalid keys: ${k}`;
      const paths = ["PathExact", "PathPrefix", "PathRegex"].filter((k) => typeof http[k] === "string" && http[k] !== "");
      if (paths.length > 1) return `${prefix}.HTTP should only contain at most one of PathExact, PathPrefix, or PathRegex`;
      for (const k of ["PathExact", "PathPrefix"]) {
        if (typeof http[k] === "string" && http[k] !== "" && !(http[k] as string).startsWith("/")) return `${prefix}.HTTP.${k} doesn't start with '/': ${JSON.stringify(http[k])}`;
      }
      let parts = paths.length + (Array.isArray(http["Header"]) ? http["Header"].length : 0);
      const methods = http["Methods"];
      if (methods !== undefined && methods !== null) {
        if (!Array.isArray(methods)) return `Request decode failed: ${prefix}.HTTP.Methods: expected a list`;
        const seen = new Set<string>();
        for (const m of methods) {
          if (typeof m !== "string" || !METHODS.has(m.toUpperCase())) return `${prefix}.HTTP.Methods contains an invalid method ${JSON.stringify(m)}`;
          if (seen.has(m)) return `${prefix}.HTTP.Methods contains ${JSON.stringify(m)} more than once`;
          seen.add(m);
        }
        if (methods.length > 0) parts++;
      }
      if (parts === 0) return `${prefix}.HTTP should not be empty`;
    }
    return undefined;
  }

  #store(source: { ap: string; ns: string; name: string }, destination: { ap: string; ns: string; name: string }, b: { Action?: string; Permissions?: unknown[]; Description?: string }): void {
    const key = `${source.ap}/${source.ns}/${source.name}>${destination.ap}/${destination.ns}/${destination.name}`;
    const prev = this.intentions.get(key);
    const index = ++this.#index;
    const perms = Array.isArray(b.Permissions) && b.Permissions.length > 0 ? (JSON.parse(JSON.stringify(b.Permissions)) as Record<string, { Methods?: string[] }>[]) : undefined;
    // Consul upper-cases methods when it normalizes the config entry.
    for (const p of perms ?? []) if (p["HTTP"]?.Methods) p["HTTP"].Methods = p["HTTP"].Methods.map((m) => m.toUpperCase());
    this.intentions.set(key, {
      SourceNS: source.ns,
      SourcePartition: source.ap,
      SourceName: source.name,
      DestinationNS: destination.ns,
      DestinationPartition: destination.ap,
      DestinationName: destination.name,
      SourceType: "consul",
      Action: perms ? "" : (b.Action ?? ""),
      ...(perms ? { Permissions: perms } : {}),
      Description: b.Description ?? "",
      Precedence: 9,
      CreateIndex: prev?.CreateIndex ?? index,
      ModifyIndex: index,
    });
  }

  #get(req: FakeRequest): FakeReply {
    const { source, destination } = this.#names(req);
    this.#authorize(req, destination.name, "read");
    const found = this.intentions.get(`${source.ap}/${source.ns}/${source.name}>${destination.ap}/${destination.ns}/${destination.name}`);
    if (!found) return text(404, "Intention not found");
    return { status: 200, body: { ID: "", ...found }, headers: { "x-consul-index": String(found.ModifyIndex), "x-consul-knownleader": "true" } };
  }
}

/** Consul's rate-limit answer. */
export function consulRateLimited(retryAfterSeconds: number): FakeReply {
  return text(429, "rate limit exceeded, try again later or against a different server", { "Retry-After": String(retryAfterSeconds) });
}
