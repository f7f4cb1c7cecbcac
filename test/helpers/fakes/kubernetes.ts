/**
 * A local Kubernetes API server holding the contract the `kubernetes`, `istio` and `linkerd` actions
 * rely on:
 * - authentication: `Authorization: Bearer <token>` against the accepted tokens (mutable, so tests can
 *   rotate them); anything else is 401 with a `Status`;
 * - resources: `/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>` (and `/api/v1/...`) for every
 *   kind with a registered schema; other resources are 404 "the server could not find the requested
 *   resource", as for a CRD that is not installed;
 * - server-side apply: PATCH with `Content-Type: application/apply-patch+yaml` only (other patch types
 *   415), `fieldManager` required (400), `force` = true|false, the body's apiVersion/kind/name/namespace
 *   must match the URL (400), `metadata.managedFields` must be absent (400); the object is validated
 *   against its JSON schema and Kubernetes' own rules for names, labels and label selectors (422
 *   `Invalid` listing every cause); without `force=true` a change to an object another manager applied
 *   is 409 with `FieldManagerConflict` causes. The applied fields replace what the same manager applied
 *   before (fields it dropped are removed, lists are atomic, other managers' labels stay); the server
 *   sets uid, resourceVersion (bumped only on a change), generation (bumped on a spec change),
 *   creationTimestamp and managedFields; 201 on create, 200 otherwise;
 * - GET (404 `NotFound` naming the object), DELETE with optional `DeleteOptions` (JSON) whose
 *   `preconditions.uid`/`resourceVersion` are enforced (409 `Conflict`), 404 when absent, 200 `Status`
 *   Success otherwise;
 * - faults: 429 `TooManyRequests` with `Retry-After` (API priority and fairness), 5xx, 403 `Forbidden`,
 *   each for the next matching requests.
 *
 * Schemas: every file in test/fixtures/k8s-schemas/ named `<group>_<version>_<Kind>.json` (group
 * `core` for the core group) is a JSON Schema of the whole object (a CRD's openAPIV3Schema, or the
 * Kubernetes OpenAPI definition with its $refs inlined). They are compiled with ajv (`strict: false`,
 * formats not checked, `x-kubernetes-*` ignored except: `x-kubernetes-int-or-string` becomes integer or
 * string, `x-kubernetes-preserve-unknown-fields` keeps an object open). Objects with declared
 * properties are closed, since server-side apply refuses fields the schema does not declare.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { parse as parseYaml } from "yaml";
import { FakeApi, type FakeReply, type FakeRequest } from "../fake-api.ts";
import { providerContext } from "../action-context.ts";
import { createKubernetesClient, kubernetesProviderSchema } from "../../../src/actions/kubernetes/provider.ts";
import type { KubeClient } from "../../../src/actions/kubernetes/client.ts";

export const SCHEMA_DIR = fileURLToPath(new URL("../../fixtures/k8s-schemas/", import.meta.url));
const SCHEMA_FILE_RE = /^(?<group>[a-z0-9.-]+)_(?<version>v[0-9a-z]+)_(?<kind>[A-Z][A-Za-z0-9]*)\.json$/;

// ---------------------------------------------------------------------------------------------
// Schemas

export interface ValidationCause {
  /** Kubernetes cause type: FieldValueRequired, FieldValueInvalid, FieldValueTypeInvalid, FieldValueNotSupported, … */
  readonly reason: string;
  readonly message: string;
  /** `spec.egress[0].ports[0].port` */
  readonly field: string;
}

interface SchemaEntry {
  readonly apiVersion: string;
  readonly kind: string;
  readonly schema: Record<string, unknown>;
  validate?: ValidateFunction;
}

const schemas = new Map<string, SchemaEntry>();
let fixturesLoaded = false;
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });

const keyOf = (apiVersion: string, kind: string) => `${apiVersion}|${kind}`;

function ensureFixtures(): void {
  if (fixturesLoaded) return;
  fixturesLoaded = true;
  loadSchemaDir(SCHEMA_DIR);
}

