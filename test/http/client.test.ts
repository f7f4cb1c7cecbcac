import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { readFileSync } from "node:fs";
import { createHttpClient, forbiddenAddress, maskUrl, parseRetryAfter, type HttpClient } from "../../src/net/http.ts";
import { VIGIL_VERSION } from "../../src/util/version.ts";
import { UpstreamError, VigilError } from "../../src/errors.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TestServer {
  server: Server;
  url: string;
  port: number;
  connections: number;
  requests: number;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

async function startServer(handler: Handler): Promise<TestServer> {
  const server = createServer();
  const state: TestServer = {
    server,
    url: "",
    port: 0,
    connections: 0,
    requests: 0,
    sockets: new Set(),
    close: async () => {
      for (const s of state.sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on("connection", (socket: Socket) => {
    state.connections++;
    state.sockets.add(socket);
    socket.on("close", () => state.sockets.delete(socket));
  });
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    state.requests++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}

/** Runs `fn`, expecting it to reject, and returns the rejection. */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail("expected a rejection");
}

async function upstreamError(fn: () => Promise<unknown>): Promise<UpstreamError> {
  const err = await rejection(fn);
  assert.ok(err instanceof UpstreamError, `expected UpstreamError, got ${String(err)}`);
  return err;
}

async function hostileError(fn: () => Promise<unknown>): Promise<VigilError> {
  const err = await rejection(fn);
  assert.ok(err instanceof VigilError, `expected VigilError, got ${String(err)}`);
  assert.equal(err.code, "VIGIL_ERR_HOSTILE_URL", err.message);
  return err;
}

describe("http client against a real server", () => {
  let srv: TestServer;
  let http: HttpClient;
  // Open responses of the hanging routes, ended on teardown.
  const hanging: ServerResponse[] = [];
  const bigStreamSockets: Socket[] = [];

  before(async () => {
    srv = await startServer((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      const status = Number(u.searchParams.get("status") ?? "200");
      switch (u.pathname) {
        case "/echo": {
          const chunks: Buffer[] = [];
          req.on("data", (c: Buffer) => chunks.push(c));
          req.on("end", () => {
            res.setHeader("content-type", "application/json");
            res.end(JSON.stringify({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") }));
          });
          return;
        }
        case "/status":
          res.statusCode = status;
          for (const [k, v] of u.searchParams) if (k !== "status" && k !== "body") res.setHeader(k, v);
          res.end(u.searchParams.get("body") ?? `status ${status}`);
          return;
        case "/long-error":
          res.statusCode = 404;
          res.end("x".repeat(5000));
          return;
        case "/never":
          hanging.push(res);
          return;
        case "/stall-body":
          res.writeHead(200, { "content-type": "text/plain" });
          res.write("partial");
          hanging.push(res);
          return;
        case "/big-declared":
          res.writeHead(200, { "content-length": String(2 * 1024 * 1024) });
          res.end(Buffer.alloc(2 * 1024 * 1024, 97));
          return;
        case "/big-stream": {
          // Chunked and endless: only a destroyed connection stops it.
          bigStreamSockets.push(req.socket);
          res.writeHead(200, { "content-type": "application/octet-stream" });
          const chunk = Buffer.alloc(64 * 1024, 98);
          const pump = (): void => {
            while (!res.destroyed && res.write(chunk));
            if (!res.destroyed) res.once("drain", pump);
          };
          pump();
          return;
        }
        default:
          res.end("ok");
      }
    });
    http = createHttpClient();
  });

  after(async () => {
    for (const res of hanging) res.destroy();
    await http.close();
    await srv.close();
  });

  test("2xx resolves with status, lower-case headers, body and json()", async () => {
    const res = await http.request({ method: "POST", url: `${srv.url}/echo`, json: { a: 1 } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/json");
    const echoed = res.json<{ method: string; headers: Record<string, string>; body: string }>();
    assert.equal(echoed.method, "POST");
    assert.equal(echoed.body, '{"a":1}');
    assert.equal(echoed.headers["content-type"], "application/json");
    assert.equal(echoed.headers["user-agent"], `vigil/${VIGIL_VERSION}`);
    assert.equal(JSON.parse(res.text()).method, "POST");
  });

  test("a request's own user-agent and content-type win", async () => {
    const res = await http.request({ method: "POST", url: `${srv.url}/echo`, json: [], headers: { "User-Agent": "custom/1", "Content-Type": "application/x-test" } });
    const echoed = res.json<{ headers: Record<string, string> }>();
    assert.equal(echoed.headers["user-agent"], "custom/1");
    assert.equal(echoed.headers["content-type"], "application/x-test");
  });

  test("okStatus decides what success is", async () => {
    const res = await http.request({ method: "GET", url: `${srv.url}/status?status=404`, okStatus: (s) => s === 200 || s === 404 });
    assert.equal(res.status, 404);
    await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/status?status=200`, okStatus: (s) => s === 204 }));
  });

  test("429 with Retry-After seconds is transient with retryAfterMs", async () => {
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/status?status=429&retry-after=7` }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.equal(err.transient, true);
    assert.equal(err.status, 429);
    assert.equal(err.retryAfterMs, 7000);
  });

  test("429 with Retry-After as an HTTP-date is transient with retryAfterMs", async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/status?status=429&retry-after=${encodeURIComponent(at)}` }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 20_000 && err.retryAfterMs <= 31_000, String(err.retryAfterMs));
  });

  test("429 with X-Rate-Limit-Reset (Okta) is transient with retryAfterMs", async () => {
    const reset = Math.ceil(Date.now() / 1000) + 60;
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/status?status=429&x-rate-limit-reset=${reset}` }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 50_000 && err.retryAfterMs <= 61_000, String(err.retryAfterMs));
  });

  for (const status of [408, 425, 500, 502, 503]) {
    test(`${status} is transient`, async () => {
      const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/status?status=${status}` }));
      assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
      assert.equal(err.status, status);
    });
  }

  for (const status of [400, 401, 403, 404, 409, 410, 422, 301]) {
    test(`${status} is permanent`, async () => {
      const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/status?status=${status}&retry-after=5&location=/elsewhere` }));
      assert.equal(err.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
      assert.equal(err.transient, false);
      assert.equal(err.status, status);
      assert.equal(err.retryAfterMs, undefined);
      assert.match(err.message, new RegExp(`^GET http://127\\.0\\.0\\.1:\\d+/status\\?.* → ${status}: status ${status}$`));
    });
  }

  test("error messages quote at most 512 chars of the body", async () => {
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/long-error` }));
    const quoted = /x+$/.exec(err.message)?.[0] ?? "";
    assert.equal(quoted.length, 512);
  });

  test("error messages mask userinfo and secret query values and never carry request headers", async () => {
    const err = await upstreamError(() =>
      http.request({
        method: "GET",
        url: `http://admin:hunter2pass@127.0.0.1:${srv.port}/status?status=403&access_token=tok-abc-123&page=2`,
        headers: { Authorization: "Bearer header-secret-value", "X-Custom": "header-plain-value" },
      }),
    );
    assert.equal(err.status, 403);
    assert.doesNotMatch(err.message, /hunter2pass|admin|tok-abc-123|header-secret-value|header-plain-value/);
    assert.match(err.message, /page=2/);
    assert.match(err.message, /access_token=\[REDACTED\]/);
    assert.doesNotMatch(JSON.stringify(err.details), /hunter2pass|tok-abc-123|header-secret-value/);
  });

  test("a server that never answers times out as transient within about the timeout", async () => {
    const started = Date.now();
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/never`, timeoutMs: 200 }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.match(err.message, /timed out after 200 ms/);
    assert.ok(Date.now() - started < 5_000);
  });

  test("the timeout covers the body, not only the headers", async () => {
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/stall-body`, timeoutMs: 200 }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.match(err.message, /timed out/);
  });

  test("the caller's signal aborts the request as transient", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stopping")), 50);
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/never`, signal: controller.signal, timeoutMs: 10_000 }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.match(err.message, /aborted/);
  });

  test("an oversize declared body is permanent", async () => {
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/big-declared`, maxResponseBytes: 1024 }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.match(err.message, /larger than 1024 bytes/);
  });

  test("an oversize streamed body is permanent and its connection is destroyed", async () => {
    const err = await upstreamError(() => http.request({ method: "GET", url: `${srv.url}/big-stream`, maxResponseBytes: 100_000 }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_PERMANENT");
    assert.match(err.message, /larger than 100000 bytes/);
    // The endless response only stops when the client drops the connection.
    const socket = bigStreamSockets[0];
    assert.ok(socket, "the server saw the request");
    const deadline = Date.now() + 5_000;
    while (!socket.destroyed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(socket.destroyed, "the oversize response's connection is still open");
  });

  test("keep-alive reuses connections over 20 sequential requests", async () => {
    const client = createHttpClient();
    const connectionsBefore = srv.connections;
    try {
      for (let i = 0; i < 20; i++) assert.equal((await client.request({ method: "GET", url: `${srv.url}/ok` })).status, 200);
    } finally {
      await client.close();
    }
    // undici waits one event-loop turn before reusing a socket (pipelining 1), so a back-to-back
    // request may open one more connection; after that the two are reused. Without keep-alive: 20.
    const opened = srv.connections - connectionsBefore;
    assert.ok(opened >= 1 && opened <= 2, `opened ${opened} connections`);
  });

  test("untrusted URL to 127.0.0.1 is refused before any request", async () => {
    const requests = srv.requests;
    await hostileError(() => http.request({ method: "GET", url: `${srv.url}/ok`, untrusted: { allowPrivate: false } }));
    assert.equal(srv.requests, requests);
  });

  test("untrusted host name resolving to loopback is refused without connecting", async () => {
    const connections = srv.connections;
    const err = await hostileError(() => http.request({ method: "GET", url: `http://localhost:${srv.port}/ok`, untrusted: { allowPrivate: false } }));
    assert.match(err.message, /loopback/);
    assert.equal(srv.connections, connections);
  });

  test("untrusted with allowPrivate reaches a private address", async () => {
    const res = await http.request({ method: "GET", url: `${srv.url}/ok`, untrusted: { allowPrivate: true } });
    assert.equal(res.status, 200);
  });

  for (const url of ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://[::1]/", "http://2130706433/", "http://10.1.2.3/", "http://100.64.0.1/", "http://[fd00::1]/", "http://[fe80::1]/", "http://0.0.0.0/", "http://224.0.0.1/"]) {
    test(`untrusted ${url} is refused`, async () => {
      await hostileError(() => http.request({ method: "GET", url, untrusted: { allowPrivate: false }, timeoutMs: 2_000 }));
    });
  }

  for (const url of ["file:///etc/passwd", "ftp://example.com/", "gopher://127.0.0.1/", "not a url"]) {
    test(`untrusted ${url} is refused even with allowPrivate`, async () => {
      await hostileError(() => http.request({ method: "GET", url, untrusted: { allowPrivate: true } }));
    });
  }
});

test("connection refused is transient", async () => {
  const srv = await startServer((_req, res) => res.end());
  const url = `${srv.url}/`;
  await srv.close();
  const http = createHttpClient();
  try {
    const err = await upstreamError(() => http.request({ method: "GET", url, timeoutMs: 2_000 }));
    assert.equal(err.code, "VIGIL_ERR_UPSTREAM_TRANSIENT");
    assert.equal(err.status, undefined);
    assert.match(err.message, /ECONNREFUSED/);
  } finally {
    await http.close();
  }
});

test("parseRetryAfter reads Retry-After seconds, HTTP-date and X-Rate-Limit-Reset", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const cases: [Record<string, string>, number | undefined][] = [
    [{ "retry-after": "120" }, 120_000],
    [{ "Retry-After": "0" }, 0],
    [{ "retry-after": "Thu, 01 Jan 2026 00:00:30 GMT" }, 30_000],
    [{ "retry-after": "Wed, 31 Dec 2025 23:59:00 GMT" }, 0],
    [{ "x-rate-limit-reset": String(now / 1000 + 45) }, 45_000],
    [{ "X-Rate-Limit-Reset": String(now / 1000 - 10) }, 0],
    [{ "retry-after": "5", "x-rate-limit-reset": String(now / 1000 + 45) }, 5_000],
    [{ "retry-after": "soon" }, undefined],
    [{ "retry-after": "-3" }, undefined],
    [{}, undefined],
  ];
  for (const [headers, expected] of cases) assert.equal(parseRetryAfter(headers, now), expected, JSON.stringify(headers));
});

