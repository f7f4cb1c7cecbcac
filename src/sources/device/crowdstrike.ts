/**
 * CrowdStrike Falcon Zero Trust Assessment: OAuth2 client credentials (`POST /oauth2/token`), then
 * `GET /zero-trust-assessment/entities/assessments/v1?ids=…` for the agent ids (aids) a run needs,
 * `batch_size` ids per request. Assessments are kept per aid until they are older than the caller
 * allows, so the runs of one interval ask for each device once. The API answers 404 (with the same
 * body) when none of the ids has an assessment; that is an answer, not a failure.
 */
import { UpstreamError, isTransient } from "../../errors.ts";
import type { PluginContext } from "../../plugin/context.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import { ClientCredentials } from "../../net/oauth.ts";
import type { Reader } from "../common/read.ts";
import { keysOf, platformFamily, usableSerial, usersOf, type DeviceRecord, type ZtaSignal } from "./model.ts";
import { getJson } from "./http.ts";
import type { CrowdStrikeConnection } from "./schema.ts";

/** Falcon agent ids are 32 hexadecimal characters. */
export const AID_RE = /^[0-9a-f]{32}$/i;

const PLATFORMS: Record<string, string> = { win: "windows", mac: "macos", lin: "linux" };

function signals(r: Reader, items: Record<string, unknown> | undefined, key: string, group: ZtaSignal["group"], path: string): ZtaSignal[] {
  if (!items || items[key] === undefined || items[key] === null) return [];
  return r.array(items[key], `${path}.${key}`).flatMap((s, i) => {
    const p = `${path}.${key}[${i}]`;
    const o = r.object(s, p);
    const meets = r.optString(o, "meets_criteria", p) ?? "unknown";
    if (meets.toLowerCase() === "yes") return [];
    const criteria = r.optString(o, "criteria", p);
    return [{ group, id: r.optString(o, "signal_id", p) ?? `${group}-${i}`, name: r.optString(o, "signal_name", p) ?? r.optString(o, "signal_id", p) ?? `${group} signal ${i}`, ...(criteria !== undefined ? { criteria } : {}), meets }];
  });
}

/** One assessment as a record. */
export function ztaRecord(raw: unknown, r: Reader, path: string): DeviceRecord {
  const o = r.object(raw, path);
  const aid = r.string(o, "aid", path).toLowerCase();
  const a = o.assessment === undefined || o.assessment === null ? undefined : r.object(o.assessment, `${path}.assessment`);
  const items = o.assessment_items === undefined || o.assessment_items === null ? undefined : r.object(o.assessment_items, `${path}.assessment_items`);
  const serial = usableSerial(r.optString(o, "system_serial_number", path));
  const platformName = r.optString(o, "event_platform", path);
  const platform = platformName ? (PLATFORMS[platformName.toLowerCase()] ?? platformFamily(platformName)) : undefined;
  const observedAt = r.optTime(o, "modified_time", path);
  const overall = a ? r.optNumber(a, "overall", `${path}.assessment`) : undefined;
  const os = a ? r.optNumber(a, "os", `${path}.assessment`) : undefined;
  const sensorConfig = a ? r.optNumber(a, "sensor_config", `${path}.assessment`) : undefined;
  return {
    type: "crowdstrike",
    id: aid,
    name: undefined,
    serial,
    hostname: undefined,
    keys: keysOf([aid, serial]),
    users: usersOf([]),
    platform,
    osVersion: undefined,
    managed: undefined,
    observedAt,
    groups: undefined,
    country: undefined,
    posture: {
      kind: "crowdstrike",
      overall,
      os,
      sensorConfig,
      failing: [...signals(r, items, "os_signals", "os", `${path}.assessment_items`), ...signals(r, items, "sensor_signals", "sensor", `${path}.assessment_items`)],
    },
  };
}

interface Cached {
  readonly at: number;
  readonly record: DeviceRecord | null;
}

