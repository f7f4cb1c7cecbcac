/**
 * RFC 8288 `Link` headers, as Okta (and other APIs that page with cursors) send them:
 * `<https://…?after=…>; rel="next", <https://…>; rel="self"`.
 */

/** The `rel="next"` target of a `Link` header, if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (!m) continue;
    for (const param of m[2]!.split(";")) {
      const rel = /^\s*rel\s*=\s*"?([^"]*)"?\s*$/i.exec(param);
      if (rel && rel[1]!.toLowerCase().split(/\s+/).includes("next")) return m[1];
    }
  }
  return undefined;
}
