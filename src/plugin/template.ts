/**
 * `{{placeholder}}` substitution of subject values into plugin settings, e.g.
 * `/etc/certs/{{labels.app}}/tls.crt`, `{{attributes.host}}:443` or `{{attributes.okta_id}}`.
 *
 * Placeholders: `{{id}}`, `{{identity}}`, `{{kind}}`, `{{attributes.a.b}}` (a dotted walk into the
 * attributes), `{{labels.<key>}}` (the key taken whole, so `{{labels.app.kubernetes.io/name}}` works).
 * Spaces inside the braces are allowed. Values are inserted literally: nothing is evaluated and the
 * result is never re-scanned. Strings, finite numbers and booleans are values; a missing, empty,
 * null, object or array value is an error naming the placeholder.
 */
import type { Subject } from "../policy/model.ts";

/** Raised by a template that cannot be rendered for a subject; callers may supply their own error type. */
export type TemplateErrorFactory = (message: string) => Error;
const plainError: TemplateErrorFactory = (message) => new Error(message);

const NAME = /^(?:id|identity|kind|attributes(?:\.[A-Za-z0-9_-]+)+|labels\.[A-Za-z0-9_./-]+)$/;
const MAX_TEMPLATE = 4096;

interface Piece {
  readonly text: string;
  /** True when the text came from the subject, false when it is part of the template. */
  readonly value: boolean;
  readonly name?: string;
}

function lookup(subject: Subject, name: string): unknown {
  if (name === "id" || name === "identity" || name === "kind") return subject[name];
  if (name.startsWith("labels.")) {
    const key = name.slice("labels.".length);
    return subject.labels && Object.hasOwn(subject.labels, key) ? subject.labels[key] : undefined;
  }
  let v: unknown = subject.attributes;
  for (const part of name.slice("attributes.".length).split(".")) {
    if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function scalar(v: unknown): string | undefined {
  if (typeof v === "string") return v === "" ? undefined : v;
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === "boolean" || typeof v === "bigint") return String(v);
  return undefined;
}

function pieces(template: string, subject: Subject, fail: TemplateErrorFactory): Piece[] {
  if (typeof template !== "string") throw fail("template must be a string");
  if (template.length > MAX_TEMPLATE) throw fail(`template is longer than ${MAX_TEMPLATE} characters`);
  const out: Piece[] = [];
  let at = 0;
  for (;;) {
    const open = template.indexOf("{{", at);
    if (open < 0) break;
    const close = template.indexOf("}}", open + 2);
    if (close < 0) throw fail(`template ${JSON.stringify(template)}: "{{" at ${open} is never closed`);
    const name = template.slice(open + 2, close).trim();
    if (!NAME.test(name)) {
      throw fail(`template ${JSON.stringify(template)}: unknown placeholder {{${name}}} (use id, identity, kind, attributes.<path> or labels.<key>)`);
    }
    const value = scalar(lookup(subject, name));
    if (value === undefined) throw fail(`template ${JSON.stringify(template)}: subject ${subject.id} has no value for {{${name}}}`);
    if (open > at) out.push({ text: template.slice(at, open), value: false });
    out.push({ text: value, value: true, name });
    at = close + 2;
  }
  if (at < template.length) out.push({ text: template.slice(at), value: false });
  return out;
}

/** Substitutes the placeholders of `template` with the subject's values. */
export function renderTemplate(template: string, subject: Subject, fail: TemplateErrorFactory = plainError): string {
  return pieces(template, subject, fail)
    .map((p) => p.text)
    .join("");
}

/** Characters a glob gives meaning to; a value must not smuggle them into a path. */
const GLOB_META = /[*?[\]{}()!]/;

/**
 * `renderTemplate` for a file path. Beyond it, a value may not:
 * - contain NUL;
 * - contribute to a `..` segment of the result (also one formed with the template, as in `.{{id}}`);
 * - contain glob characters (`* ? [ ] { } ( ) !`), so only the template decides whether a path is a glob.
 * The template's own text may contain `..` and globs: that is the operator's choice.
 */
export function renderPath(template: string, subject: Subject, fail: TemplateErrorFactory = plainError): string {
  if (typeof template === "string" && template.includes("\0")) throw fail(`path template ${JSON.stringify(template)} contains NUL`);
  const parts = pieces(template, subject, fail);
  for (const p of parts) {
    if (!p.value) continue;
    if (p.text.includes("\0")) throw fail(`path template ${JSON.stringify(template)}: the value of {{${p.name}}} contains NUL`);
    if (GLOB_META.test(p.text)) throw fail(`path template ${JSON.stringify(template)}: the value of {{${p.name}}} contains glob characters`);
  }
  // Mark every character by origin, then look at each path segment.
  let text = "";
  const fromValue: boolean[] = [];
  for (const p of parts) {
    text += p.text;
    for (let i = 0; i < p.text.length; i++) fromValue.push(p.value);
  }
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text[i] !== "/" && text[i] !== "\\") continue;
    if (text.slice(start, i) === ".." && fromValue.slice(start, i).some(Boolean)) {
      throw fail(`path template ${JSON.stringify(template)}: a subject value forms a ".." path segment`);
    }
    start = i + 1;
  }
  return text;
}

/**
 * `renderTemplate` parsed once, for a template rendered for many subjects: the returned function
 * gives the rendered text, or undefined where `renderTemplate` would throw for a missing value
 * (no error is built). Throws at once for a template that can never render.
 */
export function compileTemplate(template: string): (subject: Subject) => string | undefined {
  const problem = templateProblem(template);
  if (problem !== undefined) throw new Error(`template ${JSON.stringify(template)}: ${problem}`);
  const parts: ({ readonly text: string } | { readonly name: string })[] = [];
  let at = 0;
  for (;;) {
    const open = template.indexOf("{{", at);
    if (open < 0) break;
    const close = template.indexOf("}}", open + 2);
    if (open > at) parts.push({ text: template.slice(at, open) });
    parts.push({ name: template.slice(open + 2, close).trim() });
    at = close + 2;
  }
  if (at < template.length) parts.push({ text: template.slice(at) });
  return (subject) => {
    let out = "";
    for (const p of parts) {
      if ("text" in p) out += p.text;
      else {
        const v = scalar(lookup(subject, p.name));
        if (v === undefined) return undefined;
        out += v;
      }
    }
    return out;
  };
}

/** Why `template` can never render (an unclosed or unknown placeholder), or undefined. For config validation. */
export function templateProblem(template: string): string | undefined {
  if (template.length > MAX_TEMPLATE) return `longer than ${MAX_TEMPLATE} characters`;
  let at = 0;
  for (;;) {
    const open = template.indexOf("{{", at);
    if (open < 0) return undefined;
    const close = template.indexOf("}}", open + 2);
    if (close < 0) return `"{{" at ${open} is never closed`;
    const name = template.slice(open + 2, close).trim();
    if (!NAME.test(name)) return `unknown placeholder {{${name}}} (use id, identity, kind, attributes.<path> or labels.<key>)`;
    at = close + 2;
  }
}
