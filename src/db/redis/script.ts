import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** A Lua script run by its SHA1 (EVALSHA), loaded again when Redis does not know it (after a restart). */
export type Script = (redis: Redis, keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>;

/** Wraps a Lua script; every call names all the keys it touches in `keys`. */
export function script(lua: string): Script {
  const sha = createHash("sha1").update(lua).digest("hex");
  return async (redis, keys, args) => {
    try {
      return await redis.evalsha(sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message ?? "")) throw err;
      return redis.eval(lua, keys.length, ...keys, ...args);
    }
  };
}
