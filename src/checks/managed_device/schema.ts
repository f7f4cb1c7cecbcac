import { z } from "zod";
import { fleetConnectionShape, hostConnectionShape, intuneConnectionShape, jamfConnectionShape } from "../../sources/device/schema.ts";
import { sourceCommonShape } from "../common/device.ts";

/** The sources that know whether a device is managed (CrowdStrike ZTA does not say). */
export const managedSourceSchema = z.discriminatedUnion("type", [
  z.object({ ...intuneConnectionShape, ...sourceCommonShape }).strict(),
  z.object({ ...fleetConnectionShape, ...sourceCommonShape }).strict(),
  z.object({ ...jamfConnectionShape, ...sourceCommonShape }).strict(),
  z.object({ ...hostConnectionShape, ...sourceCommonShape }).strict(),
]);

export type ManagedSourceConfig = z.output<typeof managedSourceSchema>;
