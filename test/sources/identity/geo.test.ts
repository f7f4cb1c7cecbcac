import { test } from "node:test";
import assert from "node:assert/strict";
import { countryCode, distanceKm, NetworkList, parseCidr, validCoordinates } from "../../../src/sources/identity/geo.ts";

const near = (actual: number, expected: number, tolerance: number, what: string) => assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} not within ${tolerance} of ${expected}`);

test("great-circle distances: known city pairs", () => {
  near(distanceKm(52.52, 13.405, 48.8566, 2.3522), 878, 5, "Berlin–Paris");
  near(distanceKm(40.7128, -74.006, 51.5074, -0.1278), 5570, 15, "New York–London");
  near(distanceKm(-33.8688, 151.2093, 52.52, 13.405), 16_090, 30, "Sydney–Berlin");
  assert.equal(distanceKm(10, 20, 10, 20), 0);
});

test("across the antimeridian the short way round, not 40,000 km", () => {
  near(distanceKm(0, 179.9, 0, -179.9), 22.2, 0.5, "0.2° of longitude at the equator");
  near(distanceKm(-18.1416, 178.4419, -13.8333, -171.75), 1150, 20, "Suva (Fiji)–Apia (Samoa)");
  // Fairbanks–Anadyr: 34.8° of longitude apart across the 180th meridian, at about 64.8°N.
  const lawOfCosines = (a: number, b: number, c: number, d: number) => {
    const r = (x: number) => (x * Math.PI) / 180;
    return 6371.0088 * Math.acos(Math.sin(r(a)) * Math.sin(r(c)) + Math.cos(r(a)) * Math.cos(r(c)) * Math.cos(r(d - b)));
  };
  near(distanceKm(64.8378, -147.7164, 64.7333, 177.5167), lawOfCosines(64.8378, -147.7164, 64.7333, 177.5167), 1, "Fairbanks–Anadyr, against the spherical law of cosines");
  assert.ok(distanceKm(64.8378, -147.7164, 64.7333, 177.5167) < 1_700, "the short way round");
  assert.ok(distanceKm(89.9, 0, 89.9, 180) < 30, "near the pole, opposite meridians are close");
});

test("coordinates must be a place on Earth", () => {
  assert.equal(validCoordinates(52.5, 13.4), true);
  assert.equal(validCoordinates(91, 0), false);
  assert.equal(validCoordinates(0, 181), false);
  assert.equal(validCoordinates(Number.NaN, 0), false);
  assert.equal(validCoordinates(undefined, 0), false);
});

test("country names as the System Log writes them become ISO codes; codes stay codes", () => {
  const cases: [string, string | undefined][] = [
    ["Germany", "DE"],
    ["United States", "US"],
    ["United Kingdom", "GB"],
    ["France", "FR"],
    ["Russia", "RU"],
    ["South Korea", "KR"],
    ["Czechia", "CZ"],
    ["Czech Republic", "CZ"],
    ["Vietnam", "VN"],
    ["Yemen", "YE"],
    ["Zimbabwe", "ZW"],
    ["Vanuatu", "VU"],
    ["Timor-Leste", "TL"],
    ["de", "DE"],
    ["US", "US"],
    ["Unknown", undefined],
    ["Atlantis", undefined],
    ["EU", undefined],
    ["", undefined],
  ];
  for (const [name, code] of cases) assert.equal(countryCode(name), code, name);
  assert.equal(countryCode(undefined), undefined);
});

test("CIDR lists match IPv4 and IPv6 addresses; bad blocks are refused", () => {
  const list = new NetworkList("tor-exits", ["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"]);
  assert.equal(list.has("203.0.113.200"), true);
  assert.equal(list.has("203.0.114.1"), false);
  assert.equal(list.has("198.51.100.7"), true);
  assert.equal(list.has("198.51.100.8"), false);
  assert.equal(list.has("2001:db8:1::5"), true);
  assert.equal(list.has("2001:db9::1"), false);
  assert.equal(list.has("not an address"), false);
  assert.equal(list.has(undefined), false);
  assert.equal(parseCidr("10.0.0.0/33"), undefined);
  assert.equal(parseCidr("10.0.0/8"), undefined);
  assert.deepEqual(parseCidr("10.0.0.0/8"), { address: "10.0.0.0", prefix: 8, family: "ipv4" });
});
