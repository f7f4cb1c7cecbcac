/** Values an action takes from the subject or the policy edge; a missing one is a permanent error, never retried. */
import { z } from "zod";
import { VigilError } from "../../errors.ts";
import type { Subject } from "../../policy/model.ts";
import { renderTemplate, templateProblem } from "../../plugin/template.ts";
import type { ActionRequest } from "../../plugin/action.ts";

export function inputError(message: string): VigilError {
  return new VigilError("VIGIL_ERR_ACTION_INPUT", message);
}

/** Renders a `{{…}}` template from the subject; a missing value raises `VIGIL_ERR_ACTION_INPUT`. */
export function fromSubject(template: string, subject: Subject): string {
  return renderTemplate(template, subject, inputError);
}

/** The edge of a communication policy, or `VIGIL_ERR_ACTION_INPUT` when the action runs under another policy. */
export function requireEdge(req: ActionRequest, action: string): NonNullable<ActionRequest["edge"]> {
  if (!req.edge) throw inputError(`${action} works on communication policies only; policy ${req.decision.policy} has no source → destination edge`);
  return req.edge;
}

/** A config string holding `{{…}}` placeholders, checked for syntax at load time. */
export const templateString = () =>
  z
    .string()
    .min(1)
    .superRefine((s, ctx) => {
      const problem = templateProblem(s);
      if (problem) ctx.addIssue({ code: "custom", message: `template ${JSON.stringify(s)}: ${problem}` });
    });
