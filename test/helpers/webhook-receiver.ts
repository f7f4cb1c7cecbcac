/** A local webhook receiver that verifies vigil's signature independently and records deliveries. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { stablePort } from "./stable-port.ts";

export interface Delivery {
  body: Record<string, unknown>;
  raw: string;
  signatureValid: boolean;
  idempotencyKey: string | undefined;
  at: number;
  /** What the receiver answered. */
  reply: number | "hang";
}

export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  /** Decides the reply for each request (default 200). Return "hang" to never answer. */
  respond: (n: number) => number | "hang" = () => 200;
  readonly #secret: string;
  readonly #server = createServer((req, res) => void this.#handle(req, res));
  readonly #hanging: ServerResponse[] = [];
  #count = 0;
  #port = 0;
  #waiters: { n: number; resolve: () => void }[] = [];

  constructor(secret: string) {
    this.#secret = secret;
  }

  async start(): Promise<string> {
    // Outside the ports handed to listen(0): `down()` gives the port up, and `up()` must get it back.
    this.#port ||= await stablePort();
    await new Promise<void>((r) => this.#server.listen(this.#port, "127.0.0.1", r));
    this.#port = (this.#server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.#port}/hook`;
  }

  /** Stops listening: connections to the port are refused until `up()`. */
  async down(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  /** Listens again, on the same port. */
  async up(): Promise<void> {
    await this.start();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const expected = "sha256=" + createHmac("sha256", this.#secret).update(raw).digest("hex");
    const got = String(req.headers["x-vigil-signature"] ?? "");
    const signatureValid = got.length === expected.length && timingSafeEqual(Buffer.from(got), Buffer.from(expected));
    const n = ++this.#count;
    const reply = this.respond(n);
    this.deliveries.push({ body: JSON.parse(raw) as Record<string, unknown>, raw, signatureValid, idempotencyKey: req.headers["x-vigil-idempotency-key"] as string | undefined, at: Date.now(), reply });
    this.#waiters = this.#waiters.filter((w) => (this.deliveries.length >= w.n ? (w.resolve(), false) : true));
    if (reply === "hang") {
      this.#hanging.push(res);
      return;
    }
    res.writeHead(reply, { "content-type": "application/json" }).end("{}");
  }

  waitForDeliveries(n: number, timeoutMs = 15_000): Promise<void> {
    if (this.deliveries.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${this.deliveries.length} of ${n} deliveries arrived`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  async stop(): Promise<void> {
    for (const r of this.#hanging) r.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
