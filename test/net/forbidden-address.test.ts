/**
 * The hostile-URL guard refuses every IPv6 range the IANA IPv6 Special-Purpose Address Registry marks
 * as not globally reachable, and judges IPv4 carried inside IPv6 as IPv4. IPv4-translated addresses
 * (::ffff:0:0:0/96) and local-use NAT64 (64:ff9b:1::/48) used to pass as public.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHttpClient, forbiddenAddress } from "../../src/net/http.ts";
import { VigilError } from "../../src/errors.ts";

test("IPv6 special-purpose ranges, one row per registry entry", () => {
  const cases: [address: string, expected: string | undefined, entry: string][] = [
    ["::", "unspecified", "::/128 unspecified"],
    ["::1", "loopback", "::1/128 loopback"],
    ["::ffff:127.0.0.1", "loopback", "::ffff:0:0/96 IPv4-mapped, judged as IPv4"],
    ["::ffff:8.8.8.8", undefined, "::ffff:0:0/96 IPv4-mapped, public IPv4"],
    ["::ffff:0:7f00:1", "IPv4-translated", "::ffff:0:0:0/96 IPv4-translated (RFC 2765), loopback inside"],
    ["::ffff:0:8.8.8.8", "IPv4-translated", "::ffff:0:0:0/96 IPv4-translated, even with a public IPv4"],
    ["::ffff:0:0:0", "IPv4-translated", "::ffff:0:0:0/96, first address"],
    ["64:ff9b::7f00:1", "loopback", "64:ff9b::/96 NAT64, judged as IPv4"],
    ["64:ff9b::8.8.8.8", undefined, "64:ff9b::/96 NAT64, public IPv4"],
    ["64:ff9b:1::8.8.8.8", "NAT64 local-use", "64:ff9b:1::/48 local-use NAT64 (RFC 8215)"],
    ["64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "NAT64 local-use", "64:ff9b:1::/48, last address"],
    ["64:ff9b:2::1", undefined, "just past 64:ff9b:1::/48"],
    ["100::1", "discard-only", "100::/64 discard-only (RFC 6666)"],
    ["100::ffff:ffff:ffff:ffff", "discard-only", "100::/64, last address"],
    ["100:0:0:1::1", undefined, "just past 100::/64"],
    // Teredo: server 65.54.227.120 (4136:e378), client = last 32 bits with every bit flipped.
    ["2001:0:4136:e378:8000:63bf:f7f7:f7f7", undefined, "2001::/32 Teredo, public server and client (8.8.8.8)"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback", "2001::/32 Teredo, client 127.0.0.1 obfuscated"],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation", "2001::/32 Teredo, RFC 4380's example client 192.0.2.45"],
    ["2001:0:a00:1:8000:63bf:f7f7:f7f7", "private", "2001::/32 Teredo, server 10.0.0.1"],
    ["2001:1::1", undefined, "2001:1::1/128 PCP anycast (globally reachable)"],
    ["2001:1::2", undefined, "2001:1::2/128 TURN anycast (globally reachable)"],
    ["2001:1::3", undefined, "2001:1::3/128 DNS-SD SRP anycast (globally reachable)"],
    ["2001:1::4", "reserved", "2001::/23 IETF protocol assignments, unassigned"],
    ["2001:2::1", "benchmarking", "2001:2::/48 benchmarking (RFC 5180)"],
    ["2001:2:0:ffff::1", "benchmarking", "2001:2::/48, last /64"],
    ["2001:3::1", undefined, "2001:3::/32 AMT (globally reachable)"],
    ["2001:4:112::1", undefined, "2001:4:112::/48 AS112-v6 (globally reachable)"],
    ["2001:10::1", "ORCHID", "2001:10::/28 ORCHID (deprecated)"],
    ["2001:1f:ffff::1", "ORCHID", "2001:10::/28, last addresses"],
    ["2001:20::1", undefined, "2001:20::/28 ORCHIDv2 (globally reachable)"],
    ["2001:30::1", undefined, "2001:30::/28 drone remote ID (globally reachable)"],
    ["2001:1ff::1", "reserved", "2001::/23, last block"],
    ["2001:200::1", undefined, "just past 2001::/23 (WIDE, public)"],
    ["2001:db8::1", "documentation", "2001:db8::/32 documentation (RFC 3849)"],
    ["2001:db8:ffff::1", "documentation", "2001:db8::/32, last addresses"],
    ["3fff::1", "documentation", "3fff::/20 documentation (RFC 9637)"],
    ["3fff:fff::1", "documentation", "3fff::/20, last addresses"],
    ["3fff:1000::1", undefined, "just past 3fff::/20"],
    ["2002:7f00:1::1", "loopback", "2002::/16 6to4, judged as IPv4"],
    ["2002:808:808::1", undefined, "2002::/16 6to4, public IPv4"],
    ["5f00::1", "SRv6 SID", "5f00::/16 SRv6 SIDs (RFC 9602)"],
    ["5f00:ffff::1", "SRv6 SID", "5f00::/16, last addresses"],
    ["5f01::1", undefined, "just past 5f00::/16"],
    ["fc00::1", "private", "fc00::/7 unique local"],
    ["fdff::1", "private", "fc00::/7, last block"],
    ["fe80::1", "link-local", "fe80::/10 link-local"],
    ["fec0::1", "private", "fec0::/10 site-local (deprecated)"],
    ["ff0e::1", "multicast", "ff00::/8 multicast"],
    ["2606:4700:4700::1111", undefined, "a public address"],
  ];
  for (const [address, expected, entry] of cases) assert.equal(forbiddenAddress(address), expected, `${address} (${entry})`);
});

test("IPv4 documentation ranges", () => {
  for (const a of ["192.0.2.1", "198.51.100.7", "203.0.113.255"]) assert.equal(forbiddenAddress(a), "documentation", a);
  for (const a of ["192.0.3.1", "198.51.101.1", "203.0.114.1"]) assert.equal(forbiddenAddress(a), undefined, a);
});

test("an untrusted URL naming one of them is refused before any connection", async (t) => {
  const http = createHttpClient();
  t.after(() => http.close());
  for (const host of ["[::ffff:0:7f00:1]", "[64:ff9b:1::a00:1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]", "[100::1]", "[5f00::1]"]) {
    await assert.rejects(
      http.request({ method: "GET", url: `http://${host}:9/ocsp`, untrusted: { allowPrivate: false }, timeoutMs: 2_000 }),
      (err: unknown) => err instanceof VigilError && err.code === "VIGIL_ERR_HOSTILE_URL",
      host,
    );
  }
});