export class CrowdStrikeSource {
  readonly type = "crowdstrike";
  readonly api: ApiClient;
  readonly credentials: ClientCredentials;
  readonly #config: CrowdStrikeConnection;
  readonly #ctx: PluginContext;
  readonly #cache = new Map<string, Cached>();
  #failure: { error: unknown; until: number } | undefined;
  calls = 0;

  constructor(config: CrowdStrikeConnection, ctx: PluginContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.credentials = new ClientCredentials({
      tokenUrl: `${config.url}/oauth2/token`,
      clientId: config.client_id,
      auth: { method: "client_secret_post", client_secret: config.client_secret },
      scope: "",
      http: ctx.http,
      clock: ctx.clock,
      timeoutMs: config.timeout,
    });
    this.api = new ApiClient({ ctx: { ...ctx, name: `crowdstrike:${config.url}` }, type: "crowdstrike", auth: this.credentials, timeoutMs: config.timeout });
  }

  /**
   * The assessment of each aid (null: CrowdStrike has none), from the cache when younger than
   * `maxAgeMs`, else fetched in batches. A failed fetch is handed out for a while (30 s, or as long
   * as the API asked; 5 min when permanent) without asking again.
   */
  async lookup(aids: readonly string[], maxAgeMs: number, signal: AbortSignal, deadline: number): Promise<{ records: Map<string, DeviceRecord | null>; at: number }> {
    const now = this.#ctx.clock.now();
    const wanted = [...new Set(aids.map((a) => a.toLowerCase()).filter((a) => AID_RE.test(a)))];
    const missing = wanted.filter((a) => {
      const c = this.#cache.get(a);
      return !c || now - c.at > maxAgeMs;
    });
    if (missing.length > 0) {
      if (this.#failure && now < this.#failure.until) throw this.#failure.error;
      try {
        for (let i = 0; i < missing.length; i += this.#config.batch_size) await this.#fetch(missing.slice(i, i + this.#config.batch_size), signal, deadline);
        this.#failure = undefined;
      } catch (err) {
        const hint = err instanceof UpstreamError ? (err.retryAfterMs ?? 0) : 0;
        this.#failure = { error: err, until: this.#ctx.clock.now() + (isTransient(err) ? Math.max(30_000, hint) : 300_000) };
        throw err;
      }
    }
    const records = new Map<string, DeviceRecord | null>();
    let oldest = Infinity;
    for (const a of wanted) {
      const c = this.#cache.get(a);
      if (!c) continue;
      records.set(a, c.record);
      oldest = Math.min(oldest, c.at);
    }
    return { records, at: Number.isFinite(oldest) ? oldest : now };
  }

  async #fetch(batch: readonly string[], signal: AbortSignal, deadline: number): Promise<void> {
    const url = `${this.#config.url}/zero-trust-assessment/entities/assessments/v1?${batch.map((a) => `ids=${a}`).join("&")}`;
    const { body, reader } = await getJson(this.api, url, {
      signal,
      deadline,
      maxResponseBytes: this.#config.max_response_bytes,
      accept: [404],
      refused: 'CrowdStrike refused the API client (check client_id, client_secret and the cloud in `url`; the client needs the "Zero Trust Assessment: Read" scope)',
      logger: this.#ctx.logger,
      count: () => this.calls++,
    });
    const resources = body.resources === null || body.resources === undefined ? [] : reader.array(body.resources, "$.resources");
    const at = this.#ctx.clock.now();
    const found = new Map<string, DeviceRecord>();
    resources.forEach((raw, i) => {
      const rec = ztaRecord(raw, reader, `$.resources[${i}]`);
      found.set(rec.id, rec);
    });
    for (const aid of batch) {
      this.#cache.delete(aid);
      this.#cache.set(aid, { at, record: found.get(aid) ?? null });
    }
    // Oldest first (insertion order): the cache never holds more than max_devices assessments.
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= this.#config.max_devices) break;
      this.#cache.delete(key);
    }
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}
