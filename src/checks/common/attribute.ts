/**
 * Shared shape of the perimeter checks: each reads one subject attribute and judges it with a pure
 * function. Gathering is reading the subject, so `evaluate` is the whole check and table-testable.
 */
import type { CheckResult, CheckStatus, Reason, Subject } from "../../policy/model.ts";
import type { Check } from "../../plugin/check.ts";
import type { CheckRunContext } from "../../plugin/context.ts";

export interface Verdict {
  readonly status: CheckStatus;
  readonly reasons: readonly Reason[];
  readonly evidence?: Record<string, unknown>;
}

/**
 * Reads a dotted attribute path (`device.managed`). Own properties only: an inventory's attributes
 * must say `managed: true`, not inherit a `constructor` or `toString` that reads as present.
 */
export function attribute(subject: Subject, path: string): unknown {
  let v: unknown = subject.attributes;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export function verdict(status: CheckStatus, code: string, message: string, evidence?: Record<string, unknown>): Verdict {
  return { status, reasons: status === "pass" && code === "" ? [] : [{ code, message }], evidence };
}

export const PASS: Verdict = { status: "pass", reasons: [] };

/** Builds a Check from a pure per-subject evaluation. */
export function attributeCheck(name: string, evaluate: (subject: Subject, now: number) => Verdict): Check {
  return {
    async run(subjects: readonly Subject[], ctx: CheckRunContext): Promise<CheckResult[]> {
      const now = ctx.clock.now();
      return subjects.map((s) => {
        const v = evaluate(s, now);
        return { check: name, subject: s.id, status: v.status, reasons: v.reasons, evidence: v.evidence, observed_at: now, expires_at: now + ctx.ttlMs, source: "pull" };
      });
    },
  };
}
