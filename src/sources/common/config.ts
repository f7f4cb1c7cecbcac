/** Config pieces every source client shares: where its API lives. */
import { z } from "zod";

const LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]"];

/**
 * A base URL without query or fragment, trailing slash removed. Plain http only to loopback (a
 * local test double): secrets and bearer tokens must not cross a network in clear text.
 */
export function baseUrl(): z.ZodPipe<z.ZodURL, z.ZodTransform<string, string>> {
  return z
    .url({ protocol: /^https?$/, error: "expected an https URL" })
    .superRefine((s, ctx) => {
      const u = new URL(s);
      if (u.protocol === "http:" && !LOOPBACK_HOSTS.includes(u.hostname)) ctx.addIssue({ code: "custom", message: "plain http is only allowed to a loopback address; use https" });
      if (u.search || u.hash || s.includes("#")) ctx.addIssue({ code: "custom", message: "a base URL takes no query or fragment" });
      if (u.username || u.password) ctx.addIssue({ code: "custom", message: "a base URL takes no user or password" });
    })
    .transform((s) => s.replace(/\/+$/, ""));
}