/** Registers every `<group>_<version>_<Kind>.json` in `dir` (existing registrations of the same kind are replaced). Returns how many. */
export function loadSchemaDir(dir: string): number {
  let n = 0;
  for (const file of readdirSync(dir).sort()) {
    const m = SCHEMA_FILE_RE.exec(file);
    if (!m?.groups) continue;
    const { group, version, kind } = m.groups as { group: string; version: string; kind: string };
    const schema = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as Record<string, unknown>;
    registerSchema(group === "core" ? version : `${group}/${version}`, kind, schema);
    n++;
  }
  return n;
}

/** Registers (or replaces) the schema of one apiVersion + kind. */
export function registerSchema(apiVersion: string, kind: string, schema: Record<string, unknown>): void {
  if (!fixturesLoaded) ensureFixtures();
  schemas.set(keyOf(apiVersion, kind), { apiVersion, kind, schema });
}

/** The schema registered for an apiVersion + kind, as given (before normalisation). */
export function lookupSchema(apiVersion: string, kind: string): Record<string, unknown> | undefined {
  ensureFixtures();
  return schemas.get(keyOf(apiVersion, kind))?.schema;
}

/** Every registered apiVersion + kind. */
export function registeredKinds(): { apiVersion: string; kind: string }[] {
  ensureFixtures();
  return [...schemas.values()].map(({ apiVersion, kind }) => ({ apiVersion, kind }));
}

const ROOT_FIELDS = {
  apiVersion: { type: "string" },
  kind: { type: "string" },
  metadata: { type: "object" },
} as const;

/** The schema as the API server applies it: int-or-string typed, declared objects closed, root fields present. */
function normalise(node: unknown, root: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => normalise(n, false));
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "properties" && v && typeof v === "object") {
      out[k] = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, normalise(s, false)]));
    } else if (k === "description" || k === "default" || k === "example" || k === "enum" || k === "required") {
      out[k] = v;
    } else {
      out[k] = normalise(v, false);
    }
  }
  const intOrString = out["x-kubernetes-int-or-string"] === true || out.format === "int-or-string";
  if (intOrString && !Array.isArray(out.anyOf) && !Array.isArray(out.oneOf)) {
    delete out.type;
    out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (root) {
    const props = (out.properties ?? {}) as Record<string, unknown>;
    out.properties = { ...ROOT_FIELDS, ...props };
  }
  const hasProps = out.properties !== undefined && typeof out.properties === "object";
  if (hasProps && out.additionalProperties === undefined && out["x-kubernetes-preserve-unknown-fields"] !== true) out.additionalProperties = false;
  return out;
}

function compiled(entry: SchemaEntry): ValidateFunction {
  return (entry.validate ??= ajv.compile(normalise(entry.schema, true) as Record<string, unknown>));
}

function fieldPath(instancePath: string): string {
  if (instancePath === "") return "";
  return instancePath
    .slice(1)
    .split("/")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc === "" ? p : `${acc}.${p}`), "");
}

