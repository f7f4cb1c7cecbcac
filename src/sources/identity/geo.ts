/**
 * Places and networks of sign-ins: great-circle distances, country names to ISO 3166-1 alpha-2
 * codes (Okta's System Log names countries, Entra gives codes), and CIDR lists.
 */
import { BlockList, isIP } from "node:net";

/** Mean Earth radius (IUGG), km. */
const EARTH_RADIUS_KM = 6371.0088;

const rad = (deg: number) => (deg * Math.PI) / 180;

/**
 * Great-circle distance in km between two points (haversine). Correct across the antimeridian and
 * near the poles: it works on the sines of the half-differences, so 179.9°E to 179.9°W is 22 km,
 * not 40,000.
 */
export function distanceKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = rad(lat2 - lat1);
  const dLon = rad(lon2 - lon1);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** True for a latitude and longitude that can be a place on Earth. */
export function validCoordinates(lat: unknown, lon: unknown): boolean {
  return typeof lat === "number" && typeof lon === "number" && Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180;
}

/**
 * Codes the English display names cover that are not current countries: groupings (EU, UN),
 * "Unknown Region", pseudo-locales, exceptional reservations (Canary Islands, Ceuta and Melilla, …)
 * and withdrawn codes whose names a current country took over (FX "France", TP "Timor-Leste", …).
 */
const NOT_COUNTRIES = new Set(["EU", "EZ", "UN", "ZZ", "QO", "XA", "XB", "FX", "TP", "ZR", "YU", "SU", "DD", "CS", "BU", "NT", "AN", "UK", "VD", "NH", "YD", "RH", "DY", "HV", "EA", "IC", "CP", "DG", "TA", "AC"]);

/** Names the System Log uses that differ from the CLDR English names, lower-cased. */
const ALIASES: Readonly<Record<string, string>> = {
  "united states of america": "US",
  usa: "US",
  "united kingdom of great britain and northern ireland": "GB",
  "great britain": "GB",
  "russian federation": "RU",
  "korea, republic of": "KR",
  "republic of korea": "KR",
  "korea, democratic people's republic of": "KP",
  "czech republic": "CZ",
  "viet nam": "VN",
  "iran, islamic republic of": "IR",
  "taiwan, province of china": "TW",
  "hong kong": "HK",
  macau: "MO",
  "the netherlands": "NL",
  "türkiye": "TR",
  turkey: "TR",
  "ivory coast": "CI",
  "cote d'ivoire": "CI",
  "myanmar (burma)": "MM",
  burma: "MM",
  "swaziland": "SZ",
  "macedonia": "MK",
  "cape verde": "CV",
  "palestine": "PS",
  "palestinian territory": "PS",
  "bolivia, plurinational state of": "BO",
  "venezuela, bolivarian republic of": "VE",
  "tanzania, united republic of": "TZ",
  "moldova, republic of": "MD",
  "syrian arab republic": "SY",
  "lao people's democratic republic": "LA",
  "brunei darussalam": "BN",
  "congo, the democratic republic of the": "CD",
  "democratic republic of the congo": "CD",
  "republic of the congo": "CG",
};

let byName: Map<string, string> | undefined;

/** English country name (CLDR, as `Intl.DisplayNames` gives it) → alpha-2 code, built once. */
function names(): Map<string, string> {
  if (byName) return byName;
  const map = new Map<string, string>();
  const display = new Intl.DisplayNames(["en"], { type: "region", fallback: "none" });
  const A = "A".charCodeAt(0);
  for (let i = 0; i < 26; i++) {
    for (let j = 0; j < 26; j++) {
      const code = String.fromCharCode(A + i, A + j);
      if (NOT_COUNTRIES.has(code)) continue;
      const name = display.of(code);
      if (name && name !== code && !map.has(name.toLowerCase())) map.set(name.toLowerCase(), code);
    }
  }
  for (const [name, code] of Object.entries(ALIASES)) map.set(name, code);
  byName = map;
  return map;
}

/**
 * An ISO 3166-1 alpha-2 code (upper case) from what a source gives: a code already, or an English
 * country name. Undefined when it is neither (vigil never guesses a country).
 */
export function countryCode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "" || v.toLowerCase() === "unknown") return undefined;
  if (/^[A-Za-z]{2}$/.test(v)) {
    const code = v.toUpperCase();
    return NOT_COUNTRIES.has(code) ? undefined : code;
  }
  return names().get(v.toLowerCase());
}

/** A named list of networks, matched against sign-in addresses. */
export class NetworkList {
  readonly name: string;
  readonly #list = new BlockList();

  /** `cidrs` must already be valid (`parseCidr`); a bare address is a /32 or /128. */
  constructor(name: string, cidrs: readonly string[]) {
    this.name = name;
    for (const c of cidrs) {
      const parsed = parseCidr(c);
      if (!parsed) throw new TypeError(`not a CIDR: ${c}`);
      this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
  }

  has(address: string | undefined): boolean {
    if (address === undefined) return false;
    const family = isIP(address);
    if (family === 0) return false;
    return this.#list.check(address, family === 4 ? "ipv4" : "ipv6");
  }
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address; undefined when it is not one. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m) return undefined;
  const kind = isIP(m[1]!);
  if (kind === 0) return undefined;
  const max = kind === 4 ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) return undefined;
  return { address: m[1]!, prefix, family: kind === 4 ? "ipv4" : "ipv6" };
}
