import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHttpClient, type HttpClient } from "../../../../src/net/http.ts";
import { FakeClock, systemClock, type Clock } from "../../../../src/util/clock.ts";
import type { RevocationOptions, RevocationResult } from "../../../../src/checks/certificate_validity/types.ts";
import { RevocationChecker } from "../../../../src/checks/certificate_validity/revocation/index.ts";
import { checkLocalCrls } from "../../../../src/checks/certificate_validity/revocation/crl.ts";
import { buildPki, CrlServer, OcspFront, opensslAvailable, startResponder, type Pki, type Responder } from "./pki.ts";

const HAVE_OPENSSL = opensslAvailable();
const DAY = 24 * 60 * 60_000;

describe("revocation (real openssl PKI, responders and servers)", { skip: HAVE_OPENSSL ? false : "openssl CLI not found on PATH: revocation integration tests skipped" }, () => {
  let pki: Pki;
  let front: OcspFront;
  let crlServer: CrlServer;
  let http: HttpClient;
  let issuerSigned: Responder;
  let delegated: Responder;
  let noEku: Responder;
  let forged: Responder;
  let checked: Responder;
  let revokedResponder: Responder;
  let expiredResponder: Responder;
  const warnings: { obj: object; msg?: string }[] = [];

  before(async () => {
    front = new OcspFront();
    crlServer = new CrlServer();
    await front.start();
    await crlServer.start();
    pki = buildPki(front.port, crlServer.port);
    crlServer.body = pki.crlDer;
    [issuerSigned, delegated, noEku, forged, checked, revokedResponder, expiredResponder] = await Promise.all([
      startResponder(pki.dir, "int.pem", "int.key"),
      startResponder(pki.dir, "responder.pem", "responder.key"),
      startResponder(pki.dir, "responder-noeku.pem", "responder-noeku.key"),
      startResponder(pki.dir, "forged-responder.pem", "forged-responder.key"),
      startResponder(pki.dir, "responder-checked.pem", "responder-checked.key"),
      startResponder(pki.dir, "responder-revoked.pem", "responder-revoked.key"),
      startResponder(pki.dir, "responder-expired.pem", "responder-expired.key"),
    ]);
    http = createHttpClient();
  });

  after(async () => {
    await Promise.all([issuerSigned?.stop(), delegated?.stop(), noEku?.stop(), forged?.stop(), checked?.stop(), revokedResponder?.stop(), expiredResponder?.stop()]);
    await http?.close();
    await front?.close();
    await crlServer?.close();
    pki?.cleanup();
  });

  function checker(over: Partial<RevocationOptions> = {}, clock: Clock = systemClock): RevocationChecker {
    const opts: RevocationOptions = {
      mode: "prefer_ocsp",
      soft_fail: true,
      allow_private_urls: true,
      timeout_ms: 5000,
      max_ocsp_bytes: 64 * 1024,
      max_crl_bytes: 10 * 1024 * 1024,
      ...over,
    };
    return new RevocationChecker(opts, { http, clock, logger: { warn: (obj, msg) => void warnings.push({ obj, msg }) } });
  }

  const ocspUrl = (): string => `http://127.0.0.1:${front.port}/`;
  const crlUrl = (): string => `http://127.0.0.1:${crlServer.port}/crl.der`;

  function assertUnknown(r: RevocationResult, pattern: RegExp): void {
    assert.equal(r.status, "unknown", `expected unknown, got ${JSON.stringify(r)}`);
    assert.match(r.reason ?? "", pattern);
  }

  describe("OCSP", () => {
    test("issuer-signed responder: good leaf is good, with nextUpdate as valid_until", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const r = await checker({ mode: "ocsp" }).check(pki.leaf, pki.int);
      assert.equal(r.status, "good", JSON.stringify(r));
      assert.equal(r.source, `ocsp:${ocspUrl()}`);
      assert.ok(r.valid_until !== undefined && r.valid_until > Date.now() && r.valid_until <= Date.now() + 6 * 60_000, `valid_until ${r.valid_until}`);
    });

    test("issuer-signed responder: revoked leaf is revoked with time and reason", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const r = await checker({ mode: "ocsp" }).check(pki.revoked, pki.int);
      assert.equal(r.status, "revoked", JSON.stringify(r));
      assert.equal(r.reason, "keyCompromise");
      assert.ok(r.revoked_at && Math.abs(Date.parse(r.revoked_at) - Date.now()) < DAY, `revoked_at ${r.revoked_at}`);
    });

    test("delegated responder (id-kp-OCSPSigning, issued by the issuer) is believed", async () => {
      front.mode = { kind: "proxy", port: delegated.port };
      const good = await checker({ mode: "ocsp" }).check(pki.leaf, pki.int);
      assert.equal(good.status, "good", JSON.stringify(good));
      // The response really came from the delegate: it carries the delegate's certificate.
      assert.ok(front.lastResponse?.includes(pki.responder), "delegated response should carry the responder certificate");
      const revoked = await checker({ mode: "ocsp" }).check(pki.revoked, pki.int);
      assert.equal(revoked.status, "revoked", JSON.stringify(revoked));
      assert.equal(revoked.reason, "keyCompromise");
    });

    test("a delegated responder without id-pkix-ocsp-nocheck is believed once the issuer's CRL shows it is not revoked", async () => {
      front.mode = { kind: "proxy", port: checked.port };
      crlServer.body = pki.crlDer;
      const before = crlServer.requests;
      const r = await checker({ mode: "ocsp" }).check(pki.revoked, pki.int);
      assert.equal(r.status, "revoked", JSON.stringify(r));
      assert.ok(crlServer.requests > before, "the responder's own status came from the CRL");
    });

    test("a delegated responder without id-pkix-ocsp-nocheck that the CRL lists as revoked is not believed → unknown", async () => {
      front.mode = { kind: "proxy", port: revokedResponder.port };
      crlServer.body = pki.crlDer;
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.int), /lacks id-pkix-ocsp-nocheck and its own status is not established \(revoked/);
    });

    test("a delegated responder without id-pkix-ocsp-nocheck whose status cannot be had is not believed → unknown", async () => {
      front.mode = { kind: "proxy", port: checked.port };
      crlServer.body = Buffer.from("not a CRL");
      try {
        assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.int), /lacks id-pkix-ocsp-nocheck.*malformed/);
      } finally {
        crlServer.body = pki.crlDer;
      }
    });

    test("a delegated responder certificate outside its validity is not believed → unknown", async () => {
      front.mode = { kind: "proxy", port: expiredResponder.port };
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.int), /responder certificate has expired/);
    });

    test("small requests go as RFC 5019 GETs, and the responder answers them", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      front.methods = [];
      const r = await checker({ mode: "ocsp" }).check(pki.leaf, pki.int);
      assert.equal(r.status, "good", JSON.stringify(r));
      assert.deepEqual(front.methods, ["GET"]);
    });

    test("a responder certificate without id-kp-OCSPSigning is not authorized → unknown", async () => {
      front.mode = { kind: "proxy", port: noEku.port };
      const r = await checker({ mode: "ocsp" }).check(pki.revoked, pki.int);
      assertUnknown(r, /signature does not verify.*OCSPSigning/);
      assert.equal(r.source, `ocsp:${ocspUrl()}`);
    });

    test("a responder certificate naming the issuer but signed by another key is not authorized → unknown", async () => {
      front.mode = { kind: "proxy", port: forged.port };
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.revoked, pki.int), /not signed by the certificate's issuer/);
    });

    test("a responder answering garbage bytes → unknown (malformed)", async () => {
      front.mode = { kind: "garbage" };
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.int), /malformed/);
    });

    test("a responder that never answers → unknown within about timeout_ms", async () => {
      front.mode = { kind: "hang" };
      const started = Date.now();
      const r = await checker({ mode: "ocsp", timeout_ms: 400 }).check(pki.leaf, pki.int);
      assertUnknown(r, /timed out after 400 ms/);
      assert.ok(Date.now() - started < 10_000, "should give up near the timeout");
    });

    test("the caller's AbortSignal cuts a hanging request short", async () => {
      front.mode = { kind: "hang" };
      const started = Date.now();
      const r = await checker({ mode: "ocsp", timeout_ms: 60_000 }).check(pki.leaf, pki.int, { signal: AbortSignal.timeout(300) });
      assertUnknown(r, /aborted/);
      assert.ok(Date.now() - started < 10_000, "should stop when the signal fires");
    });

    test("with allow_private_urls false the loopback responder is refused → unknown naming the target", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const before = front.requests;
      const r = await checker({ mode: "ocsp", allow_private_urls: false }).check(pki.leaf, pki.int);
      assertUnknown(r, /refused hostile URL target.*127\.0\.0\.1.*loopback/);
      assert.equal(front.requests, before, "no request may reach the refused target");
    });

    test("a replayed response (nonce mismatch) → unknown", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      assert.equal((await checker({ mode: "ocsp" }).check(pki.leaf, pki.int)).status, "good");
      const captured = front.lastResponse;
      assert.ok(captured && captured.length > 0);
      front.mode = { kind: "replay", body: captured };
      // A fresh checker (empty cache) sends a fresh nonce; the replay echoes the old one.
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.int), /nonce does not match/);
    });

    test("a response for another certificate (CertID mismatch) → unknown", async () => {
      front.mode = { kind: "replay", body: pki.stapledRevoked };
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.int), /does not cover the certificate/);
    });

    test("a response whose nextUpdate has passed (clock moved on) → unknown (stale)", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const clock = new FakeClock(Date.now() + 60 * 60_000);
      assertUnknown(await checker({ mode: "ocsp" }, clock).check(pki.leaf, pki.int), /stale/);
    });

    test("oversize responses → unknown", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      assertUnknown(await checker({ mode: "ocsp", max_ocsp_bytes: 100 }).check(pki.leaf, pki.int), /larger than 100 bytes/);
    });

    test("answers are cached until nextUpdate: a second check does not hit the responder", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const clock = new FakeClock(Date.now());
      const c = checker({ mode: "ocsp" }, clock);
      const before = front.requests;
      const first = await c.check(pki.revoked, pki.int);
      const second = await c.check(pki.revoked, pki.int);
      assert.equal(first.status, "revoked");
      assert.deepEqual(second, first);
      assert.equal(front.requests, before + 1);
      // Past nextUpdate (5 min) the cache entry is gone and the responder is asked again.
      clock.advance(6 * 60_000);
      await c.check(pki.revoked, pki.int);
      assert.equal(front.requests, before + 2);
    });

    test("ocsp mode: a certificate without an OCSP URL → unknown", async () => {
      const r = await checker({ mode: "ocsp" }).check(pki.noAia, pki.int);
      assertUnknown(r, /no http\(s\) OCSP responder/);
    });
  });

  describe("stapled OCSP", () => {
    test("a valid stapled response is used first, without any request", async () => {
      front.mode = { kind: "hang" };
      const before = front.requests;
      const r = await checker({ mode: "ocsp" }).check(pki.leaf, pki.int, { stapled: pki.stapledGood });
      assert.equal(r.status, "good", JSON.stringify(r));
      assert.equal(r.source, "ocsp:stapled");
      const revoked = await checker({ mode: "crl" }).check(pki.revoked, pki.int, { stapled: pki.stapledRevoked });
      assert.equal(revoked.status, "revoked");
      assert.equal(revoked.source, "ocsp:stapled");
      assert.equal(front.requests, before);
    });

    test("a stapled response for another certificate is ignored; the responder is asked", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const before = front.requests;
      const r = await checker({ mode: "ocsp" }).check(pki.leaf, pki.int, { stapled: pki.stapledRevoked });
      assert.equal(r.status, "good", JSON.stringify(r));
      assert.equal(r.source, `ocsp:${ocspUrl()}`);
      assert.equal(front.requests, before + 1);
    });

    test("a garbage or stale stapled response falls through to the online check", async () => {
      front.mode = { kind: "garbage" };
      const r = await checker({ mode: "ocsp" }).check(pki.leaf, pki.int, { stapled: Buffer.from("garbage") });
      assertUnknown(r, /stapled: OCSP response is malformed.*; OCSP response is malformed/);
      const stale = await checker({ mode: "ocsp" }, new FakeClock(Date.now() + DAY)).check(pki.leaf, pki.int, { stapled: pki.stapledGood });
      assertUnknown(stale, /stapled: OCSP response is stale/);
    });
  });

  describe("CRL", () => {
    test("crl mode: good and revoked from the distribution point (the ldap DP is ignored)", async () => {
      crlServer.body = pki.crlDer;
      const c = checker({ mode: "crl" });
      const good = await c.check(pki.leaf, pki.int);
      assert.equal(good.status, "good", JSON.stringify(good));
      assert.equal(good.source, `crl:${crlUrl()}`);
      assert.ok(good.valid_until !== undefined && good.valid_until > Date.now() + DAY / 2);
      const revoked = await c.check(pki.revoked, pki.int);
      assert.equal(revoked.status, "revoked", JSON.stringify(revoked));
      assert.equal(revoked.reason, "keyCompromise");
      assert.ok(revoked.revoked_at && !Number.isNaN(Date.parse(revoked.revoked_at)));
    });

    test("a PEM CRL is accepted too", async () => {
      crlServer.body = pki.crlPem;
      try {
        const r = await checker({ mode: "crl" }).check(pki.revoked, pki.int);
        assert.equal(r.status, "revoked", JSON.stringify(r));
      } finally {
        crlServer.body = pki.crlDer;
      }
    });

    test("the CRL is cached per URL until nextUpdate: a second check does not fetch", async () => {
      crlServer.body = pki.crlDer;
      const c = checker({ mode: "crl" });
      const before = crlServer.requests;
      assert.equal((await c.check(pki.leaf, pki.int)).status, "good");
      assert.equal((await c.check(pki.revoked, pki.int)).status, "revoked");
      assert.equal(crlServer.requests, before + 1);
    });

    test("an oversize CRL → unknown", async () => {
      crlServer.body = pki.crlDer;
      assertUnknown(await checker({ mode: "crl", max_crl_bytes: 64 }).check(pki.leaf, pki.int), /larger than 64 bytes/);
    });

    test("a CRL naming the issuer but signed by another key → unknown", async () => {
      crlServer.body = pki.wrongKeyCrlDer;
      try {
        assertUnknown(await checker({ mode: "crl" }).check(pki.revoked, pki.int), /CRL signature does not verify with the issuer's key/);
      } finally {
        crlServer.body = pki.crlDer;
      }
    });

    test("a CRL from another issuer → unknown", async () => {
      crlServer.body = Buffer.from(pki.wrongKeyCrlDer);
      // Flip one byte of the issuer name (inside the TBS) so the names no longer match.
      const i = crlServer.body.indexOf(Buffer.from("Intermediate"));
      crlServer.body[i] = "X".charCodeAt(0);
      try {
        assertUnknown(await checker({ mode: "crl" }).check(pki.leaf, pki.int), /CRL issuer does not match/);
      } finally {
        crlServer.body = pki.crlDer;
      }
    });

    test("garbage instead of a CRL → unknown", async () => {
      crlServer.body = Buffer.from("<html>not a CRL</html>");
      try {
        assertUnknown(await checker({ mode: "crl" }).check(pki.leaf, pki.int), /malformed/);
      } finally {
        crlServer.body = pki.crlDer;
      }
    });

    test("a stale CRL (evaluation clock past nextUpdate) → unknown", async () => {
      crlServer.body = pki.crlDer;
      assertUnknown(await checker({ mode: "crl" }, new FakeClock(Date.now() + 3 * DAY)).check(pki.leaf, pki.int), /CRL is stale/);
    });

    test("with allow_private_urls false the loopback CRL URL is refused → unknown", async () => {
      const before = crlServer.requests;
      assertUnknown(await checker({ mode: "crl", allow_private_urls: false }).check(pki.leaf, pki.int), /refused hostile URL target.*127\.0\.0\.1/);
      assert.equal(crlServer.requests, before);
    });

    test("local CRLs are considered first (crl:local), without fetching", async () => {
      const before = crlServer.requests;
      const c = checker({ mode: "crl", crls: [Buffer.from("junk"), pki.crlPem] });
      const r = await c.check(pki.revoked, pki.int);
      assert.equal(r.status, "revoked", JSON.stringify(r));
      assert.equal(r.source, "crl:local");
      assert.equal((await c.check(pki.leaf, pki.int)).source, "crl:local");
      assert.equal(crlServer.requests, before);
      assert.ok(warnings.some((w) => /local CRL could not be parsed/.test(w.msg ?? "")), "the junk CRL is reported");
    });

    test("a local CRL signed by the wrong key is not believed; the distribution point is used", async () => {
      crlServer.body = pki.crlDer;
      const r = await checker({ mode: "crl", crls: [pki.wrongKeyCrlDer] }).check(pki.revoked, pki.int);
      assert.equal(r.status, "revoked", JSON.stringify(r));
      assert.equal(r.source, `crl:${crlUrl()}`);
    });

    test("CRL scope: an issuing distribution point must be one of the certificate's, and cover all reasons", async () => {
      const serve = async (body: Buffer, serial: Buffer): Promise<RevocationResult> => {
        crlServer.body = body;
        try {
          return await checker({ mode: "crl" }).check(serial, pki.int);
        } finally {
          crlServer.body = pki.crlDer;
        }
      };
      const mine = await serve(pki.idpMineCrl, pki.revoked);
      assert.equal(mine.status, "revoked", JSON.stringify(mine));
      // Another partition's CRL, validly signed, must not vouch for this certificate.
      assertUnknown(await serve(pki.idpOtherCrl, pki.revoked), /not one of the certificate's distribution points/);
      assertUnknown(await serve(pki.idpReasonsCrl, pki.revoked), /only some revocation reasons/);
    });

    test("checkLocalCrls (offline, for the CLI)", () => {
      assert.equal(checkLocalCrls(pki.revoked, pki.int, [pki.crlDer], Date.now()).status, "revoked");
      assert.equal(checkLocalCrls(pki.leaf, pki.int, [pki.crlPem], Date.now()).status, "good");
      assert.equal(checkLocalCrls(pki.leaf, pki.int, [pki.crlPem], Date.now() + 3 * DAY).status, "unknown");
      assert.equal(checkLocalCrls(pki.revoked, pki.int, [pki.wrongKeyCrlDer], Date.now()).status, "unknown");
    });
  });

  describe("modes", () => {
    test("prefer_ocsp: OCSP answers when it can", async () => {
      front.mode = { kind: "proxy", port: issuerSigned.port };
      const r = await checker({ mode: "prefer_ocsp" }).check(pki.revoked, pki.int);
      assert.equal(r.status, "revoked");
      assert.equal(r.source, `ocsp:${ocspUrl()}`);
    });

    test("prefer_ocsp: a broken responder falls back to the CRL", async () => {
      front.mode = { kind: "garbage" };
      crlServer.body = pki.crlDer;
      const r = await checker({ mode: "prefer_ocsp" }).check(pki.revoked, pki.int);
      assert.equal(r.status, "revoked", JSON.stringify(r));
      assert.equal(r.source, `crl:${crlUrl()}`);
    });

    test("prefer_ocsp: when everything fails the reason lists each failure", async () => {
      front.mode = { kind: "garbage" };
      crlServer.body = pki.wrongKeyCrlDer;
      try {
        const r = await checker({ mode: "prefer_ocsp" }).check(pki.leaf, pki.int);
        assertUnknown(r, /OCSP response is malformed.*; CRL signature does not verify/);
      } finally {
        crlServer.body = pki.crlDer;
      }
    });

    test("none → not_checked, without any request", async () => {
      const before = front.requests + crlServer.requests;
      assert.deepEqual(await checker({ mode: "none" }).check(pki.leaf, pki.int), { status: "not_checked" });
      assert.equal(front.requests + crlServer.requests, before);
    });

    test("an issuer that did not issue the leaf, or unparseable input → unknown, never a throw", async () => {
      assertUnknown(await checker({ mode: "ocsp" }).check(pki.leaf, pki.root), /issuer certificate's subject does not match/);
      assertUnknown(await checker({ mode: "ocsp" }).check(Buffer.from("nope"), pki.int), /could not be parsed/);
    });
  });
});
