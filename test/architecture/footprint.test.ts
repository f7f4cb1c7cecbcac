// What the agent loads on the default configuration (config/vigil.yaml): the exporters, providers,
// inventories, certificate sources and schedulers it does not use must stay unloaded, so the idle
// footprint (BENCHMARKS.md, "Footprint") cannot creep back unnoticed. Runs the real agent with a
// module-recording hook and reads the list once the agent is ready: the tsc build module by module,
// and the bundle bin/vigil runs, whose loaded chunks are mapped back to their sources through the
// bundler's metafile (a module bundled into a chunk that loads counts as loaded).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { AgentProcess, ROOT, TOKEN } from "../helpers/agent-process.ts";
import { bundle } from "../../scripts/bundle.ts";

const RECORDER = join(ROOT, "test/helpers/module-recorder.ts");

/** Modules (by URL fragment) the default configuration has no use for, with why each must not load. */
const NOT_LOADED: readonly [string, string][] = [
  ["/node_modules/@opentelemetry/sdk-metrics/", "the OTel metrics SDK (OTLP is not configured)"],
  ["/node_modules/@opentelemetry/exporter-prometheus/", "the OTel Prometheus exporter (/metrics is written without it)"],
  ["/node_modules/@opentelemetry/resources/", "OTel resources (OTLP only)"],
  ["/node_modules/@opentelemetry/exporter-metrics-otlp-http/", "the OTLP metric exporter"],
  ["/node_modules/@opentelemetry/exporter-trace-otlp-http/", "the OTLP trace exporter"],
  ["/node_modules/@opentelemetry/sdk-trace-", "the OTel trace SDK"],
  ["/node_modules/node-cron/", "node-cron (no interval is a cron expression)"],
  ["/node_modules/@peculiar/asn1-ocsp/", "OCSP's ASN.1 schemas (revocation mode is crl)"],
  ["/node_modules/@aws-sdk/", "the AWS SDK (no aws provider)"],
  ["/node_modules/@smithy/", "AWS request signing (no aws provider)"],
  ["/node_modules/fast-xml-parser/", "XML parsing (no provider needs it)"],
  ["/node_modules/jose/", "JOSE (no SSF transmitter, no provider needs it)"],
  ["/node_modules/bullmq/", "the cluster-mode queue (embedded mode)"],
  ["/node_modules/ioredis/", "the Redis client (embedded mode)"],
  ["/dist/queue/bullmq.js", "the BullMQ work queue (embedded mode)"],
  ["/dist/store/redis.js", "the Redis state store (embedded mode)"],
  ["/dist/engine/cluster.js", "the cluster backend (embedded mode)"],
  ["/dist/inventories/file/", "the file inventory"],
  ["/dist/inventories/intune/", "the Intune inventory"],
  ["/dist/inventories/fleet/", "the Fleet inventory"],
  ["/dist/inventories/jamf/", "the Jamf inventory"],
  ["/dist/inventories/entra/", "the Entra ID user inventory"],
  ["/dist/inventories/okta/", "the Okta user inventory"],
  ["/dist/checks/user_risk_score/check.js", "user_risk_score's pull check (its results arrive as signals here)"],
  ["/dist/sources/identity/clients.js", "the identity-provider clients"],
  ["/dist/sources/identity/entra.js", "the Entra ID identity source"],
  ["/dist/sources/identity/okta.js", "the Okta identity source"],
  ["/dist/sources/graph/client.js", "the Microsoft Graph client"],
  ["/dist/sources/okta/client.js", "the Okta API client"],
  ["/dist/sources/device/clients.js", "the device-management clients"],
  ["/dist/checks/certificate_validity/sources/tls.js", "the TLS certificate source"],
  ["/dist/checks/certificate_validity/sources/kubernetes.js", "the Kubernetes certificate source"],
  ["/dist/checks/certificate_validity/sources/spiffe.js", "the SPIFFE certificate source"],
  ["/dist/checks/certificate_validity/revocation/ocsp.js", "OCSP revocation checking"],
  ["/dist/net/kubernetes.js", "the Kubernetes API client"],
  ["/dist/signals/ssf/receiver.js", "the Shared Signals receiver (no transmitter)"],
  ...["aws", "okta", "entra", "kubernetes", "istio", "linkerd", "consul", "vault", "caep"].map((p): [string, string] => [`/dist/actions/${p}/`, `the ${p} provider`]),
];

