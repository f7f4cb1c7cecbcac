/**
 * What the Kubernetes, Istio and Linkerd actions share: the object shapes and the client of the
 * `kubernetes` provider. Objects are written with server-side apply under one field manager, carry
 * vigil's owner labels, and only objects carrying them are ever deleted.
 */
import type { ApiCall } from "../../../net/api-call.ts";
import type { ProviderClient } from "../../../plugin/provider.ts";

/** `app.kubernetes.io/managed-by: vigil` marks every object vigil writes. */
export const OWNER_LABEL = "app.kubernetes.io/managed-by";
export const OWNER_VALUE = "vigil";
/** The vigil policy an object belongs to (a label value: the policy name, sanitised). */
export const POLICY_LABEL = "vigil.dev/policy";

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly [key: string]: unknown;
  };
  readonly spec?: unknown;
  readonly [key: string]: unknown;
}

export type DeleteOutcome = "deleted" | "absent" | "not_owned";

/** The `kubernetes` provider's client. */
export interface KubernetesClient extends ProviderClient {
  /** Field manager of every apply. Default `vigil`. */
  readonly fieldManager: string;
  /** API path of an object, e.g. `/apis/security.istio.io/v1/namespaces/ns/authorizationpolicies/name`. */
  path(ref: ObjectRef): string;
  /** The server-side-apply call: PATCH `<path>?fieldManager=<m>&force=true`, `application/apply-patch+yaml`, the object as JSON body. */
  applyCall(obj: KubeObject): ApiCall;
  getCall(ref: ObjectRef): ApiCall;
  /** DELETE with a precondition on `uid` when given (the plan shows it without). */
  deleteCall(ref: ObjectRef, uid?: string): ApiCall;
  /** Applies and returns the object as the server holds it. */
  apply(obj: KubeObject, signal?: AbortSignal): Promise<KubeObject>;
  get(ref: ObjectRef, signal?: AbortSignal): Promise<KubeObject | undefined>;
  /** GET, then DELETE only when the object carries the owner label (precondition on its uid). */
  deleteOwned(ref: ObjectRef, signal?: AbortSignal): Promise<DeleteOutcome>;
}
