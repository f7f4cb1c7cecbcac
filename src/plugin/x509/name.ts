/**
 * Distinguished names and GeneralNames, read from their DER.
 *
 * A Name is SEQUENCE OF SET OF {type, value}: read with the DER framing, the values decoded as the
 * directory string types X.520 uses (readString). Every certificate carries two names and a batch
 * of leaves carries as many distinct subjects as leaves; the schema decode of @peculiar/asn1-x509's
 * `Name` costs about ten times the framing read, so names are read here, and the tests hold both
 * decodes to the same answer. The text form follows RFC 4514 (last RDN first, specials and control
 * characters escaped) and `key` is the comparison form of RFC 5280 §7.1 (case-folded,
 * whitespace-collapsed directory strings, RDNs order-sensitive, attributes within an RDN not).
 *
 * GeneralNames are read from their DER too: asn1-x509's iPAddress converter turns the octets into
 * text and loses non-contiguous masks and odd lengths, which name constraints must see.
 */
import { DerError, TAG, asBuffer, children, expectTag, oidString, parseDer, parseStrict, raw, readOid, readString, value, type Tlv } from "./der.ts";
import { ipRangeToText, ipToText } from "./ip.ts";
import { ATTRIBUTE_NAMES } from "./oids.ts";

export interface AttributeTypeAndValue {
  readonly oid: string;
  /** Decoded directory string; undefined for values that are not strings. */
  readonly value: string | undefined;
  /** The value's DER (tag, length, content). */
  readonly raw: Buffer;
}

export interface DistinguishedName {
  /** RDNs in encoded order (the first is the most significant). */
  readonly rdns: readonly (readonly AttributeTypeAndValue[])[];
  /** RFC 4514 text, last RDN first: `CN=svc, O=Example`. */
  readonly text: string;
  /** Comparison key (RFC 5280 §7.1): equal keys ⇔ the names match. */
  readonly key: string;
  /** Per-RDN comparison keys, in encoded order (name constraints compare prefixes of these). */
  readonly rdnKeys: readonly string[];
  /** The Name's DER. */
  readonly der: Buffer;
}

/** Names recur (every certificate a CA issues carries its name): decoded once, bounded. */
const NAME_CACHE_MAX = 4096;
const nameCache = new Map<string, DistinguishedName>();

/**
 * The DistinguishedName of a Name's DER. Throws DerError. `framed`: the caller already checked the
 * DER framing of this element (it is part of a certificate checked as a whole).
 */
export function decodeName(der: Uint8Array, framed = false): DistinguishedName {
  const buf = asBuffer(der);
  const cacheKey = buf.toString("latin1");
  const hit = nameCache.get(cacheKey);
  if (hit) return hit;
  const name = decodeNameUncached(buf, framed);
  if (nameCache.size >= NAME_CACHE_MAX) nameCache.delete(nameCache.keys().next().value!);
  nameCache.set(cacheKey, name);
  return name;
}

