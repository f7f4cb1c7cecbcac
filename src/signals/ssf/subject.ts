/**
 * Subjects of Shared Signals events: RFC 9493 subject identifiers, the formats SSF 1.0 adds
 * (`jwt_id`, `saml_assertion_id`, `ip-addresses`) and complex subjects. Everything here is hostile
 * input: members are checked against their format (RFC 9493 §3: no members the format does not
 * describe), strings and lists are bounded, and nothing nests beyond complex → aliases → identifier.
 */
import { isIP } from "node:net";

/** A subject identifier vigil parsed. Proprietary formats (SSF 1.0 §3.4) are kept but not `known`. */
export interface SimpleIdentifier {
  readonly format: string;
  readonly known: boolean;
  /** The members, as strings (lists for `ip-addresses`); `aliases` keeps its identifiers instead. */
  readonly members: Readonly<Record<string, string | readonly string[]>>;
  /** `aliases` only. */
  readonly identifiers?: readonly SimpleIdentifier[];
}

export type ParsedSubject =
  | { readonly kind: "simple"; readonly id: SimpleIdentifier }
  | { readonly kind: "complex"; readonly members: ReadonlyMap<string, SimpleIdentifier> };

/** Member names SSF 1.0 §3.3 defines for complex subjects. */
export const COMPLEX_MEMBERS: ReadonlySet<string> = new Set(["user", "device", "session", "application", "tenant", "org_unit", "group"]);

/** The members each known format must have, exactly (RFC 9493 §3.2, SSF 1.0 §3.4). */
const FORMATS: Readonly<Record<string, readonly string[]>> = {
  account: ["uri"],
  email: ["email"],
  iss_sub: ["iss", "sub"],
  opaque: ["id"],
  phone_number: ["phone_number"],
  did: ["url"],
  uri: ["uri"],
  aliases: ["identifiers"],
  jwt_id: ["iss", "jti"],
  // The name an SSF draft used; CAEP 1.0's examples use jwt_id.
  "jwt-id": ["iss", "jti"],
  saml_assertion_id: ["issuer", "assertion_id"],
  "ip-addresses": ["ip-addresses"],
};

/** Subject identifier formats vigil understands. */
export const KNOWN_FORMATS: readonly string[] = Object.keys(FORMATS);

const MAX_STRING = 1024;
const MAX_ALIASES = 20;
const MAX_MEMBERS = 16;
const MAX_ADDRESSES = 32;
const FORMAT_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** A subject that breaks its format or the bounds; the message says which member. */
export class SubjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubjectError";
  }
}

const isObject = (v: unknown): v is Readonly<Record<string, unknown>> => v !== null && typeof v === "object" && !Array.isArray(v);

function text(where: string, value: unknown): string {
  if (typeof value !== "string" || value === "") throw new SubjectError(`${where} must be a non-empty string`);
  if (value.length > MAX_STRING) throw new SubjectError(`${where} is longer than ${MAX_STRING} characters`);
  return value;
}

function checkValue(where: string, format: string, key: string, value: string): void {
  const bad = (what: string) => new SubjectError(`${where}.${key} is not ${what}`);
  switch (format) {
    case "email":
      if (!/^[^\s@]+@[^\s@]+$/.test(value)) throw bad("an e-mail address");
      return;
    case "account":
      if (!/^acct:[^\s@]+@[^\s@]+$/.test(value)) throw bad("an acct: URI");
      return;
    case "phone_number":
      // E.164 says digits after "+"; the SSF examples write "+1 206 555 0123", so separators pass and are dropped for matching.
      if (!/^\+[0-9][0-9 ().-]{1,30}$/.test(value)) throw bad("a phone number (+<country><number>)");
      return;
    case "did":
      if (!/^did:[a-z0-9]+:\S+$/.test(value)) throw bad("a DID");
      return;
    case "uri":
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(value)) throw bad("an absolute URI");
      return;
  }
}

