/** Subject templates for certificate sources: the shared renderer, failing with a SourceError. */
import type { Subject } from "../../../policy/model.ts";
import { renderPath as renderPathWith, renderTemplate as renderTemplateWith } from "../../../plugin/template.ts";
import { SourceError } from "./common.ts";

const sourceError = (message: string) => new SourceError(message);

/** Substitutes the placeholders of `template` with the subject's values (see src/util/template.ts). */
export function renderTemplate(template: string, subject: Subject): string {
  return renderTemplateWith(template, subject, sourceError);
}

/** `renderTemplate` for a file path: subject values may not form `..` segments or carry glob characters. */
export function renderPath(template: string, subject: Subject): string {
  return renderPathWith(template, subject, sourceError);
}
