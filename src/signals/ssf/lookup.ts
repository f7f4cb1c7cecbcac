/**
 * Which vigil subjects an event's subject names: each rule reads one identifier format and looks its
 * value up in one subject field (`attributes.email`, `id`, …). Lookups go through an index per rule,
 * rebuilt when the inventories change, so a SET costs a map lookup, not a scan of every subject.
 */
import type { Subject } from "../../policy/model.ts";
import type { SubjectRule } from "./config.ts";
import { identifiersOf, SIMPLE_MEMBER, type ParsedSubject, type SimpleIdentifier } from "./subject.ts";

/**
 * The rules used when a transmitter lists none: the counterpart of what vigil's own CAEP
 * transmitter sends by default, so two agents understand each other without configuration.
 */
export const DEFAULT_SUBJECT_RULES: readonly SubjectRule[] = [
  { format: "email", match: "attributes.email" },
  { format: "iss_sub", match: "id" },
  { format: "opaque", match: "id" },
  { format: "account", match: "attributes.email" },
  { format: "phone_number", match: "attributes.phone_number" },
  { format: "did", match: "attributes.did" },
  { format: "uri", match: "identity" },
];

const DEFAULT_MATCH: Readonly<Record<string, string>> = {
  email: "attributes.email",
  account: "attributes.email",
  phone_number: "attributes.phone_number",
  did: "attributes.did",
  uri: "identity",
};

/** Where the subjects come from: the agent's subject index, and a number that changes when it does. */
export interface SubjectSource {
  all(): Iterable<Subject>;
  version(): number;
}

/** Most vigil subjects one event may name; the rest are left out (and logged). */
export const MAX_SUBJECTS_PER_EVENT = 100;

function normalize(format: string, value: string): string {
  if (format === "email" || format === "account") return value.toLowerCase();
  if (format === "phone_number") return value.replace(/[\s().-]/g, "");
  return value;
}

/** The value of an identifier a rule compares, or undefined when the identifier does not fit the rule. */
function valueOf(rule: SubjectRule, id: SimpleIdentifier): string | undefined {
  const format = id.format === "jwt-id" ? "jwt_id" : id.format;
  if (format !== rule.format) return undefined;
  const m = id.members;
  const str = (k: string) => (typeof m[k] === "string" ? (m[k] as string) : undefined);
  switch (format) {
    case "email":
      return str("email");
    case "iss_sub":
      return rule.iss === undefined || rule.iss === str("iss") ? str("sub") : undefined;
    case "jwt_id":
      return rule.iss === undefined || rule.iss === str("iss") ? str("jti") : undefined;
    case "opaque":
      return str("id");
    case "account":
      return str("uri")?.replace(/^acct:/, "");
    case "phone_number":
      return str("phone_number");
    case "did":
      return str("url");
    case "uri":
      return str("uri");
    case "saml_assertion_id":
      return str("assertion_id");
    default:
      return undefined;
  }
}

/** The values a subject has in a field (`id`, `identity`, `attributes.x`, `labels.x`); lists of strings count element-wise. */
function fieldValues(subject: Subject, field: string): string[] {
  if (field === "id") return [subject.id];
  if (field === "identity") return subject.identity === undefined ? [] : [subject.identity];
  const dot = field.indexOf(".");
  const bag = field.slice(0, dot) === "labels" ? subject.labels : subject.attributes;
  const key = field.slice(dot + 1);
  if (!Object.hasOwn(bag, key)) return [];
  const v = (bag as Record<string, unknown>)[key];
  if (typeof v === "string") return [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return [];
}

export class SubjectLookup {
  readonly #rules: readonly SubjectRule[];
  readonly #source: SubjectSource;
  #version = Number.NaN;
  #indexes: Map<string, string[]>[] = [];

  constructor(rules: readonly SubjectRule[] | undefined, source: SubjectSource) {
    this.#rules = rules ?? DEFAULT_SUBJECT_RULES;
    this.#source = source;
  }

  /** The vigil subjects the event's subject names, each once, in rule order; at most `MAX_SUBJECTS_PER_EVENT`. */
  resolve(subject: ParsedSubject): { ids: string[]; truncated: boolean } {
    this.#refresh();
    const out = new Set<string>();
    const ids = identifiersOf(subject);
    let truncated = false;
    this.#rules.forEach((rule, i) => {
      const index = this.#indexes[i]!;
      for (const { member, id } of ids) {
        if (member !== SIMPLE_MEMBER && rule.members !== undefined && !rule.members.includes(member)) continue;
        const value = valueOf(rule, id);
        if (value === undefined) continue;
        for (const hit of index.get(normalize(rule.format, value)) ?? []) {
          if (out.size >= MAX_SUBJECTS_PER_EVENT) truncated = true;
          else out.add(hit);
        }
      }
    });
    return { ids: [...out], truncated };
  }

  #refresh(): void {
    const version = this.#source.version();
    if (version === this.#version) return;
    this.#indexes = this.#rules.map(() => new Map<string, string[]>());
    const fields = this.#rules.map((r) => r.match ?? DEFAULT_MATCH[r.format] ?? "id");
    for (const subject of this.#source.all()) {
      this.#rules.forEach((rule, i) => {
        for (const raw of fieldValues(subject, fields[i]!)) {
          const key = normalize(rule.format, rule.format === "account" ? raw.replace(/^acct:/, "") : raw);
          const index = this.#indexes[i]!;
          const list = index.get(key);
          if (list) list.push(subject.id);
          else index.set(key, [subject.id]);
        }
      });
    }
    this.#version = version;
  }
}
