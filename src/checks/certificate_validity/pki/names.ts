/**
 * Names: does a certificate carry the expected identity (RFC 6125 for DNS; IP, email, URI exact),
 * and does it stay within an issuer's name constraints (RFC 5280 §4.2.1.10)?
 */

import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import type { ParsedCertificate } from "../../../plugin/x509/certificate.ts";
import type { IpSubtree, Subtrees } from "../../../plugin/x509/extensions.ts";
import { ipToBytes, ipToText } from "../../../plugin/x509/ip.ts";
import { attributeValues, generalNameToText, type DistinguishedName, type GeneralName } from "../../../plugin/x509/name.ts";
import { OID } from "../../../plugin/x509/oids.ts";
import type { ExpectedIdentity } from "../types.ts";
import { dnsSyntaxProblem, isPublicSuffix } from "./dns.ts";

// ---------------------------------------------------------------------------------------------
// Identity

/**
 * A reference DNS name → lower-case A-labels without a trailing dot; undefined when unusable. A
 * name ending in an all-numeric label is an IP address in a non-canonical form (`010.0.0.5`,
 * `10.1`, `0x0a.0.0.5`) and never a DNS name: it matches nothing.
 */
export function normalizeDnsName(name: string): string | undefined {
  let h = name.trim();
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (h === "" || h.includes("*")) return undefined;
  // Pure ASCII needs no IDNA mapping (and must not go through WHATWG host parsing, which would
  // turn "foo.0x7f" style names into IPv4 addresses).
  const ascii = /^[\x21-\x7e]+$/.test(h) ? h.toLowerCase() : domainToASCII(h).toLowerCase();
  if (ascii === "" || /(^|\.)\d+$/.test(ascii)) return undefined;
  return ascii;
}

/**
 * RFC 6125 §6.4: `presented` (a dNSName SAN) against the normalized reference `ref`. A wildcard
 * only as the whole left-most label, over at least two more labels that are not a public suffix,
 * matching exactly one label.
 */
export function dnsNameMatches(presented: string, ref: string): boolean {
  let p = presented.toLowerCase();
  if (p.endsWith(".")) p = p.slice(0, -1);
  if (p === "") return false;
  if (!p.includes("*")) return p === ref;
  if (!p.startsWith("*.")) return false; // partial (f*.x) or non-left-most wildcard
  const rest = p.slice(2);
  if (rest.includes("*") || rest.split(".").length < 2 || rest.split(".").some((l) => l === "") || isPublicSuffix(rest)) return false;
  const dot = ref.indexOf(".");
  if (dot <= 0) return false;
  return ref.slice(dot + 1) === rest;
}

function splitEmail(s: string): [string, string] | undefined {
  const at = s.lastIndexOf("@");
  if (at <= 0 || at === s.length - 1) return undefined;
  return [s.slice(0, at), s.slice(at + 1)];
}

function listed(names: readonly string[]): string {
  if (names.length === 0) return "none";
  const shown = names.slice(0, 8).map((n) => JSON.stringify(n)).join(", ");
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}

/**
 * Undefined when `cert` carries every identity `identity` names; otherwise why not. DNS names
 * match dNSName SANs only (never the subject CN); a `dns` value that is an IP literal matches IP
 * SANs; IPs compare as bytes; emails by exact local part and case-insensitive domain; URIs
 * (SPIFFE IDs) exactly.
 */
export function matchIdentity(cert: ParsedCertificate, identity: ExpectedIdentity): string | undefined {
  const sans = cert.sans;
  if (identity.dns !== undefined) {
    if (isIP(identity.dns.replace(/^\[|\]$/g, ""))) {
      const why = matchIp(cert, identity.dns);
      if (why) return why;
    } else {
      const ref = normalizeDnsName(identity.dns);
      if (ref === undefined) return `the expected DNS name ${JSON.stringify(identity.dns)} is not a valid host name`;
      if (!sans.dns.some((p) => dnsNameMatches(p, ref))) return `no DNS subjectAltName matches ${JSON.stringify(ref)} (certificate has ${listed(sans.dns)})`;
    }
  }
  if (identity.ip !== undefined) {
    const why = matchIp(cert, identity.ip);
    if (why) return why;
  }
  if (identity.email !== undefined) {
    const want = splitEmail(identity.email.trim());
    if (!want) return `the expected email ${JSON.stringify(identity.email)} is not an address`;
    const wantDomain = normalizeDnsName(want[1]) ?? want[1].toLowerCase();
    const ok = sans.email.some((e) => {
      const got = splitEmail(e);
      return got !== undefined && got[0] === want[0] && (normalizeDnsName(got[1]) ?? got[1].toLowerCase()) === wantDomain;
    });
    if (!ok) return `no email subjectAltName matches ${JSON.stringify(identity.email)} (certificate has ${listed(sans.email)})`;
  }
  if (identity.uri !== undefined) {
    if (!sans.uri.includes(identity.uri)) return `no URI subjectAltName equals ${JSON.stringify(identity.uri)} (certificate has ${listed(sans.uri)})`;
  }
  return undefined;
}

