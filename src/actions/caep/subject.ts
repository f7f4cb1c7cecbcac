/**
 * The `sub_id` claim (RFC 9493 Subject Identifiers) a receiver knows the subject by, rendered from
 * the subject with a per-receiver template.
 */
import type { Subject } from "../../policy/model.ts";
import { fromSubject, inputError } from "../common/input.ts";

/** RFC 9493 formats a receiver may ask for. */
export const SUBJECT_FORMATS = ["email", "opaque", "iss_sub", "did", "uri", "phone_number", "account"] as const;
export type SubjectFormat = (typeof SUBJECT_FORMATS)[number];

/** A simple Subject Identifier (RFC 9493). */
export type SubjectIdentifier =
  | { readonly format: "email"; readonly email: string }
  | { readonly format: "opaque"; readonly id: string }
  | { readonly format: "iss_sub"; readonly iss: string; readonly sub: string }
  | { readonly format: "did"; readonly url: string }
  | { readonly format: "uri"; readonly uri: string }
  | { readonly format: "phone_number"; readonly phone_number: string }
  | { readonly format: "account"; readonly uri: string };

/** Where each format takes its value from when `from` is not set. */
export const DEFAULT_SUBJECT_TEMPLATES: Readonly<Record<SubjectFormat, string>> = {
  email: "{{attributes.email}}",
  opaque: "{{id}}",
  iss_sub: "{{id}}",
  did: "{{attributes.did}}",
  // A SPIFFE ID or any other URI identity.
  uri: "{{identity}}",
  phone_number: "{{attributes.phone_number}}",
  account: "acct:{{attributes.email}}",
};

export interface SubjectConfig {
  readonly format: SubjectFormat;
  readonly from?: string | undefined;
  /** The issuer of `iss_sub` subjects. */
  readonly iss?: string | undefined;
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;
const E164_RE = /^\+[1-9][0-9]{1,14}$/;
const URI_SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

/** Why `value` is not a valid identifier of `format`, or undefined. */
function valueProblem(format: SubjectFormat, value: string): string | undefined {
  switch (format) {
    case "email":
      return EMAIL_RE.test(value) ? undefined : "is not an email address";
    case "phone_number":
      return E164_RE.test(value) ? undefined : "is not an E.164 phone number (+<country><number>)";
    case "did":
      return /^did:[a-z0-9]+:\S+$/.test(value) ? undefined : "is not a DID (did:<method>:<id>)";
    case "uri":
      return URI_SCHEME_RE.test(value) ? undefined : "is not an absolute URI";
    case "account":
      return /^acct:[^\s@]+@[^\s@]+$/.test(value) ? undefined : "is not an acct: URI (acct:user@host)";
    case "opaque":
    case "iss_sub":
      return undefined;
  }
}

/** The receiver's `sub_id` for `subject`; a missing or malformed value is `VIGIL_ERR_ACTION_INPUT`. */
export function subjectIdentifier(config: SubjectConfig, subject: Subject, receiver: string): SubjectIdentifier {
  const value = fromSubject(config.from ?? DEFAULT_SUBJECT_TEMPLATES[config.format], subject);
  const problem = valueProblem(config.format, value);
  if (problem) throw inputError(`caep receiver ${receiver}: the ${config.format} subject identifier of ${subject.id} ${problem}`);
  switch (config.format) {
    case "email":
      return { format: "email", email: value };
    case "opaque":
      return { format: "opaque", id: value };
    case "iss_sub":
      if (!config.iss) throw inputError(`caep receiver ${receiver}: iss_sub subjects need subject.iss`);
      return { format: "iss_sub", iss: config.iss, sub: value };
    case "did":
      return { format: "did", url: value };
    case "uri":
      return { format: "uri", uri: value };
    case "phone_number":
      return { format: "phone_number", phone_number: value };
    case "account":
      return { format: "account", uri: value };
  }
}
