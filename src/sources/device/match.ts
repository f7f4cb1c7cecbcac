/**
 * Which devices a subject stands for. A device (or workload) subject names its device through its
 * id, identity or attributes; a user subject is matched to the devices the sources associate with
 * the user (Intune's user principal name, Fleet's device mapping, Jamf's user); a session subject
 * names the device it came from, or stands for its user. The templates are configurable
 * (`match:`); the defaults follow the attributes vigil's own device inventories set.
 */
import { z } from "zod";
import type { Subject } from "../../policy/model.ts";
import { compileTemplate, templateProblem } from "../../plugin/template.ts";
import type { DeviceRecord } from "./model.ts";

const template = z.string().superRefine((s, ctx) => {
  const problem = templateProblem(s);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

/** Defaults of `match:`. */
export const DEFAULT_MATCH = {
  device: ["{{id}}", "{{identity}}", "{{attributes.device_id}}", "{{attributes.serial_number}}", "{{attributes.azure_ad_device_id}}", "{{attributes.crowdstrike_aid}}", "{{attributes.hostname}}"],
  user: ["{{identity}}", "{{attributes.email}}", "{{attributes.user_principal_name}}", "{{attributes.user}}"],
  session_device: "{{attributes.device_id}}",
} as const;

export const matchSchema = z
  .object({
    /** Values of a device or workload subject looked up among the devices' ids, serials and hostnames. Default: id, identity and the attributes device_id, serial_number, azure_ad_device_id, crowdstrike_aid, hostname. */
    device: z.array(template).min(1).default([...DEFAULT_MATCH.device]),
    /** Values of a user (or session) subject looked up among the devices' users. Default: identity and the attributes email, user_principal_name, user. */
    user: z.array(template).min(1).default([...DEFAULT_MATCH.user]),
    /** The device a session subject came from. Default `{{attributes.device_id}}`. */
    session_device: template.default(DEFAULT_MATCH.session_device),
  })
  .strict();

export type MatchConfig = z.output<typeof matchSchema>;

/** Which of a user's devices must comply: `all` (default), `any`, or `session` (the session's own device when it names one, else all). */
export const userModeSchema = z.enum(["all", "any", "session"]);
export type UserMode = z.output<typeof userModeSchema>;

/** What to look up for a subject. */
export type Lookup =
  | { readonly by: "device"; readonly values: readonly string[]; readonly what: string }
  | { readonly by: "user"; readonly values: readonly string[]; readonly what: string }
  | { readonly by: "none"; readonly what: string };

/** Templates are rendered for every subject of every run: parsed once per configuration. */
const compiled = new WeakMap<readonly string[], ((subject: Subject) => string | undefined)[]>();

function render(templates: readonly string[], subject: Subject): string[] {
  let fns = compiled.get(templates);
  if (!fns) {
    fns = templates.map(compileTemplate);
    compiled.set(templates, fns);
  }
  const out: string[] = [];
  for (const fn of fns) {
    const raw = fn(subject);
    if (raw === undefined) continue;
    const v = raw.trim();
    if (v === "" || v.length > 512) continue;
    const lower = v.toLowerCase();
    if (!out.includes(lower)) out.push(lower);
  }
  return out;
}

const sessionLists = new WeakMap<MatchConfig, readonly string[]>();
function sessionTemplates(match: MatchConfig): readonly string[] {
  let list = sessionLists.get(match);
  if (!list) sessionLists.set(match, (list = [match.session_device]));
  return list;
}

export function lookupFor(subject: Subject, match: MatchConfig, mode: UserMode): Lookup {
  if (subject.kind === "device" || subject.kind === "workload") {
    const values = render(match.device, subject);
    return values.length > 0 ? { by: "device", values, what: `device ${subject.id}` } : { by: "none", what: `subject ${subject.id} names no device id` };
  }
  if (subject.kind === "session" && mode === "session") {
    const device = render(sessionTemplates(match), subject);
    if (device.length > 0) return { by: "device", values: device, what: `the device of session ${subject.id}` };
  }
  const values = render(match.user, subject);
  return values.length > 0 ? { by: "user", values, what: `the devices of ${subject.kind} ${subject.id}` } : { by: "none", what: `${subject.kind} ${subject.id} names no user` };
}

/**
 * Records that are one machine seen by several sources (the same serial number) grouped together;
 * records without a serial stand alone.
 */
export function groupDevices(records: readonly DeviceRecord[]): DeviceRecord[][] {
  const bySerial = new Map<string, DeviceRecord[]>();
  const out: DeviceRecord[][] = [];
  for (const r of records) {
    const serial = r.serial?.toLowerCase();
    if (serial === undefined) {
      out.push([r]);
      continue;
    }
    const group = bySerial.get(serial);
    if (group) group.push(r);
    else {
      const g = [r];
      bySerial.set(serial, g);
      out.push(g);
    }
  }
  return out;
}