function matchIp(cert: ParsedCertificate, ip: string): string | undefined {
  const want = ipToBytes(ip);
  if (!want) return `the expected IP ${JSON.stringify(ip)} is not an IP address`;
  if (!cert.sans.ipBytes.some((b) => b.equals(want))) return `no IP subjectAltName equals ${ipToText(want)} (certificate has ${listed(cert.sans.ip)})`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Name constraints

function stripDot(s: string): string {
  return s.endsWith(".") ? s.slice(0, -1) : s;
}

/** dNSName `name` within subtree `c`: equal or below on a label boundary; `.x` means strictly below x. */
export function dnsWithin(name: string, constraint: string): boolean {
  const n = stripDot(name.toLowerCase());
  const c = stripDot(constraint.toLowerCase());
  if (c === "") return true;
  if (c.startsWith(".")) return n.endsWith(c);
  return n === c || n.endsWith(`.${c}`);
}

/** For excluded subtrees: could wildcard `name` (`*.d`) match some name in subtree `c`? */
function dnsMayHit(name: string, constraint: string): boolean {
  if (dnsWithin(name, constraint)) return true;
  const n = stripDot(name.toLowerCase());
  const c = stripDot(constraint.toLowerCase());
  if (!n.startsWith("*.") || c.startsWith(".")) return false;
  const dot = c.indexOf(".");
  return dot > 0 && c.slice(dot + 1) === n.slice(2);
}

/** rfc822Name `mailbox` within `c`: a mailbox (exact), a host (all its mailboxes) or `.domain` (hosts below). */
export function emailWithin(mailbox: string, constraint: string): boolean {
  const m = splitEmail(mailbox);
  if (!m) return false;
  const host = stripDot(m[1].toLowerCase());
  const c = constraint.toLowerCase();
  if (constraint.includes("@")) {
    const cm = splitEmail(constraint);
    return cm !== undefined && cm[0] === m[0] && stripDot(cm[1].toLowerCase()) === host;
  }
  if (c.startsWith(".")) return host.endsWith(stripDot(c));
  return host === stripDot(c);
}

/** The host of a URI with an authority (lower-case); "[ip]" hosts and URIs without one → undefined. */
export function uriHost(uri: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri);
  if (!m) return undefined;
  let auth = m[1]!;
  const at = auth.lastIndexOf("@");
  if (at >= 0) auth = auth.slice(at + 1);
  if (auth.startsWith("[")) return undefined;
  auth = auth.replace(/:\d*$/, "");
  if (auth === "" || isIP(auth)) return undefined;
  return stripDot(auth.toLowerCase());
}

/** uniformResourceIdentifier `uri` within `c`: its host equals c, or lies below `.c`. */
export function uriWithin(uri: string, constraint: string): boolean {
  const host = uriHost(uri);
  if (host === undefined) return false;
  const c = stripDot(constraint.toLowerCase());
  if (c.startsWith(".")) return host.endsWith(c);
  return host === c;
}

export function ipWithin(addr: Uint8Array, sub: IpSubtree): boolean {
  if (addr.length !== sub.addr.length) return false;
  for (let i = 0; i < addr.length; i++) if ((addr[i]! & sub.mask[i]!) !== (sub.addr[i]! & sub.mask[i]!)) return false;
  return true;
}

/** directoryName: the constraint's RDNs are a prefix of the name's. */
export function dnWithin(name: DistinguishedName, constraint: DistinguishedName): boolean {
  if (constraint.rdnKeys.length > name.rdnKeys.length) return false;
  return constraint.rdnKeys.every((k, i) => name.rdnKeys[i] === k);
}

interface Names {
  dns: string[];
  ip: Buffer[];
  email: string[];
  uri: string[];
  dn: DistinguishedName[];
  other: GeneralName[];
}

/** The names of `cert` that name constraints apply to: SANs, a non-empty subject DN, subject emailAddress. */
function constrainedNames(cert: ParsedCertificate): Names {
  const s = cert.sans;
  const subjectEmails = attributeValues(cert.subject, OID.emailAddress);
  return {
    dns: [...s.dns],
    ip: [...s.ipBytes],
    email: [...s.email, ...subjectEmails],
    uri: [...s.uri],
    dn: cert.subject.rdns.length > 0 ? [cert.subject, ...s.dn] : [...s.dn],
    other: [...s.other],
  };
}

function describeSubtrees(t: Subtrees): string {
  const parts = [
    ...t.dns.map((d) => `DNS:${d}`),
    ...t.ip.map((r) => generalNameToText({ type: "ip", bytes: Buffer.concat([r.addr, r.mask]) })),
    ...t.email.map((e) => `email:${e}`),
    ...t.uri.map((u) => `URI:${u}`),
    ...t.dn.map((d) => `DirName:${d.text}`),
    ...t.unsupported,
  ];
  return parts.length > 6 ? `${parts.slice(0, 6).join(", ")}, …` : parts.join(", ");
}

