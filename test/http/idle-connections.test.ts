/**
 * The API closes connections that never send a request, and caps how many are open. Node's own
 * headersTimeout and requestTimeout start with a request's first byte, so 60 connections that never
 * sent one used to stay open for as long as their clients liked.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { ApiServer, DEFAULT_MAX_CONNECTIONS } from "../../src/http/server.ts";
import type { AgentApi, AgentStatus } from "../../src/http/agent-api.ts";
import { createLogger } from "../../src/telemetry/log.ts";

const TOKEN = "test-token-0123456789abcdef";

/** Only what these tests call; a slow status() stands for a handler that takes its time. */
function fakeApi(statusDelayMs = 0): AgentApi {
  const api: Partial<AgentApi> = {
    health: () => ({ ok: true }),
    ready: () => ({ ready: true, reasons: [] }),
    status: async (): Promise<AgentStatus> => {
      await new Promise((r) => setTimeout(r, statusDelayMs));
      return {
        ready: true,
        reasons: [],
        version: "1",
        mode: "embedded",
        dry_run: false,
        policies: [],
        subjects: { total: 0, full_access: 0, read_only: 0, deny: 0, pending: 0 },
        paused: [],
        unreconciled: { total: 0, oldest_failed_at: null },
        queue: { waiting: 0, delayed: 0, active: 0, failed: 0 },
        idle: true,
      };
    },
  };
  return api as AgentApi;
}

async function start(options: { maxConnections?: number; idleTimeoutMs?: number; statusDelayMs?: number } = {}): Promise<{ server: ApiServer; port: number }> {
  const server = new ApiServer({
    listen: "127.0.0.1:0",
    token: TOKEN,
    maxBodyBytes: 65536,
    api: fakeApi(options.statusDelayMs),
    logger: createLogger({ level: "silent" }),
    ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
    ...(options.idleTimeoutMs ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
  });
  await server.start();
  return { server, port: server.address.port };
}

/** Opens a socket that never sends a byte; resolves once connected. */
async function silent(port: number): Promise<{ socket: Socket; closedAt: Promise<number> }> {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  // Reads whatever the server sends (a 408 when Node's own headers timeout closes it first), so the
  // end of the stream is seen and the socket closes; a client that never reads would stay half-open.
  socket.resume();
  const closedAt = once(socket, "close").then(() => performance.now());
  await once(socket, "connect");
  return { socket, closedAt };
}

/** `promise`, or a failure naming `what` when it takes longer than `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function get(port: number, path: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  await res.arrayBuffer();
  return res.status;
}

test("connections that never send a byte are closed within the idle bound", async (t) => {
  const { server, port } = await start({ idleTimeoutMs: 300 });
  t.after(() => server.stop());
  const opened = performance.now();
  const sockets = await Promise.all(Array.from({ length: 60 }, () => silent(port)));
  const closed = await within(3_000, Promise.all(sockets.map((s) => s.closedAt)), "60 silent connections closed");
  for (const at of closed) assert.ok(at - opened >= 250, `closed after ${Math.round(at - opened)} ms, before the idle bound`);
  assert.equal(await get(port, "/healthz"), 200);
});

test("the cap refuses connections over it at once, and serves again once they are gone", async (t) => {
  const { server, port } = await start({ maxConnections: 10, idleTimeoutMs: 60_000 });
  t.after(() => server.stop());
  const held = await Promise.all(Array.from({ length: 10 }, () => silent(port)));
  const excess = await Promise.all(Array.from({ length: 50 }, () => silent(port).catch(() => undefined)));
  // Each excess connection is closed by the server right after it is accepted, long before the 60 s idle bound.
  await within(2_000, Promise.all(excess.map((s) => s?.closedAt)), "50 connections over the cap closed");
  for (const h of held) assert.equal(h.socket.destroyed, false, "a connection within the cap stays open");
  for (const h of held) h.socket.destroy();
  await Promise.all(held.map((h) => h.closedAt));
  assert.equal(await get(port, "/healthz"), 200);
});

test("a request whose handler outlasts the idle bound is not cut", async (t) => {
  const { server, port } = await start({ idleTimeoutMs: 200, statusDelayMs: 600 });
  t.after(() => server.stop());
  assert.equal(await get(port, "/v1/status"), 200);
});

test("by default a silent connection is closed after the 5 s headers timeout, and 256 are allowed", async (t) => {
  const { server, port } = await start();
  t.after(() => server.stop());
  const opened = performance.now();
  const sockets = await Promise.all(Array.from({ length: 60 }, () => silent(port)));
  // Generous: a loaded machine may run the timers late; the bound under test is the lower one below.
  const closed = await within(60_000, Promise.all(sockets.map((s) => s.closedAt)), "60 silent connections closed");
  for (const at of closed) assert.ok(at - opened >= 4_900, `closed after ${Math.round(at - opened)} ms`);
  assert.equal(DEFAULT_MAX_CONNECTIONS, 256);
});
