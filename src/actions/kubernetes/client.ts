/**
 * The `kubernetes` provider's client: server-side apply under one field manager, reads, and deletes
 * that only ever remove objects carrying vigil's owner label (with a precondition on the uid read, so
 * an object replaced in between is not removed by mistake).
 */
import type { HttpResponse } from "../../net/http.ts";
import type { Logger } from "../../telemetry/log.ts";
import { ApiClient } from "../../plugin/api-client.ts";
import type { CircuitOptions } from "../../plugin/circuit.ts";
import type { ApiCall } from "../../net/api-call.ts";
import type { ProviderContext } from "../../plugin/provider.ts";
import { UpstreamError } from "../../errors.ts";
import { KubeCredentials, resolveTarget, type CredentialEnv, type CredentialSource, type Target } from "./credentials.ts";
import { isOwned } from "../common/kubernetes/names.ts";
import { describeRef, objectPath, refOf } from "../common/kubernetes/paths.ts";
import { parseStatus, STATUS_READ, statusError } from "./status.ts";
import { OWNER_LABEL, OWNER_VALUE, type DeleteOutcome, type KubeObject, type KubernetesClient, type ObjectRef } from "../common/kubernetes/types.ts";

/** Stands in a plan for the uid that the GET before a DELETE returns. */
export const UID_PLACEHOLDER = "<uid read by the preceding GET>";

export const APPLY_CONTENT_TYPE = "application/apply-patch+yaml";

export interface KubeClientOptions extends CredentialSource {
  /** Default `vigil`. */
  readonly field_manager?: string;
  /** Per-call deadline in ms. Default 10000. */
  readonly timeout?: number;
  readonly circuit?: Partial<CircuitOptions>;
}

/** The API server plans show when the real one can only be found where the agent runs. */
export const PLACEHOLDER_API_SERVER = "https://kubernetes-api-server.placeholder.invalid";

/**
 * The API server, as `resolveTarget` finds it; when only planning (`ctx.planOnly`) and it cannot be
 * found here (no kubeconfig, not in a pod), a placeholder server, with a warning saying so.
 */
function targetOrPlaceholder(options: KubeClientOptions, ctx: ProviderContext, env: CredentialEnv): Target {
  try {
    return resolveTarget(options, { configDir: ctx.configDir, ...env });
  } catch (err) {
    if (!ctx.planOnly) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    ctx.logger.warn({ provider: ctx.name }, `providers.${ctx.name}: the API server cannot be found here (${reason}); plans show ${PLACEHOLDER_API_SERVER} in its place`);
    return { apiServer: PLACEHOLDER_API_SERVER, bearer: true, inCluster: false, description: `a placeholder for the API server (${reason})` };
  }
}

export class KubeClient extends ApiClient implements KubernetesClient {
  readonly fieldManager: string;
  readonly credentials: KubeCredentials;
  readonly #logger: Logger;

  constructor(options: KubeClientOptions, ctx: ProviderContext, env: CredentialEnv = {}) {
    const target = targetOrPlaceholder(options, ctx, env);
    const credentials = new KubeCredentials(options, target, ctx.http, env);
    super({ ctx, type: "kubernetes", auth: credentials, http: credentials.transport, timeoutMs: options.timeout ?? 10_000, ...(options.circuit ? { circuit: options.circuit } : {}) });
    this.credentials = credentials;
    this.fieldManager = options.field_manager ?? "vigil";
    this.#logger = ctx.logger;
  }

  /** Base URL of the API server, as every call and plan shows it. */
  get apiServer(): string {
    return this.credentials.target.apiServer;
  }

  path(ref: ObjectRef): string {
    return objectPath(ref);
  }

  applyCall(obj: KubeObject): ApiCall {
    const ref = refOf(obj);
    const query = new URLSearchParams({ fieldManager: this.fieldManager, force: "true" });
    return {
      method: "PATCH",
      url: `${this.apiServer}${objectPath(ref)}?${query.toString()}`,
      headers: { "Content-Type": APPLY_CONTENT_TYPE, Accept: "application/json" },
      // JSON is YAML, and the exact bytes in the plan are the ones sent.
      body: JSON.stringify(obj),
      summary: `server-side apply ${describeRef(ref)} as field manager ${this.fieldManager}`,
    };
  }

  getCall(ref: ObjectRef): ApiCall {
    return { method: "GET", url: `${this.apiServer}${objectPath(ref)}`, headers: { Accept: "application/json" }, accept: [404], summary: `read ${describeRef(ref)}` };
  }

  deleteCall(ref: ObjectRef, uid?: string): ApiCall {
    return {
      method: "DELETE",
      url: `${this.apiServer}${objectPath(ref)}`,
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: uid ?? UID_PLACEHOLDER } }),
      accept: [404],
      summary: `delete ${describeRef(ref)} only if the GET before shows ${OWNER_LABEL}=${OWNER_VALUE}, on the condition that its uid is unchanged`,
    };
  }

  /** Like `ApiClient.send`, but permanent 4xx answers become errors carrying the Status reason and causes. */
  override async send(call: ApiCall, signal?: AbortSignal): Promise<HttpResponse> {
    const accepted = call.accept ?? [];
    const read = STATUS_READ.filter((s) => !accepted.includes(s));
    const res = await super.send({ ...call, accept: [...accepted, ...read] }, signal);
    if ((read as readonly number[]).includes(res.status)) throw statusError(call, res);
    return res;
  }

  async apply(obj: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    const res = await this.send(this.applyCall(obj), signal);
    return objectFrom(res, `apply ${describeRef(refOf(obj))}`);
  }

  async get(ref: ObjectRef, signal?: AbortSignal): Promise<KubeObject | undefined> {
    const call = this.getCall(ref);
    const res = await this.send(call, signal);
    if (res.status === 404) {
      notFoundOrThrow(call, res, ref);
      return undefined;
    }
    return objectFrom(res, `read ${describeRef(ref)}`);
  }

  async deleteOwned(ref: ObjectRef, signal?: AbortSignal): Promise<DeleteOutcome> {
    const current = await this.get(ref, signal);
    if (current === undefined) return "absent";
    if (!isOwned(current)) {
      this.#logger.warn({ provider: this.name, object: describeRef(ref), label: `${OWNER_LABEL}=${OWNER_VALUE}` }, "kubernetes: not deleting an object vigil does not own");
      return "not_owned";
    }
    const uid = current.metadata.uid;
    if (typeof uid !== "string" || uid === "") throw new UpstreamError(false, `kubernetes: ${describeRef(ref)} has no metadata.uid; not deleting without a precondition`);
    const call = this.deleteCall(ref, uid);
    const res = await this.send(call, signal);
    if (res.status === 404) {
      notFoundOrThrow(call, res, ref);
      return "absent";
    }
    return "deleted";
  }
}

/** A 404 for the object itself (its name in the Status details) means absent; any other 404 is a missing API. */
function notFoundOrThrow(call: ApiCall, res: HttpResponse, ref: ObjectRef): void {
  const st = parseStatus(res);
  if (st?.reason === "NotFound" && st.details?.name === ref.name) return;
  throw statusError(call, res);
}

function objectFrom(res: HttpResponse, what: string): KubeObject {
  const obj = res.json<KubeObject>();
  if (obj === null || typeof obj !== "object" || typeof obj.metadata !== "object" || obj.metadata === null) {
    throw new UpstreamError(false, `kubernetes: ${what}: the API server answered ${res.status} without an object`, { status: res.status });
  }
  return obj;
}
