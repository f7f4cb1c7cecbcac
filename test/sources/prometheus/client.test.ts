/**
 * The Prometheus client against a real Prometheus (history written with promtool, an exporter
 * scraped every second, TLS and basic auth from a web config), and against a local server for what
 * a real one cannot show: bearer tokens, a malformed answer, the concurrency bound.
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Exporter, PROMETHEUS_MISSING, PrometheusServer } from "../../helpers/prometheus-anomaly.ts";
import { checkPluginContext } from "../../helpers/check-context.ts";
import { PrometheusClient } from "../../../src/sources/prometheus/client.ts";
import { prometheusConnectionSchema } from "../../../src/sources/prometheus/schema.ts";
import { UpstreamError } from "../../../src/errors.ts";
import { MalformedResponse } from "../../../src/sources/common/read.ts";

const ctx = checkPluginContext();
const signal = () => AbortSignal.timeout(15_000);
const client = (config: Record<string, unknown>) => new PrometheusClient(prometheusConnectionSchema.parse(config), ctx);
const NOW = Math.floor(Date.now() / 1000);

describe("against a real Prometheus", { skip: PROMETHEUS_MISSING }, () => {
  const exporter = new Exporter();
  let prom: PrometheusServer;

  before(async () => {
    const target = await exporter.start();
    exporter.values.set('app_error_ratio{app="web"}', 0.25);
    const history: string[] = [];
    // Ten minutes of history, ending a minute ago, in the labels the live scrape adds.
    for (let t = NOW - 660; t < NOW - 60; t++) history.push(`app_error_ratio{app="web",instance="${target}",job="test"} ${0.01 + (t % 7) / 1000} ${t}`);
    prom = await PrometheusServer.start({ targets: [target], history });
    await prom.ready();
    await prom.scraped(exporter);
  });
  after(async () => {
    await prom?.stop();
    await exporter.stop();
  });

  test("an instant query gives each series with its labels and one point", async () => {
    const c = client({ url: prom.url });
    const at = (NOW - 120) * 1000;
    const series = await c.query("app_error_ratio", at, signal());
    assert.equal(series.length, 1);
    assert.equal(series[0]!.labels.app, "web");
    assert.equal(series[0]!.labels.job, "test");
    assert.deepEqual(series[0]!.t, [at]);
    assert.equal(series[0]!.v[0], 0.01 + ((NOW - 120) % 7) / 1000);
  });

  test("a range query gives the history in time order on the step grid", async () => {
    const c = client({ url: prom.url });
    const start = (NOW - 600) * 1000;
    const end = (NOW - 301) * 1000;
    const [s] = await c.queryRange("app_error_ratio", start, end, 1000, signal());
    assert.equal(s!.t.length, 300);
    assert.equal(s!.t[0], start);
    assert.equal(s!.t[299], end);
    for (let i = 1; i < s!.t.length; i++) assert.equal(s!.t[i]! - s!.t[i - 1]!, 1000);
  });

  test("a scalar answer is one series without labels; NaN and infinities come through as numbers", async () => {
    const c = client({ url: prom.url });
    assert.deepEqual((await c.query("scalar(vector(2))", NOW * 1000, signal()))[0]!.v, [2]);
    const [nan] = await c.query("vector(0) / 0", NOW * 1000, signal());
    assert.ok(Number.isNaN(nan!.v[0]));
    const [inf] = await c.query("vector(1) / 0", NOW * 1000, signal());
    assert.equal(inf!.v[0], Infinity);
  });

  test("a query Prometheus refuses is a permanent error naming Prometheus's error type", async () => {
    const c = client({ url: prom.url });
    await assert.rejects(c.query("sum(", NOW * 1000, signal()), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.transient, false);
      assert.equal(err.status, 400);
      assert.match(err.message, /Prometheus bad_data: .*parse error/);
      return true;
    });
  });

  test("an answer over max_response_bytes is refused", async () => {
    const c = client({ url: prom.url, max_response_bytes: 65_536 });
    const copies = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `label_replace(app_error_ratio, "copy", "${n}", "", "")`).join(" or ");
    await assert.rejects(c.queryRange(copies, (NOW - 600) * 1000, (NOW - 61) * 1000, 1000, signal()), /larger than 65536 bytes/);
  });

  test("a Prometheus that is down is a transient error", async () => {
    const c = client({ url: "http://127.0.0.1:9", timeout: "2s" });
    await assert.rejects(c.query("up", NOW * 1000, signal()), (err: unknown) => err instanceof UpstreamError && err.transient);
  });
});

describe("TLS and basic auth, from Prometheus's web config", { skip: PROMETHEUS_MISSING ?? (spawnSync("sh", ["-c", "command -v openssl"]).status === 0 ? false : "openssl is not installed") }, () => {
  const dir = mkdtempSync(join(tmpdir(), "vigil-prom-tls-"));
  let prom: PrometheusServer;
  // bcrypt (cost 4) of "vigil-basic-pw", as Prometheus's web config takes it.
  const HASH = "$2b$04$SoVTWopTVAkGNYtM8287huU49LYpFts6GhFaN2KmTNN95IhauBLYS";

  before(async () => {
    const made = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
      { encoding: "utf8" },
    );
    assert.equal(made.status, 0, made.stderr);
    prom = await PrometheusServer.start({
      targets: [],
      https: true,
      webConfig: `tls_server_config: {cert_file: ${join(dir, "cert.pem")}, key_file: ${join(dir, "key.pem")}}\nbasic_auth_users: {vigil: "${HASH}"}\n`,
    });
    const probe = client({ url: prom.url, tls: { ca_file: join(dir, "cert.pem") }, basic_auth: { username: "vigil", password: "vigil-basic-pw" } });
    await prom.ready(() => probe.query("vector(1)", Date.now(), signal()).then(() => true, () => false));
  });
  after(async () => {
    await prom?.stop();
  });

  test("with the CA and the password, queries are answered", async () => {
    const c = client({ url: prom.url, tls: { ca_file: join(dir, "cert.pem") }, basic_auth: { username: "vigil", password: "vigil-basic-pw" } });
    assert.deepEqual((await c.query("vector(7)", Date.now(), signal()))[0]!.v, [7]);
  });

  test("a wrong password is refused for good, and the password is not in the message", async () => {
    const c = client({ url: prom.url, tls: { ca_file: join(dir, "cert.pem") }, basic_auth: { username: "vigil", password: "not-the-password" } });
    await assert.rejects(c.query("vector(7)", Date.now(), signal()), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.status, 401);
      assert.equal(err.transient, false);
      assert.doesNotMatch(err.message, /not-the-password/);
      return true;
    });
  });

  test("without the CA the server's certificate is not trusted", async () => {
    const c = client({ url: prom.url, basic_auth: { username: "vigil", password: "vigil-basic-pw" } });
    await assert.rejects(c.query("vector(7)", Date.now(), signal()), /certificate|self.signed|UNABLE_TO_VERIFY/i);
  });
});

describe("a local server where a real Prometheus cannot show it", () => {
  const seen: { auth: string | undefined; body: string; tenant: string | undefined }[] = [];
  let answer: (req: IncomingMessage) => { status: number; body: unknown } = () => ({ status: 200, body: { status: "success", data: { resultType: "vector", result: [] } } });
  let inFlight = 0;
  let maxInFlight = 0;
  let delayMs = 0;
  const server = createServer(async (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let body = "";
    for await (const chunk of req) body += chunk;
    seen.push({ auth: req.headers.authorization, body, tenant: req.headers["x-scope-orgid"] as string | undefined });
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const a = answer(req);
    inFlight--;
    res.writeHead(a.status, { "content-type": "application/json" });
    res.end(JSON.stringify(a.body));
  });
  let url = "";
  before(async () => {
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  test("a bearer token, extra headers, and the query form-encoded in a POST", async () => {
    seen.length = 0;
    await client({ url, bearer_token: "s3cr3t-token-value", headers: { "X-Scope-OrgID": "team-a" } }).query('rate(x{app="web"}[5m])', 1_700_000_000_500, signal());
    assert.equal(seen[0]!.auth, "Bearer s3cr3t-token-value");
    assert.equal(seen[0]!.tenant, "team-a");
    const form = new URLSearchParams(seen[0]!.body);
    assert.equal(form.get("query"), 'rate(x{app="web"}[5m])');
    assert.equal(form.get("time"), "1700000000.5");
  });

  test("a token file is read again when it changes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-prom-token-"));
    writeFileSync(join(dir, "token"), "first-token-value\n");
    const c = client({ url, bearer_token_file: join(dir, "token") });
    seen.length = 0;
    await c.query("up", Date.now(), signal());
    writeFileSync(join(dir, "token"), "second-token-value-longer\n");
    answer = (req) => (req.headers.authorization === "Bearer first-token-value" ? { status: 401, body: { status: "error", errorType: "unauthorized", error: "expired" } } : { status: 200, body: { status: "success", data: { resultType: "vector", result: [] } } });
    await c.query("up", Date.now(), signal());
    assert.equal(seen.at(-1)!.auth, "Bearer second-token-value-longer");
    answer = () => ({ status: 200, body: { status: "success", data: { resultType: "vector", result: [] } } });
  });

  test("an answer not shaped as documented is refused whole", async () => {
    answer = () => ({ status: 200, body: { status: "success", data: { resultType: "vector", result: [{ metric: { a: "b" }, value: [1, 2] }] } } });
    await assert.rejects(client({ url }).query("up", Date.now(), signal()), (err: unknown) => err instanceof MalformedResponse && /value\[1\]: expected a value string/.test(err.message));
    answer = () => ({ status: 200, body: { status: "success", data: { resultType: "matrix", result: [] } } });
    await assert.rejects(client({ url }).query("up", Date.now(), signal()), /expected "vector" or "scalar"/);
    answer = () => ({ status: 503, body: { status: "error", errorType: "timeout", error: "query timed out in expression evaluation" } });
    await assert.rejects(client({ url }).query("up", Date.now(), signal()), (err: unknown) => err instanceof UpstreamError && err.transient && /Prometheus timeout/.test(err.message));
    answer = () => ({ status: 200, body: { status: "success", data: { resultType: "vector", result: [] } } });
  });

  test("no more queries in flight than max_concurrency", async () => {
    maxInFlight = 0;
    delayMs = 50;
    const c = client({ url, max_concurrency: 2 });
    await Promise.all(Array.from({ length: 8 }, () => c.query("up", Date.now(), signal())));
    delayMs = 0;
    assert.equal(maxInFlight, 2);
  });
});

test("connection settings: credentials never over plain http to a remote host, one credential at a time", () => {
  const issues = (config: Record<string, unknown>) => prometheusConnectionSchema.safeParse(config).error?.issues.map((i) => i.message) ?? [];
  assert.deepEqual(issues({ url: "http://prometheus.monitoring:9090" }), []);
  assert.deepEqual(issues({ url: "http://prometheus.monitoring:9090", bearer_token: "x" }), ["plain http carries credentials in clear text: use https, or a loopback address"]);
  assert.deepEqual(issues({ url: "http://127.0.0.1:9090", bearer_token: "x" }), []);
  assert.deepEqual(issues({ url: "https://p", bearer_token: "x", basic_auth: { username: "a", password: "b" } }), ["give one of bearer_token, bearer_token_file and basic_auth"]);
  assert.deepEqual(issues({ url: "https://p", headers: { Authorization: "x" } }), ["authorization, content-type and the connection headers are set by vigil"]);
  assert.equal(prometheusConnectionSchema.parse({ url: "https://mimir.example.com/prometheus/" }).url, "https://mimir.example.com/prometheus");
});
