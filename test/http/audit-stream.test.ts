import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ApiServer } from "../../src/http/server.ts";
import type { AgentApi } from "../../src/http/agent-api.ts";
import type { AuditQuery } from "../../src/store/contract.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { VigilError } from "../../src/errors.ts";
import { createLogger } from "../../src/telemetry/log.ts";
import { SseReader } from "../helpers/sse.ts";
import { until } from "../helpers/wait.ts";

const TOKEN = "test-token-0123456789abcdef";
const unused = (): never => {
  throw new VigilError("VIGIL_ERR_INTERNAL", "not used by these tests");
};

/** An AgentApi whose audit log is a MemoryStore the test appends to. */
function fakeApi(store: MemoryStore): AgentApi {
  return {
    health: () => ({ ok: true }),
    ready: () => ({ ready: true, reasons: [] }),
    listSubjects: unused,
    getSubject: unused,
    evaluate: unused,
    acceptSignal: unused,
    readAudit: (q: AuditQuery) => store.readAudit(q),
    status: unused,
    enforcement: unused,
    resumeEnforcement: unused,
    failedEnforcement: unused,
    retryEnforcement: unused,
  };
}

describe("GET /v1/audit/stream", () => {
  const store = new MemoryStore();
  const logLines: string[] = [];
  let server: ApiServer;
  let port: number;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const open = (path: string, headers: Record<string, string> = auth) => SseReader.open(port, path, headers);
  const readers: SseReader[] = [];
  const tracked = async (path: string, headers: Record<string, string> = auth) => {
    const r = await open(path, headers);
    readers.push(r);
    return r;
  };

  before(async () => {
    await store.appendAudit([
      { type: "signal", subject: "alice" },
      { type: "decision", subject: "alice", access: "deny" },
      { type: "decision", subject: "bob", access: "full_access" },
    ]);
    const logger = createLogger({ level: "debug", stream: { write: (line: string) => void logLines.push(line) } });
    server = new ApiServer({ listen: "127.0.0.1:0", token: TOKEN, maxBodyBytes: 8192, api: fakeApi(store), logger, streams: { maxStreams: 3, heartbeatMs: 150, pollMs: 20 } });
    await server.start();
    port = server.address.port;
  });

  after(async () => {
    for (const r of readers) r.close();
    await server.stop();
  });

  test("needs the bearer token like the rest of /v1, and never echoes it", async () => {
    const none = await open("/v1/audit/stream", {});
    assert.equal(none.status, 401);
    assert.equal(none.headers["www-authenticate"], 'Bearer realm="vigil"');
    const wrong = await open("/v1/audit/stream", { authorization: "Bearer wrong-token-0123456789" });
    assert.equal(wrong.status, 401);
    assert.equal(JSON.parse(wrong.body).error.code, "VIGIL_ERR_UNAUTHORIZED");
    assert.ok(!wrong.body.includes("wrong-token"));
  });

  test("without a cursor it starts at the head: only entries appended later arrive, each with its seq as id", async () => {
    const r = await tracked("/v1/audit/stream");
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/event-stream/);
    assert.equal(r.headers["cache-control"], "no-store");
    await until(() => r.fields.some(([f]) => f === "retry"));
    assert.deepEqual(r.fields.find(([f]) => f === "retry"), ["retry", "2000"], "tells clients how long to wait before reconnecting");
    assert.equal(r.events.length, 0, "the three entries written before are not replayed");
    const [entry] = await store.appendAudit([{ type: "decision", subject: "carol", access: "read_only" }]);
    await r.waitForEvents(1);
    assert.deepEqual(r.events[0], { id: String(entry!.seq), event: "audit", data: JSON.stringify(entry) });
    r.close();
  });

  test("after= replays the entries past the cursor in order, then follows", async () => {
    const r = await tracked("/v1/audit/stream?after=1");
    await r.waitForEvents(3);
    assert.deepEqual(r.events.map((e) => e.id), ["2", "3", "4"]);
    await store.appendAudit([{ type: "signal", subject: "dave" }]);
    await r.waitForEvents(4);
    assert.deepEqual(r.json().map((e) => [e.seq, e.subject]), [[2, "alice"], [3, "bob"], [4, "carol"], [5, "dave"]]);
    r.close();
  });

  test("Last-Event-ID resumes exactly after the last event seen, over after=", async () => {
    const first = await tracked("/v1/audit/stream?after=0");
    await first.waitForEvents(5);
    const lastSeen = first.events[2]!.id!;
    first.close();
    const again = await tracked("/v1/audit/stream?after=0", { ...auth, "last-event-id": lastSeen });
    await again.waitForEvents(2);
    assert.deepEqual(again.events.map((e) => e.id), ["4", "5"], "nothing skipped, nothing twice");
    again.close();
    const bad = await open("/v1/audit/stream", { ...auth, "last-event-id": "four" });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error.message, /^Last-Event-ID: /);
  });

  test("subject and type filter the stream; unknown parameters are refused", async () => {
    const r = await tracked("/v1/audit/stream?after=0&subject=alice&type=decision");
    await r.waitForEvents(1);
    await store.appendAudit([{ type: "signal", subject: "alice" }, { type: "decision", subject: "bob" }, { type: "decision", subject: "alice", access: "full_access" }]);
    await r.waitForEvents(2);
    assert.deepEqual(r.json().map((e) => [e.type, e.subject, e.access]), [["decision", "alice", "deny"], ["decision", "alice", "full_access"]]);
    r.close();
    const unknown = await open("/v1/audit/stream?since=1");
    assert.equal(unknown.status, 400);
    assert.match(JSON.parse(unknown.body).error.message, /^since: unknown query parameter$/);
  });

  test("an idle stream sends heartbeat comments", async () => {
    const r = await tracked("/v1/audit/stream");
    await until(() => r.comments.filter((c) => c === "keep-alive").length >= 2, 3_000);
    assert.equal(r.events.length, 0);
    assert.equal(r.ended, false);
    r.close();
  });

  test("streams are capped: one more is refused with 429 and Retry-After, and a slot frees when a client leaves", async () => {
    // Closed readers leave their slots when the server sees the connection go.
    await until(() => (server as unknown as { streams: { size: number } }).streams.size === 0);
    const held = [await tracked("/v1/audit/stream"), await tracked("/v1/audit/stream"), await tracked("/v1/audit/stream")];
    assert.deepEqual(held.map((r) => r.status), [200, 200, 200]);
    const over = await open("/v1/audit/stream");
    assert.equal(over.status, 429);
    assert.equal(over.headers["retry-after"], "5");
    assert.equal(JSON.parse(over.body).error.code, "VIGIL_ERR_TOO_MANY_STREAMS");
    held[0]!.close();
    await until(async () => {
      const r = await open("/v1/audit/stream");
      readers.push(r);
      return r.status === 200;
    });
    for (const r of held) r.close();
  });

  test("stop() ends open streams at once instead of waiting out the drain", async () => {
    const store2 = new MemoryStore();
    const logger = createLogger({ level: "silent" });
    const s = new ApiServer({ listen: "127.0.0.1:0", token: TOKEN, maxBodyBytes: 8192, api: fakeApi(store2), logger });
    await s.start();
    const r = await SseReader.open(s.address.port, "/v1/audit/stream", auth);
    assert.equal(r.status, 200);
    const began = performance.now();
    await s.stop();
    assert.ok(performance.now() - began < 2_000, "well under the 5 s grace for in-flight requests");
    await until(() => r.ended, 2_000);
  });
});
