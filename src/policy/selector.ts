import type { Subject, SubjectKind } from "./model.ts";

/** Selector as written in config (see config/schema.ts). */
export interface SelectorSpec {
  readonly id?: string | readonly string[];
  readonly kind?: SubjectKind | readonly SubjectKind[];
  readonly identity?: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export type SubjectMatcher = (subject: Subject) => boolean;

/** Compiles a selector to a predicate; every given field must match, `*` is a wildcard in ids and identities. */
export function compileSelector(spec: SelectorSpec): SubjectMatcher {
  const ids = spec.id === undefined ? undefined : (typeof spec.id === "string" ? [spec.id] : spec.id).map(globToRegExp);
  const kinds = spec.kind === undefined ? undefined : new Set<string>(typeof spec.kind === "string" ? [spec.kind] : spec.kind);
  const identity = spec.identity === undefined ? undefined : globToRegExp(spec.identity);
  const labels = spec.labels ? Object.entries(spec.labels) : [];
  return (s) =>
    (!ids || ids.some((re) => re.test(s.id))) &&
    (!kinds || kinds.has(s.kind)) &&
    (!identity || (s.identity !== undefined && identity.test(s.identity))) &&
    labels.every(([k, v]) => s.labels[k] === v);
}

/** True when any of the selectors matches. */
export function anyMatch(matchers: readonly SubjectMatcher[], subject: Subject): boolean {
  return matchers.some((m) => m(subject));
}

function globToRegExp(glob: string): RegExp {
  return new RegExp("^" + glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
}