/** Parses one simple identifier; `aliases` only where `allowAliases`. */
function simple(where: string, value: unknown, allowAliases: boolean): SimpleIdentifier {
  if (!isObject(value)) throw new SubjectError(`${where} must be a subject identifier object`);
  const format = value.format;
  if (typeof format !== "string" || !FORMAT_RE.test(format)) throw new SubjectError(`${where}.format must be a format name`);
  const keys = Object.keys(value).filter((k) => k !== "format");
  if (keys.length > MAX_MEMBERS) throw new SubjectError(`${where} has more than ${MAX_MEMBERS} members`);
  const required = FORMATS[format];
  if (required === undefined) {
    // Proprietary: kept for the record, never matched; only strings and numbers, so nothing nests.
    const members: Record<string, string> = {};
    for (const k of keys) {
      const v = value[k];
      if (typeof v === "number" && Number.isFinite(v)) members[k] = String(v);
      else members[k] = text(`${where}.${k}`, v);
    }
    return { format, known: false, members };
  }
  for (const k of keys) if (!required.includes(k)) throw new SubjectError(`${where}: format ${format} has no member ${k}`);
  for (const k of required) if (!(k in value)) throw new SubjectError(`${where}: format ${format} needs member ${k}`);
  if (format === "aliases") {
    if (!allowAliases) throw new SubjectError(`${where}: aliases may not nest`);
    const list = value.identifiers;
    if (!Array.isArray(list) || list.length === 0) throw new SubjectError(`${where}.identifiers must be a non-empty list`);
    if (list.length > MAX_ALIASES) throw new SubjectError(`${where}.identifiers has more than ${MAX_ALIASES} entries`);
    const identifiers = list.map((item, i) => simple(`${where}.identifiers[${i}]`, item, false));
    return { format, known: true, members: {}, identifiers };
  }
  if (format === "ip-addresses") {
    const list = value["ip-addresses"];
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ADDRESSES) throw new SubjectError(`${where}.ip-addresses must be a list of 1 to ${MAX_ADDRESSES} addresses`);
    const addresses = list.map((a, i) => {
      const s = text(`${where}.ip-addresses[${i}]`, a);
      if (isIP(s) === 0) throw new SubjectError(`${where}.ip-addresses[${i}] is not an IP address`);
      return s;
    });
    return { format, known: true, members: { "ip-addresses": addresses } };
  }
  const members: Record<string, string> = {};
  for (const k of required) {
    const s = text(`${where}.${k}`, value[k]);
    checkValue(where, format, k, s);
    members[k] = s;
  }
  return { format, known: true, members };
}

/**
 * Parses a SET's subject: `sub_id` (SSF 1.0 §3.1), or for CAEP and RISC events that predate it the
 * event's own `subject` member. A complex subject has `format: complex`; one without `format` whose
 * members are all objects is the earlier drafts' complex subject and is read the same way.
 */
export function parseSubject(value: unknown, where = "sub_id"): ParsedSubject {
  if (!isObject(value)) throw new SubjectError(`${where} must be an object`);
  const legacyComplex = value.format === undefined && Object.keys(value).length > 0 && Object.values(value).every(isObject);
  if (value.format !== "complex" && !legacyComplex) return { kind: "simple", id: simple(where, value, true) };
  const names = Object.keys(value).filter((k) => k !== "format");
  if (names.length === 0) throw new SubjectError(`${where}: a complex subject needs at least one member`);
  if (names.length > MAX_MEMBERS) throw new SubjectError(`${where} has more than ${MAX_MEMBERS} members`);
  const members = new Map<string, SimpleIdentifier>();
  for (const name of names) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new SubjectError(`${where}: member name ${JSON.stringify(name.slice(0, 64))} is not allowed`);
    members.set(name, simple(`${where}.${name}`, value[name], true));
  }
  return { kind: "complex", members };
}

/** Member name given to the identifier of a simple subject. */
export const SIMPLE_MEMBER = "subject";

/** Every (member, identifier) pair of a subject, aliases expanded. */
export function identifiersOf(subject: ParsedSubject): { member: string; id: SimpleIdentifier }[] {
  const out: { member: string; id: SimpleIdentifier }[] = [];
  const add = (member: string, id: SimpleIdentifier) => {
    if (id.identifiers) for (const alias of id.identifiers) out.push({ member, id: alias });
    else out.push({ member, id });
  };
  if (subject.kind === "simple") add(SIMPLE_MEMBER, subject.id);
  else for (const [member, id] of subject.members) add(member, id);
  return out;
}

/**
 * SSF 1.0 §3.5: an event whose subject has a critical member vigil cannot process is discarded.
 * vigil can process a member it knows by name (SSF 1.0 §3.3) whose identifier format it knows.
 * Returns the first member it cannot process, or undefined.
 */
export function unprocessableCritical(subject: ParsedSubject, critical: readonly string[]): string | undefined {
  if (subject.kind !== "complex" || critical.length === 0) return undefined;
  for (const name of critical) {
    const id = subject.members.get(name);
    if (id === undefined) continue;
    const known = id.identifiers ? id.identifiers.every((a) => a.known) : id.known;
    if (!COMPLEX_MEMBERS.has(name) || !known) return name;
  }
  return undefined;
}

/** The opaque id of a simple `opaque` subject (a stream id), or undefined. */
export function opaqueId(subject: ParsedSubject): string | undefined {
  if (subject.kind !== "simple" || subject.id.format !== "opaque") return undefined;
  const id = subject.id.members.id;
  return typeof id === "string" ? id : undefined;
}

/** The subject as one short line for logs and audit entries (format and values, cut). */
export function describeSubject(subject: ParsedSubject): string {
  const one = (id: SimpleIdentifier): string =>
    id.identifiers ? `aliases(${id.identifiers.map(one).join(", ")})` : `${id.format}:${Object.values(id.members).flat().join("/")}`;
  const line = subject.kind === "simple" ? one(subject.id) : [...subject.members].map(([m, id]) => `${m}=${one(id)}`).join(" ");
  return line.length > 256 ? `${line.slice(0, 255)}…` : line;
}
