import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { fromTls, POST_HANDSHAKE_WAIT_MS } from "../../../../src/checks/certificate_validity/sources/tls.ts";
import { SourceError } from "../../../../src/checks/certificate_validity/sources/common.ts";
import { hex, makePki, type Pki } from "./pki.ts";

let pki: Pki;
const closers: (() => void)[] = [];

before(() => {
  pki = makePki();
});
after(() => {
  for (const close of closers) close();
  pki.cleanup();
});

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** A TLS server presenting leaf + intermediate; records the SNI each client sent. */
async function tlsServer(options: tls.TlsOptions = {}): Promise<{ port: number; sni: (string | undefined)[]; server: tls.Server }> {
  const sni: (string | undefined)[] = [];
  const server = tls.createServer({ cert: pki.leaf.pem + pki.intermediate.pem, key: pki.leaf.key, ...options });
  server.on("secureConnection", (socket) => {
    sni.push((socket as tls.TLSSocket & { servername?: string | false }).servername || undefined);
    socket.on("error", () => {});
  });
  server.on("tlsClientError", () => {});
  return { port: await listen(server), sni, server };
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<SourceError> {
  const err = await p.then(
    () => assert.fail("expected a SourceError"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SourceError, `not a SourceError: ${String(err)}`);
  assert.match(err.message, pattern);
  return err;
}

test("records the presented chain (leaf, intermediate) as DER, SNI only for host names", async () => {
  const { port, sni } = await tlsServer();
  const got = await fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 });
  assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.intermediate.der]));
  assert.equal(got.origin, `tls:127.0.0.1:${port}`);
  assert.equal(got.stapledOcsp, undefined);

  const named = await fromTls({ host: "localhost", port, timeoutMs: 5000 });
  assert.deepEqual(hex(named.chain), hex([pki.leaf.der, pki.intermediate.der]));
  assert.equal(named.origin, `tls:localhost:${port}`);
  await fromTls({ host: "127.0.0.1", port, servername: "web.example", timeoutMs: 5000 }); // IP host: no SNI even when named
  await fromTls({ host: "localhost", port, servername: "web.example", timeoutMs: 5000 });
  assert.deepEqual(sni, [undefined, "localhost", undefined, "web.example"]);
});

test("an untrusted, self-signed chain is still collected (validation is vigil's job)", async () => {
  const { port } = await tlsServer({ cert: pki.root.pem, key: pki.root.key });
  const got = await fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 });
  assert.deepEqual(hex(got.chain), hex([pki.root.der])); // a self-loop ends the walk
});

test("a stapled OCSP response is captured byte for byte", async () => {
  const blob = Buffer.from("3082000a0a0100a0030201ff", "hex"); // any fixed DER-looking bytes
  const { port, server } = await tlsServer();
  let asked = 0;
  server.on("OCSPRequest", (_cert: Buffer, _issuer: Buffer, callback: (err: Error | null, resp?: Buffer) => void) => {
    asked++;
    callback(null, blob);
  });
  const got = await fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 });
  assert.equal(asked, 1);
  assert.ok(got.stapledOcsp, "stapledOcsp missing");
  assert.deepEqual(Buffer.from(got.stapledOcsp).toString("hex"), blob.toString("hex"));
  assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.intermediate.der]));
});

for (const version of ["TLSv1.3", "TLSv1.2"] as const) {
  test(`a server demanding a client certificate (${version}): fails without one, works with one`, async () => {
    const { port } = await tlsServer({ requestCert: true, rejectUnauthorized: true, ca: pki.root.pem, maxVersion: version, minVersion: version });
    const started = performance.now();
    await rejectsWith(fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 }), /TLS handshake with 127\.0\.0\.1:\d+ failed/);
    assert.ok(performance.now() - started < 2000);

    const got = await fromTls({ host: "127.0.0.1", port, clientCert: pki.client.pem, clientKey: pki.client.key, timeoutMs: 5000 });
    assert.deepEqual(hex(got.chain), hex([pki.leaf.der, pki.intermediate.der]));
  });
}

