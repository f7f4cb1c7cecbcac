/** IP addresses as bytes (what certificates carry) and as text (RFC 5952 for IPv6). */

import { isIPv4, isIPv6 } from "node:net";

/** Text → 4 or 16 bytes; undefined when `s` is not an IP address. Zone ids (`%eth0`) are refused. */
export function ipToBytes(s: string): Buffer | undefined {
  let text = s.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  if (isIPv4(text)) return Buffer.from(text.split(".").map(Number));
  if (!isIPv6(text) || text.includes("%")) return undefined;
  let head = text;
  let v4: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    v4 = text.slice(lastColon + 1).split(".").map(Number);
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const [left, right] = head.includes("::") ? head.split("::") : [head, undefined];
  const l = left ? left.split(":") : [];
  const r = right ? right.split(":") : [];
  const groups = right === undefined ? l : [...l, ...Array<string>(8 - l.length - r.length).fill("0"), ...r];
  if (groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (v4.length === 4) v4.forEach((b, i) => (out[12 + i] = b));
  return out;
}

/** 4 or 16 bytes → text (IPv6 compressed per RFC 5952); other lengths → hex. */
export function ipToText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) return `#${Buffer.from(b).toString("hex")}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  // The longest run of two or more zero groups (first one on ties) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** An iPAddress name constraint (address followed by mask) → text: CIDR when the mask is contiguous. */
export function ipRangeToText(addr: Uint8Array, mask: Uint8Array): string {
  let bits = 0;
  let contiguous = true;
  for (const byte of mask) {
    for (let k = 7; k >= 0; k--) {
      const on = (byte >> k) & 1;
      if (on && !contiguous) return `${ipToText(addr)}/${ipToText(mask)}`;
      if (on) bits++;
      else contiguous = false;
    }
  }
  return `${ipToText(addr)}/${bits}`;
}
