/**
 * What the shared Redis does with acknowledged writes, checked at start. vigil answers 202 to a
 * signal, and counts a job as queued, once Redis has acknowledged the write: only a Redis that keeps
 * acknowledged writes through a crash keeps that promise.
 *
 * - `appendonly yes` with `appendfsync always`: each write is on disk before Redis acknowledges
 *   it; nothing acknowledged is lost to a Redis crash, a host crash or a power loss. What vigil
 *   asks for.
 * - `appendfsync everysec`: written to the file before the acknowledgement, flushed to disk once a
 *   second; survives a Redis crash, loses up to about two seconds to a host crash or power loss.
 * - no AOF (RDB snapshots only, or nothing): a crash loses everything since the last snapshot.
 * - any `maxmemory-policy` other than `noeviction` lets Redis drop queue and state keys when full.
 *
 * Managed Redis often refuses `CONFIG GET`; `INFO` then tells whether AOF is on and the eviction
 * policy, and the fsync policy is reported as unknown.
 */
import type { Redis } from "ioredis";
import { errorMessage } from "../../errors.ts";
import { scrub } from "../../util/redact.ts";

export interface PersistenceReport {
  readonly appendonly: string | undefined;
  readonly appendfsync: string | undefined;
  readonly maxmemory_policy: string | undefined;
  /** Where the values came from: `config` (CONFIG GET) or `info` (CONFIG GET was refused). */
  readonly source: "config" | "info" | "none";
  /** Each way the settings fall short of keeping acknowledged work, in words; empty when none. */
  readonly warnings: readonly string[];
}

export async function checkPersistence(redis: Redis): Promise<PersistenceReport> {
  let values: Record<string, string> | undefined;
  let source: PersistenceReport["source"] = "config";
  let refusal: string | undefined;
  try {
    values = {};
    for (const name of ["appendonly", "appendfsync", "maxmemory-policy"]) {
      const reply = (await redis.call("CONFIG", "GET", name)) as string[];
      if (reply.length >= 2) values[reply[0]!] = reply[1]!;
    }
  } catch (err) {
    refusal = scrub(errorMessage(err));
    values = undefined;
  }
  if (!values) {
    try {
      const info = `${String(await redis.info("persistence"))}\n${String(await redis.info("memory"))}`;
      const field = (name: string) => new RegExp(`^${name}:(.*)$`, "m").exec(info)?.[1]?.trim();
      const aof = field("aof_enabled");
      values = { ...(aof === undefined ? {} : { appendonly: aof === "1" ? "yes" : "no" }), ...(field("maxmemory_policy") ? { "maxmemory-policy": field("maxmemory_policy")! } : {}) };
      source = "info";
    } catch {
      values = {};
      source = "none";
    }
  }
  const appendonly = values["appendonly"];
  const appendfsync = values["appendfsync"];
  const policy = values["maxmemory-policy"];
  const warnings: string[] = [];
  if (appendonly === "no") warnings.push("appendonly is no: a Redis crash loses every acknowledged signal, job and decision since the last snapshot; set appendonly yes and appendfsync always");
  else if (appendonly === undefined) warnings.push(`cannot tell whether Redis keeps an append-only file${refusal ? ` (CONFIG GET: ${refusal})` : ""}; make sure appendonly is yes with appendfsync always`);
  if (appendonly === "yes" && appendfsync === "everysec") warnings.push("appendfsync is everysec: acknowledged work survives a Redis crash but up to about 2 s of it is lost to a host crash or power loss; set appendfsync always");
  else if (appendonly === "yes" && appendfsync === "no") warnings.push("appendfsync is no: the kernel decides when acknowledged work reaches the disk, and a host crash loses it; set appendfsync always");
  else if (appendonly === "yes" && appendfsync === undefined) warnings.push(`cannot read appendfsync${refusal ? ` (CONFIG GET: ${refusal})` : ""}; make sure it is always`);
  if (policy !== undefined && policy !== "noeviction") warnings.push(`maxmemory-policy is ${policy}: a full Redis would evict queue and state keys; set it to noeviction`);
  return { appendonly, appendfsync, maxmemory_policy: policy, source, warnings };
}