test("TLS 1.3 without client auth returns promptly (session ticket ends the wait)", async () => {
  const { port } = await tlsServer();
  const started = performance.now();
  await fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 });
  assert.ok(performance.now() - started < POST_HANDSHAKE_WAIT_MS + 150, `took ${performance.now() - started} ms`);
});

test("a server that accepts TCP but never completes the handshake times out", async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on("error", () => {});
    s.resume(); // read (and ignore) the ClientHello, so the client's close is seen
  });
  const port = await listen(server);
  closers.push(() => sockets.forEach((s) => s.destroy()));
  const started = performance.now();
  const err = await rejectsWith(fromTls({ host: "127.0.0.1", port, timeoutMs: 300 }), /timed out after 300 ms/);
  const took = performance.now() - started;
  assert.ok(took >= 290 && took < 1500, `took ${took} ms`);
  assert.equal(err.aborted, false);
  assert.equal(sockets.length, 1);
  assert.ok(await closedSoon(sockets[0]!), "the client left its socket open");
});

async function closedSoon(s: net.Socket): Promise<boolean> {
  if (s.destroyed) return true;
  return new Promise((resolve) => {
    s.once("close", () => resolve(true));
    setTimeout(() => resolve(s.destroyed), 1000);
  });
}

test("the caller's AbortSignal stops the handshake", async () => {
  const server = net.createServer((s) => s.on("error", () => {}));
  const port = await listen(server);
  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error("stopping")), 100);
  const err = await rejectsWith(fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 }, ac.signal), /aborted/);
  assert.equal(err.aborted, true);
  const pre = AbortSignal.abort();
  assert.equal((await rejectsWith(fromTls({ host: "127.0.0.1", port, timeoutMs: 5000 }, pre), /aborted/)).aborted, true);
});

test("a refused connection is a SourceError", async () => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  await rejectsWith(fromTls({ host: "127.0.0.1", port, timeoutMs: 2000 }), /ECONNREFUSED/);
});

test("a server that closes without TLS is a SourceError", async () => {
  const server = net.createServer((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
  const port = await listen(server);
  await rejectsWith(fromTls({ host: "127.0.0.1", port, timeoutMs: 2000 }), /TLS handshake with 127\.0\.0\.1:\d+ failed/);
});

test("bad input is a SourceError, never a crash", async () => {
  const cases: [Parameters<typeof fromTls>[0], RegExp][] = [
    [{ host: "127.0.0.1", port: 0 }, /invalid port/],
    [{ host: "127.0.0.1", port: 70000 }, /invalid port/],
    [{ host: "127.0.0.1", port: 1.5 }, /invalid port/],
    [{ host: "bad host/../x", port: 443 }, /invalid host/],
    [{ host: "", port: 443 }, /invalid host/],
    [{ host: "127.0.0.1", port: 443, clientCert: pki.client.pem }, /go together/],
    [{ host: "127.0.0.1", port: 443, clientCert: "not pem", clientKey: "not pem", timeoutMs: 1000 }, /invalid client certificate/],
    [{ host: "127.0.0.1", port: 443, timeoutMs: -1 }, /timeout/],
  ];
  for (const [options, pattern] of cases) await rejectsWith(fromTls(options), pattern);
});

test("IPv6 literals: brackets accepted, origin bracketed, no SNI", async (t) => {
  const sni: (string | undefined)[] = [];
  const server = tls.createServer({ cert: pki.leaf.pem + pki.intermediate.pem, key: pki.leaf.key });
  server.on("secureConnection", (s) => sni.push((s as tls.TLSSocket & { servername?: string | false }).servername || undefined));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "::1", resolve);
    });
  } catch {
    t.skip("no IPv6 loopback");
    return;
  }
  closers.push(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const got = await fromTls({ host: "[::1]", port, timeoutMs: 5000 });
  assert.equal(got.origin, `tls:[::1]:${port}`);
  assert.deepEqual(sni, [undefined]);
});
