/**
 * The Okta endpoints the actions call, as `ApiCall`s, and readers for their answers. One place for
 * paths, flags and answer shapes, so `plan`, `apply` and `revert` build exactly the same calls.
 */
import { UpstreamError } from "../../errors.ts";
import type { HttpResponse } from "../../net/http.ts";
import type { ApiCall } from "../../net/api-call.ts";
import { fromSubject, inputError } from "../common/input.ts";
import type { ActionRequest } from "../../plugin/action.ts";
import type { OktaClient } from "./client.ts";
import { nextLink } from "../../net/link.ts";

export { nextLink } from "../../net/link.ts";

/** The default `user` template: the Okta user id kept in the subject's attributes. */
export const DEFAULT_USER_TEMPLATE = "{{attributes.okta_id}}";

/** Okta ids (`00u…`, `00g…`) and logins; never `.`/`..`, which would change the path. */
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$/;

/** Okta answers this code when the user or group in the path does not exist. */
export const NOT_FOUND = "E0000007";

/** Most pages of a user's groups read when verifying (Okta pages with `Link: <…>; rel="next"`). */
export const MAX_GROUP_PAGES = 50;

const ACCEPT = { Accept: "application/json" } as const;

/** Renders the user id for this subject; a missing or malformed one is `VIGIL_ERR_ACTION_INPUT`. */
export function userId(template: string, req: ActionRequest, action: string): string {
  const id = fromSubject(template, req.subject);
  if (!ID_RE.test(id)) throw inputError(`${action}: subject ${req.subject.id} gives Okta user id ${JSON.stringify(id.slice(0, 64))}, which is not an Okta id`);
  return id;
}

/** True when `id` has the shape of an Okta id. */
export function isOktaId(id: string): boolean {
  return ID_RE.test(id);
}

const seg = encodeURIComponent;

export function getUser(c: OktaClient, user: string, summary: string): ApiCall {
  return { method: "GET", url: c.url(`/api/v1/users/${seg(user)}`), headers: ACCEPT, summary };
}

export function lifecycle(c: OktaClient, user: string, op: "suspend" | "unsuspend", summary: string): ApiCall {
  return { method: "POST", url: c.url(`/api/v1/users/${seg(user)}/lifecycle/${op}`), headers: ACCEPT, summary };
}

export function clearSessions(c: OktaClient, user: string, oauthTokens: boolean, summary: string): ApiCall {
  return { method: "DELETE", url: c.url(`/api/v1/users/${seg(user)}/sessions`, { oauthTokens: String(oauthTokens) }), headers: ACCEPT, summary };
}

/** Universal Logout: revokes the user's tokens and sessions at every app that supports it (RFC 9493 `opaque` subject). */
export function globalTokenRevocation(c: OktaClient, user: string, summary: string): ApiCall {
  return {
    method: "POST",
    url: c.url("/oauth2/v1/global-token-revocation"),
    headers: { "Content-Type": "application/json", ...ACCEPT },
    body: JSON.stringify({ sub_id: { format: "opaque", id: user } }),
    summary,
  };
}

export function addToGroup(c: OktaClient, group: string, user: string, summary: string): ApiCall {
  return { method: "PUT", url: c.url(`/api/v1/groups/${seg(group)}/users/${seg(user)}`), headers: ACCEPT, summary };
}

/** 404 is let through so `removedFromGroup` can tell "not found" (already not a member) from other refusals. */
export function removeFromGroup(c: OktaClient, group: string, user: string, summary: string): ApiCall {
  return { method: "DELETE", url: c.url(`/api/v1/groups/${seg(group)}/users/${seg(user)}`), headers: ACCEPT, accept: [404], summary };
}

export function listUserGroups(c: OktaClient, user: string, summary: string): ApiCall {
  return { method: "GET", url: c.url(`/api/v1/users/${seg(user)}/groups`), headers: ACCEPT, summary };
}

/** The `errorCode` of an Okta error body, if it has one. */
export function errorCode(res: HttpResponse): string | undefined {
  try {
    const body = JSON.parse(res.text()) as { errorCode?: unknown };
    return typeof body?.errorCode === "string" ? body.errorCode : undefined;
  } catch {
    return undefined;
  }
}

/** Reads `status` from a user object. */
export function userStatus(res: HttpResponse, call: ApiCall): string {
  const body = res.json<{ status?: unknown } | null>();
  if (!body || typeof body.status !== "string" || body.status === "") {
    throw new UpstreamError(false, `${call.method} ${call.url} → ${res.status}: answer has no user status`, { status: res.status });
  }
  return body.status;
}

/** Sends a DELETE built by `removeFromGroup`; true when the membership was removed or was not there. */
export async function removedFromGroup(c: OktaClient, call: ApiCall, signal?: AbortSignal): Promise<"removed" | "not_found"> {
  const res = await c.send(call, signal);
  if (res.status !== 404) return "removed";
  // The user or the group is gone: either way the user is not a member. Anything else is not ours to accept.
  if (errorCode(res) === NOT_FOUND) return "not_found";
  throw new UpstreamError(false, `${call.method} ${call.url} → 404 without Okta's not-found code`, { status: 404 });
}

/** Every group id of the user, following Okta's pagination within the org only. */
export async function userGroupIds(c: OktaClient, first: ApiCall, signal?: AbortSignal): Promise<Set<string>> {
  const ids = new Set<string>();
  let call = first;
  for (let page = 1; ; page++) {
    const res = await c.send(call, signal);
    const body = res.json<unknown>();
    if (!Array.isArray(body)) throw new UpstreamError(false, `${call.method} ${call.url} → ${res.status}: expected a list of groups`, { status: res.status });
    for (const g of body) if (g && typeof g === "object" && typeof (g as { id?: unknown }).id === "string") ids.add((g as { id: string }).id);
    const next = nextLink(res.headers["link"]);
    if (!next) return ids;
    let url: URL;
    try {
      url = new URL(next, call.url);
    } catch {
      throw new UpstreamError(false, `${call.method} ${call.url}: unreadable next-page link`);
    }
    // The token goes with every page: never follow a link off the org.
    if (url.origin !== new URL(c.orgUrl).origin) throw new UpstreamError(false, `${call.method} ${call.url}: next-page link leaves the org (${url.origin})`);
    if (page >= MAX_GROUP_PAGES) throw new UpstreamError(false, `${call.method} ${first.url}: more than ${MAX_GROUP_PAGES} pages of groups`);
    call = { ...first, url: url.href };
  }
}