function valueAt(obj: unknown, instancePath: string): unknown {
  let v: unknown = obj;
  for (const raw of instancePath.split("/").slice(1)) {
    const p = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

function join(base: string, child: string): string {
  return base === "" ? child : `${base}.${child}`;
}

function causeOf(e: ErrorObject, obj: unknown): ValidationCause | undefined {
  const field = fieldPath(e.instancePath);
  const value = JSON.stringify(valueAt(obj, e.instancePath));
  switch (e.keyword) {
    case "required":
      return { reason: "FieldValueRequired", field: join(field, String((e.params as { missingProperty: string }).missingProperty)), message: "Required value" };
    case "additionalProperties":
      return { reason: "FieldValueInvalid", field: join(field, String((e.params as { additionalProperty: string }).additionalProperty)), message: "field not declared in schema" };
    case "type":
      return { reason: "FieldValueTypeInvalid", field, message: `Invalid value: ${value}: ${field} in body must be of type ${(e.params as { type: string }).type}` };
    case "enum":
      return { reason: "FieldValueNotSupported", field, message: `Unsupported value: ${value}: supported values: ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((a) => JSON.stringify(a)).join(", ")}` };
    case "anyOf":
    case "oneOf":
      // The branches' own errors say more; keep this only when nothing else names the field.
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${value}: ${field} in body ${e.message ?? "is invalid"}` };
    default:
      return { reason: "FieldValueInvalid", field, message: `Invalid value: ${value}: ${field} in body ${e.message ?? "is invalid"}` };
  }
}

const NAME_RE = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE_RE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const SUBDOMAIN_RE = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_RE = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

function labelKeyProblem(key: string): string | undefined {
  const slash = key.lastIndexOf("/");
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && !SUBDOMAIN_RE.test(key.slice(0, slash))) return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'";
  if (!NAME_RE.test(name)) return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)";
  return undefined;
}

function labelMapCauses(map: unknown, field: string): ValidationCause[] {
  if (map === null || typeof map !== "object" || Array.isArray(map)) return [];
  const out: ValidationCause[] = [];
  for (const [k, v] of Object.entries(map)) {
    const kp = labelKeyProblem(k);
    if (kp) out.push({ reason: "FieldValueInvalid", field, message: `Invalid value: ${JSON.stringify(k)}: ${kp}` });
    if (typeof v === "string" && !VALUE_RE.test(v)) {
      out.push({ reason: "FieldValueInvalid", field: `${field}`, message: `Invalid value: ${JSON.stringify(v)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)` });
    }
  }
  return out;
}

/** Label selectors anywhere in the object (`matchLabels` maps) are checked like labels, as the API server's validation does. */
function selectorCauses(node: unknown, field: string): ValidationCause[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => selectorCauses(n, `${field}[${i}]`));
  if (node === null || typeof node !== "object") return [];
  return Object.entries(node).flatMap(([k, v]) => (k === "matchLabels" ? labelMapCauses(v, join(field, k)) : selectorCauses(v, join(field, k))));
}

/** Kubernetes' own checks on any object: name, namespace, labels, annotations, label selectors. */
function metaCauses(obj: Record<string, unknown>): ValidationCause[] {
  const meta = obj.metadata as Record<string, unknown> | undefined;
  const out: ValidationCause[] = [];
  if (!meta || typeof meta !== "object") return [{ reason: "FieldValueRequired", field: "metadata", message: "Required value" }];
  if (typeof meta.name !== "string" || meta.name === "") out.push({ reason: "FieldValueRequired", field: "metadata.name", message: "Required value: name or generateName is required" });
  else if (!SUBDOMAIN_RE.test(meta.name)) {
    out.push({ reason: "FieldValueInvalid", field: "metadata.name", message: `Invalid value: ${JSON.stringify(meta.name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  }
  if (meta.namespace !== undefined && (typeof meta.namespace !== "string" || !LABEL_RE.test(meta.namespace))) {
    out.push({ reason: "FieldValueInvalid", field: "metadata.namespace", message: `Invalid value: ${JSON.stringify(meta.namespace)}: a lowercase RFC 1123 label` });
  }
  out.push(...labelMapCauses(meta.labels, "metadata.labels"));
  if (meta.annotations !== undefined && meta.annotations !== null && typeof meta.annotations === "object") {
    for (const k of Object.keys(meta.annotations)) {
      const kp = labelKeyProblem(k);
      if (kp) out.push({ reason: "FieldValueInvalid", field: "metadata.annotations", message: `Invalid value: ${JSON.stringify(k)}: ${kp}` });
    }
  }
  for (const [k, v] of Object.entries(obj)) if (k !== "metadata" && k !== "apiVersion" && k !== "kind") out.push(...selectorCauses(v, k));
  return out;
}

/**
 * Validates an object as the fake API server does on apply: its registered JSON schema (by
 * apiVersion + kind) and Kubernetes' rules for names, labels and label selectors. Returns the causes
 * (empty when valid). Throws when no schema is registered for the kind.
 */
export function validateKubeObject(obj: unknown): ValidationCause[] {
  ensureFixtures();
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return [{ reason: "FieldValueInvalid", field: "", message: "object expected" }];
  const o = obj as Record<string, unknown>;
  const entry = schemas.get(keyOf(String(o.apiVersion), String(o.kind)));
  if (!entry) throw new Error(`no schema registered for ${String(o.kind)} ${String(o.apiVersion)}; add test/fixtures/k8s-schemas/<group>_<version>_<Kind>.json`);
  const validate = compiled(entry);
  const causes: ValidationCause[] = [];
  if (!validate(obj)) {
    const errors = validate.errors ?? [];
    for (const e of errors) {
      const c = causeOf(e, obj);
      if (!c) continue;
      // A failed anyOf/oneOf repeats what its branches said; keep it only when it is all there is for that field.
      if ((e.keyword === "anyOf" || e.keyword === "oneOf") && errors.some((x) => x !== e && x.instancePath === e.instancePath && x.keyword !== e.keyword)) continue;
      causes.push(c);
    }
  }
  causes.push(...metaCauses(o));
  // An int-or-string field fails once per branch; say it once, with both types.
  const typeCauses = new Map<string, ValidationCause[]>();
  for (const c of causes) if (c.reason === "FieldValueTypeInvalid") typeCauses.set(c.field, [...(typeCauses.get(c.field) ?? []), c]);
  for (const list of typeCauses.values()) {
    if (list.length < 2) continue;
    const types = list.map((c) => /must be of type (\S+)$/.exec(c.message)?.[1] ?? "?");
    const merged: ValidationCause = { ...list[0]!, message: list[0]!.message.replace(/must be of type \S+$/, `must be of type ${types.join(" or ")}`) };
    causes.splice(causes.indexOf(list[0]!), 1, merged);
    for (const c of list.slice(1)) causes.splice(causes.indexOf(c), 1);
  }
  const seen = new Set<string>();
  return causes.filter((c) => {
    const id = `${c.field}\0${c.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// The server

/** `NetworkPolicy` → `networkpolicies`: the API server's default pluralisation. */
export function pluralise(kind: string): string {
  const k = kind.toLowerCase();
  if (/[^aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  if (/(s|x|z|ch|sh)$/.test(k)) return `${k}es`;
  return `${k}s`;
}

export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string; uid: string; resourceVersion: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

interface Resource {
  readonly group: string;
  readonly version: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
}

interface Entry {
  obj: StoredObject;
  /** What each field manager last applied (its field set, in effect). */
  applied: Map<string, Record<string, unknown>>;
}

const clone = <T>(v: T): T => structuredClone(v);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Removes from `target` the fields `before` had and `after` does not (recursing into objects). */
function prune(target: Record<string, unknown>, before: Record<string, unknown>, after: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(before)) {
    if (!(k in after)) delete target[k];
    else if (isPlainObject(v) && isPlainObject(after[k]) && isPlainObject(target[k])) prune(target[k] as Record<string, unknown>, v, after[k] as Record<string, unknown>);
  }
}

/** Writes `src` into `target`: objects merged, lists and scalars replaced (lists are atomic). */
function merge(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    if (isPlainObject(v) && isPlainObject(target[k])) merge(target[k] as Record<string, unknown>, v);
    else target[k] = clone(v);
  }
}

/** Field paths (dotted, lists whole) of a JSON value, for conflict detection. */
function leaves(v: unknown, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  if (isPlainObject(v) && Object.keys(v).length > 0) {
    for (const [k, c] of Object.entries(v)) for (const [p, val] of leaves(c, prefix === "" ? k : `${prefix}.${k}`)) out.set(p, val);
  } else out.set(prefix, JSON.stringify(v));
  return out;
}

export interface FakeKubernetesOptions {
  /** Bearer tokens accepted. Default `["test-token"]`. */
  tokens?: string[];
}

export class FakeKubernetes {
  readonly api = new FakeApi();
  /** Accepted bearer tokens; replace to simulate rotation. */
  tokens: Set<string>;
  readonly #objects = new Map<string, Entry>();
  readonly #resources = new Map<string, Resource>();
  #rv = 1000;
  #now: () => number = Date.now;

  constructor(options: FakeKubernetesOptions = {}) {
    this.tokens = new Set(options.tokens ?? ["test-token"]);
    this.api.authenticate = (req) => this.#authenticate(req);
    const pattern = /^\/(?:api|apis)\//;
    for (const method of ["GET", "PATCH", "DELETE", "PUT", "POST"]) this.api.route(method, pattern, (req) => this.#handle(req));
  }

  async start(): Promise<string> {
    return this.api.start();
  }

  stop(): Promise<void> {
    return this.api.stop();
  }

  get base(): string {
    return this.api.base;
  }

  /** Sets the clock for creationTimestamp and managedFields times. */
  set clock(now: () => number) {
    this.#now = now;
  }

  /** Declares a resource the fake serves. Kinds with a registered schema are served (namespaced) without this. */
  resource(apiVersion: string, kind: string, options: { plural?: string; namespaced?: boolean } = {}): this {
    const [group, version] = apiVersion.includes("/") ? (apiVersion.split("/") as [string, string]) : ["", apiVersion];
    const plural = options.plural ?? pluralise(kind);
    this.#resources.set(`${group}/${version}/${plural}`, { group, version, apiVersion, kind, plural, namespaced: options.namespaced ?? true });
    return this;
  }

  /** The REST path of an object. */
  pathOf(ref: { apiVersion: string; kind: string; name: string; namespace?: string }): string {
    const [group, version] = ref.apiVersion.includes("/") ? (ref.apiVersion.split("/") as [string, string]) : ["", ref.apiVersion];
    const root = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
    const res = this.#resourceFor(group, version, undefined, ref.kind);
    return `${root}${ref.namespace === undefined ? "" : `/namespaces/${ref.namespace}`}/${res?.plural ?? pluralise(ref.kind)}/${ref.name}`;
  }

  /** The stored object (a copy), or undefined. */
  object(ref: { apiVersion: string; kind: string; name: string; namespace?: string }): StoredObject | undefined {
    const e = this.#objects.get(this.pathOf(ref));
    return e ? clone(e.obj) : undefined;
  }

  /** Every stored object (copies), optionally of one kind. */
  objects(kind?: string): StoredObject[] {
    return [...this.#objects.values()].map((e) => clone(e.obj)).filter((o) => kind === undefined || o.kind === kind);
  }

  /** Stores an object as if someone else had created it (validated like an apply; throws when invalid). */
  put(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown }, manager = "kubectl"): StoredObject {
    const causes = validateKubeObject(obj);
    if (causes.length) throw new Error(`fake kubernetes: invalid seed object: ${causes.map((c) => `${c.field}: ${c.message}`).join("; ")}`);
    const path = this.pathOf({ apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: obj.metadata.namespace });
    const stored = this.#store(path, obj as Record<string, unknown>, manager, this.#objects.get(path));
    return clone(stored.entry.obj);
  }

  /** Removes an object directly (someone else deleted it). */
  remove(ref: { apiVersion: string; kind: string; name: string; namespace?: string }): boolean {
    return this.#objects.delete(this.pathOf(ref));
  }

  /** The next `count` matching requests get 429 TooManyRequests with `Retry-After: <seconds>`. */
  throttle(match: { method?: string; path?: RegExp } = {}, retryAfterSeconds = 1, count = 1): this {
    const reply = status(429, "TooManyRequests", "Too many requests, please try again later.", { retryAfterSeconds }, { "Retry-After": String(retryAfterSeconds) });
    this.api.fail(match, ...Array.from({ length: count }, () => reply));
    return this;
  }

  /** The next `count` matching requests get a 5xx `Status`. */
  serverError(match: { method?: string; path?: RegExp } = {}, code = 500, count = 1): this {
    const reason = code === 503 ? "ServiceUnavailable" : code === 504 ? "Timeout" : "InternalError";
    this.api.fail(match, ...Array.from({ length: count }, () => status(code, reason, `an error on the server ("fake ${code}") has prevented the request from succeeding`)));
    return this;
  }

  /** The next `count` matching requests get 403 Forbidden (RBAC refused). */
  forbid(match: { method?: string; path?: RegExp } = {}, count = 1): this {
    const reply = status(403, "Forbidden", 'forbidden: User "system:serviceaccount:vigil:vigil" cannot perform this action (RBAC)');
    this.api.fail(match, ...Array.from({ length: count }, () => reply));
    return this;
  }

  #authenticate(req: FakeRequest): FakeReply | undefined {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "");
    if (m && this.tokens.has(m[1]!)) return undefined;
    return status(401, "Unauthorized", "Unauthorized");
  }

  #resourceFor(group: string, version: string, plural?: string, kind?: string): Resource | undefined {
    if (plural !== undefined) {
      const known = this.#resources.get(`${group}/${version}/${plural}`);
      if (known) return known;
    }
    const apiVersion = group === "" ? version : `${group}/${version}`;
    for (const { apiVersion: av, kind: k } of registeredKinds()) {
      if (av !== apiVersion) continue;
      if ((plural !== undefined && pluralise(k) === plural) || (kind !== undefined && k === kind)) {
        const r: Resource = { group, version, apiVersion, kind: k, plural: pluralise(k), namespaced: true };
        this.#resources.set(`${group}/${version}/${r.plural}`, r);
        return r;
      }
    }
    return undefined;
  }

  #handle(req: FakeRequest): FakeReply {
    const m =
      /^\/apis\/(?<group>[^/]+)\/(?<version>[^/]+)\/namespaces\/(?<ns>[^/]+)\/(?<plural>[^/]+)\/(?<name>[^/]+)$/.exec(req.path) ??
      /^\/api\/(?<version>v1)\/namespaces\/(?<ns>[^/]+)\/(?<plural>[^/]+)\/(?<name>[^/]+)$/.exec(req.path) ??
      /^\/apis\/(?<group>[^/]+)\/(?<version>[^/]+)\/(?<plural>[^/]+)\/(?<name>[^/]+)$/.exec(req.path) ??
      /^\/api\/(?<version>v1)\/(?<plural>[^/]+)\/(?<name>[^/]+)$/.exec(req.path);
    const g = m?.groups as { group?: string; version: string; ns?: string; plural: string; name: string } | undefined;
    const res = g ? this.#resourceFor(g.group ?? "", g.version, g.plural) : undefined;
    if (!g || !res || res.namespaced !== (g.ns !== undefined)) return status(404, "NotFound", "the server could not find the requested resource", {});
    const ns = g.ns;
    const name = decodeURIComponent(g.name);
    const details = { name, group: res.group, kind: res.plural };
    switch (req.method) {
      case "GET": {
        const e = this.#objects.get(req.path);
        return e ? { status: 200, body: e.obj } : notFound(res, name);
      }
      case "PATCH":
        return this.#apply(req, res, ns, name);
      case "DELETE":
        return this.#delete(req, res, name, details);
      default:
        return status(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (this fake serves GET, PATCH apply and DELETE)`, details);
    }
  }

  #apply(req: FakeRequest, res: Resource, ns: string | undefined, name: string): FakeReply {
    const details = { name, group: res.group, kind: res.plural };
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/apply-patch+yaml") {
      return status(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml (this fake implements server-side apply only); got ${JSON.stringify(type)}`, details);
    }
    const manager = req.query.get("fieldManager");
    if (!manager) return status(400, "BadRequest", "fieldManager is required for apply requests", details);
    if (manager.length > 128) return status(400, "BadRequest", "fieldManager: must be at most 128 characters", details);
    const force = req.query.get("force");
    if (force !== null && force !== "true" && force !== "false") return status(400, "BadRequest", `force: invalid value ${JSON.stringify(force)}`, details);
    let body: unknown;
    try {
      body = parseYaml(req.body);
    } catch (err) {
      return status(400, "BadRequest", `error decoding YAML: ${(err as Error).message}`, details);
    }
    if (!isPlainObject(body)) return status(400, "BadRequest", "the body of an apply patch must be an object", details);
    if (body.apiVersion !== res.apiVersion) return status(400, "BadRequest", `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${res.apiVersion})`, details);
    if (body.kind !== res.kind) return status(400, "BadRequest", `the kind in the data (${String(body.kind)}) does not match the expected kind (${res.kind})`, details);
    const meta = body.metadata;
    if (!isPlainObject(meta)) return status(400, "BadRequest", "metadata: Required value", details);
    if (meta.name !== name) return status(400, "BadRequest", `the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`, details);
    if (meta.namespace !== undefined && meta.namespace !== ns) return status(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request", details);
    if (meta.managedFields !== undefined) return status(400, "BadRequest", "metadata.managedFields must be nil", details);
    const applied = clone(body);
    if (ns !== undefined) (applied.metadata as Record<string, unknown>).namespace = ns;

    const causes = validateKubeObject(applied);
    if (causes.length) {
      const list = causes.map((c) => `${c.field}: ${c.message}`);
      const message = `${res.kind}.${res.group || "core"} ${JSON.stringify(name)} is invalid: ${list.length === 1 ? list[0] : `[${list.join(", ")}]`}`;
      return status(422, "Invalid", message, { ...details, kind: res.kind, causes });
    }

    const existing = this.#objects.get(req.path);
    if (existing && force !== "true") {
      const mine = leaves(stripMeta(applied));
      const conflicts: ValidationCause[] = [];
      for (const [other, fields] of existing.applied) {
        if (other === manager) continue;
        const theirs = leaves(stripMeta(fields));
        for (const [p, v] of mine) if (theirs.has(p) && theirs.get(p) !== v) conflicts.push({ reason: "FieldManagerConflict", field: `.${p}`, message: `conflict with "${other}"` });
      }
      if (conflicts.length) {
        return status(409, "Conflict", `Apply failed with ${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}: ${conflicts.map((c) => `${c.message}: ${c.field}`).join("; ")}`, { ...details, causes: conflicts });
      }
    }
    const { entry, created } = this.#store(req.path, applied, manager, existing);
    return { status: created ? 201 : 200, body: entry.obj };
  }

  #store(path: string, applied: Record<string, unknown>, manager: string, existing: Entry | undefined): { entry: Entry; created: boolean } {
    const before = existing?.applied.get(manager);
    const next: Record<string, unknown> = existing ? clone(existing.obj) : {};
    if (before) prune(next, stripServer(before), stripServer(applied));
    merge(next, stripServer(applied));
    defaults(next);
    const meta = next.metadata as StoredObject["metadata"];
    const now = new Date(Math.floor(this.#now() / 1000) * 1000).toISOString().replace(".000Z", "Z");
    const changed = !existing || JSON.stringify(withoutVolatile(existing.obj)) !== JSON.stringify(withoutVolatile(next as StoredObject));
    if (!existing) {
      meta.uid = randomUUID();
      meta.creationTimestamp = now;
      meta.generation = 1;
    } else if (JSON.stringify(existing.obj.spec) !== JSON.stringify(next.spec)) {
      meta.generation = Number(existing.obj.metadata.generation ?? 1) + 1;
    }
    if (changed) meta.resourceVersion = String(++this.#rv);
    const applies = new Map(existing?.applied ?? []);
    applies.set(manager, clone(applied));
    meta.managedFields = [...applies.keys()].map((m) => ({ manager: m, operation: "Apply", apiVersion: next.apiVersion, fieldsType: "FieldsV1", fieldsV1: {}, time: now }));
    const entry: Entry = { obj: next as StoredObject, applied: applies };
    this.#objects.set(path, entry);
    return { entry, created: !existing };
  }

  #delete(req: FakeRequest, res: Resource, name: string, details: Record<string, unknown>): FakeReply {
    let opts: Record<string, unknown> = {};
    if (req.body.trim() !== "") {
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json" && type !== "application/yaml") return status(415, "UnsupportedMediaType", `DeleteOptions must be sent as application/json, got ${JSON.stringify(type)}`, details);
      try {
        const parsed = JSON.parse(req.body) as unknown;
        if (!isPlainObject(parsed)) throw new Error("not an object");
        opts = parsed;
      } catch (err) {
        return status(400, "BadRequest", `error decoding DeleteOptions: ${(err as Error).message}`, details);
      }
      if (opts.kind !== undefined && opts.kind !== "DeleteOptions") return status(400, "BadRequest", `expected kind DeleteOptions, got ${String(opts.kind)}`, details);
      if (opts.apiVersion !== undefined && opts.apiVersion !== "v1" && opts.apiVersion !== "meta.k8s.io/v1") return status(400, "BadRequest", `DeleteOptions apiVersion ${String(opts.apiVersion)} is not served`, details);
      const allowed = new Set(["kind", "apiVersion", "preconditions", "propagationPolicy", "gracePeriodSeconds", "orphanDependents", "dryRun"]);
      const unknown = Object.keys(opts).filter((k) => !allowed.has(k));
      if (unknown.length) return status(400, "BadRequest", `unknown DeleteOptions fields: ${unknown.join(", ")}`, details);
    }
    const e = this.#objects.get(req.path);
    if (!e) return notFound(res, name);
    const pre = isPlainObject(opts.preconditions) ? opts.preconditions : {};
    if (pre.uid !== undefined && pre.uid !== e.obj.metadata.uid) {
      return status(409, "Conflict", `Operation cannot be fulfilled on ${res.plural}.${res.group} "${name}": Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${e.obj.metadata.uid}`, details);
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== e.obj.metadata.resourceVersion) {
      return status(409, "Conflict", `Operation cannot be fulfilled on ${res.plural}.${res.group} "${name}": Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${e.obj.metadata.resourceVersion}`, details);
    }
    this.#objects.delete(req.path);
    return { status: 200, body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { ...details, uid: e.obj.metadata.uid } } };
  }
}

function stripMeta(obj: Record<string, unknown>): Record<string, unknown> {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = obj;
  const m = isPlainObject(metadata) ? metadata : {};
  return { ...rest, metadata: { labels: m.labels, annotations: m.annotations } };
}

function stripServer(obj: Record<string, unknown>): Record<string, unknown> {
  const out = clone(obj);
  const meta = out.metadata;
  if (isPlainObject(meta)) for (const k of ["uid", "resourceVersion", "creationTimestamp", "generation", "managedFields", "selfLink", "deletionTimestamp"]) delete meta[k];
  return out;
}

function withoutVolatile(obj: StoredObject): unknown {
  const { resourceVersion: _rv, managedFields: _mf, generation: _g, ...meta } = obj.metadata;
  return { ...obj, metadata: meta };
}

/** Defaulting the API server does for the kinds it knows (NetworkPolicy: protocol TCP, policyTypes). */
function defaults(obj: Record<string, unknown>): void {
  if (obj.kind !== "NetworkPolicy" || !isPlainObject(obj.spec)) return;
  const spec = obj.spec;
  for (const dir of ["ingress", "egress"]) {
    for (const rule of Array.isArray(spec[dir]) ? (spec[dir] as unknown[]) : []) {
      if (!isPlainObject(rule) || !Array.isArray(rule.ports)) continue;
      for (const p of rule.ports) if (isPlainObject(p) && p.protocol === undefined) p.protocol = "TCP";
    }
  }
  if (spec.policyTypes === undefined) spec.policyTypes = spec.egress !== undefined ? ["Ingress", "Egress"] : ["Ingress"];
}

/** A `metav1.Status` reply. */
export function status(code: number, reason: string, message: string, details?: Record<string, unknown>, headers?: Record<string, string>): FakeReply {
  return {
    status: code,
    ...(headers ? { headers } : {}),
    body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code },
  };
}

function notFound(res: Resource, name: string): FakeReply {
  return status(404, "NotFound", `${res.plural}${res.group ? `.${res.group}` : ""} "${name}" not found`, { name, group: res.group, kind: res.plural });
}

// ---------------------------------------------------------------------------------------------
// Client set-up for tests

export interface KubeconfigUser {
  token?: string;
  tokenFile?: string;
  /** PEM; written as client-certificate-data. */
  clientCert?: string;
  clientKey?: string;
}

/** Writes a kubeconfig with one context `test` (cluster `test`, user `vigil`) and returns its path. */
export function writeKubeconfig(file: string, server: string, user: KubeconfigUser, ca?: string): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const u: Record<string, string> = {};
  if (user.token) u.token = user.token;
  if (user.tokenFile) u.tokenFile = user.tokenFile;
  if (user.clientCert) u["client-certificate-data"] = b64(user.clientCert);
  if (user.clientKey) u["client-key-data"] = b64(user.clientKey);
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "test",
    clusters: [{ name: "test", cluster: { server, ...(ca ? { "certificate-authority-data": b64(ca) } : {}) } }],
    users: [{ name: "vigil", user: u }],
    contexts: [{ name: "test", context: { cluster: "test", user: "vigil", namespace: "default" } }],
  };
  writeFileSync(file, JSON.stringify(doc, null, 2)); // JSON is YAML
  return file;
}

/**
 * A `kubernetes` provider client for the fake: a kubeconfig in a temporary directory with one of the
 * fake's tokens, plus any provider settings (`field_manager`, `circuit`, `timeout`).
 */
export function fakeKubernetesClient(fake: FakeKubernetes, settings: Record<string, unknown> = {}, name = "kubernetes"): { client: KubeClient; kubeconfig: string; token: string } {
  const token = [...fake.tokens][0] ?? "test-token";
  const dir = mkdtempSync(path.join(tmpdir(), "vigil-kube-"));
  const kubeconfig = writeKubeconfig(path.join(dir, "config"), fake.base, { token });
  const config = kubernetesProviderSchema.parse({ kubeconfig, ...settings });
  return { client: createKubernetesClient(config, providerContext(name)), kubeconfig, token };
}
