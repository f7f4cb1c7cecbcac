/**
 * The base of the local provider servers: routes, a contract check on authentication, recorded
 * requests, and injected faults (429 with a reset header, 5xx, 403) for the next matching requests.
 * A request no route knows gets 404, as the providers answer. Each provider's fake (test/helpers/fakes/)
 * adds the documented paths, body shapes and answers on top.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly at: number;
  /** Named groups of the route pattern. */
  params: Record<string, string>;
}

export interface FakeReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Objects are sent as JSON. */
  readonly body?: unknown;
}

export type Handler = (req: FakeRequest) => FakeReply | Promise<FakeReply>;

interface Fault {
  readonly method?: string;
  readonly path?: RegExp;
  readonly reply: FakeReply;
}

export class FakeApi {
  /** Every request that reached the server, in order, rejected ones included. */
  readonly requests: FakeRequest[] = [];
  /** Requests that passed authentication and reached a route (not faults). */
  readonly handled: FakeRequest[] = [];
  /** Returns a reply to refuse the request (401/403) or undefined to let it through. */
  authenticate: (req: FakeRequest) => FakeReply | undefined = () => undefined;
  readonly #routes: { method: string; pattern: RegExp; handler: Handler }[] = [];
  readonly #faults: Fault[] = [];
  readonly #server: Server;
  #base = "";

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  /** `pattern` is matched against the path without the query; named groups become `params`. */
  route(method: string, pattern: RegExp, handler: Handler): this {
    this.#routes.push({ method: method.toUpperCase(), pattern, handler });
    return this;
  }

  /**
   * Like `route`, but tried before the routes already added: a fake built on another can answer a
   * path the base fake's patterns would otherwise take (`/users/delta` before `/users/{id}`).
   */
  routeFirst(method: string, pattern: RegExp, handler: Handler): this {
    this.#routes.unshift({ method: method.toUpperCase(), pattern, handler });
    return this;
  }

  /** The next requests matching `method`/`path` (after authentication) get these replies, one each. */
  fail(match: { method?: string; path?: RegExp }, ...replies: FakeReply[]): this {
    for (const reply of replies) this.#faults.push({ method: match.method?.toUpperCase(), path: match.path, reply });
    return this;
  }

  /** Faults not yet used. */
  get pendingFaults(): number {
    return this.#faults.length;
  }

  /** Drops the faults not yet used (a test that queued more than the client asked for). */
  clearFaults(): void {
    this.#faults.length = 0;
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    this.#base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.#base;
  }

  get base(): string {
    return this.#base;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  /** Handled requests as `METHOD path?query` lines, for comparing with plans. */
  lines(): string[] {
    return this.handled.map((r) => `${r.method} ${r.url}`);
  }

  clear(): void {
    this.requests.length = 0;
    this.handled.length = 0;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = req.url ?? "/";
    const u = new URL(url, "http://fake");
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
    const request: FakeRequest = { method: (req.method ?? "GET").toUpperCase(), url, path: u.pathname, query: u.searchParams, headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now(), params: {} };
    this.requests.push(request);
    let reply: FakeReply;
    try {
      reply = this.authenticate(request) ?? this.#fault(request) ?? (await this.#route(request));
    } catch (err) {
      reply = { status: 500, body: { error: `fake server error: ${(err as Error).message}` } };
    }
    const body = reply.body === undefined ? "" : typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
    const type = reply.body !== undefined && typeof reply.body !== "string" ? { "content-type": "application/json" } : {};
    res.writeHead(reply.status, { ...type, ...(reply.headers ?? {}) }).end(body);
  }

  #fault(req: FakeRequest): FakeReply | undefined {
    const i = this.#faults.findIndex((f) => (!f.method || f.method === req.method) && (!f.path || f.path.test(req.path)));
    if (i < 0) return undefined;
    const [f] = this.#faults.splice(i, 1);
    return f!.reply;
  }

  async #route(req: FakeRequest): Promise<FakeReply> {
    let pathMatched = false;
    for (const r of this.#routes) {
      const m = r.pattern.exec(req.path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== req.method) continue;
      req.params = { ...(m.groups ?? {}) };
      this.handled.push(req);
      return r.handler(req);
    }
    return pathMatched ? { status: 405, body: { error: `method ${req.method} not allowed on ${req.path}` } } : { status: 404, body: { error: `no route for ${req.method} ${req.path}` } };
  }
}

/** Reads a JSON body, throwing a 400 reply when it is not JSON. */
export function jsonBody<T = Record<string, unknown>>(req: FakeRequest): T {
  try {
    return JSON.parse(req.body) as T;
  } catch {
    throw Object.assign(new Error("body is not JSON"), { reply: { status: 400, body: { error: "body is not JSON" } } });
  }
}
