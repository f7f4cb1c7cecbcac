import type { Server } from "node:http";

export interface ConnectionLimits {
  /**
   * How long a connection may stay open without a request: from accept until its first byte, and
   * between keep-alive requests until Node's own keepAliveTimeout takes over. A request in progress
   * is bounded by the server's headersTimeout and requestTimeout instead.
   */
  readonly idleTimeoutMs: number;
  /** Open connections at most; more are closed as soon as they are accepted. */
  readonly maxConnections: number;
  /** Called for each connection refused over the cap. */
  readonly onDrop?: () => void;
}

/**
 * Bounds what idle clients can hold. Node's headersTimeout and requestTimeout only start with a
 * request's first byte, so a connection that never sends one stayed open forever, and enough of them
 * exhaust the process's file descriptors.
 */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.maxConnections;
  // No request yet: the socket's own inactivity timeout closes it (Node destroys a socket whose
  // timeout nobody handles). A request clears it, so a slow handler is never cut; after the response
  // Node arms keepAliveTimeout on the same socket.
  server.on("connection", (socket) => socket.setTimeout(limits.idleTimeoutMs));
  server.on("request", (req) => req.socket.setTimeout(0));
  if (limits.onDrop) server.on("drop", limits.onDrop);
  checkTimeoutsWhileConnected(server);
}

/**
 * Node enforces headersTimeout and requestTimeout from a timer that runs every
 * `connectionsCheckingInterval` for as long as the server listens, connections or not: an idle
 * agent woke every second for it. Here that timer runs only while a connection is open. It uses
 * the two things Node's `Server` exposes of it (its `listening` listener `setupConnectionsTracking`,
 * which (re)starts the timer, and the symbol-keyed property holding it); a Node without them keeps
 * its own behaviour.
 */
function checkTimeoutsWhileConnected(server: Server): void {
  const setup = server.listeners("listening").find((f) => f.name === "setupConnectionsTracking") as ((this: Server) => void) | undefined;
  if (!setup) return;
  const timer = (): NodeJS.Timeout | undefined => {
    const key = Object.getOwnPropertySymbols(server).find((k) => k.description === "http.server.connectionsCheckingInterval");
    return key === undefined ? undefined : (server as unknown as Record<symbol, NodeJS.Timeout | undefined>)[key];
  };
  let open = 0;
  let checking = true;
  const pause = () => {
    const t = timer();
    if (!t || open > 0) return;
    clearInterval(t);
    checking = false;
  };
  server.on("listening", pause);
  server.on("connection", (socket) => {
    open++;
    if (!checking) {
      setup.call(server);
      checking = true;
    }
    socket.once("close", () => {
      open--;
      pause();
    });
  });
}
