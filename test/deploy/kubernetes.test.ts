/**
 * The Kubernetes manifests, read as data: the cluster-mode example runs enough replicas with a
 * disruption budget that keeps most of them up, probes that tell "waiting for Redis" (alive, not
 * ready) from dead, credentials only from a Secret, Redis with the persistence vigil asks for, and
 * a vigil config that loads.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { loadConfigText } from "../../src/config/load.ts";

const ROOT = new URL("../../", import.meta.url);
const text = readFileSync(new URL("deploy/kubernetes/cluster.yaml", ROOT), "utf8");
type Doc = any;
const docs: Doc[] = parseAllDocuments(text).map((d) => d.toJS());
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(d, `${kind}/${name} is in the manifest`);
  return d;
};

test("the cluster manifest is well-formed YAML of the expected objects", () => {
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`).sort(),
    ["ConfigMap/vigil-cluster-config", "ConfigMap/vigil-redis-config", "Deployment/vigil", "PodDisruptionBudget/vigil", "Service/vigil", "Service/vigil-redis", "StatefulSet/vigil-redis"].sort(),
  );
});

test("replicas and their disruption budget: one can go, two keep sharing the work", () => {
  const deploy = find("Deployment", "vigil");
  const pdb = find("PodDisruptionBudget", "vigil");
  assert.equal(deploy.spec.replicas, 3);
  assert.equal(pdb.spec.minAvailable, 2);
  assert.ok(pdb.spec.minAvailable < deploy.spec.replicas, "a budget as large as the Deployment would block every drain");
  assert.deepEqual(pdb.spec.selector.matchLabels, deploy.spec.selector.matchLabels);
  assert.deepEqual(deploy.spec.template.metadata.labels, { ...deploy.spec.template.metadata.labels, ...deploy.spec.selector.matchLabels });
  assert.equal(deploy.spec.strategy.rollingUpdate.maxUnavailable, 1);
  assert.deepEqual(find("Service", "vigil").spec.selector, deploy.spec.selector.matchLabels);
});

test("a replica waiting for Redis is alive but not ready, and has time to drain on SIGTERM", async () => {
  const deploy = find("Deployment", "vigil");
  const c = deploy.spec.template.spec.containers[0];
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  const cfg = await vigilConfig();
  assert.ok(deploy.spec.template.spec.terminationGracePeriodSeconds * 1000 > cfg.raw.agent.shutdown_timeout);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.runAsNonRoot, true);
  assert.ok(!(deploy.spec.template.spec.volumes as { persistentVolumeClaim?: unknown }[]).some((v) => v.persistentVolumeClaim), "replicas keep nothing on disk");
});

test("credentials come from the Secret, never written in the manifest", () => {
  const deploy = find("Deployment", "vigil");
  const env = deploy.spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }[];
  for (const name of ["VIGIL_API_TOKEN", "VIGIL_AUDIT_KEY", "REDIS_PASSWORD"]) {
    const e = env.find((x) => x.name === name);
    assert.equal(e?.value, undefined, name);
    assert.equal(e?.valueFrom?.secretKeyRef.name, "vigil-cluster", name);
  }
  const redis = find("StatefulSet", "vigil-redis").spec.template.spec.containers[0];
  assert.equal(redis.env.find((x: { name: string }) => x.name === "REDIS_PASSWORD").valueFrom.secretKeyRef.name, "vigil-cluster");
  assert.ok(!/requirepass\s+\S/.test(find("ConfigMap", "vigil-redis-config").data["redis.conf"]), "no password in the Redis config");
});

test("Redis keeps what it acknowledged: AOF fsynced on every write, no eviction, on a volume", () => {
  const conf = find("ConfigMap", "vigil-redis-config").data["redis.conf"] as string;
  const setting = (name: string) => new RegExp(`^${name}\\s+(\\S+)`, "m").exec(conf)?.[1];
  assert.equal(setting("appendonly"), "yes");
  assert.equal(setting("appendfsync"), "always");
  assert.equal(setting("maxmemory-policy"), "noeviction");
  const sts = find("StatefulSet", "vigil-redis");
  assert.equal(sts.spec.replicas, 1);
  assert.equal(sts.spec.volumeClaimTemplates[0].metadata.name, "data");
  assert.equal(sts.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === "data").mountPath, setting("dir"));
  assert.ok(!docs.some((d) => d.kind === "PodDisruptionBudget" && d.spec.selector.matchLabels["app.kubernetes.io/component"] === "redis"), "a budget on one pod would block every drain");
});

async function vigilConfig() {
  const yaml = find("ConfigMap", "vigil-cluster-config").data["vigil.yaml"] as string;
  return loadConfigText(yaml, join(new URL("deploy/kubernetes", ROOT).pathname, "vigil.yaml"), {
    env: { VIGIL_API_TOKEN: "t".repeat(32), VIGIL_AUDIT_KEY: "k".repeat(64), REDIS_PASSWORD: "p".repeat(32) },
  });
}

test("the replicas' config loads in cluster mode and names the Redis Service", async () => {
  const cfg = await vigilConfig();
  assert.equal(cfg.raw.agent.mode, "cluster");
  assert.equal(cfg.raw.agent.cluster.redis?.host, find("Service", "vigil-redis").metadata.name);
  assert.equal(cfg.raw.agent.cluster.redis?.port, find("Service", "vigil-redis").spec.ports[0].port);
  assert.equal(cfg.raw.agent.api.listen, "0.0.0.0:7070");
});
