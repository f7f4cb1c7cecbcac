/**
 * A raw server-sent events reader on node:http, independent of vigil's own client: it records the
 * status, headers, every event and every comment line exactly as they arrive.
 */
import { request, type IncomingHttpHeaders } from "node:http";
import { until } from "./wait.ts";

export interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data: string;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  /** Fields other than id, event and data (`retry`). */
  readonly fields: [string, string][] = [];
  status = 0;
  headers: IncomingHttpHeaders = {};
  /** The body as text, when the answer was not an event stream. */
  body = "";
  ended = false;
  #destroy: () => void = () => undefined;

  /** Resolves once the response's headers are in. */
  static open(port: number, path: string, headers: Record<string, string>): Promise<SseReader> {
    const reader = new SseReader();
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, method: "GET", headers }, (res) => {
        reader.status = res.statusCode ?? 0;
        reader.headers = res.headers;
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (reader.status !== 200) {
            reader.body += chunk;
            return;
          }
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            reader.#block(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        });
        res.on("end", () => (reader.ended = true));
        res.on("close", () => (reader.ended = true));
        res.on("error", () => (reader.ended = true));
        resolve(reader);
      });
      reader.#destroy = () => req.destroy();
      req.on("error", (err) => (reader.status === 0 ? reject(err) : undefined));
      req.end();
    });
  }

  #block(block: string): void {
    const event: { id?: string; event?: string; data: string[] } = { data: [] };
    let any = false;
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) {
        this.comments.push(line.slice(1).trim());
        continue;
      }
      const at = line.indexOf(":");
      const field = at === -1 ? line : line.slice(0, at);
      const value = at === -1 ? "" : line.slice(at + 1).replace(/^ /, "");
      if (field === "id") event.id = value;
      else if (field === "event") event.event = value;
      else if (field === "data") event.data.push(value);
      else {
        this.fields.push([field, value]);
        continue;
      }
      any = true;
    }
    if (any) this.events.push({ ...(event.id === undefined ? {} : { id: event.id }), ...(event.event === undefined ? {} : { event: event.event }), data: event.data.join("\n") });
  }

  /** The data of each event, parsed as JSON. */
  json<T = Record<string, unknown>>(): T[] {
    return this.events.map((e) => JSON.parse(e.data) as T);
  }

  async waitForEvents(n: number, ms = 5_000): Promise<void> {
    await until(() => this.events.length >= n, ms);
  }

  close(): void {
    this.#destroy();
  }
}