test("forbiddenAddress classifies addresses, IPv4 inside IPv6 included", () => {
  const cases: [string, string | undefined][] = [
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", undefined],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["100.64.0.1", "CGNAT"],
    ["100.127.255.255", "CGNAT"],
    ["100.128.0.1", undefined],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.251", "multicast"],
    ["255.255.255.255", "reserved"],
    ["8.8.8.8", undefined],
    ["93.184.216.34", undefined],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:a9fe:a9fe", "link-local"],
    ["::ffff:8.8.8.8", undefined],
    ["64:ff9b::10.0.0.1", "private"],
    ["2002:c0a8:0101::1", "private"],
    ["fc00::1", "private"],
    ["fd12:3456::1", "private"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["ff02::1", "multicast"],
    ["2606:4700:4700::1111", undefined],
    ["2001:db8::1", "documentation"],
    ["example.com", "unparseable"],
  ];
  for (const [address, expected] of cases) assert.equal(forbiddenAddress(address), expected, address);
});

test("maskUrl masks userinfo and secret-looking query values", () => {
  assert.equal(maskUrl("https://u:p@example.com/a?x=1#frag"), "https://[REDACTED]@example.com/a?x=1");
  assert.equal(maskUrl("https://example.com/a?token=abc&page=2"), "https://example.com/a?token=[REDACTED]&page=2");
  assert.equal(maskUrl("https://example.com/a?X-Amz-Signature=ff&sig=1"), "https://example.com/a?X-Amz-Signature=[REDACTED]&sig=[REDACTED]");
  assert.equal(maskUrl("https://example.com/a?q=Zx81kq0Pz9nB3mLr7vT2wY"), "https://example.com/a?q=[REDACTED]");
  assert.equal(maskUrl("https://example.com/hooks/team"), "https://example.com/hooks/team");
});

test("VIGIL_VERSION matches package.json", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(VIGIL_VERSION, pkg.version);
});
