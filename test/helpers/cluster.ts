/**
 * Cluster-mode configs for tests that run real `vigil run` replicas against a real redis-server:
 * every replica gets its own config file (and data_dir, which cluster mode leaves alone) with the
 * same Redis, audit key and API token.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { TOKEN, tempConfig } from "./agent-process.ts";

export const AUDIT_KEY = "cluster-audit-key-0123456789abcdef-0123456789";
export const HOOK_SECRET = "whsec-cluster-0123456789abcdef";

export interface ClusterConfigOptions {
  readonly redisUrl: string;
  /** Webhook receiver for the deny level's `notify` action. */
  readonly hook: string;
  /** Subjects, each a user with `mfa: true`, in a file inventory. */
  readonly subjects: number;
  readonly prefix?: string;
  /** `continuous_verification.interval`. Default 1m. */
  readonly interval?: string;
  readonly lockDuration?: string;
  readonly lease?: string;
  readonly logLevel?: string;
  /** Extra keys of `agent.cluster.redis`, as YAML flow entries (`username: vigil, password: …`). */
  readonly redis?: string;
  /** Extra YAML under `enforcement:` (limits, retry). */
  readonly enforcement?: string;
}

/** Writes one replica's config; the subjects file is written beside it. */
export function clusterConfig(o: ClusterConfigOptions): { dir: string; file: string } {
  return tempConfig((dir) => {
    const subjects = Array.from({ length: o.subjects }, (_, i) => ({ id: subjectId(i), kind: "user", attributes: { mfa: true } }));
    writeFileSync(join(dir, "subjects.json"), JSON.stringify(subjects));
    return `
agent:
  mode: cluster
  data_dir: ${join(dir, "var")}
  log_level: ${o.logLevel ?? "info"}
  api: {listen: "127.0.0.1:0", token: "${TOKEN}"}
  metrics: {listen: "127.0.0.1:0"}
  audit: {key: "${AUDIT_KEY}"}
  shutdown_timeout: 2s
  cluster:
    redis: {url: "${o.redisUrl}", connect_timeout: 2s, command_timeout: 2s${o.redis ? `, ${o.redis}` : ""}}
    prefix: ${o.prefix ?? "vigil"}
    lock_duration: ${o.lockDuration ?? "3s"}
    lease: ${o.lease ?? "3s"}
inventories:
  - {type: file, path: subjects.json}
identity_perimeter:
  require_location_check: false
  require_managed_device: false
  continuous_verification: {interval: ${o.interval ?? "1m"}}
enforcement:
  deny:
    - {type: webhook, name: notify, url: "${o.hook}", secret: "${HOOK_SECRET}", timeout: 2s}
${o.enforcement ?? ""}
`;
  });
}

export function subjectId(i: number): string {
  return `u${String(i).padStart(4, "0")}`;
}