function decodeNameUncached(buf: Buffer, framed: boolean): DistinguishedName {
  const top = expectTag(framed ? parseDer(buf) : parseStrict(buf), TAG.SEQUENCE, "Name");
  const rdns: AttributeTypeAndValue[][] = children(top).map((set) => {
    expectTag(set, TAG.SET, "RelativeDistinguishedName");
    const avas = children(set);
    if (avas.length === 0) throw new DerError("empty RelativeDistinguishedName");
    return avas.map((ava) => {
      const parts = children(expectTag(ava, TAG.SEQUENCE, "AttributeTypeAndValue"));
      if (parts.length !== 2) throw new DerError("AttributeTypeAndValue must hold a type and a value");
      const v = parts[1]!;
      return { oid: readOid(parts[0]!), value: STRING_TAGS.has(v.tag) ? readString(v) : undefined, raw: Buffer.from(raw(v)) };
    });
  });
  const rdnKeys = rdns.map((avas) => avas.map((a) => `${a.oid}=${a.value !== undefined ? foldValue(a.value) : `#${a.raw.toString("hex")}`}`).sort().join("+"));
  const text = rdns
    .slice()
    .reverse()
    .map((avas) => avas.map(formatAva).join("+"))
    .join(", ");
  return { rdns, text, key: rdnKeys.join(","), rdnKeys, der: Buffer.from(buf) };
}

const STRING_TAGS: ReadonlySet<number> = new Set([TAG.UTF8_STRING, TAG.PRINTABLE_STRING, TAG.TELETEX_STRING, TAG.UNIVERSAL_STRING, TAG.BMP_STRING, TAG.IA5_STRING, TAG.NUMERIC_STRING, TAG.VISIBLE_STRING]);

function foldValue(v: string): string {
  return v.normalize("NFKC").toLowerCase().trim().replace(/\s+/g, " ");
}

function formatAva(a: AttributeTypeAndValue): string {
  const name = ATTRIBUTE_NAMES[a.oid] ?? a.oid;
  if (a.value === undefined) return `${name}=#${a.raw.toString("hex")}`;
  let v = a.value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  // Control characters would let a certificate forge log lines: escaped as \XX.
  v = v.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  if (v.startsWith(" ") || v.startsWith("#")) v = `\\${v}`;
  if (v.endsWith(" ") && v.length > 1) v = `${v.slice(0, -1)}\\ `;
  return `${name}=${v}`;
}

/** The values of attribute `oid` in `name`, in order. */
export function attributeValues(name: DistinguishedName, oid: string): string[] {
  return name.rdns.flatMap((rdn) => rdn.filter((a) => a.oid === oid && a.value !== undefined).map((a) => a.value!));
}

/** RFC 5280 name matching: the same DER, or the same comparison key. */
export function namesMatch(a: DistinguishedName, b: DistinguishedName): boolean {
  return a.der.equals(b.der) || a.key === b.key;
}

// ---------------------------------------------------------------------------------------------
// GeneralName

export type GeneralName =
  | { readonly type: "dns"; readonly value: string }
  | { readonly type: "email"; readonly value: string }
  | { readonly type: "uri"; readonly value: string }
  /** 4/16 bytes in a SAN; 8/32 (address then mask) in a name constraint. */
  | { readonly type: "ip"; readonly bytes: Buffer }
  | { readonly type: "dn"; readonly name: DistinguishedName }
  | { readonly type: "other"; readonly kind: "otherName" | "x400Address" | "ediPartyName" | "registeredID"; readonly oid?: string };

function ia5(t: Tlv): string {
  const v = value(t);
  for (const b of v) if (b > 0x7e || b < 0x20) throw new DerError("IA5String name with a non-printable or non-ASCII character");
  return v.toString("latin1");
}

/** One GeneralName (RFC 5280 §4.2.1.6) from its DER element. Throws DerError. */
export function decodeGeneralName(t: Tlv): GeneralName {
  switch (t.tag) {
    case 0xa0: {
      const [typeId] = children(t);
      return { type: "other", kind: "otherName", ...(typeId ? { oid: readOid(typeId) } : {}) };
    }
    case 0x81:
      return { type: "email", value: ia5(t) };
    case 0x82:
      return { type: "dns", value: ia5(t) };
    case 0xa3:
      return { type: "other", kind: "x400Address" };
    case 0xa4: {
      const kids = children(t);
      if (kids.length !== 1) throw new DerError("directoryName must wrap one Name");
      return { type: "dn", name: decodeName(raw(kids[0]!)) };
    }
    case 0xa5:
      return { type: "other", kind: "ediPartyName" };
    case 0x86:
      return { type: "uri", value: ia5(t) };
    case 0x87:
      return { type: "ip", bytes: Buffer.from(value(t)) };
    case 0x88:
      return { type: "other", kind: "registeredID", oid: oidString(value(t)) };
    default:
      throw new DerError(`unknown GeneralName tag 0x${t.tag.toString(16)}`);
  }
}

/** GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName, from its DER. */
export function decodeGeneralNames(der: Uint8Array, what: string): GeneralName[] {
  const kids = children(expectTag(parseStrict(der), TAG.SEQUENCE, what));
  if (kids.length === 0) throw new DerError(`${what}: empty GeneralNames`);
  return kids.map(decodeGeneralName);
}

export function generalNameToText(g: GeneralName): string {
  switch (g.type) {
    case "dns":
      return `DNS:${g.value}`;
    case "email":
      return `email:${g.value}`;
    case "uri":
      return `URI:${g.value}`;
    case "ip":
      return g.bytes.length === 8 || g.bytes.length === 32
        ? `IP:${ipRangeToText(g.bytes.subarray(0, g.bytes.length / 2), g.bytes.subarray(g.bytes.length / 2))}`
        : `IP:${ipToText(g.bytes)}`;
    case "dn":
      return `DirName:${g.name.text}`;
    case "other":
      return `${g.kind}${g.oid ? `:${g.oid}` : ""}`;
  }
}

