/**
 * How one registry holds factories of different config types without losing which config belongs to
 * which factory: an entry is parsed by the factory's own schema and the factory's create() is bound
 * to the result, so no create() can be handed a config that another schema produced.
 */
import type { z } from "zod";

/** An entry after its factory's schema: the config as plain data, and the factory's create() bound to it. */
export type Configured<Ctx, T> =
  | {
      readonly success: true;
      /** The schema's output, for display and comparison; create() already holds it. */
      readonly config: unknown;
      readonly create: (ctx: Ctx) => T;
    }
  | { readonly success: false; readonly error: z.ZodError };

/** Parses `raw` with `schema` (once per load: without zod's JIT) and, when it validates, binds `create` to the result. */
export function configure<C, Ctx, T>(schema: z.ZodType<C>, create: (config: C, ctx: Ctx) => T, raw: unknown): Configured<Ctx, T> {
  const parsed = schema.safeParse(raw, { jitless: true });
  if (!parsed.success) return { success: false, error: parsed.error };
  const config = parsed.data;
  return { success: true, config, create: (ctx) => create(config, ctx) };
}
