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
}
