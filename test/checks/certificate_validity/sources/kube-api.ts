// A small imitation of the Kubernetes API for secrets: bearer token (or client certificate) required,
// one kubernetes.io/tls secret, one Opaque secret, 404 for the rest, 403 for a forbidden namespace.
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import type tls from "node:tls";

export interface FakeKubeApi {
  readonly url: string;
  readonly port: number;
  /** Authorization headers seen, in order. */
  readonly authorizations: (string | undefined)[];
  readonly paths: string[];
  tokens: Set<string>;
  /** Client connections open right now. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

export interface FakeKubeOptions {
  readonly chainPem: string;
  readonly tokens: readonly string[];
  /** Serve https with this certificate; with `clientCa` also accept client certificates. */
  readonly tls?: { cert: string; key: string; clientCa?: string };
}

const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code });

export async function startFakeKubeApi(options: FakeKubeOptions): Promise<FakeKubeApi> {
  const authorizations: (string | undefined)[] = [];
  const paths: string[] = [];
  const api = { tokens: new Set(options.tokens) };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    authorizations.push(req.headers.authorization);
    paths.push(req.url ?? "");
    const send = (code: number, body: string) => {
      res.writeHead(code, { "content-type": "application/json" });
      res.end(body);
    };
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const peer = (req.socket as tls.TLSSocket).getPeerCertificate?.();
    const certOk = (req.socket as tls.TLSSocket).authorized === true && peer?.subject?.CN === "client";
    if (!(bearer !== undefined && api.tokens.has(bearer)) && !certOk) return send(401, status(401, "Unauthorized", "Unauthorized"));
    if (req.method !== "GET") return send(405, status(405, "MethodNotAllowed", "method not allowed"));
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(req.url ?? "");
    if (!m) return send(404, status(404, "NotFound", "the server could not find the requested resource"));
    const [, ns, name] = m;
    if (ns === "locked") return send(403, status(403, "Forbidden", `secrets "${name}" is forbidden: User "system:serviceaccount:vigil:vigil" cannot get resource "secrets" in API group "" in the namespace "locked"`));
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    if (ns === "prod" && name === "web-tls") {
      return send(200, JSON.stringify({ kind: "Secret", apiVersion: "v1", metadata: { name, namespace: ns }, type: "kubernetes.io/tls", data: { "tls.crt": b64(options.chainPem), "tls.key": b64("-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n") } }));
    }
    if (ns === "prod" && name === "opaque") return send(200, JSON.stringify({ kind: "Secret", type: "Opaque", data: { password: b64("hunter2") } }));
    if (ns === "prod" && name === "opaque-with-cert") return send(200, JSON.stringify({ kind: "Secret", type: "Opaque", data: { "ca.crt": b64(options.chainPem) } }));
    if (ns === "prod" && name === "not-json") return send(200, "<html>");
    return send(404, status(404, "NotFound", `secrets "${name}" not found`));
  };
  const server: net.Server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key, ...(options.tls.clientCa ? { ca: options.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, handler)
    : http.createServer(handler);
  // Idle connections stay until the client closes them, so a test can tell who closed one.
  (server as http.Server).keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return Object.assign(api, {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`,
    port,
    authorizations,
    paths,
    connections: () => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))),
    close: () =>
      new Promise<void>((resolve) => {
        (server as http.Server).closeAllConnections?.();
        server.close(() => resolve());
      }),
  });
}
