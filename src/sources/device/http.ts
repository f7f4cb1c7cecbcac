/** One GET of a source API through its provider client, with retries, a size cap and strict JSON. */
import { UpstreamError } from "../../errors.ts";
import { maskUrl } from "../../net/http.ts";
import type { ApiClient } from "../../plugin/api-client.ts";
import type { Logger } from "../../telemetry/log.ts";
import { scrub } from "../../util/redact.ts";
import { Reader } from "../common/read.ts";
import { DEFAULT_RETRY, withRetries } from "../common/retry.ts";

export interface GetOptions {
  readonly signal: AbortSignal;
  readonly deadline: number;
  readonly maxResponseBytes: number;
  /** Statuses besides 2xx whose body is still an answer (CrowdStrike's 404 "none of these ids"). */
  readonly accept?: readonly number[];
  /** What a 401/403 means for this API, for the operator. */
  readonly refused: string;
  readonly logger: Logger;
  /** Counts every request sent, retries included. */
  readonly count: () => void;
}

/** GETs `url` and parses the answer as a JSON object. */
export async function getJson(api: ApiClient, url: string, o: GetOptions): Promise<{ body: Record<string, unknown>; status: number; reader: Reader }> {
  const shown = maskUrl(url, { guess: false });
  const res = await withRetries(
    () => {
      o.count();
      return api.send({ method: "GET", url, headers: { Accept: "application/json" }, maxResponseBytes: o.maxResponseBytes, ...(o.accept ? { accept: o.accept } : {}) }, o.signal);
    },
    {
      signal: o.signal,
      deadline: o.deadline,
      policy: DEFAULT_RETRY,
      onRetry: (err, waitMs) => o.logger.debug({ url: shown, wait_ms: waitMs }, `source call will be retried: ${err.message}`),
    },
  ).catch((err: unknown) => {
    if (err instanceof UpstreamError && !err.transient && (err.status === 401 || err.status === 403)) {
      throw new UpstreamError(false, scrub(`GET ${shown} → ${err.status}: ${o.refused} — ${err.message}`), { status: err.status, cause: err });
    }
    throw err;
  });
  const reader = new Reader(`GET ${shown}`);
  return { body: reader.object(reader.json(res), "$"), status: res.status, reader };
}
