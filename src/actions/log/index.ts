/**
 * `log`: writes one structured line per enforcement step. Useful as a first action while a policy is
 * tuned, or beside real actions so the decision is in the log pipeline as well as the audit log.
 * A revert is a restore, and reads like one: "access restored" (or `restore_message`), at most at
 * `warn` however severe the apply's line is.
 */
import { z } from "zod";
import type { Action, ActionFactory, ActionRequest } from "../../plugin/action.ts";
import type { PlannedCall } from "../../net/api-call.ts";

export const logConfigSchema = z
  .object({
    /** Level of the line. Default `warn`. */
    level: z.enum(["info", "warn", "error"]).default("warn"),
    /** Log message of an apply. Default `enforcement`. */
    message: z.string().min(1).default("enforcement"),
    /** Log message of a revert (access given back). Default `access restored`. */
    restore_message: z.string().min(1).optional(),
  })
  .strict();

const RESTORE_MESSAGE = "access restored";

export type LogConfig = z.output<typeof logConfigSchema>;

/** The fields of the line written for one request (also the planned body). */
export function logRecord(req: ActionRequest): Record<string, unknown> {
  const d = req.decision;
  return {
    action: "log",
    operation: req.operation,
    policy: d.policy,
    subject: req.subject.id,
    access: d.access,
    previous_access: req.previous_access,
    generation: d.generation,
    risk: d.risk,
    reasons: d.reasons.map((r) => r.code),
    idempotency_key: req.idempotency_key,
    ...(req.edge ? { edge: req.edge } : {}),
  };
}

export const logAction: ActionFactory<LogConfig> = {
  type: "log",
  description: "Write one structured log line per enforcement step (apply and revert).",
  requiredPermissions: [],
  example: { type: "log", level: "warn", message: "access changed" },
  configSchema: logConfigSchema,
  revertible: true,
  create(config, ctx): Action {
    // A restore is good news: never an error line, whatever level the apply's line has.
    const line = (req: ActionRequest) =>
      req.operation === "revert"
        ? { level: config.level === "error" ? ("warn" as const) : config.level, msg: config.restore_message ?? RESTORE_MESSAGE }
        : { level: config.level, msg: config.message };
    const plan = (req: ActionRequest): PlannedCall[] => [
      { method: "LOG", url: "log:", headers: {}, body: { ...line(req), ...logRecord(req) }, summary: `log ${req.operation} of ${req.decision.access} for ${req.subject.id}` },
    ];
    const write = async (req: ActionRequest) => {
      const { level, msg } = line(req);
      ctx.logger[level](logRecord(req), msg);
      return {};
    };
    return { plan, apply: write, revert: write };
  },
};