/** Why a constraint of `t` cannot be evaluated under the strict profile (a dNSName that is not a host name), or undefined. */
function subtreeSyntaxProblem(t: Subtrees | undefined, which: string): string | undefined {
  for (const d of t?.dns ?? []) {
    const why = dnsSyntaxProblem(d, { empty: true });
    if (why) return `the dNSName ${JSON.stringify(d)} in ${which} ${why}`;
  }
  return undefined;
}

/**
 * Undefined when every name of `subordinate` satisfies `issuer`'s nameConstraints (or it has
 * none); otherwise the first violation. Permitted subtrees of a name form bind every name of that
 * form; an excluded subtree rejects any name in it. What cannot be evaluated fails closed: an
 * extension RFC 5280 forbids (empty lists, minimum or maximum, bad iPAddress ranges), a constrained
 * form this validator does not process (otherName, x400Address, ediPartyName, registeredID) when
 * the subordinate carries such a name, a URI whose host cannot be read, and under the strict
 * profile a dNSName constraint that is not a host name (`.example.com`, `a_b.example`).
 */
export function checkNameConstraints(issuer: ParsedCertificate, subordinate: ParsedCertificate, strict = false): string | undefined {
  const nc = issuer.nameConstraints;
  if (!nc) return undefined;
  const by = `the name constraints of ${JSON.stringify(issuer.subject.text)}`;
  if (nc.invalid) return `${by} cannot be evaluated: ${nc.invalid}`;
  const { permitted, excluded } = nc;
  if (strict) {
    const syntax = subtreeSyntaxProblem(permitted, "permittedSubtrees") ?? subtreeSyntaxProblem(excluded, "excludedSubtrees");
    if (syntax) return `${by} cannot be evaluated: ${syntax}`;
  }
  const names = constrainedNames(subordinate);

  for (const kind of [...(permitted?.unsupported ?? []), ...(excluded?.unsupported ?? [])]) {
    const hit = names.other.find((g) => g.type === "other" && g.kind === kind);
    if (hit) return `${generalNameToText(hit)} is a name form ${by} constrain but this validator cannot check`;
  }

  const checks: { label: (i: number) => string; count: number; perm: (i: number) => boolean | undefined; excl: (i: number) => boolean }[] = [
    {
      count: names.dns.length,
      label: (i) => `DNS:${names.dns[i]}`,
      perm: (i) => (permitted && permitted.dns.length ? permitted.dns.some((c) => dnsWithin(names.dns[i]!, c)) : undefined),
      excl: (i) => (excluded?.dns ?? []).some((c) => dnsMayHit(names.dns[i]!, c)),
    },
    {
      count: names.ip.length,
      label: (i) => `IP:${ipToText(names.ip[i]!)}`,
      perm: (i) => (permitted && permitted.ip.length ? permitted.ip.some((c) => ipWithin(names.ip[i]!, c)) : undefined),
      excl: (i) => (excluded?.ip ?? []).some((c) => ipWithin(names.ip[i]!, c)),
    },
    {
      count: names.email.length,
      label: (i) => `email:${names.email[i]}`,
      perm: (i) => (permitted && permitted.email.length ? permitted.email.some((c) => emailWithin(names.email[i]!, c)) : undefined),
      // An address whose domain cannot be read is inside every excluded subtree (fail closed).
      excl: (i) => (excluded?.email ?? []).some((c) => splitEmail(names.email[i]!) === undefined || emailWithin(names.email[i]!, c)),
    },
    {
      count: names.uri.length,
      label: (i) => `URI:${names.uri[i]}`,
      perm: (i) => (permitted && permitted.uri.length ? permitted.uri.some((c) => uriWithin(names.uri[i]!, c)) : undefined),
      // A URI whose host cannot be read is inside every excluded URI subtree (fail closed).
      excl: (i) => (excluded?.uri ?? []).some((c) => uriHost(names.uri[i]!) === undefined || uriWithin(names.uri[i]!, c)),
    },
    {
      count: names.dn.length,
      label: (i) => `DirName:${names.dn[i]!.text}`,
      perm: (i) => (permitted && permitted.dn.length ? permitted.dn.some((c) => dnWithin(names.dn[i]!, c)) : undefined),
      excl: (i) => (excluded?.dn ?? []).some((c) => dnWithin(names.dn[i]!, c)),
    },
  ];
  for (const c of checks) {
    for (let i = 0; i < c.count; i++) {
      if (c.excl(i)) return `${c.label(i)} is within an excluded subtree of ${by} (${describeSubtrees(excluded!)})`;
      if (c.perm(i) === false) return `${c.label(i)} is outside the permitted subtrees of ${by} (${describeSubtrees(permitted!)})`;
    }
  }
  return undefined;
}
