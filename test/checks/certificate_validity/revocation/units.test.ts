import { test } from "node:test";
import assert from "node:assert/strict";
import { ExpiringLru } from "../../../../src/checks/certificate_validity/revocation/cache.ts";
import { DerError, parseDer, readOid, readTime, children } from "../../../../src/plugin/x509/der.ts";
import { ParsedCrl } from "../../../../src/plugin/x509/crl.ts";

const parseCrl = (data: Uint8Array) => new ParsedCrl(data);
import { evaluateOcspResponse, ocspGetUrl } from "../../../../src/checks/certificate_validity/revocation/ocsp.ts";

test("ExpiringLru: entries expire, the least recently used goes first, and total weight is bounded", () => {
  const c = new ExpiringLru<string>(2, 100);
  c.set("a", "A", 1000, 0);
  c.set("b", "B", 1000, 0);
  assert.equal(c.get("a", 10), "A"); // a is now most recent
  c.set("c", "C", 1000, 0);
  assert.equal(c.get("b", 10), undefined, "b was least recently used");
  assert.equal(c.get("a", 10), "A");
  assert.equal(c.get("a", 1000), undefined, "expired at expiresAt");
  c.clear();
  c.set("x", "X", 1000, 0, 60);
  c.set("y", "Y", 1000, 0, 60);
  assert.equal(c.get("x", 1), undefined, "evicted by weight");
  assert.equal(c.get("y", 1), "Y");
  c.set("huge", "H", 1000, 0, 101);
  assert.equal(c.get("huge", 1), undefined, "heavier than the whole budget: not cached");
  c.set("past", "P", 5, 10);
  assert.equal(c.size, 1, "already expired: not cached");
});

test("DER reader: strict lengths, OIDs, times", () => {
  assert.throws(() => parseDer(Buffer.from([0x30, 0x80, 0x00, 0x00])), DerError); // indefinite length
  assert.throws(() => parseDer(Buffer.from([0x30, 0x81, 0x01, 0x00])), DerError); // non-minimal length
  assert.throws(() => parseDer(Buffer.from([0x30, 0x05, 0x00])), DerError); // runs past the end
  assert.throws(() => parseDer(Buffer.from([0x30, 0x00, 0x00])), DerError); // trailing data
  assert.throws(() => parseDer(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])), DerError);
  assert.equal(readOid(parseDer(Buffer.from("06082b06010505073001", "hex"))), "1.3.6.1.5.5.7.48.1");
  assert.equal(readTime(parseDer(Buffer.concat([Buffer.from([0x17, 13]), Buffer.from("491231235959Z")]))), Date.parse("2049-12-31T23:59:59Z"));
  assert.equal(readTime(parseDer(Buffer.concat([Buffer.from([0x17, 13]), Buffer.from("500101000000Z")]))), Date.parse("1950-01-01T00:00:00Z"));
  assert.equal(readTime(parseDer(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from("20260102030405Z")]))), Date.parse("2026-01-02T03:04:05Z"));
  assert.throws(() => readTime(parseDer(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from("20261302030405Z")]))), DerError);
  assert.deepEqual(children(parseDer(Buffer.from("3006020101020102", "hex"))).map((t) => t.end - t.start), [3, 3]);
});

test("parsers reject garbage with DerError; the OCSP evaluator turns it into unknown", async () => {
  assert.throws(() => parseCrl(Buffer.from("-----BEGIN X509 CRL-----\n!!!\n-----END X509 CRL-----")), DerError);
  assert.throws(() => parseCrl(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])), DerError);
  const leafless = { issuerRaw: Buffer.alloc(0) } as never;
  // An OCSPResponse with status tryLater (3) and no body.
  const r = await evaluateOcspResponse(Buffer.from("30030a0103", "hex"), leafless, leafless, 0, "ocsp:test");
  assert.deepEqual(r, { status: "unknown", source: "ocsp:test", reason: "OCSP responder answered tryLater" });
  const g = await evaluateOcspResponse(Buffer.from("nonsense"), leafless, leafless, 0, "ocsp:test");
  assert.equal(g.status, "unknown");
  assert.match(g.reason ?? "", /malformed/);
});

test("OCSP requests go as RFC 5019 GETs while their URL-encoded base64 is under 255 bytes", () => {
  const small = Buffer.alloc(60, 0xfb); // base64 of 0xfb… is "+/…", which URL-encoding lengthens
  const url = ocspGetUrl("http://ocsp.example.com", small)!;
  assert.ok(url.startsWith("http://ocsp.example.com/"));
  assert.equal(Buffer.from(decodeURIComponent(url.slice("http://ocsp.example.com/".length)), "base64").equals(small), true);
  assert.equal(ocspGetUrl("http://ocsp.example.com/path/", Buffer.alloc(60))!.startsWith("http://ocsp.example.com/path/"), true);
  assert.equal(ocspGetUrl("http://ocsp.example.com/", Buffer.alloc(200)), undefined, "a large request goes as a POST");
});