/** Modules it does use: their presence shows the recorder saw the agent's own loading. */
const LOADED = ["/dist/engine/agent.js", "/dist/inventories/static/index.js", "/dist/checks/certificate_validity/sources/files.js", "/dist/telemetry/prometheus.js"];

/** The module URLs an agent started with `bin` loads on config/vigil.yaml until its first pass is done. */
async function loadedModules(bin: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), "vigil-footprint-"));
  const log = join(dir, "modules.txt");
  writeFileSync(log, "");
  try {
    const yaml = readFileSync(join(ROOT, "config/vigil.yaml"), "utf8")
      .replace(/^(\s*data_dir:).*$/m, `$1 ${join(dir, "var")}`)
      .replace(/^(\s*listen:\s*)"127\.0\.0\.1:\d+"/gm, '$1"127.0.0.1:0"')
      .replace(/^(\s*)api:\n/m, `$1api:\n$1  token: "${TOKEN}"\n`)
      .replace(/\.\.\/var\/demo-pki/g, join(ROOT, "var/demo-pki"));
    assert.ok(yaml.includes(join(dir, "var")) && yaml.includes(TOKEN) && !/127\.0\.0\.1:[1-9]/.test(yaml), "config/vigil.yaml was rewritten for the test");
    const configFile = join(dir, "vigil.yaml");
    writeFileSync(configFile, yaml);
    const agent = await AgentProcess.start(
      configFile,
      { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --import ${pathToFileURL(RECORDER).href}`.trim(), VIGIL_TEST_MODULE_LOG: log },
      { bin },
    );
    try {
      // The initial pass has run: the certificate check has gathered and the queue is idle.
      await agent.idle();
    } finally {
      await agent.stop();
    }
    return readFileSync(log, "utf8").split("\n").filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function check(loaded: readonly string[]): void {
  for (const m of LOADED) assert.ok(loaded.some((u) => u.includes(m)), `expected ${m} to be loaded; the recorder saw ${loaded.length} modules`);
  const unwanted = NOT_LOADED.flatMap(([fragment, what]) => {
    const hits = loaded.filter((u) => u.includes(fragment));
    return hits.length > 0 ? [`${what}: ${hits[0]}${hits.length > 1 ? ` (+${hits.length - 1} more)` : ""}`] : [];
  });
  assert.deepEqual(unwanted, [], "loaded although config/vigil.yaml does not use it");
}

test("the agent on config/vigil.yaml loads none of what that configuration does not use (tsc build)", async () => {
  check(await loadedModules(join(ROOT, "dist/cli/main.js")));
});

test("the bundle on config/vigil.yaml loads no chunk holding what that configuration does not use", async () => {
  const out = mkdtempSync(join(tmpdir(), "vigil-footprint-bundle-"));
  try {
    const { metafile } = await bundle(out);
    const loaded = await loadedModules(join(out, "vigil.mjs"));
    const chunks = loaded.filter((u) => u.startsWith(pathToFileURL(out).href));
    assert.ok(chunks.length > 1 && chunks.length < Object.keys(metafile.outputs).filter((o) => o.endsWith(".mjs")).length, `some chunks load, not all (${chunks.length})`);
    // Each loaded chunk stands for the sources bundled into it, written as the tsc build's paths.
    const sources = chunks.flatMap((url) => {
      const output = Object.entries(metafile.outputs).find(([path]) => url.endsWith(`/${path.split("/").at(-1)}`));
      assert.ok(output, `${url} is an output of the bundle`);
      return Object.keys(output[1].inputs).map((input) => `/${input.replace(/^src\//, "dist/").replace(/\.ts$/, ".js")}`);
    });
    check([...sources, ...loaded.filter((u) => u.includes("/node_modules/"))]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
