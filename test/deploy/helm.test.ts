/**
 * The Helm chart in deploy/helm/vigil: `helm lint --strict` and `helm template` with the real helm
 * (scripts/install-helm), every rendered object checked against the Kubernetes and
 * prometheus-operator schemas (kubernetes-models, generated from the official OpenAPI spec and
 * CRDs), the rendered vigil.yaml checked by the real `vigil validate` and started by the real
 * `vigil run`. Chart metadata and values.schema.json are checked without helm too.
 */
import { after, describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parse, parseAllDocuments } from "yaml";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { PrometheusRule, ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { AgentProcess, ROOT, runCli } from "../helpers/agent-process.ts";

const CHART = fileURLToPath(new URL("../../deploy/helm/vigil/", import.meta.url));
const RULES = fileURLToPath(new URL("../../deploy/prometheus/vigil-alerts.yml", import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: any }; [k: string]: any };

/** Validates one object against the schema of its kind; throws with the schema's complaints. */
const VALIDATORS: Record<string, (o: K8sObject) => void> = {
  "v1/ConfigMap": (o) => new ConfigMap(o as never).validate(),
  "v1/Secret": (o) => new Secret(o as never).validate(),
  "v1/Service": (o) => new Service(o as never).validate(),
  "apps/v1/Deployment": (o) => new Deployment(o as never).validate(),
  "policy/v1/PodDisruptionBudget": (o) => new PodDisruptionBudget(o as never).validate(),
  "monitoring.coreos.com/v1/ServiceMonitor": (o) => new ServiceMonitor(o as never).validate(),
  "monitoring.coreos.com/v1/PrometheusRule": (o) => new PrometheusRule(o as never).validate(),
};

const HELM_MISSING = spawnSync("helm", ["version"], { stdio: "ignore" }).status === 0 ? false : "helm is not on PATH: scripts/install-helm installs it";

/** helm writes a cache and config under $HOME otherwise. */
const helmHome = mkdtempSync(join(tmpdir(), "vigil-helm-"));
after(() => rmSync(helmHome, { recursive: true, force: true }));
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") };

function helm(args: string[], values?: unknown): { status: number | null; stdout: string; stderr: string } {
  const extra: string[] = [];
  if (values !== undefined) {
    const file = join(helmHome, `values-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, JSON.stringify(values));
    extra.push("-f", file);
  }
  const r = spawnSync("helm", [...args, ...extra], { encoding: "utf8", env: helmEnv });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function render(values?: unknown): K8sObject[] {
  const r = helm(["template", "rel", CHART, "--namespace", "apps"], values);
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: K8sObject[], kind: string): K8sObject => {
  const found = byKind(objects, kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
};

const APP = { name: "app", image: "registry.example.com/payments-api:1.4.2", ports: [{ name: "http", containerPort: 8080 }] };
const SCENARIOS: Record<string, unknown> = {
  "standalone with defaults": undefined,
  "sidecar with monitoring, a PDB and an existing Secret": {
    mode: "sidecar",
    replicaCount: 2,
    sidecar: { containers: [APP], volumes: [{ name: "cache", emptyDir: {} }] },
    serviceMonitor: { enabled: true, labels: { release: "prometheus" } },
    prometheusRule: { enabled: true, labels: { release: "prometheus" } },
    podDisruptionBudget: { enabled: true, minAvailable: 1 },
    secret: { existingSecret: "vigil-secrets" },
  },
  "native sidecar": { mode: "sidecar", sidecar: { native: true, containers: [APP] } },
  "standalone on a claim, pinned by digest, with given secrets": {
    image: { digest: `sha256:${"a".repeat(64)}` },
    persistence: { existingClaim: "vigil-data" },
    secret: { apiToken: "a-token-of-at-least-16", auditKey: "an-audit-key-of-at-least-32-characters" },
    config: {
      inventories: [{ type: "static", subjects: [{ id: "u1", kind: "user", attributes: { mfa: true } }] }],
      identity_perimeter: { require_location_check: false, require_managed_device: false },
      enforcement: { deny: [{ type: "log", level: "error" }] },
    },
  },
};

/** The vigil container of a rendered Deployment, wherever the mode put it. */
function vigilContainer(d: K8sObject): any {
  const spec = d.spec.template.spec;
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const found = all.filter((c: { name: string }) => c.name === "vigil");
  assert.equal(found.length, 1);
  return found[0];
}

test("Chart.yaml: apiVersion v2 and appVersion is vigil's version", () => {
  const chart = parse(readFileSync(join(CHART, "Chart.yaml"), "utf8")) as Record<string, string>;
  assert.equal(chart.apiVersion, "v2");
  assert.equal(chart.name, "vigil");
  assert.equal(chart.appVersion, VERSION, "the default image tag is the chart's appVersion");
  assert.match(chart.version ?? "", /^\d+\.\d+\.\d+$/);
});

test("values.yaml satisfies values.schema.json, which refuses unknown keys and short secrets", () => {
  const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8")) as object;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  const values = parse(readFileSync(join(CHART, "values.yaml"), "utf8")) as Record<string, any>;
  assert.ok(validate(values), JSON.stringify(validate.errors));
  assert.equal(validate({ ...values, imagee: {} }), false, "a misspelt top-level key");
  assert.equal(validate({ ...values, secret: { ...values.secret, auditKey: "short" } }), false, "an audit key vigil would refuse");
  assert.equal(validate({ ...values, mode: "daemonset" }), false);
});

test("the chart's alert rules are deploy/prometheus/vigil-alerts.yml itself (a link, not a copy)", () => {
  const link = join(CHART, "files/vigil-alerts.yml");
  assert.ok(lstatSync(link).isSymbolicLink(), `${link} is a symbolic link`);
  assert.equal(readlinkSync(link), "../../../prometheus/vigil-alerts.yml");
  assert.equal(realpathSync(link), realpathSync(RULES));
});

describe("helm lint and helm template", { skip: HELM_MISSING }, () => {
  for (const [name, values] of Object.entries(SCENARIOS)) {
    it(`${name}: lints clean and renders only objects their schemas accept`, () => {
      const lint = helm(["lint", "--strict", CHART], values);
      assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);
      assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      const objects = render(values);
      for (const o of objects) {
        const validate = VALIDATORS[`${o.apiVersion}/${o.kind}`];
        assert.ok(validate, `no schema for ${o.apiVersion} ${o.kind}: add one`);
        assert.doesNotThrow(() => validate(o), `${o.kind} ${o.metadata.name}`);
        assert.equal(o.metadata.namespace, "apps", `${o.kind} ${o.metadata.name}: in the release namespace`);
      }
    });
  }

  it("the schema check catches what helm does not (a wrong type deep in the pod spec)", () => {
    const d = one(render(), "Deployment");
    vigilContainer(d).ports[0].containerPort = "7070";
    assert.throws(() => VALIDATORS["apps/v1/Deployment"]!(d), /containerPort/);
  });

  it("the vigil container matches the image: non-root 65532, read-only root, no capabilities, RuntimeDefault seccomp", () => {
    for (const values of Object.values(SCENARIOS)) {
      const d = one(render(values), "Deployment");
      const pod = d.spec.template.spec;
      const c = vigilContainer(d);
      assert.equal(pod.automountServiceAccountToken, false);
      assert.deepEqual([pod.securityContext.runAsNonRoot, pod.securityContext.runAsUser, pod.securityContext.fsGroup, pod.securityContext.seccompProfile.type], [true, 65532, 65532, "RuntimeDefault"]);
      const sc = c.securityContext;
      assert.deepEqual(
        [sc.runAsNonRoot, sc.runAsUser, sc.runAsGroup, sc.readOnlyRootFilesystem, sc.allowPrivilegeEscalation, sc.privileged, sc.capabilities.drop, sc.seccompProfile.type],
        [true, 65532, 65532, true, false, false, ["ALL"], "RuntimeDefault"],
      );
      const dockerUser = /^USER (\d+):(\d+)$/m.exec(readFileSync(join(ROOT, "Dockerfile"), "utf8"));
      assert.deepEqual([Number(dockerUser?.[1]), Number(dockerUser?.[2])], [sc.runAsUser, sc.runAsGroup], "the Dockerfile's USER");
      assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port, c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ["/healthz", "api", "/readyz", "api"]);
      assert.deepEqual(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]), [["api", 7070], ["metrics", 9464]]);
      assert.ok(c.resources.requests.memory && c.resources.limits.memory, "memory request and limit");
      const mounts = new Map(c.volumeMounts.map((m: { mountPath: string; readOnly?: boolean }) => [m.mountPath, m.readOnly === true]));
      assert.deepEqual([mounts.get("/etc/vigil/config"), mounts.get("/etc/vigil/secrets"), mounts.get("/var/lib/vigil"), mounts.get("/tmp")], [true, true, false, false]);
      // Secrets reach vigil as files, never as environment variables or arguments.
      assert.ok(!JSON.stringify(c.env).includes("secretKeyRef"));
    }
  });

  it("sidecar mode keeps the workload's containers and volumes; native puts vigil among the init containers", () => {
    const plain = one(render(SCENARIOS["sidecar with monitoring, a PDB and an existing Secret"]), "Deployment").spec;
    assert.deepEqual(plain.template.spec.containers.map((c: { name: string }) => c.name), ["app", "vigil"]);
    assert.equal(plain.replicas, 2);
    assert.equal(plain.strategy, undefined, "the workload's rolling update is kept");
    assert.ok(plain.template.spec.volumes.some((v: { name: string }) => v.name === "cache"));
    const native = one(render(SCENARIOS["native sidecar"]), "Deployment").spec.template.spec;
    assert.deepEqual(native.containers.map((c: { name: string }) => c.name), ["app"]);
    assert.deepEqual(native.initContainers.map((c: { name: string; restartPolicy?: string }) => [c.name, c.restartPolicy]), [["vigil", "Always"]]);
    const standalone = one(render(), "Deployment").spec;
    assert.equal(standalone.strategy.type, "Recreate", "never two agents enforcing at once");
    const r = helm(["template", "rel", CHART], { mode: "sidecar" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /mode: sidecar needs the workload's containers in sidecar\.containers/);
  });

  it("the token and audit key come from a Secret: the chart's own (generated, kept) or an existing one", () => {
    const own = render();
    const secret = one(own, "Secret");
    assert.equal(secret.metadata.annotations["helm.sh/resource-policy"], "keep");
    for (const key of ["api-token", "audit-key"]) assert.ok(Buffer.from(secret.data[key], "base64").toString().length >= 32, key);
    const volume = one(own, "Deployment").spec.template.spec.volumes.find((v: { name: string }) => v.name === "vigil-secrets");
    assert.equal(volume.secret.secretName, secret.metadata.name);
    const existing = render(SCENARIOS["sidecar with monitoring, a PDB and an existing Secret"]);
    assert.equal(byKind(existing, "Secret").length, 0, "no Secret when one exists");
    assert.equal(one(existing, "Deployment").spec.template.spec.volumes.find((v: { name: string }) => v.name === "vigil-secrets").secret.secretName, "vigil-secrets");
    const given = one(render(SCENARIOS["standalone on a claim, pinned by digest, with given secrets"]), "Secret");
    assert.equal(Buffer.from(given.data["api-token"], "base64").toString(), "a-token-of-at-least-16");
  });

  it("ServiceMonitor scrapes the metrics port as job vigil; PrometheusRule carries vigil-alerts.yml unchanged", () => {
    const objects = render(SCENARIOS["sidecar with monitoring, a PDB and an existing Secret"]);
    const service = one(objects, "Service");
    const monitor = one(objects, "ServiceMonitor");
    assert.deepEqual(monitor.spec.selector.matchLabels, service.spec.selector);
    assert.ok(service.spec.ports.some((p: { name: string }) => p.name === monitor.spec.endpoints[0].port));
    assert.deepEqual(monitor.spec.endpoints[0].relabelings, [{ action: "replace", targetLabel: "job", replacement: "vigil" }]);
    assert.equal(monitor.metadata.labels.release, "prometheus");
    const rule = one(objects, "PrometheusRule");
    assert.deepEqual(rule.spec.groups, (parse(readFileSync(RULES, "utf8")) as { groups: unknown }).groups);
    assert.equal(byKind(render(), "ServiceMonitor").length + byKind(render(), "PrometheusRule").length, 0, "both off by default");
    assert.equal(one(objects, "PodDisruptionBudget").spec.minAvailable, 1);
  });

  it("the rendered vigil.yaml passes `vigil validate` and starts a real agent", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vigil-helm-config-"));
    try {
      for (const values of Object.values(SCENARIOS)) {
        const objects = render(values);
        const config = one(objects, "ConfigMap").data["vigil.yaml"] as string;
        // The chart's mounts, moved into a temporary directory; the Secret's keys become its files.
        const secretsDir = join(dir, "secrets");
        mkdirSync(secretsDir, { recursive: true });
        writeFileSync(join(secretsDir, "api-token"), "token-from-the-secret-0123456789");
        writeFileSync(join(secretsDir, "audit-key"), "audit-key-from-the-secret-0123456789abcdef");
        const local = config.replaceAll("/etc/vigil/secrets/", `${secretsDir}/`).replaceAll("/var/lib/vigil", join(dir, "data")).replaceAll("0.0.0.0:7070", "127.0.0.1:0").replaceAll("0.0.0.0:9464", "127.0.0.1:0");
        assert.notEqual(local, config);
        const file = join(dir, "vigil.yaml");
        writeFileSync(file, local);
        const r = await runCli(["validate", "-c", file]);
        assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${config}`);
        const agent = await AgentProcess.start(file, { HOME: join(dir, "no-home"), XDG_CONFIG_HOME: "" });
        try {
          assert.equal((await fetch(`${agent.api}/readyz`)).status, 200);
          assert.equal((await agent.request("GET", "/v1/status", undefined, "token-from-the-secret-0123456789")).status, 200, "the token from the Secret's file");
        } finally {
          await agent.stop();
        }
        rmSync(join(dir, "data"), { recursive: true, force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
