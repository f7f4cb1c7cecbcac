import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient, EventStream, baseUrl, follow, refuseTokenArgument, resolveConnection, type StreamEvent } from "../../src/cli/remote.ts";

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield new TextEncoder().encode(p);
}

async function collect(stream: EventStream): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const e of stream.events()) out.push(e);
  return out;
}

describe("where the agent is", () => {
  it("host:port, [v6]:port and URLs; wildcard listen addresses mean this machine", () => {
    assert.equal(baseUrl("127.0.0.1:7070", "x"), "http://127.0.0.1:7070");
    assert.equal(baseUrl("[::1]:7070", "x"), "http://[::1]:7070");
    assert.equal(baseUrl("0.0.0.0:7070", "x"), "http://127.0.0.1:7070");
    assert.equal(baseUrl("[::]:7070", "x"), "http://[::1]:7070");
    assert.equal(baseUrl("vigil.internal:7070", "x"), "http://vigil.internal:7070");
    assert.equal(baseUrl("https://vigil.example.org:8443/ignored", "x"), "https://vigil.example.org:8443");
  });

  it("refuses what is not an address, and port 0, naming where the value came from", () => {
    assert.throws(() => baseUrl("localhost", "--addr"), { code: "VIGIL_ERR_USAGE", message: /^--addr: "localhost" is not host:port/ });
    assert.throws(() => baseUrl("127.0.0.1:70000", "VIGIL_ADDR"), { message: /^VIGIL_ADDR: "127.0.0.1:70000" is not host:port/ });
    assert.throws(() => baseUrl("127.0.0.1:0", "agent.api.listen in /etc/vigil.yaml"), /agent\.api\.listen in \/etc\/vigil\.yaml has port 0/);
  });

  it("flags before environment; the config is not needed when both are given", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-remote-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "from-the-file-0123456789\n");
    const none = join(dir, "missing.yaml");
    assert.deepEqual(await resolveConnection({ addr: "127.0.0.1:1234", "token-file": tokenFile, config: none }, { VIGIL_ADDR: "127.0.0.1:9", VIGIL_TOKEN: "from-env-0123456789" }), {
      base: "http://127.0.0.1:1234",
      token: "from-the-file-0123456789",
    });
    assert.deepEqual(await resolveConnection({ config: none }, { VIGIL_ADDR: "127.0.0.1:9", VIGIL_TOKEN: " from-env-0123456789 " }), { base: "http://127.0.0.1:9", token: "from-env-0123456789" });
    await assert.rejects(resolveConnection({ config: none }, { VIGIL_ADDR: "127.0.0.1:9" }), { code: "VIGIL_ERR_CONFIG_READ" }, "the token has to come from the config, which is missing");
    await assert.rejects(resolveConnection({ "token-file": join(dir, "nope"), addr: "127.0.0.1:1" }, {}), { code: "VIGIL_ERR_USAGE", message: /^the --token-file cannot be read from .*nope: ENOENT$/ });
    writeFileSync(join(dir, "empty"), "\n");
    await assert.rejects(resolveConnection({ "token-file": join(dir, "empty"), addr: "127.0.0.1:1" }, {}), { message: "the API token is empty" });
  });

  it("--token is refused in any spelling, before parsing", () => {
    for (const argv of [["--token", "x"], ["-o", "json", "--token=x"]]) assert.throws(() => refuseTokenArgument(argv), { code: "VIGIL_ERR_USAGE", message: /never taken on the command line/ });
    assert.doesNotThrow(() => refuseTokenArgument(["--token-file", "f", "--", "--token"]));
  });
});

describe("reading server-sent events", () => {
  it("ids, event names, multi-line data, comments and retry, across chunk boundaries and line endings", async () => {
    const stream = new EventStream(chunks("retry: 1500\n: hello\n\nid: 1\nevent: au", "dit\ndata: {\"a\":1}\n\n", "id: 2\r\ndata: line one\r\ndata: line two\r\n\r\n", ": keep-alive\n\n", "data: no id\n\n"));
    assert.deepEqual(await collect(stream), [
      { id: "1", event: "audit", data: '{"a":1}' },
      { id: "2", event: "message", data: "line one\nline two" },
      { id: "2", event: "message", data: "no id" },
    ]);
    assert.equal(stream.retryMs, 1500);
  });
});

describe("following a stream", () => {
  it("reconnects after the stream ends and resumes with Last-Event-ID", async () => {
    const seen: (string | undefined)[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req.headers["last-event-id"] as string | undefined);
      assert.equal(req.headers.authorization, "Bearer stream-token-0123456789");
      res.writeHead(200, { "content-type": "text/event-stream" });
      if (seen.length === 1) res.end("retry: 10\n\nid: 1\ndata: one\n\nid: 2\ndata: two\n\n");
      else res.write("id: 3\ndata: three\n\n");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const client = new AgentClient({ base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "stream-token-0123456789" });
    const stop = new AbortController();
    const got: string[] = [];
    const opens: boolean[] = [];
    try {
      await follow(client, "/v1/audit/stream", stop.signal, {
        onOpen: (reopened) => void opens.push(reopened),
        onEvent: (ev) => {
          got.push(ev.data);
          if (ev.data === "three") stop.abort();
        },
      });
    } finally {
      server.closeAllConnections();
      server.close();
    }
    assert.deepEqual(got, ["one", "two", "three"]);
    assert.deepEqual(seen, [undefined, "2"]);
    assert.deepEqual(opens, [false, true]);
  });

  it("an error answer ends it at once with the agent's message", async () => {
    const server = createServer((_req, res) => {
      res.writeHead(429, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "VIGIL_ERR_TOO_MANY_STREAMS", message: "16 event streams are open already" } }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const client = new AgentClient({ base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: "t-0123456789abcdef" });
    try {
      await assert.rejects(follow(client, "/v1/audit/stream", new AbortController().signal, { onEvent: () => undefined }), { code: "VIGIL_ERR_TOO_MANY_STREAMS", message: "16 event streams are open already" });
    } finally {
      server.close();
    }
  });
});
