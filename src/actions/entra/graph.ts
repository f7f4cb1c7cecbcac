/** What the Entra actions share: the user they act on, Graph URLs for it, and reading Graph's answers. */
import { z } from "zod";
import { UpstreamError } from "../../errors.ts";
import type { HttpResponse } from "../../net/http.ts";
import { maskUrl } from "../../net/http.ts";
import { scrub } from "../../util/redact.ts";
import type { ActionRequest } from "../../plugin/action.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { fromSubject, inputError, templateString } from "../common/input.ts";
import { GUID_RE } from "./config.ts";

export const DEFAULT_USER = "{{attributes.entra_id}}";

/** `user:` in an action entry: the user's object id (or, where Graph takes one, user principal name). */
export const userField = () => templateString().default(DEFAULT_USER);

/** `full_group` / `read_only_group`: group object ids. */
export const groupIdField = () => z.string().regex(GUID_RE, { error: "expected the group's object id, a GUID" });

const MAX_ID = 1024;

/**
 * The user an action targets. `objectIdOnly` for APIs that refuse user principal names (risky users,
 * group member references); otherwise an object id or a UPN (which always contains `@`).
 */
export function targetUser(template: string, req: ActionRequest, action: string, objectIdOnly: boolean): string {
  const id = fromSubject(template, req.subject);
  if (id.length > MAX_ID || /[\u0000-\u001f\u007f]/.test(id)) throw inputError(`${action}: the user value for subject ${req.subject.id} is not a usable Entra id`);
  if (GUID_RE.test(id)) return id;
  if (objectIdOnly) {
    throw inputError(`${action}: ${JSON.stringify(id)} (subject ${req.subject.id}) is not an Entra object id; this Graph API takes the user's object id (a GUID), not a user principal name`);
  }
  if (!id.includes("@")) throw inputError(`${action}: ${JSON.stringify(id)} (subject ${req.subject.id}) is neither an Entra object id (a GUID) nor a user principal name`);
  return id;
}

/** Encodes one path segment, keeping `@` (as Graph's own examples write UPNs); `#` in guest UPNs becomes `%23`. */
function segment(value: string): string {
  return encodeURIComponent(value).replace(/%40/g, "@");
}

/**
 * `<graph>/users/<id>`. Graph reads a UPN that starts with `$` as a system query option unless it is
 * written as a key: `users('$alice@contoso.com')`, with quotes doubled.
 */
export function userUrl(graphUrl: string, id: string): string {
  if (id.startsWith("$")) return `${graphUrl}/users('${segment(id).replace(/%24/g, "$").replace(/'/g, "''")}')`;
  return `${graphUrl}/users/${segment(id)}`;
}

/** Graph's error body: `{error: {code, message, innerError}}`. */
export interface GraphError {
  readonly code?: string;
  readonly message?: string;
}

/** The JSON body, or undefined when there is none or it is not JSON (the change already happened; reading it must not fail the job). */
export function jsonOrUndefined<T>(res: HttpResponse): T | undefined {
  if (res.body.length === 0) return undefined;
  try {
    return JSON.parse(res.text()) as T;
  } catch {
    return undefined;
  }
}

export function graphError(res: HttpResponse): GraphError {
  const body = jsonOrUndefined<{ error?: { code?: unknown; message?: unknown } }>(res);
  const e = body?.error;
  return {
    ...(typeof e?.code === "string" ? { code: e.code } : {}),
    ...(typeof e?.message === "string" ? { message: e.message } : {}),
  };
}

/** A non-2xx answer an action let through (`accept`) but does not want after all: permanent, like any other 4xx. */
export function unexpected(call: ApiCall, res: HttpResponse): UpstreamError {
  const e = graphError(res);
  // Graph's message is the upstream's text: masked with the request's own bearer token, which is not a registered secret.
  const what = res.mask([e.code, e.message].filter(Boolean).join(": "), 512) || res.quote(512);
  return new UpstreamError(false, scrub(`${call.method} ${maskUrl(call.url)} → ${res.status}${what ? `: ${what}` : ""}`), {
    status: res.status,
    details: { method: call.method, url: maskUrl(call.url), ...(e.code ? { graph_code: e.code } : {}) },
  });
}
