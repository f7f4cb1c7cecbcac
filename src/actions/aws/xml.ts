/**
 * IAM answers in XML: `<XResponse><XResult>…</XResult><ResponseMetadata/></XResponse>` on success,
 * `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>` on failure.
 * Lists are `<Name><member>…</member>…</Name>`. Values stay strings (ids are never turned into numbers).
 */
import type { XMLParser } from "fast-xml-parser";

/** A parsed element: a string for text, an object for children. */
export type XmlNode = string | { readonly [name: string]: XmlNode | XmlNode[] | undefined };

let parser: Promise<XMLParser> | undefined;
const loadParser = (): Promise<XMLParser> =>
  (parser ??= import("fast-xml-parser").then(
    ({ XMLParser }) =>
      new XMLParser({
        ignoreAttributes: true,
        removeNSPrefix: true,
        parseTagValue: false,
        processEntities: true,
        // A one-element list must still come back as a list.
        isArray: (name) => name === "member",
      }),
  )).catch((err: unknown) => {
    parser = undefined;
    throw err;
  });

/** Parses an XML body; undefined when it is not XML. */
export async function parseXml(text: string): Promise<Record<string, XmlNode> | undefined> {
  if (!/^\s*</.test(text)) return undefined;
  try {
    const doc = (await loadParser()).parse(text) as unknown;
    return doc !== null && typeof doc === "object" ? (doc as Record<string, XmlNode>) : undefined;
  } catch {
    return undefined;
  }
}

/** A child element of an object node. */
export function child(node: XmlNode | XmlNode[] | undefined, name: string): XmlNode | XmlNode[] | undefined {
  return node !== undefined && typeof node === "object" && !Array.isArray(node) ? (node as Record<string, XmlNode | XmlNode[] | undefined>)[name] : undefined;
}

/** The text of a child element, or undefined. */
export function text(node: XmlNode | XmlNode[] | undefined, name: string): string | undefined {
  const c = child(node, name);
  return typeof c === "string" ? c : undefined;
}

/** The `<member>` entries of a list element (an empty list parses as ""). */
export function members(node: XmlNode | XmlNode[] | undefined, name: string): XmlNode[] {
  const m = child(child(node, name), "member");
  return Array.isArray(m) ? m : m === undefined ? [] : [m];
}

/** The `<XResult>` of a successful `X` call, or undefined when the body has none. */
export function result(doc: Record<string, XmlNode> | undefined, action: string): XmlNode | undefined {
  const r = child(child(doc, `${action}Response`), `${action}Result`);
  return Array.isArray(r) ? undefined : r;
}

export interface AwsErrorBody {
  readonly code?: string;
  readonly message?: string;
  readonly requestId?: string;
}

/** Code, message and request id of an AWS error body (Query `ErrorResponse`, or EC2-style `Response/Errors`). */
export function errorBody(doc: Record<string, XmlNode> | undefined): AwsErrorBody {
  if (!doc) return {};
  const wrap = child(doc, "ErrorResponse") ?? child(doc, "Response");
  const err = child(wrap, "Error") ?? child(child(wrap, "Errors"), "Error");
  const one = Array.isArray(err) ? err[0] : err;
  const requestId = text(wrap, "RequestId") ?? text(wrap, "RequestID");
  const code = text(one, "Code");
  const message = text(one, "Message");
  return { ...(code ? { code } : {}), ...(message ? { message } : {}), ...(requestId ? { requestId } : {}) };
}
