/**
 * The webhook receiver of the signal-latency bench. It timestamps each delivery with nowMs()
 * (CLOCK_MONOTONIC, the same clock in every process on the host) once the whole body is read, then
 * answers 200. Used in-process (startReceiver) or as its own process: `node bench/receiver.ts <secret>`
 * forked with IPC, which posts {port} once listening and {t, operation, access, valid} per delivery.
 */
import { createServer, type Server } from "node:http";
import { createHmac } from "node:crypto";
import type { AddressInfo } from "node:net";
import { nowMs } from "./lib.ts";

export interface Delivery {
  /** nowMs() when the body was fully read. */
  t: number;
  operation: string | undefined;
  access: string | undefined;
  valid: boolean;
}

export async function startReceiver(secret: string, onDelivery: (d: Delivery) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const t = nowMs();
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
      const raw = Buffer.concat(chunks);
      let body: { operation?: string; access?: string } = {};
      try {
        body = JSON.parse(raw.toString("utf8")) as typeof body;
      } catch {
        // the floor sends JSON too; a bad body is just counted as invalid
      }
      const sig = req.headers["x-vigil-signature"];
      const valid = sig === undefined || sig === "sha256=" + createHmac("sha256", secret).update(raw).digest("hex");
      onDelivery({ t, operation: body.operation, access: body.access, valid });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server };
}

// As a forked child: report deliveries to the parent over IPC.
if (process.send && process.argv[1] && import.meta.filename === process.argv[1]) {
  const secret = process.argv[2] ?? "";
  const { url, server } = await startReceiver(secret, (d) => process.send!({ type: "delivery", ...d }));
  process.send({ type: "listening", url });
  process.on("disconnect", () => server.close(() => process.exit(0)));
}
