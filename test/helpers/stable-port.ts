/**
 * A free loopback port for a server a test takes away and brings back on the same port (a webhook
 * receiver that goes down, a Redis that restarts). A port from `listen(0)` comes from the kernel's
 * local port range, which every other test's `listen(0)` and outgoing connection draws from too: in
 * the half minute a server is down, another test running beside it can be handed the same port, and
 * the server cannot come back. Ports below that range are only ever taken on request, so one picked
 * at random there stays free for the test.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** Lowest port tried: clear of the well-known and most registered ports. */
const FLOOR = 10_000;

function localRangeStart(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > FLOOR + 1_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A port below the kernel's local port range, free when returned. */
export async function stablePort(): Promise<number> {
  const top = localRangeStart();
  for (let i = 0; i < 100; i++) {
    const port = FLOOR + Math.floor(Math.random() * (top - FLOOR));
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port found between ${FLOOR} and ${top}`);
}
